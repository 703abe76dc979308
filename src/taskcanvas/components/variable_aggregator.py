"""VariableAggregator: per group, output the first of its variables that has a value (spec §4.13)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from taskcanvas.runtime.component import Component, ComponentParams, RunContext
from taskcanvas.runtime.state import RunState


class VariableAggregatorParams(ComponentParams):
    groups: list[dict[str, Any]] = Field([], validate_default=True)
    """``[{group_name, type?, variables: [{value: <ref>}]}]``."""

    @field_validator("groups")
    @classmethod
    def _groups_complete(cls, v: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not v:
            raise ValueError("groups must not be empty")
        for group in v:
            name = group.get("group_name")
            if not name:
                raise ValueError("group_name can not be empty")
            variables = group.get("variables")
            if not variables:
                raise ValueError(f"variables of group `{name}` can not be empty")
            if not isinstance(variables, list):
                raise ValueError(f"variables of group `{name}` should be a list of variable references")
        return v


def _ref(selector: Any) -> Any:
    # The front end stores {"value": ref}; a bare ref (what ragflow's check message asks for) works too.
    return selector if isinstance(selector, str) else selector["value"]


class VariableAggregator(Component):
    component_name = "VariableAggregator"
    timeout = None  # never waits on anything
    Params = VariableAggregatorParams

    def thoughts(self, state: RunState) -> str:
        return "Aggregating variables from canvas and grouping as configured."

    async def invoke(self, ctx: RunContext) -> None:
        params = self.params
        assert isinstance(params, VariableAggregatorParams)
        state = ctx.state
        for group in params.groups:
            name = str(group["group_name"])
            variables = list(group["variables"])
            state.set_input(self.id, f"{name}.variables", variables)
            for selector in variables:
                value = state.get_variable_value(_ref(selector))
                # The first truthy value wins; with none, the output keeps what it had.
                if value:
                    state.set_output(self.id, name, value)
                    break
