"""taskcanvas: run ragflow agent canvases — same canvas in, same result out — durable and observable.

    import taskcanvas
    canvas = taskcanvas.load("agent.json")
    engine = taskcanvas.Engine(canvas)
    state = engine.new_session()
    async for event in engine.run(state, query="hello"):
        print(event["event"], event["data"])
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from taskcanvas.dsl.errors import DslError, DslIssue
from taskcanvas.errors import TaskcanvasError
from taskcanvas.runtime.cancel import CancelToken
from taskcanvas.runtime.canvas import Canvas
from taskcanvas.runtime.engine import Engine, Limits, Run
from taskcanvas.runtime.errors import RunError, RunStatus
from taskcanvas.runtime.events import Event
from taskcanvas.runtime.registry import Registry
from taskcanvas.runtime.state import RunState

__all__ = [
    "CancelToken",
    "Canvas",
    "DslError",
    "DslIssue",
    "Engine",
    "Event",
    "Limits",
    "Registry",
    "Run",
    "RunError",
    "RunState",
    "RunStatus",
    "TaskcanvasError",
    "load",
]

__version__ = "0.1.0.dev0"


def load(source: str | Path | Mapping[str, Any], *, registry: Registry | None = None) -> Canvas:
    """Load and check a canvas from a file path, JSON text or a decoded DSL; raise DslError if unusable."""
    from taskcanvas.components import builtin_registry
    from taskcanvas.dsl.load import load_canvas, load_canvas_file

    if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip().startswith("{")):
        dsl = load_canvas_file(source)
        name = str(source)
    else:
        dsl = load_canvas(source)
        name = None
    return Canvas.build(dsl, registry or builtin_registry(), source=name)
