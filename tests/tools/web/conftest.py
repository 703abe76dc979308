"""A loopback server replaying a web service's answers, and canvases that run one web tool.

    def test_x(replay, http, tmp_path):
        replay.reply("POST", "/search", json={"results": [...]})
        settings = make_settings(tmp_path, endpoints={"tavily": replay.base})
        turn = await run_tool(TavilySearch, {"api_key": "k"}, http=http, settings=settings, query="q")
        assert replay.requests[0].json() == {...}

Each route answers in turn with the replies queued for it (the last one repeats); a path with no
route answers 404. Every request is recorded: method, path, query, headers, body.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

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


# --------------------------------------------------------------------------- the replay server
@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    """Header names in lower case."""
    body: bytes

    def arg(self, name: str) -> str:
        """The one value of query argument ``name``."""
        values = self.query[name]
        assert len(values) == 1, f"{name} appears {len(values)} times: {values}"
        return values[0]

    def args(self) -> dict[str, str]:
        """The query as ``{name: value}`` (names that appear once)."""
        return {k: self.arg(k) for k in self.query}

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        parsed = parse_qs(self.body.decode(), keep_blank_values=True)
        return {k: v[-1] for k, v in parsed.items()}


class ReplayServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[tuple[str, str], list[Reply]] = {}
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def reply(self, method: str, path: str, *, json: Any = None, text: str | bytes | None = None,
              status: int = 200, content_type: str | None = None) -> None:
        """Queue an answer to ``method path`` (a JSON value, or text with its content type)."""
        if json is not None:
            body = _json_dumps(json)
            ctype = content_type or "application/json"
        else:
            body = text.encode() if isinstance(text, str) else (text or b"")
            ctype = content_type or "text/plain; charset=utf-8"
        self.routes.setdefault((method.upper(), path), []).append(Reply(status, body, ctype))

    def answer(self, method: str, path: str) -> Reply:
        with self._lock:
            queued = self.routes.get((method, path))
            if not queued:
                return Reply(404, b'{"message": "no such route in the test"}')
            return queued.pop(0) if len(queued) > 1 else queued[0]

    def record(self, request: Recorded) -> None:
        with self._lock:
            self.requests.append(request)

    def only(self) -> Recorded:
        assert len(self.requests) == 1, [f"{r.method} {r.path}" for r in self.requests]
        return self.requests[0]


def _json_dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


class _Handler(BaseHTTPRequestHandler):
    server: ReplayServer

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.record(Recorded(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                                    {k.lower(): v for k, v in self.headers.items()}, body))
        reply = self.server.answer(self.command, parts.path)
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    server = ReplayServer()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


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
