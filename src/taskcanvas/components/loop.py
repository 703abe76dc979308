"""Loop: repeat its body while the termination conditions are false (spec §3.7)."""

from __future__ import annotations

from typing import Any

from taskcanvas.runtime.component import Component, ComponentParams, RunContext
from taskcanvas.runtime.state import RunState


class LoopParams(ComponentParams):
    loop_variables: list[dict[str, Any]] = []
    loop_termination_condition: list[dict[str, Any]] = []
    logical_operator: str = "and"
    maximum_loop_count: int = 0


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value == "")


def _incomplete(item: dict[str, Any]) -> bool:
    if any(_missing(item.get(k)) for k in ("variable", "input_mode", "type")):
        return True
    mode = item.get("input_mode")
    if mode == "variable":
        return _missing(item.get("value"))
    if mode == "constant":
        return item.get("value") is None
    return True


def _default(type_name: str) -> Any:
    if type_name == "number":
        return 0
    if type_name == "boolean":
        return False
    if type_name.startswith("object"):
        return {}
    if type_name.startswith("array"):
        return []
    return ""


class Loop(Component):
    component_name = "Loop"
    timeout = None  # never waits on anything
    Params = LoopParams

    def thoughts(self, state: RunState) -> str:
        return "Loop from canvas."

    async def invoke(self, ctx: RunContext) -> None:
        params = self.params
        assert isinstance(params, LoopParams)
        state = ctx.state
        start = self.canvas.start_of(self.id)
        if start:
            # Entering the Loop starts counting passes again.
            state.set_counter(start, 0)
        for item in params.loop_variables:
            if _incomplete(item):
                raise ValueError("Loop Variable is not complete.")
            name = item["variable"]
            if item["input_mode"] == "variable":
                state.set_output(self.id, name, state.get_variable_value(item["value"]))
            elif item["input_mode"] == "constant":
                state.set_output(self.id, name, item["value"])
            else:
                state.set_output(self.id, name, _default(str(item["type"])))
