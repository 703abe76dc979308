"""taskcanvas: run ragflow agent canvases — same canvas in, same result out — durable and observable.

    import taskcanvas
    canvas = taskcanvas.load("agent.json")
    engine = taskcanvas.Engine(canvas)
    state = engine.new_session()
    async for event in engine.run(state, query="hello"):
        print(event["event"], event["data"])
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskcanvas.dsl.errors import DslError, DslIssue
    from taskcanvas.errors import TaskcanvasError
    from taskcanvas.runtime.cancel import CancelToken
    from taskcanvas.runtime.canvas import Canvas
    from taskcanvas.runtime.engine import Engine, Limits, Run
    from taskcanvas.runtime.errors import RunError, RunStatus
    from taskcanvas.runtime.events import Event
    from taskcanvas.runtime.registry import Registry
    from taskcanvas.runtime.state import RunState

_EXPORTS = {
    "DslError": "taskcanvas.dsl.errors", "DslIssue": "taskcanvas.dsl.errors", "TaskcanvasError": "taskcanvas.errors",
    "CancelToken": "taskcanvas.runtime.cancel", "Canvas": "taskcanvas.runtime.canvas",
    "Engine": "taskcanvas.runtime.engine", "Limits": "taskcanvas.runtime.engine", "Run": "taskcanvas.runtime.engine",
    "RunError": "taskcanvas.runtime.errors", "RunStatus": "taskcanvas.runtime.errors",
    "Event": "taskcanvas.runtime.events", "Registry": "taskcanvas.runtime.registry",
    "RunState": "taskcanvas.runtime.state",
}
"""Loaded on first use: every ``taskcanvas`` command imports this package, most need no engine."""


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'taskcanvas' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
    from taskcanvas.runtime.canvas import Canvas

    if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip().startswith("{")):
        dsl = load_canvas_file(source)
        name = str(source)
    else:
        dsl = load_canvas(source)
        name = None
    return Canvas.build(dsl, registry or builtin_registry(), source=name)
