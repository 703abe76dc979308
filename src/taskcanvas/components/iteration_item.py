"""IterationItem: the start of an Iteration's body; hands out one item per pass (spec §3.6)."""

from __future__ import annotations

from taskcanvas.components.iteration import IterationParams, items_of
from taskcanvas.runtime.component import Component, ComponentParams, RunContext
from taskcanvas.runtime.refs import split_ref
from taskcanvas.runtime.state import RunState


class IterationItem(Component):
    component_name = "IterationItem"
    timeout = None  # never waits on anything
    Params = ComponentParams

    def thoughts(self, state: RunState) -> str:
        return "Next turn..."

    async def invoke(self, ctx: RunContext) -> None:
        state = ctx.state
        parent = self.parent
        assert parent is not None and isinstance(parent.params, IterationParams)
        index = state.counters.get(self.id, 0)
        try:
            items = items_of(state, parent.params.items_ref)
        except TypeError:
            state.set_counter(self.id, -1)
            raise
        if index > 0:
            self._collect(state, parent)
        if index < 0 or index >= len(items):
            state.set_counter(self.id, -1)
            return
        state.set_output(self.id, "item", items[index])
        state.set_output(self.id, "result", items[index])
        state.set_output(self.id, "index", index)
        state.set_counter(self.id, index + 1)

    def _collect(self, state: RunState, iteration: Component) -> None:
        """Append each body output the Iteration declares (``{name: {ref: "cpn@var"}}``)."""
        for name, decl in iteration.params.outputs.items():
            ref = decl.get("ref") if isinstance(decl, dict) else None
            if not isinstance(ref, str) or "@" not in ref:
                continue
            cpn_id, var = split_ref(ref)
            body = self.canvas.components.get(cpn_id)
            if body is None or body.spec.parent_id != iteration.id:
                continue
            collected = state.output(iteration.id, name)
            if not isinstance(collected, list):
                collected = []
            collected.append(state.output(cpn_id, var))
            state.set_output(iteration.id, name, collected)

    def loop_ended(self, state: RunState) -> bool:
        return state.counters.get(self.id, 0) == -1
