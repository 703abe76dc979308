"""A loopback server replaying a web service's answers, and canvases that run one web tool.

    def test_x(replay, http, tmp_path):
        replay.reply("POST", "/search", json={"results": [...]})
        settings = make_settings(tmp_path, endpoints={"tavily": replay.base})
        turn = await run_tool(TavilySearch, {"api_key": "k"}, http=http, settings=settings, query="q")
        assert replay.requests[0].json() == {...}

The ``replay`` fixture (tests/conftest.py) is the loopback server of tests/support/replay.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from taskcanvas.components import builtin_registry
from taskcanvas.config import Settings
from taskcanvas.runtime.cancel import CancelToken
from taskcanvas.runtime.component import RunContext
from taskcanvas.runtime.engine import Engine
from taskcanvas.runtime.references import hash_str2int
from taskcanvas.runtime.state import RunState
from taskcanvas.tools.base import Tool
from taskcanvas.tools.http import GuardedClient, HttpPolicy, create_client
from tests.support.canvas import Turn, build, cpn, make_canvas, run_turn

TOOL = "tool"
"""The id of the tool in the canvases built here."""


@pytest.fixture
async def http() -> AsyncIterator[GuardedClient]:
    """The guarded client, allowed to reach the loopback server (and nothing else private)."""
    async with create_client(HttpPolicy(allowed_hosts=frozenset({"127.0.0.1"}))) as client:
        yield client


# --------------------------------------------------------------------------- settings
def make_settings(tmp_path: Path, *, endpoints: Mapping[str, str] | None = None,
                  tools: Mapping[str, Mapping[str, str]] | None = None,
                  env: Mapping[str, str] | None = None) -> Settings:
    """Settings loaded from a TOML file with these ``[endpoints]`` and ``[tools.<name>]`` tables."""
    lines = ["[endpoints]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in (endpoints or {}).items()]
    for name, table in (tools or {}).items():
        lines.append(f"\n[tools.{name}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    path = tmp_path / "taskcanvas.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Settings.load({"TASKCANVAS_CONFIG": str(path), "TASKCANVAS_DATA_DIR": str(tmp_path), **(env or {})})


# --------------------------------------------------------------------------- canvases
def tool_engine(cls: type[Tool], params: dict[str, Any], *, http: Any, settings: Settings | None,
                message: str = "{tool@formalized_content}") -> Engine:
    """Begin → the tool → a Message saying ``message``."""
    dsl = make_canvas({
        "begin": cpn("Begin", down=[TOOL]),
        TOOL: cpn(cls.component_name, params, down=["answer"]),
        "answer": cpn("Message", {"content": [message]}),
    })
    registry = builtin_registry()
    registry.register(cls)
    services = {"settings": settings} if settings is not None else {}
    return build(dsl, registry, http=http, services=services)


async def run_tool(cls: type[Tool], params: dict[str, Any], *, http: Any, settings: Settings | None,
                   query: str = "", message: str = "{tool@formalized_content}") -> Turn:
    return await run_turn(tool_engine(cls, params, http=http, settings=settings, message=message), query=query)


@dataclass
class ModelCall:
    result: Any
    state: RunState
    tool: Tool

    def output(self, name: str) -> Any:
        return self.state.output(TOOL, name)


async def call_as_agent_tool(cls: type[Tool], params: dict[str, Any], args: Mapping[str, Any], *, http: Any,
                             settings: Settings | None) -> ModelCall:
    """The tool called the way an Agent calls it for its model (``call_for_model``)."""
    engine = tool_engine(cls, params, http=http, settings=settings)
    state = engine.new_session()
    ctx = RunContext(state=state, canvas=engine.canvas, cancel=CancelToken(), http=http,
                     services=dict(engine.services))
    tool = engine.canvas.components[TOOL]
    assert isinstance(tool, Tool)
    return ModelCall(await tool.call_for_model(ctx, args), state, tool)


def schema_of(cls: type[Tool], params: dict[str, Any] | None = None) -> dict[str, Any]:
    engine = tool_engine(cls, params or {}, http=None, settings=None)
    tool = engine.canvas.components[TOOL]
    assert isinstance(tool, Tool)
    return tool.function_schema()


def ragflow_schema(meta: Mapping[str, Any]) -> dict[str, Any]:
    """What ragflow's ``ToolParamBase.get_meta`` makes of ``meta`` (plus ``items`` of arrays, which
    taskcanvas passes on so that strict function-calling APIs accept array parameters)."""
    properties: dict[str, Any] = {}
    for name, p in meta["parameters"].items():
        prop = {"type": p["type"], "description": p["description"]}
        if "enum" in p:
            prop["enum"] = p["enum"]
        if "items" in p:
            prop["items"] = p["items"]
        properties[name] = prop
    return {"type": "function", "function": {
        "name": meta["name"], "description": meta["description"],
        "parameters": {"type": "object", "properties": properties,
                       "required": [k for k, p in meta["parameters"].items() if p["required"]]}}}


# --------------------------------------------------------------------------- expected results
@dataclass
class Doc:
    title: str
    url: str
    content: str
    score: Any = 1
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def chunk_id(self) -> str:
        return str(hash_str2int(self.content))


def kb_prompt(docs: list[Doc]) -> str:
    """ragflow's ``kb_prompt`` rendering of web results, written out."""
    parts = []
    for d in docs:
        text = f"\nID: {hash_str2int(d.chunk_id, 500)}"
        if d.title:
            text += "\n├── Title: " + d.title
        if d.url:
            text += "\n├── URL: " + d.url
        text += "\n└── Content:\n" + d.content
        parts.append(text)
    return "\n".join(parts)


def assert_references(state: RunState, docs: list[Doc]) -> None:
    """The run's reference store holds one chunk per doc (and one document per title)."""
    store = state.reference()
    chunks = sorted(store["chunks"].values(), key=lambda c: c["content"])
    want = sorted(docs, key=lambda d: d.content)
    assert [(c["id"], c["document_id"], c["document_name"], c["url"], c["content"], c["similarity"])
            for c in chunks] == [(d.chunk_id, d.chunk_id, d.title, d.url, d.content, d.score) for d in want]
    assert {name: doc["url"] for name, doc in store["doc_aggs"].items()} == {d.title: d.url for d in docs}


def assert_failed(turn: Turn, message: str) -> None:
    """The tool ended with ``_ERROR`` ``message`` and, unhandled, failed the run."""
    assert turn.finished(TOOL)["error"] == message
    assert turn.error is not None and message in turn.error
