"""The one loopback HTTP server of the tests: it answers like a web service and records every request.

    with ReplayServer() as server:                       # or the ``replay`` fixture (tests/conftest.py)
        server.route("GET", "/page", Reply(body=HTML, content_type="text/html"))
        server.route("POST", "/run", lambda request: Reply(body={"echo": request.json()}))
        server.reply("POST", "/search", json=FIRST)      # queued: answered in turn,
        server.reply("POST", "/search", json=SECOND)     # the last one repeats
        ...
        assert server.only().headers["authorization"] == "Bearer k"

A route is a method and a path (``"*"`` for any method or any path; an exact match wins) and
answers with a fixed :class:`Reply`, a queue of them, or a handler function of the
:class:`Recorded` request that returns the reply. Replies can also wait (``delay``), hang up
without answering (``hang_up``) or stream their body in chunks (``stream``). A request no route
matches gets a 404. The server listens on 127.0.0.1 only, on a free port.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

ANY = "*"
"""A route's method or path that matches any."""


@dataclass
class Reply:
    """One answer. ``body`` goes out as it is when bytes or text, and as JSON otherwise."""

    status: int = 200
    body: Any = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds to wait before answering (the request is already recorded)."""
    hang_up: bool = False
    """Close the connection without any answer: a transport failure for the client."""
    stream: Iterable[bytes] | None = None
    """Send these chunks instead of ``body`` as they come, without a length, then close the connection."""
    chunk_delay: float = 0.0
    """Seconds to wait after each streamed chunk."""

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return _json_bytes(self.body)


class Headers(Mapping[str, str]):
    """Request headers: looked up in any case, listed with the names as sent."""

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._items = list(items)

    def __getitem__(self, name: str) -> str:
        for key, value in reversed(self._items):
            if key.lower() == name.lower():
                return value
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for key, _ in self._items:
            if key.lower() not in seen:
                seen.add(key.lower())
                yield key

    def __len__(self) -> int:
        return len({key.lower() for key, _ in self._items})

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


@dataclass
class Recorded:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Headers
    body: bytes
    target: str = ""
    """The request target as sent: the path and query, or an absolute URL when it came through a proxy."""

    def arg(self, name: str) -> str:
        """The one value of query argument ``name``."""
        values = self.query.get(name, [])
        assert len(values) == 1, f"query argument {name!r} appears {len(values)} times: {values}"
        return values[0]

    def args(self) -> dict[str, str]:
        """The query as ``{name: value}``."""
        return {name: self.arg(name) for name in self.query}

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        parsed = parse_qs(self.body.decode(), keep_blank_values=True)
        return {k: v[-1] for k, v in parsed.items()}


Handler = Callable[[Recorded], Reply]
Answer = Reply | Handler


def _answer(answer: Any = None, *, json: Any = ..., text: str | bytes | None = None,
            **fields: Any) -> Answer:
    """A Reply or a handler as it is; otherwise a Reply with ``answer`` (or ``json``/``text``) as its body."""
    if isinstance(answer, Reply) or callable(answer):
        if fields or json is not ... or text is not None:
            raise TypeError("give a Reply or a handler, or the reply's parts, not both")
        return answer  # type: ignore[no-any-return]
    if json is not ...:
        return Reply(body=_json_bytes(json), **fields)
    if text is not None:
        return Reply(body=text, **{"content_type": "text/plain; charset=utf-8", **fields})
    return Reply(body=b"" if answer is None else answer, **fields)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


class ReplayServer(ThreadingHTTPServer):
    """Answers each route as a test says; remembers every request in :attr:`requests`."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[tuple[str, str], list[Answer]] = {}
        self.requests: list[Recorded] = []
        self.disconnected = threading.Event()
        """Set when a client went away before a reply was written in full."""
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ running
    def start(self) -> Self:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread = None
        self.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    # ------------------------------------------------------------------ routes
    def route(self, method: str, path: str, *answers: Any, **reply: Any) -> None:
        """Answer ``method path`` with ``answers`` in turn (the last repeats), replacing what it answered.

        Each answer is a :class:`Reply`, a handler ``(Recorded) -> Reply`` or a body for a Reply;
        keywords (``json``, ``text``, ``status``, ``content_type``, ``headers``, ``delay``, ...)
        describe one reply instead.
        """
        if reply and len(answers) > 1:
            raise TypeError("reply keywords describe one answer")
        queue = [_answer(a, **reply) for a in answers] if answers else [_answer(**reply)]
        with self._lock:
            self.routes[(method.upper(), path)] = queue

    def reply(self, method: str, path: str, answer: Any = None, **reply: Any) -> None:
        """Queue one more answer to ``method path`` (see :meth:`route`)."""
        with self._lock:
            self.routes.setdefault((method.upper(), path), []).append(_answer(answer, **reply))

    def answer(self, request: Recorded) -> Reply:
        """Record ``request`` and give the reply its route makes."""
        with self._lock:
            self.requests.append(request)
            for key in ((request.method, request.path), (ANY, request.path), (request.method, ANY), (ANY, ANY)):
                queue = self.routes.get(key)
                if queue:
                    answer = queue.pop(0) if len(queue) > 1 else queue[0]
                    break
            else:
                answer = Reply(404, {"message": f"no route {request.method} {request.path} in the test"})
        if isinstance(answer, Reply):
            return answer
        try:
            return answer(request)
        except Exception:  # a broken handler answers 500 with its traceback rather than hanging up
            return Reply(500, traceback.format_exc(), content_type="text/plain; charset=utf-8")

    # ------------------------------------------------------------------ requests
    def requests_to(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    def only(self) -> Recorded:
        assert len(self.requests) == 1, [f"{r.method} {r.target}" for r in self.requests]
        return self.requests[0]

    @property
    def hits(self) -> dict[str, int]:
        """How many requests each path received."""
        return dict(Counter(r.path for r in self.requests))


class _Handler(BaseHTTPRequestHandler):
    server: ReplayServer

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Recorded(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                           Headers(self.headers.items()), body, self.path)
        reply = self.server.answer(request)
        if reply.delay:
            time.sleep(reply.delay)
        if reply.hang_up:
            self.close_connection = True
            return
        try:
            self._send(reply)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout, a cancelled stream)
            self.server.disconnected.set()

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.stream is None:
            body = reply.encoded()
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_header("Connection", "close")
        self.end_headers()
        for chunk in reply.stream:
            self.wfile.write(chunk)
            self.wfile.flush()
            time.sleep(reply.chunk_delay)

    def log_message(self, format: str, *args: Any) -> None:
        pass

