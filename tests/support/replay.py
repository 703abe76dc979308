"""A loopback HTTP server replaying a web service's answers, recording every request.

Each route answers in turn with the replies queued for it (the last one repeats); a path with
no route answers 404. Every request is recorded: method, path, query, headers, body.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


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



@contextlib.contextmanager
def replay_server() -> Iterator[ReplayServer]:
    """A running :class:`ReplayServer` on 127.0.0.1, shut down afterwards."""
    server = ReplayServer()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
