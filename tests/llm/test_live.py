"""Against a real OpenAI-compatible endpoint: an Agent calls a tool and answers.

Runs only when OPENAI_BASE_URL is set (with OPENAI_API_KEY and OPENAI_MODEL as that endpoint
needs); otherwise it is skipped, saying so. Nothing here is scripted: the model decides.
"""

import os
from typing import Any

import pytest

from taskcanvas.components import builtin_registry
from taskcanvas.config import Settings
from taskcanvas.llm.config import ModelRegistry
from taskcanvas.runtime.component import RunContext
from taskcanvas.tools.base import Tool, ToolParams
from tests.support.canvas import build, cpn, make_canvas, run_turn

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not os.environ.get("OPENAI_BASE_URL"),
                       reason="set OPENAI_BASE_URL (and OPENAI_API_KEY, OPENAI_MODEL) to run against a real model"),
]


class SecretParams(ToolParams):
    pass


class SecretNumber(Tool):
    """Knows a number the model cannot guess."""

    component_name = "SecretNumber"
    Params = SecretParams
    meta = {"name": "secret_number", "description": "Returns today's secret number. Always call it when asked "
            "for the secret number.", "parameters": {}}

    async def call(self, ctx: RunContext, **args: Any) -> Any:
        ctx.state.set_output(self.id, "calls", int(ctx.state.output(self.id, "calls") or 0) + 1)
        return "The secret number is 73914."


async def test_a_real_model_calls_a_tool() -> None:
    registry = builtin_registry()
    registry.register(SecretNumber)
    dsl = make_canvas({
        "begin": cpn("Begin", down=["agent"]),
        "agent": cpn("Agent", {"llm_id": "", "sys_prompt": "Use your tools. Answer briefly.", "max_rounds": 3,
                               "tools": [{"component_name": "SecretNumber", "name": "Secret", "params": {}}]},
                     down=["msg"]),
        "msg": cpn("Message", {"content": ["{agent@content}"]}),
    })
    models = ModelRegistry.from_settings(Settings.load())
    try:
        turn = await run_turn(build(dsl, registry, services={"models": models}),
                              query="What is today's secret number? Use the tool.")
    finally:
        await models.aclose()
    assert turn.status.value == "finished", turn.error
    assert turn.output("agent-->Secret", "calls") >= 1
    assert "73914" in turn.output("agent", "content")
