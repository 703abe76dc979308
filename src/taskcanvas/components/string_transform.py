"""StringTransform: split a text variable by delimiters, or merge variables into a text template (spec §4.12)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import field_validator

from taskcanvas.components.message import text_values
from taskcanvas.runtime.component import Component, ComponentParams, RunContext
from taskcanvas.runtime.state import RunState
from taskcanvas.runtime.templates import has_jinja, render

METHODS = ("split", "merge")


class StringTransformParams(ComponentParams):
    method: str = "split"
    script: str = ""
    split_ref: str = ""
    delimiters: list[str] = [","]
    outputs: dict[str, Any] = {"result": {"value": "", "type": "string"}}

    @field_validator("method")
    @classmethod
    def _known_method(cls, v: str) -> str:
        if v not in METHODS:
            raise ValueError(f"method {v!r} is not supported; use split or merge")
        return v

    @field_validator("delimiters")
    @classmethod
    def _delimiters_given(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("delimiters must not be empty")
        return v


def _split(text: str, delimiters: list[str]) -> list[str]:
    """``text`` cut at every delimiter, taken literally; empty fields are kept."""
    pattern = "|".join(re.escape(d) for d in delimiters)
    return re.split(pattern, text, flags=re.DOTALL)


class StringTransform(Component):
    component_name = "StringTransform"
    Params = StringTransformParams
    # ragflow makes it a Message, so it waits for the components its script refers to (but says nothing).
    reads_text = True

    def text_inputs(self) -> list[str]:
        params = self.params
        assert isinstance(params, StringTransformParams)
        # ragflow takes the script's references whatever the method, so a split waits for them too.
        return [params.script]

    def thoughts(self, state: RunState) -> str:
        params = self.params
        assert isinstance(params, StringTransformParams)
        return f"It's {params.method}ing."

    async def invoke(self, ctx: RunContext) -> None:
        params = self.params
        assert isinstance(params, StringTransformParams)
        state = ctx.state
        if params.method == "split":
            # Not recorded as an input: ragflow's node_finished lists only the script's references.
            value = state.get_variable_value(params.split_ref) or ""
            if not isinstance(value, str):
                raise TypeError(f"The input variable is not a string: {type(value)}")
            state.set_output(self.id, "result", _split(value, params.delimiters))
            return
        script = params.script
        values = await text_values(self, state, script, delimiter=params.delimiters[0])
        state.set_output(self.id, "result", render(script, values, jinja=has_jinja(script)))
