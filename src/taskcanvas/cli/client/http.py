"""Talking to a taskcanvas server: its two faces, their error shapes, and its event streams.

:class:`Connection` sends the token the way each face expects it (``Coder-Session-Token`` on
``/api/v2``, ``Authorization: Bearer`` on ``/api/v1``) and turns every failure into one
:class:`ClientError` whose text is the line the CLI prints: coder's ``message: detail``,
ragflow's ``message``, or which server could not be reached and why.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from taskcanvas import __version__

DEFAULT_URL = "http://127.0.0.1:8080"
TIMEOUT = 30.0
"""Seconds to wait for an answer (an event stream waits between events as long as the server pings)."""
STREAM_READ_TIMEOUT = 60.0
"""An event stream silent this long (no event, no keep-alive ping) is taken for a dropped connection."""

_ERRNO_PREFIX = re.compile(r"^\[Errno -?\d+\]\s*")


class ClientError(Exception):
    """A request that failed; ``str()`` is the complete one-line message."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        self.exit_code = exit_code
        super().__init__(message)


class ServerError(ClientError):
    """The server answered, and refused."""

    def __init__(self, message: str, status: int) -> None:
        self.status = status
        super().__init__(message)


class Unreachable(ClientError):
    """No answer: the server is down, the address is wrong, or the connection dropped."""


@dataclass(frozen=True)
class ServerSentEvent:
    id: str | None
    event: str
    data: str


PING = ServerSentEvent(None, "", "")
"""What :meth:`Connection.events` yields for a keep-alive comment: a moment to look around."""


def segment(value: str) -> str:
    """One path segment, escaped."""
    return quote(value, safe="")


class Connection:
    """An HTTP client for one server and one token."""

    def __init__(self, url: str, token: str, *, timeout: float = TIMEOUT) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._http = httpx.Client(base_url=self.url, timeout=timeout, follow_redirects=False,
                                  headers={"User-Agent": f"taskcanvas-cli/{__version__}", "Accept": "application/json"})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ coder's face
    def coder(self, method: str, path: str, *, body: Any = None, params: Mapping[str, str] | None = None) -> Any:
        """``/api/v2`` + ``path``; the JSON answer (None when empty), or ServerError with coder's message."""
        response = self._send(method, "/api/v2" + path, body=body, params=params,
                              headers={"Coder-Session-Token": self._token})
        if response.status_code >= 400:
            raise ServerError(self._coder_message(response), response.status_code)
        return self._json(response) if response.content else None

    def _coder_message(self, response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, Mapping) or not body.get("message"):
            return self._unexpected(response)
        text = str(body["message"]).rstrip()
        if body.get("detail"):
            text = f"{text.rstrip('.')}: {body['detail']}"
        validations = body.get("validations")
        if isinstance(validations, list) and validations:
            problems = "; ".join(f"{v.get('field')}: {v.get('detail')}" for v in validations if isinstance(v, Mapping))
            text = f"{text.rstrip('.')}: {problems}"
        if response.status_code == 401:
            text += " (the server refused the token: check TASKCANVAS_TOKEN or --token)"
        return text

    # ------------------------------------------------------------------ ragflow's face
    def ragflow(self, method: str, path: str, *, body: Any = None, params: Mapping[str, str] | None = None) -> Any:
        """``/api/v1`` + ``path``; the envelope's ``data``, or ServerError with its ``message``."""
        response = self._send(method, "/api/v1" + path, body=body, params=params,
                              headers={"Authorization": f"Bearer {self._token}"})
        try:
            envelope = response.json()
        except ValueError:
            envelope = None
        if not isinstance(envelope, Mapping) or "code" not in envelope:
            raise ServerError(self._unexpected(response), response.status_code)
        if envelope["code"] != 0:
            text = str(envelope.get("message") or f"error code {envelope['code']}")
            if envelope["code"] == 401 or response.status_code == 401:
                text += " (the server refused the token: check TASKCANVAS_TOKEN or --token)"
            raise ServerError(text, response.status_code)
        return envelope.get("data")

    # ------------------------------------------------------------------ event streams
    def events(self, path: str, *, last_event_id: str | None = None,
               params: Mapping[str, str] | None = None) -> Iterator[ServerSentEvent]:
        """The Server-Sent Events of ``/api/v2`` + ``path``, :data:`PING` for each keep-alive comment.

        Ends when the server ends the stream; a dropped connection raises :class:`Unreachable`.
        """
        headers = {"Coder-Session-Token": self._token, "Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        timeout = httpx.Timeout(TIMEOUT, read=STREAM_READ_TIMEOUT)
        try:
            with self._http.stream("GET", "/api/v2" + path, headers=headers, params=params, timeout=timeout) as answer:
                if answer.status_code >= 400:
                    answer.read()
                    raise ServerError(self._coder_message(answer), answer.status_code)
                if not answer.headers.get("content-type", "").startswith("text/event-stream"):
                    raise ServerError(self._unexpected(answer), answer.status_code)
                yield from _parse_events(answer.iter_lines())
        except httpx.HTTPError as e:
            raise self._unreachable(e) from None

    # ------------------------------------------------------------------ plumbing
    def _send(self, method: str, path: str, *, body: Any, params: Mapping[str, str] | None,
              headers: Mapping[str, str]) -> httpx.Response:
        try:
            return self._http.request(method, path, json=body, params=params, headers=headers)
        except httpx.HTTPError as e:
            raise self._unreachable(e) from None

    def _unreachable(self, error: httpx.HTTPError) -> Unreachable:
        if isinstance(error, httpx.ConnectError):
            reason = _ERRNO_PREFIX.sub("", str(error)) or "cannot connect"
            return Unreachable(f"cannot reach the taskcanvas server at {self.url}: {reason.lower()} (is `taskcanvas "
                               f"serve` running there? set TASKCANVAS_URL or --url)")
        if isinstance(error, httpx.TimeoutException):
            return Unreachable(f"the taskcanvas server at {self.url} did not answer in time")
        reason = _ERRNO_PREFIX.sub("", str(error)) or type(error).__name__
        return Unreachable(f"lost the connection to the taskcanvas server at {self.url}: {reason}")

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise ServerError(self._unexpected(response), response.status_code) from None

    def _unexpected(self, response: httpx.Response) -> str:
        return (f"unexpected answer from {self.url}{response.request.url.path}: HTTP {response.status_code} "
                f"{response.reason_phrase} (is TASKCANVAS_URL a taskcanvas server?)")


def _parse_events(lines: Iterator[str]) -> Iterator[ServerSentEvent]:
    """The SSE wire format: fields until a blank line; ``:`` comments are keep-alives."""
    event_id: str | None = None
    name = ""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield ServerSentEvent(event_id, name or "message", "\n".join(data))
            name, data = "", []
            continue
        if line.startswith(":"):
            yield PING
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            name = value
        elif field == "id" and "\x00" not in value:
            event_id = value
    if data:
        yield ServerSentEvent(event_id, name or "message", "\n".join(data))


def decode(event: ServerSentEvent) -> dict[str, Any]:
    """An event's JSON payload (a non-object payload is wrapped as ``{"data": ...}``)."""
    try:
        payload = json.loads(event.data)
    except ValueError:
        return {"event": event.event, "data": event.data}
    return payload if isinstance(payload, dict) else {"event": event.event, "data": payload}
