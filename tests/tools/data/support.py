"""What the data tools' tests share: a replay HTTP server on 127.0.0.1, settings, and a
Begin → Tool → Message canvas run through the real engine (fixtures in ``conftest.py``)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from taskcanvas.components import builtin_registry
from taskcanvas.config import Settings
from taskcanvas.runtime.component import Component
from taskcanvas.tools.http import HttpPolicy
from tests.support.canvas import Turn, build, cpn, make_canvas, run_turn

LOOPBACK = HttpPolicy(allowed_hosts=frozenset({"127.0.0.1"}))


@dataclass
class Seen:
    """One request the replay server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    target: str = ""
    """The request target as sent: a path, or an absolute URL when the request came through a proxy."""

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


@dataclass
class Reply:
    status: int = 200
    body: Any = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body, ensure_ascii=False).encode()


Handler = Callable[[Seen], Reply]


class _Handler(BaseHTTPRequestHandler):
    server: ReplayServer

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        seen = Seen(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                    dict(self.headers.items()), self.rfile.read(length) if length else b"", self.path)
        self.server.seen.append(seen)
        handler = self.server.routes.get((self.command, parts.path))
        reply = handler(seen) if handler else Reply(404, {"message": f"no route {self.command} {parts.path}"})
        body = reply.encoded()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ReplayServer(ThreadingHTTPServer):
    """Answers each route with what the real service documents; remembers every request."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[tuple[str, str], Handler] = {}
        self.seen: list[Seen] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def route(self, method: str, path: str, reply: Reply | Handler | Any = None, **kw: Any) -> None:
        if callable(reply):
            self.routes[(method, path)] = reply
            return
        fixed = reply if isinstance(reply, Reply) else Reply(body=reply, **kw)
        self.routes[(method, path)] = lambda _seen: fixed

    def requests(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]


def settings(**sections: Any) -> Settings:
    """Settings with these top-level tables; the HTTP policy allows 127.0.0.1 like the client."""
    return Settings(raw=sections, http_allowed_hosts=("127.0.0.1",))


async def run_tool(tool: type[Component], params: dict[str, Any], *, http: Any, config: Settings | None = None,
                   query: str = "", message: str = "{tool@formalized_content}",
                   globals: dict[str, Any] | None = None) -> Turn:
    """Begin → tool (id ``tool``) → Message (id ``answer``) through the engine."""
    dsl = make_canvas({
        "begin": cpn("Begin", down=["tool"]),
        "tool": cpn(tool.component_name, params, down=["answer"]),
        "answer": cpn("Message", {"content": [message]}),
    }, globals=globals)
    registry = builtin_registry()
    registry.register(tool)
    engine = build(dsl, registry, http=http, services={"settings": config or settings()})
    return await run_turn(engine, query=query)
