"""Build small canvases in tests and run them through the real engine.

    dsl = make_canvas({"begin": cpn("Begin", down=["m"]), "m": cpn("Message", {"content": ["{sys.query}"]})})
    turn = await run_turn(dsl, query="hi")
    assert turn.text == "hi"
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taskcanvas.components import builtin_registry
from taskcanvas.dsl.load import load_canvas
from taskcanvas.runtime.canvas import Canvas
from taskcanvas.runtime.engine import Engine, Limits
from taskcanvas.runtime.errors import RunStatus
from taskcanvas.runtime.events import Event
from taskcanvas.runtime.registry import Registry
from taskcanvas.runtime.state import RunState

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "ragflow"


def cpn(ctype: str, params: dict[str, Any] | None = None, *, down: list[str] | None = None,
        parent: str | None = None) -> dict[str, Any]:
    """One component entry in ragflow's stored shape."""
    entry: dict[str, Any] = {"obj": {"component_name": ctype, "params": params or {}},
                             "downstream": list(down or []), "upstream": []}
    if parent:
        entry["parent_id"] = parent
    return entry


def make_canvas(components: dict[str, Any], *, globals: dict[str, Any] | None = None,
                variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """A DSL with ragflow's standard globals; upstream lists are filled in from downstream."""
    comps = copy.deepcopy(components)
    for cid, entry in comps.items():
        for target in entry["downstream"]:
            if target in comps:
                comps[target]["upstream"].append(cid)
    glob = {"sys.query": "", "sys.user_id": "", "sys.conversation_turns": 0, "sys.files": [], "sys.history": []}
    glob.update(globals or {})
    return {"components": comps, "globals": glob, "variables": variables or {}, "history": [], "path": [],
            "retrieval": []}


def load_fixture(relative: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / relative).read_text(encoding="utf-8"))
    return data


@dataclass
class Turn:
    """What one run produced."""

    events: list[Event]
    status: RunStatus | None
    error: str | None
    state: RunState
    engine: Engine
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [e["event"] for e in self.events]

    @property
    def text(self) -> str:
        """All ``message`` contents joined, as a user reads them."""
        return "".join(e["data"].get("content") or "" for e in self.events if e["event"] == "message")

    def of(self, name: str) -> list[dict[str, Any]]:
        return [e["data"] for e in self.events if e["event"] == name]

    def finished(self, cid: str) -> dict[str, Any]:
        """The (last) node_finished data of ``cid``."""
        found = [d for d in self.of("node_finished") if d["component_id"] == cid]
        assert found, f"{cid} did not finish; events: {self.names}"
        return found[-1]

    def output(self, cid: str, name: str) -> Any:
        return self.state.output(cid, name)


def build(dsl: dict[str, Any] | str, registry: Registry | None = None, **engine_kw: Any) -> Engine:
    canvas = Canvas.build(load_canvas(dsl), registry or builtin_registry())
    engine_kw.setdefault("limits", Limits())
    return Engine(canvas, **engine_kw)


async def run_turn(dsl_or_engine: dict[str, Any] | Engine, *, state: RunState | None = None, query: Any = "",
                   inputs: dict[str, Any] | None = None, **run_kw: Any) -> Turn:
    """Run one turn; pass ``state`` (e.g. ``previous.state``) to continue a session."""
    engine = dsl_or_engine if isinstance(dsl_or_engine, Engine) else build(dsl_or_engine)
    state = state if state is not None else engine.new_session()
    run = engine.run(state, query=query, inputs=inputs, **run_kw)
    events = await run.collect()
    return Turn(events, run.status, run.error, state, engine)


async def next_turn(previous: Turn, *, query: Any = "", inputs: dict[str, Any] | None = None,
                    via_json: bool = True) -> Turn:
    """The session's next turn; by default through JSON, as another process would resume it."""
    state = previous.state
    if via_json:
        data = json.loads(json.dumps(state.to_json()))
        state = RunState.from_json(data, previous.engine.canvas.components)
    return await run_turn(previous.engine, state=state, query=query, inputs=inputs)
