"""Switch: route by conditions on variables, with ragflow's exact operator rules (spec §4.6)."""

from __future__ import annotations

import numbers
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from taskcanvas.runtime.component import Component, ComponentParams, RunContext
from taskcanvas.runtime.state import RunState

OPERATORS = ("contains", "not contains", "start with", "end with", "empty", "not empty",
             "=", "≠", ">", "<", "≥", "≤")


class SwitchItem(BaseModel):
    model_config = ConfigDict(extra="allow")
    cpn_id: str | None = ""
    operator: str = ""
    value: Any = ""


class SwitchCondition(BaseModel):
    model_config = ConfigDict(extra="allow")
    logical_operator: str = "and"
    items: list[SwitchItem] = []
    to: list[str]

    @field_validator("to", mode="before")
    @classmethod
    def _to_not_empty(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [v] if v else []
        if not v:
            raise ValueError("'to' can not be empty")
        return v


class SwitchParams(ComponentParams):
    conditions: list[SwitchCondition]
    end_cpn_ids: list[str]

    @field_validator("conditions", "end_cpn_ids", mode="before")
    @classmethod
    def _not_empty(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [v] if v else []
        if not v:
            raise ValueError("must not be empty (the ELSE destination is required)")
        return v


def _compare(left: Any, right: Any, op: str) -> bool:
    try:
        a, b = float(left), float(right)
    except (TypeError, ValueError):
        a, b = left, right  # ragflow falls back to comparing the raw values
    if op == ">":
        return bool(a > b)
    if op == "<":
        return bool(a < b)
    if op == "≥":
        return bool(a >= b)
    return bool(a <= b)


def process_operator(value: Any, op: str, operand: Any) -> bool:
    """One condition item, as ragflow evaluates it (case-insensitive text tests, float compares)."""
    if op in ("contains", "not contains", "start with", "end with"):
        text = "" if value is None else str(value).lower()
        pattern = "" if operand is None else str(operand).lower()
        if op == "contains":
            return pattern in text
        if op == "not contains":
            return pattern not in text
        if op == "start with":
            return text.startswith(pattern)
        return text.endswith(pattern)
    if op == "empty":
        return not value
    if op == "not empty":
        return bool(value)
    if op == "=":
        return bool(value == operand)
    if op == "≠":
        return bool(value != operand)
    if op in (">", "<", "≥", "≤"):
        return _compare(value, operand, op)
    raise ValueError(f"Not supported operator: {op}")


class Switch(Component):
    component_name = "Switch"
    timeout = None  # never waits on anything
    Params = SwitchParams

    def thoughts(self, state: RunState) -> str:
        return "I’m weighing a few options and will pick the next step shortly."

    async def invoke(self, ctx: RunContext) -> None:
        params = self.params
        assert isinstance(params, SwitchParams)
        state = ctx.state
        for cond in params.conditions:
            results: list[bool] = []
            for item in cond.items:
                if not item.cpn_id:
                    continue
                value = state.get_variable_value(item.cpn_id)
                state.set_input(self.id, item.cpn_id, value)
                operand = item.value
                if isinstance(value, numbers.Number):
                    operand = float(operand)
                results.append(process_operator(value, item.operator, operand))
                if cond.logical_operator != "and" and any(results):
                    self._route(state, cond.to)
                    return
            if results and all(results):
                self._route(state, cond.to)
                return
        self._route(state, params.end_cpn_ids)

    def _route(self, state: RunState, targets: list[str]) -> None:
        state.set_output(self.id, "next", [self.canvas.display_name(t) for t in targets])
        state.set_output(self.id, "_next", list(targets))
