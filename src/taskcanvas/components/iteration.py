"""Iteration: run its body once per item of an array, collecting outputs (spec §3.6)."""

from __future__ import annotations

from typing import Any

from taskcanvas.runtime.component import Component, ComponentParams, RunContext
from taskcanvas.runtime.state import RunState


class IterationParams(ComponentParams):
    items_ref: str = ""


def items_of(state: RunState, items_ref: str) -> list[Any]:
    """The array an Iteration walks; anything else is an error naming the reference."""
    items = state.get_variable_value(items_ref)
    if not isinstance(items, list):
        raise TypeError(f"{items_ref} must be an array, but its type is {type(items)}")
    return items


class Iteration(Component):
    component_name = "Iteration"
    timeout = None  # never waits on anything
    Params = IterationParams

    def thoughts(self, state: RunState) -> str:
        params = self.params
        assert isinstance(params, IterationParams)
        return f"Need to process {len(state.get_variable_value(params.items_ref))} items."

    async def invoke(self, ctx: RunContext) -> None:
        params = self.params
        assert isinstance(params, IterationParams)
        start = self.canvas.start_of(self.id)
        if start:
            # Entering the Iteration starts from the first item, even if it ran before this turn.
            ctx.state.set_counter(start, 0)
        items_of(ctx.state, params.items_ref)
