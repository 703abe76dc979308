"""Begin: where every run starts; takes the run's inputs or the query (spec §4.1), file fields read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from taskcanvas.components.fillup import UserFillUp, UserFillUpParams, resolve_input
from taskcanvas.runtime.component import RunContext
from taskcanvas.runtime.state import RunState


class BeginParams(UserFillUpParams):
    mode: Literal["conversational", "task", "Webhook"] = "conversational"
    prologue: str | None = "Hi! I'm your smart assistant. What can I do for you?"


class Begin(UserFillUp):
    component_name = "Begin"
    timeout = None  # never waits on anything
    Params = BeginParams

    def thoughts(self, state: RunState) -> str:
        return ""

    def text_inputs(self) -> list[str]:
        return []

    def merge_inputs(self, ctx: RunContext) -> Mapping[str, Any]:
        """Non-empty run inputs win; otherwise the query fills the form (a dict by key, or the only field)."""
        if ctx.inputs:
            return ctx.inputs
        fields = self.form()
        query = ctx.state.globals.get("sys.query")
        if not fields or query is None or query == "":
            return {}
        if isinstance(query, dict):
            return {k: v if isinstance(v, dict) else {"value": v} for k, v in query.items() if k in fields}
        if len(fields) == 1:
            return {next(iter(fields)): {"value": query}}
        return {}

    async def invoke(self, ctx: RunContext) -> None:
        inputs = self.merge_inputs(ctx)
        layout_recognize = getattr(self.params, "layout_recognize", None) or None
        # Begin never clears its form: an empty turn keeps the values it has.
        for name, value in inputs.items():
            resolved = await resolve_input(ctx, value, layout_recognize)
            ctx.state.set_output(self.id, name, resolved)
            ctx.state.set_input(self.id, name, resolved)
