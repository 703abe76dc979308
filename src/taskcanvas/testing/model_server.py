"""A scripted OpenAI-compatible chat server on loopback, for tests and examples.

Tests talk to a model over real HTTP, through the same client code that talks to a real
endpoint, so what they exercise is what users run. The server answers
``POST /v1/chat/completions`` (plain and streamed, tool calls, usage, ``reasoning_content``) and
``GET /v1/models``; what it answers is decided by an ordered list of :class:`Rule`: the first
rule whose conditions all hold for the request gives the :class:`Reply`. Without a matching
rule the server echoes the last user message. Every request body received is kept in
:attr:`ScriptedModelServer.requests`, so tests can assert on the prompts.

    with ScriptedModelServer([
        Rule(Reply(tool_calls=[{"name": "weather", "arguments": {"city": "Paris"}}]), has_tools=True, times=1),
        Rule("It is sunny.", tool_result_contains="sunny"),
    ]) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x")

Standard library only (``http.server`` in a thread), so it needs nothing installed and works
from sync and async tests alike. Run ``python -m taskcanvas.testing.model_server --script
rules.json`` to serve a script file (JSON or TOML, see :func:`load_script`) for an example.
"""

from __future__ import annotations

import argparse
import json
import re
import select
import socket
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self

Request = dict[str, Any]
ReplyFn = Callable[[Request], "Reply"]

_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to use this model.", "permission_error", None),
    404: ("The model does not exist or you do not have access to it.", "invalid_request_error", "model_not_found"),
    429: ("Rate limit reached for requests.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


@dataclass(frozen=True)
class Reply:
    """What the server answers: text, reasoning, tool calls, or an HTTP error; optionally late."""

    text: str = ""
    reasoning: str = ""
    """Sent as ``reasoning_content`` (DeepSeek / vLLM style) before the text."""
    reasoning_inline: bool = False
    """Send the reasoning inside the content as ``<think>...</think>`` instead."""
    tool_calls: Sequence[Mapping[str, Any]] = ()
    """``[{"name": ..., "arguments": {...} or "raw text", "id"?: ...}]``."""
    status: int = 200
    """Anything but 200 answers with an OpenAI-style error body (see :meth:`fail`)."""
    error: str = ""
    error_type: str = ""
    error_code: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    """Extra response headers (e.g. ``Retry-After``)."""
    delay: float = 0.0
    """Seconds to wait before answering."""
    chunk_delay: float = 0.0
    """Seconds between streamed chunks."""
    chunk_size: int | None = None
    """Characters per streamed chunk; by default one word (with its trailing space) per chunk."""
    finish_reason: str | None = None
    """Default: ``"tool_calls"`` when there are tool calls, else ``"stop"``."""
    usage: tuple[int, int] | None = None
    """``(prompt_tokens, completion_tokens)``; by default words are counted."""

    @classmethod
    def fail(cls, status: int, message: str | None = None, *, code: str | None = None, type: str | None = None,
             headers: Mapping[str, str] | None = None, delay: float = 0.0) -> Reply:
        """An error answer, worded as OpenAI words it for ``status`` unless told otherwise."""
        default_message, default_type, default_code = _ERRORS.get(status, ("Request failed.", "api_error", None))
        return cls(status=status, error=message or default_message, error_type=type or default_type,
                   error_code=code if code is not None else default_code, headers=dict(headers or {}), delay=delay)

    @classmethod
    def context_overflow(cls, limit: int = 8192) -> Reply:
        """The 400 an OpenAI-compatible server sends for a prompt longer than the context window."""
        return cls.fail(400, f"This model's maximum context length is {limit} tokens. However, your messages "
                             f"resulted in {limit + 808} tokens. Please reduce the length of the messages.",
                        code="context_length_exceeded")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | str) -> Reply:
        """A reply from a script file: a string is the text; ``{"fail": 429}`` is :meth:`fail`."""
        if isinstance(data, str):
            return cls(text=data)
        data = dict(data)
        if "fail" in data:
            status = data.pop("fail")
            _known(data, {"message", "code", "type", "headers", "delay"}, "a fail reply")
            return cls.fail(int(status), data.get("message"), code=data.get("code"), type=data.get("type"),
                            headers=data.get("headers"), delay=float(data.get("delay", 0.0)))
        _known(data, {f.name for f in fields(cls)}, "a reply")
        if "usage" in data and data["usage"] is not None:
            data["usage"] = tuple(data["usage"])
        return cls(**data)


@dataclass
class Rule:
    """When a request meets every condition given, answer with ``reply`` (at most ``times`` times).

    Text conditions are substring tests: ``last_user_contains`` on the last user message,
    ``system_contains`` on any system message, ``tool_result_contains`` on the tool results at
    the end of the conversation (the round just answered), ``contains`` on any message.
    """

    reply: Reply | str | ReplyFn
    """A :class:`Reply`, a text, or a function of the request JSON returning a Reply."""
    last_user_contains: str | None = None
    system_contains: str | None = None
    tool_result_contains: str | None = None
    contains: str | None = None
    has_tools: bool | None = None
    model: str | None = None
    when: Callable[[Request], bool] | None = None
    times: int | None = None
    """Apply only this many times, then let later rules answer."""
    used: int = field(default=0, compare=False)
    """How often this rule has answered."""

    def matches(self, request: Request) -> bool:
        if self.times is not None and self.used >= self.times:
            return False
        messages = [m for m in request.get("messages") or [] if isinstance(m, Mapping)]
        checks: list[tuple[str | None, Callable[[str], bool]]] = [
            (self.last_user_contains, lambda s: s in _last_user(messages)),
            (self.system_contains, lambda s: any(s in _text(m) for m in messages if m.get("role") == "system")),
            (self.tool_result_contains, lambda s: any(s in _text(m) for m in _trailing_tool_results(messages))),
            (self.contains, lambda s: any(s in _text(m) for m in messages)),
            (self.model, lambda s: request.get("model") == s),
        ]
        if any(value is not None and not test(value) for value, test in checks):
            return False
        if self.has_tools is not None and bool(request.get("tools")) != self.has_tools:
            return False
        return self.when is None or bool(self.when(request))

    def answer(self, request: Request) -> Reply:
        self.used += 1
        if isinstance(self.reply, Reply):
            return self.reply
        if isinstance(self.reply, str):
            return Reply(text=self.reply)
        return self.reply(request)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rule:
        """``{"match": {...conditions}, "reply": {...} or "text", "times": n}`` from a script file."""
        _known(data, {"match", "reply", "times"}, "a rule")
        if "reply" not in data:
            raise ValueError("a rule needs a reply")
        match = dict(data.get("match") or {})
        _known(match, {"last_user_contains", "system_contains", "tool_result_contains", "contains", "has_tools",
                       "model"}, "a rule's match")
        times = data.get("times")
        return cls(Reply.from_dict(data["reply"]), times=int(times) if times is not None else None, **match)


@dataclass(frozen=True)
class Script:
    """The contents of a script file."""

    rules: list[Rule]
    default: Reply | None = None
    api_key: str | None = None
    models: tuple[str, ...] = ()


def load_script(path: str | Path) -> Script:
    """Read a script: JSON, or TOML for a ``.toml`` file.

    ``{"rules": [{"match": {"last_user_contains": "hi"}, "reply": "Hello!"}, ...],
    "default": {"text": "..."}, "api_key": "...", "models": ["..."]}`` — every key optional.
    """
    path = Path(path)
    raw = path.read_bytes()
    data = tomllib.loads(raw.decode("utf-8")) if path.suffix == ".toml" else json.loads(raw)
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: a script is an object with a 'rules' list")
    _known(data, {"rules", "default", "api_key", "models"}, f"{path}")
    try:
        rules = [Rule.from_dict(r) for r in data.get("rules") or []]
        default = Reply.from_dict(data["default"]) if data.get("default") is not None else None
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: {e}") from None
    return Script(rules=rules, default=default, api_key=data.get("api_key"),
                  models=tuple(str(m) for m in data.get("models") or ()))


class ScriptedModelServer:
    """The server; a context manager (``with`` or ``async with``) that starts and stops it.

    ``rules`` can be changed while it runs (:meth:`add`). With ``api_key`` set, requests
    without ``Authorization: Bearer <api_key>`` get a 401, as a real provider would answer.
    """

    def __init__(self, rules: Iterable[Rule] = (), *, default: Reply | ReplyFn | None = None,
                 api_key: str | None = None, models: Sequence[str] = ("scripted-model",),
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.rules: list[Rule] = list(rules)
        self.default = default
        self.api_key = api_key
        self.models = tuple(models)
        self.requests: list[Request] = []
        """Every chat request body received, in order (also those answered with an error)."""
        self.disconnects = 0
        """Streams or delayed answers the client walked away from before they ended."""
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self._disconnected = threading.Condition(self._lock)
        self._closing = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_script(cls, path: str | Path, *, host: str = "127.0.0.1", port: int = 0) -> ScriptedModelServer:
        script = load_script(path)
        return cls(script.rules, default=script.default, api_key=script.api_key,
                   models=script.models or ("scripted-model",), host=host, port=port)

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no path)."""
        if self._httpd is None:
            raise RuntimeError("the server is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI client wants as ``base_url``: ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"

    def start(self) -> Self:
        if self._httpd is not None:
            return self
        self._closing.clear()
        httpd = ThreadingHTTPServer((self._host, self._port), _handler_for(self))
        httpd.daemon_threads = True
        httpd.block_on_close = False
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="scripted-model-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._closing.set()
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        import asyncio

        await asyncio.to_thread(self.stop)

    # ------------------------------------------------------------------ scripting
    def add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    @property
    def last_request(self) -> Request:
        if not self.requests:
            raise AssertionError("the server has received no chat request")
        return self.requests[-1]

    def wait_for_disconnect(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait until clients have walked away from ``count`` answers in all; False on timeout."""
        with self._disconnected:
            return self._disconnected.wait_for(lambda: self.disconnects >= count, timeout)

    def _reply_for(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            for rule in self.rules:
                if rule.matches(request):
                    return rule.answer(request)
        if self.default is None:
            return Reply(text=_last_user([m for m in request.get("messages") or [] if isinstance(m, Mapping)]))
        return self.default if isinstance(self.default, Reply) else self.default(request)

    def _note_disconnect(self) -> None:
        with self._disconnected:
            self.disconnects += 1
            self._disconnected.notify_all()


# ---------------------------------------------------------------------------- HTTP
def _handler_for(server: ScriptedModelServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        scripted = server

    return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ScriptedModelServer/1"
    scripted: ScriptedModelServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a test's output is its own."""

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            names = dict.fromkeys([*self.scripted.models, *(r.model for r in self.scripted.rules if r.model)])
            self._json(200, {"object": "list", "data": [
                {"id": name, "object": "model", "created": 0, "owned_by": "taskcanvas"} for name in names]})
        else:
            self._error(Reply.fail(404, f"no route GET {self.path}", code="not_found"))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._error(Reply.fail(404, f"no route POST {self.path}", code="not_found"))
            return
        try:
            request = json.loads(body or b"null")
        except ValueError:
            request = None
        if not isinstance(request, dict):
            self._error(Reply.fail(400, "the request body is not a JSON object"))
            return
        server = self.scripted
        if server.api_key is not None and self.headers.get("Authorization") != f"Bearer {server.api_key}":
            with server._lock:
                server.requests.append(request)
            self._error(Reply.fail(401))
            return
        reply = server._reply_for(request)
        if reply.delay and not self._wait(reply.delay):
            return
        if reply.status != 200:
            self._error(reply)
        elif request.get("stream"):
            self._stream(request, reply)
        else:
            self._json(200, _completion(request, reply), reply.headers)

    # ------------------------------------------------------------------ writing
    def _json(self, status: int, data: Any, headers: Mapping[str, str] | None = None) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _error(self, reply: Reply) -> None:
        self._json(reply.status, {"error": {"message": reply.error, "type": reply.error_type, "param": None,
                                            "code": reply.error_code}}, reply.headers)

    def _stream(self, request: Request, reply: Reply) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        events = _stream_events(request, reply)
        try:
            for i, event in enumerate(events):
                if i and reply.chunk_delay and not self._wait(reply.chunk_delay):
                    return
                data = b"data: " + (event.encode() if isinstance(event, str) else json.dumps(event).encode())
                self._chunk(data + b"\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            self.scripted._note_disconnect()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _wait(self, seconds: float) -> bool:
        """Sleep ``seconds``, noticing a client that hangs up meanwhile (then False) or a server stop."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.scripted._closing.is_set():
                self.close_connection = True
                return False
            readable, _, _ = select.select([self.connection], [], [], min(left, 0.05))
            if readable:
                try:
                    peeked = self.connection.recv(1, socket.MSG_PEEK)
                except OSError:
                    peeked = b""
                if not peeked:
                    self.close_connection = True
                    self.scripted._note_disconnect()
                    return False
                time.sleep(min(left, 0.05))  # bytes of a next request: not a hang-up
        return True


# ---------------------------------------------------------------------------- answers
def _completion(request: Request, reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": _content(reply) or (None if reply.tool_calls else "")}
    if reply.reasoning and not reply.reasoning_inline:
        message["reasoning_content"] = reply.reasoning
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
            for call_id, name, arguments in _tool_calls(reply)]
    return {"id": "chatcmpl-scripted", "object": "chat.completion", "created": int(time.time()),
            "model": request.get("model", ""), "choices": [
                {"index": 0, "message": message, "finish_reason": _finish_reason(reply), "logprobs": None}],
            "usage": _usage(request, reply)}


def _stream_events(request: Request, reply: Reply) -> list[dict[str, Any] | str]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": created,
                "model": request.get("model", ""),
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}

    created = int(time.time())
    events: list[dict[str, Any] | str] = [chunk({"role": "assistant", "content": ""})]
    if reply.reasoning and not reply.reasoning_inline:
        events += [chunk({"reasoning_content": piece}) for piece in _pieces(reply.reasoning, reply.chunk_size)]
    events += [chunk({"content": piece}) for piece in _pieces(_content(reply), reply.chunk_size)]
    for index, (call_id, name, arguments) in enumerate(_tool_calls(reply)):
        events.append(chunk({"tool_calls": [{"index": index, "id": call_id, "type": "function",
                                             "function": {"name": name, "arguments": ""}}]}))
        size = max(1, len(arguments) // 3)
        events += [chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments[i:i + size]}}]})
                   for i in range(0, len(arguments), size)]
    events.append(chunk({}, _finish_reason(reply)))
    if (request.get("stream_options") or {}).get("include_usage"):
        events.append({"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": created,
                       "model": request.get("model", ""), "choices": [], "usage": _usage(request, reply)})
    events.append("[DONE]")
    return events


def _content(reply: Reply) -> str:
    if reply.reasoning and reply.reasoning_inline:
        return f"<think>{reply.reasoning}</think>\n\n{reply.text}"
    return reply.text


def _tool_calls(reply: Reply) -> list[tuple[str, str, str]]:
    calls = []
    for i, call in enumerate(reply.tool_calls):
        arguments = call.get("arguments", {})
        text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        calls.append((str(call.get("id") or f"call_{i}"), str(call["name"]), text))
    return calls


def _finish_reason(reply: Reply) -> str:
    return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")


def _usage(request: Request, reply: Reply) -> dict[str, int]:
    if reply.usage is not None:
        prompt, completion = reply.usage
    else:
        prompt = sum(_words(_text(m)) for m in request.get("messages") or [] if isinstance(m, Mapping))
        completion = _words(reply.text) + _words(reply.reasoning) + sum(
            _words(arguments) for _, _, arguments in _tool_calls(reply))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _pieces(text: str, size: int | None) -> list[str]:
    if not text:
        return []
    if size:
        return [text[i:i + size] for i in range(0, len(text), size)]
    return re.findall(r"\s*\S+\s*|\s+", text)


def _words(text: str) -> int:
    return len(text.split())


# ---------------------------------------------------------------------------- reading requests
def _text(message: Mapping[str, Any]) -> str:
    """A message's text: the string content, or its text parts joined."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return ""


def _last_user(messages: Sequence[Mapping[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return _text(message)
    return ""


def _trailing_tool_results(messages: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    results: list[Mapping[str, Any]] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        results.append(message)
    return results


def _known(data: Mapping[str, Any], allowed: set[str], what: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(f"unknown key(s) in {what}: {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")


# ---------------------------------------------------------------------------- command line
def main(argv: Sequence[str] | None = None) -> int:
    """Serve a script until interrupted; prints the base URL first (one line) for scripts to read."""
    parser = argparse.ArgumentParser(prog="python -m taskcanvas.testing.model_server",
                                     description="Serve a scripted OpenAI-compatible chat model on loopback.")
    parser.add_argument("--script", help="rules file (JSON, or TOML by its .toml suffix); default: echo")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    args = parser.parse_args(argv)
    try:
        server = (ScriptedModelServer.from_script(args.script, host=args.host, port=args.port) if args.script
                  else ScriptedModelServer(host=args.host, port=args.port))
        server.start()
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(server.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
