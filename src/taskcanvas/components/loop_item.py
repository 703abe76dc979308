"""LoopItem: the start of a Loop's body; counts passes and decides when the Loop ends (spec §3.7)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from taskcanvas.components.loop import LoopParams
from taskcanvas.runtime.component import Component, ComponentParams, RunContext
from taskcanvas.runtime.state import RunState


def evaluate_condition(var: Any, op: str, value: Any) -> bool:
    """ragflow's loop condition, chosen by the runtime type of ``var`` (bool before number)."""
    tests: dict[str, Callable[[], Any]]
    if isinstance(var, str):
        tests = {"contains": lambda: value in var, "not contains": lambda: value not in var,
                 "start with": lambda: var.startswith(value), "end with": lambda: var.endswith(value),
                 "is": lambda: var == value, "is not": lambda: var != value,
                 "empty": lambda: var == "", "not empty": lambda: var != ""}
    elif isinstance(var, bool):
        tests = {"is": lambda: var is value, "is not": lambda: var is not value,
                 "empty": lambda: False, "not empty": lambda: True}
    elif isinstance(var, (int, float)):
        tests = {"=": lambda: var == value, "≠": lambda: var != value, ">": lambda: var > value,
                 "<": lambda: var < value, "≥": lambda: var >= value, "≤": lambda: var <= value,
                 "empty": lambda: False, "not empty": lambda: True}
    elif isinstance(var, dict):
        tests = {"empty": lambda: len(var) == 0, "not empty": lambda: len(var) > 0}
    elif isinstance(var, list):
        tests = {"contains": lambda: value in var, "not contains": lambda: value not in var,
                 "is": lambda: var == value, "is not": lambda: var != value,
                 "empty": lambda: len(var) == 0, "not empty": lambda: len(var) > 0}
    elif var is None:
        return op == "empty"
    else:
        tests = {}
    test = tests.get(op)
    if test is None:
        raise ValueError(f"Invalid operator: {op}")
    return bool(test())


class LoopItem(Component):
    component_name = "LoopItem"
    timeout = None  # never waits on anything
    Params = ComponentParams

    def thoughts(self, state: RunState) -> str:
        return "Next turn..."

    def _loop_params(self) -> LoopParams:
        parent = self.parent
        assert parent is not None and isinstance(parent.params, LoopParams)
        return parent.params

    async def invoke(self, ctx: RunContext) -> None:
        state = ctx.state
        count = state.counters.get(self.id, 0)
        if count < 0 or count >= self._loop_params().maximum_loop_count:
            state.set_counter(self.id, -1)
            return
        state.set_counter(self.id, count + 1)

    def loop_ended(self, state: RunState) -> bool:
        """Checked before every pass: the counter ran out, or the termination conditions hold."""
        if state.counters.get(self.id, 0) == -1:
            return True
        params = self._loop_params()
        results = []
        for cond in params.loop_termination_condition:
            if not cond.get("variable") or not cond.get("operator"):
                raise ValueError("Loop condition is incomplete.")
            var = state.get_variable_value(cond["variable"])
            mode = cond.get("input_mode", "constant")
            if mode == "variable":
                value = state.get_variable_value(cond.get("value", ""))
            elif mode == "constant":
                value = cond.get("value", "")
            else:
                raise ValueError("Invalid input mode.")
            results.append(evaluate_condition(var, cond["operator"], value))
        if params.logical_operator == "and":
            end = all(results)
        elif params.logical_operator == "or":
            end = any(results)
        else:
            raise ValueError("Invalid logical operator,should be 'and' or 'or'.")
        if end:
            state.set_counter(self.id, -1)
        return end
