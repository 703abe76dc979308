"""ExitLoop: leave the enclosing Loop now; the run goes on after the Loop (spec §3.7)."""

from __future__ import annotations

from taskcanvas.runtime.component import Component, ComponentParams, RunContext


class ExitLoop(Component):
    component_name = "ExitLoop"
    timeout = None  # never waits on anything
    Params = ComponentParams

    async def invoke(self, ctx: RunContext) -> None:
        return None
