"""Categorize: let a model pick the branch whose category fits the input (spec §4.7)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import field_validator

from taskcanvas.components import prompts
from taskcanvas.components.llm import LLM, LLMParams, add_usage
from taskcanvas.llm.errors import ModelError
from taskcanvas.runtime.component import RunContext
from taskcanvas.runtime.state import RunState


class CategorizeParams(LLMParams):
    category_description: dict[str, dict[str, Any]]
    query: str = "sys.query"
    message_history_window_size: int = 1

    @field_validator("category_description")
    @classmethod
    def _categories(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        if not v:
            raise ValueError("must list at least one category")
        for name, cat in v.items():
            if not name.strip():
                raise ValueError("a category name is empty")
            to = cat.get("to")
            if isinstance(to, str):
                cat["to"] = [to] if to else []
            if not cat.get("to"):
                raise ValueError(f"category {name!r} leads nowhere ('to' is empty)")
        return v

    @field_validator("message_history_window_size")
    @classmethod
    def _window(cls, v: int) -> int:
        if v < 0:
            raise ValueError("must be 0 or more")
        return v


def pick_category(answer: str, names: list[str]) -> str:
    """The name mentioned most often (case-insensitive; ties → first); none mentioned → the last."""
    counts = {name: answer.lower().count(name.lower()) for name in names}
    if not any(counts.values()):
        return names[-1]
    return max(counts.items(), key=lambda item: item[1])[0]


class Categorize(LLM):
    component_name = "Categorize"
    Params = CategorizeParams

    def _params(self) -> CategorizeParams:
        params = self.params
        assert isinstance(params, CategorizeParams)
        return params

    def text_inputs(self) -> list[str]:
        return [f"{{{self._params().query or 'sys.query'}}}"]

    def thoughts(self, state: RunState) -> str:
        names = ",".join(f"`{c}`" for c in self._params().category_description)
        return f"Which should it falls into {names}? ..."

    async def invoke(self, ctx: RunContext) -> None:
        state = ctx.state
        params = self._params()
        messages = state.get_history(params.message_history_window_size) or [{"role": "user", "content": ""}]
        key = params.query or "sys.query"
        value = state.get_variable_value(key)
        messages[-1]["content"] = "" if value is None else value
        state.set_input(self.id, key, messages[-1]["content"])
        data = " | ".join(
            '{}: "{}"'.format(m["role"].upper(), re.sub(r"\n", "", str(m["content"]))) for m in messages)
        user = f"\n---- Real Data ----\n{data} →\n"
        system = prompts.categorize_prompt(params.category_description)
        model = self.model(ctx)
        try:
            response = await model.chat([{"role": "system", "content": system}, {"role": "user", "content": user}],
                                        options=params.options())
        except ModelError as e:
            raise RuntimeError(f"**ERROR**: {e}") from None
        add_usage(ctx, response)
        if "**ERROR**" in response.content:
            raise RuntimeError(response.content)
        names = list(params.category_description)
        chosen = pick_category(response.content, names)
        state.set_output(self.id, "category_name", chosen)
        state.set_output(self.id, "_next", list(params.category_description[chosen]["to"]))
