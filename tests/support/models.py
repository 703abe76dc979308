"""Chat models for tests: every llm_id goes to a scripted OpenAI-compatible server on loopback."""

from __future__ import annotations

from typing import Any

from taskcanvas.llm.openai import OpenAIChatModel
from taskcanvas.testing.model_server import ScriptedModelServer


class ServerModels:
    """A model provider sending every ``llm_id`` to ``server`` (model name = the id before ``@``)."""

    def __init__(self, server: ScriptedModelServer, **model_kw: Any) -> None:
        self.server = server
        self.model_kw = model_kw
        self._models: dict[str, OpenAIChatModel] = {}

    def get(self, llm_id: str) -> OpenAIChatModel:
        name = llm_id.split("@")[0] or "default-model"
        if name not in self._models:
            self._models[name] = OpenAIChatModel(name, base_url=self.server.base_url, api_key="test-key",
                                                 **self.model_kw)
        return self._models[name]

    def serves(self, llm_id: str) -> bool:
        return True
