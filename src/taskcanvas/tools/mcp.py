"""MCP servers an Agent calls tools on (spec §4.5 ``mcp``, §5.4), with the official ``mcp`` SDK.

A canvas names an MCP server by id — ``params.mcp = [{"mcp_id": ..., "tools": {name: meta}}]``
on an Agent — and ragflow looks the id up in its ``mcp_server`` table (url, server_type,
headers). taskcanvas looks it up in the operator's configuration instead::

    [mcp_servers."3f0c6a54b2a0"]          # the mcp_id canvases refer to
    url = "https://mcp.example.com/mcp"
    transport = "streamable-http"         # or "sse" (ragflow's server_type); default streamable-http
    api_key_env = "EXAMPLE_MCP_KEY"       # optional: sent as "Authorization: Bearer <key>" (or api_key = "...")
    headers = { "X-Team" = "search", "X-Token_env" = "EXAMPLE_MCP_TOKEN" }  # "<Name>_env": value from the environment
    proxy = "http://proxy.internal:3128"  # optional; the environment's HTTP(S)_PROXY is not used
    initialize_timeout = 5                # optional, seconds (ragflow: 5)

Lifecycle. :meth:`McpServers.get` hands out a new, unopened :class:`McpServer`; it connects on
first use (``initialize`` within the initialize timeout), every later call reuses that session,
and :meth:`McpServer.aclose` (or leaving ``async with``) ends it — for streamable HTTP the
session is terminated on the server (``DELETE``). An Agent opens what it needs at the start of
its invocation and closes it at the end::

    async with servers.connections(headers=params.custom_header) as mcp:
        server = mcp.get(entry["mcp_id"])           # unknown id: McpError, before the model runs
        text = await server.call("add", {"a": 1, "b": 2}, timeout=10)

The session lives in a task of its own (the SDK's transports are anyio task groups, which must
be left by the task that entered them), so calls may come from any task of the same event
loop — the tool calls of one model round run concurrently — and closing works from any of them.

Results follow ragflow's ``MCPToolCallSession.tool_call``: the first content block's text;
``isError`` → ``"MCP server error: …"``; no content → ``"MCP server returned empty content."``;
past the timeout → ``"Timeout calling tool '<name>' (timeout=<timeout>)."``; any other failure
(cannot connect, session closed, protocol error) → ``"Error calling tool '<name>': <reason>."``.
:meth:`McpServer.call` never raises for those: the model is told what went wrong.
Where ragflow's text is plainly a bug this module says what was meant: an error result shows the
text of its content blocks, not the Python ``repr`` of the block list; unsupported content names
the block type (``ImageContent``), not ``<class 'list'>``; a failed connection says why and where
instead of "Connection failed (possibly due to auth error)".

SSRF. MCP servers are configured by the operator, not by the canvas author: a canvas can only
pick one of the configured ids, so the configured URL is trusted and is not checked by the SSRF
guard of :mod:`taskcanvas.tools.http` (an MCP server on loopback or an internal network is the
common case, and must not require opening ``[http] allow_private`` to every canvas). The client
never goes anywhere else: the SDK follows a redirect only within the endpoint's origin (same
scheme, host and port) and refuses an SSE ``endpoint`` on another origin, and no proxy comes
from the environment. (The SDK speaks ``httpx2``, so the ``httpx``-based guarded client could
not be plugged in anyway.) A canvas's ``custom_header`` is sent along, as in ragflow, but it
cannot replace a header the operator configured, nor set connection-level headers (``Host``,
``Content-Length``, ``Mcp-Session-Id``, ...).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from string import Template
from types import TracebackType
from typing import Any, Literal

import anyio
import httpx2
import mcp_types
from mcp.client.session import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from taskcanvas.config import ConfigError, Settings
from taskcanvas.errors import TaskcanvasError

__all__ = [
    "CALL_TIMEOUT",
    "INITIALIZE_TIMEOUT",
    "McpConnections",
    "McpError",
    "McpServer",
    "McpServerConfig",
    "McpServers",
    "function_schema",
]

_log = logging.getLogger(__name__)

Transport = Literal["streamable-http", "sse"]
TRANSPORTS: tuple[Transport, ...] = ("streamable-http", "sse")
INITIALIZE_TIMEOUT = 5.0
"""Seconds to connect and complete ``initialize`` (ragflow: 5)."""
CALL_TIMEOUT = 10
"""Seconds a tool call may take (ragflow's ``tool_call`` default)."""
_CLOSE_TIMEOUT = 5.0
# Like the SDK's defaults: a response stream may stay open for long, everything else is short.
_HTTP_TIMEOUT = 30.0
_SSE_READ_TIMEOUT = 300.0
_KEYS = frozenset({"url", "transport", "headers", "api_key", "api_key_env", "proxy", "initialize_timeout",
                   "name", "description"})
# Headers a canvas may not set: they belong to the connection or to the MCP session.
_PROTECTED = frozenset({"host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer",
                        "keep-alive", "proxy-authorization", "mcp-session-id", "mcp-protocol-version",
                        "last-event-id", "accept", "content-type"})


class McpError(TaskcanvasError):
    """An MCP server that is not configured, cannot be reached, or answered with an error."""


@dataclass(frozen=True)
class McpServerConfig:
    """One ``[mcp_servers."<id>"]`` table, checked."""

    id: str
    url: str
    transport: Transport = "streamable-http"
    headers: Mapping[str, str] = field(default_factory=dict)
    """Headers with their values (secrets from the environment already read)."""
    missing: tuple[str, ...] = ()
    """Environment variables the table names that are not set (reported when the server is used)."""
    proxy: str | None = None
    initialize_timeout: float = INITIALIZE_TIMEOUT
    name: str = ""
    description: str = ""


class McpServers:
    """The MCP servers of the configuration, by id. Build once; hand out a server per use."""

    def __init__(self, configs: Iterable[McpServerConfig] = (), *, config_file: str | None = None) -> None:
        self._configs = {c.id: c for c in configs}
        self._config_file = config_file

    @classmethod
    def from_settings(cls, settings: Settings) -> McpServers:
        """The ``[mcp_servers]`` tables of the configuration; :class:`ConfigError` for a malformed one."""
        section = settings.section("mcp_servers")
        configs = [_parse_server(settings, str(mcp_id), table) for mcp_id, table in section.items()]
        return cls(configs, config_file=str(settings.config_file) if settings.config_file else None)

    def ids(self) -> list[str]:
        return sorted(self._configs)

    def __contains__(self, mcp_id: object) -> bool:
        return mcp_id in self._configs

    def config(self, mcp_id: str) -> McpServerConfig:
        """The configuration of ``mcp_id``; :class:`McpError` naming the id and how to configure it."""
        config = self._configs.get(mcp_id)
        if config is None:
            where = (f" ({self._config_file})" if self._config_file
                     else " (TASKCANVAS_CONFIG, or config.toml in the data directory)")
            known = f"; configured: {', '.join(map(repr, self.ids()))}" if self._configs else "; none is configured"
            raise McpError(f"MCP server {mcp_id!r} is not configured: add a table "
                           f'[mcp_servers."{mcp_id}"] with url = "..." and transport = "streamable-http" or "sse" '
                           f"to the configuration{where}{known}")
        if config.missing:
            raise McpError(f"MCP server {mcp_id!r} cannot be used: the environment variable(s) "
                           f"{', '.join(config.missing)} named in [mcp_servers.\"{mcp_id}\"] are not set")
        return config

    def get(self, mcp_id: str, *, headers: Mapping[str, Any] | None = None) -> McpServer:
        """A new, unopened connection to ``mcp_id``; ``headers`` are a canvas's ``custom_header``.

        The caller closes it (``await server.aclose()`` or ``async with``). Raises :class:`McpError`
        when the id is not configured or a secret it needs is missing.
        """
        return McpServer(self.config(mcp_id), custom_headers=headers)

    def connections(self, *, headers: Mapping[str, Any] | None = None) -> McpConnections:
        """Connections for one Agent invocation: each id opened once, all closed together."""
        return McpConnections(self, headers=headers)


class McpConnections:
    """The MCP servers one Agent invocation uses: :meth:`get` reuses a server per id; closing closes all."""

    def __init__(self, servers: McpServers, *, headers: Mapping[str, Any] | None = None) -> None:
        self._servers = servers
        self._headers = headers
        self._open: dict[str, McpServer] = {}

    def get(self, mcp_id: str) -> McpServer:
        server = self._open.get(mcp_id)
        if server is None:
            server = self._open[mcp_id] = self._servers.get(mcp_id, headers=self._headers)
        return server

    async def aclose(self) -> None:
        servers, self._open = list(self._open.values()), {}
        await asyncio.gather(*(s.aclose() for s in servers))

    async def __aenter__(self) -> McpConnections:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()


class McpServer:
    """A connection to one configured MCP server: opened on first use, reused, closed by :meth:`aclose`.

    Use it from one event loop. :meth:`list_tools` raises :class:`McpError`; :meth:`call`
    returns the text the model reads, errors included.
    """

    def __init__(self, config: McpServerConfig, *, custom_headers: Mapping[str, Any] | None = None) -> None:
        self.config = config
        self.id = config.id
        self.headers = _merge_headers(config, custom_headers)
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[ClientSession] | None = None
        self._stop = asyncio.Event()
        self._closed = False
        self._transport_error: BaseException | None = None
        self._http_error: str | None = None
        """The last HTTP error status the server answered with (the SDK reports some without it)."""

    def __repr__(self) -> str:
        return f"<McpServer {self.id!r} {self.config.transport} {_display_url(self.config.url)}>"

    # ------------------------------------------------------------------ public
    async def list_tools(self, timeout: float = CALL_TIMEOUT) -> list[dict[str, Any]]:
        """The server's tools as ``{name, description, inputSchema, ...}`` (camelCase, as stored in a canvas)."""
        session = await self._session()
        tools: list[dict[str, Any]] = []
        cursor: str | None = None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    params = mcp_types.PaginatedRequestParams(cursor=cursor) if cursor else None
                    result = await session.list_tools(params=params)
                    tools.extend(_tool_dict(t) for t in result.tools)
                    cursor = result.next_cursor
                    if not cursor:
                        return tools
        except TimeoutError:
            raise McpError(f"MCP server {self.id!r} did not list its tools within {timeout} s") from None
        except Exception as e:
            raise McpError(f"MCP server {self.id!r} could not list its tools: {_reason(e)}") from None

    async def call(self, name: str, arguments: Mapping[str, Any] | None = None,
                   timeout: float = CALL_TIMEOUT) -> str:
        """Call tool ``name`` (its name on the server) and return the text for the model; never raises
        but for cancellation (see the module docstring for the result rules)."""
        try:
            session = await self._session()
        except McpError as e:
            return f"Error calling tool '{name}': {e}."
        try:
            async with asyncio.timeout(timeout):
                result = await session.call_tool(name, dict(arguments or {}))
        except TimeoutError:
            _log.warning("timeout calling tool %r on MCP server %r (timeout=%s)", name, self.id, timeout)
            return f"Timeout calling tool '{name}' (timeout={timeout})."
        except Exception as e:
            _log.warning("error calling tool %r on MCP server %r: %s", name, self.id, e)
            return f"Error calling tool '{name}': {self._failure(e)}."
        return _result_text(result)

    async def aclose(self) -> None:
        """End the session (and the server-side session for streamable HTTP); idempotent."""
        if self._closed:
            return
        self._closed = True
        task = self._task
        if task is None:
            return
        self._stop.set()
        if self._ready is not None and not self._ready.done():
            task.cancel()  # still connecting: nothing to end politely
        try:
            done, _ = await asyncio.wait({task}, timeout=_CLOSE_TIMEOUT)
            if not done:
                _log.warning("MCP server %r did not close within %s s; abandoning the session", self.id,
                             _CLOSE_TIMEOUT)
                task.cancel()
                await asyncio.wait({task}, timeout=1)
        except asyncio.CancelledError:
            task.cancel()
            raise

    async def __aenter__(self) -> McpServer:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ session
    async def _session(self) -> ClientSession:
        if self._closed:
            raise McpError(f"the connection to MCP server {self.id!r} is closed")
        if self._ready is None:
            self._ready = asyncio.get_running_loop().create_future()
            self._task = asyncio.create_task(self._serve(self._ready), name=f"mcp-server:{self.id}")
        # Shielded: a caller cancelled while connecting must not cancel the connection others wait for.
        session = await asyncio.shield(self._ready)
        if self._task is not None and self._task.done():
            raise McpError(f"the connection to MCP server {self.id!r} was lost"
                           + (f": {_reason(self._transport_error)}" if self._transport_error else ""))
        return session

    async def _serve(self, ready: asyncio.Future[ClientSession]) -> None:
        """The session's own task: connect, initialize, hand the session out, wait for close."""
        config = self.config
        try:
            with anyio.fail_after(config.initialize_timeout) as deadline:
                async with self._transport() as (read_stream, write_stream), ClientSession(
                        read_stream, write_stream, message_handler=self._on_message) as session:
                    await session.initialize()
                    deadline.deadline = math.inf
                    _log.info("MCP server %r initialized (%s)", self.id, _display_url(config.url))
                    ready.set_result(session)
                    await self._stop.wait()
        except TimeoutError:
            self._fail(ready, McpError(f"MCP server {self.id!r} at {_display_url(config.url)} did not "
                                       f"initialize within {config.initialize_timeout:g} s"
                                       + (f" ({_reason(self._transport_error)})" if self._transport_error else "")))
        except asyncio.CancelledError:
            self._fail(ready, McpError(f"the connection to MCP server {self.id!r} is closed"))
            raise
        except BaseException as e:  # ExceptionGroups from the transports' task groups included
            if ready.done():  # the session was up and broke down
                _log.warning("MCP server %r: the connection broke down: %s", self.id, _reason(e))
                self._transport_error = self._transport_error or e
                if not isinstance(e, Exception):
                    raise
                return
            reason = _reason(e)
            if self._http_error and self._http_error not in reason:
                reason = f"{reason} ({self._http_error})"
            _log.warning("MCP server %r: %s", self.id, reason)
            self._fail(ready, McpError(f"cannot connect to MCP server {self.id!r} at {_display_url(config.url)}: "
                                       f"{reason}"))
            if not isinstance(e, Exception):
                raise
        finally:
            if not ready.done():  # left without an error: closed while connecting
                ready.set_exception(McpError(f"the connection to MCP server {self.id!r} is closed"))

    def _fail(self, ready: asyncio.Future[ClientSession], error: McpError) -> None:
        if not ready.done():
            ready.set_exception(error)
            ready.exception()  # retrieved: nobody may be waiting
        elif self._transport_error is None:
            self._transport_error = error

    @contextlib.asynccontextmanager
    async def _transport(self) -> AsyncIterator[tuple[Any, Any]]:
        config = self.config
        headers = dict(self.headers)
        if config.transport == "sse":

            def factory(headers: dict[str, str] | None = None, timeout: httpx2.Timeout | None = None,
                        auth: httpx2.Auth | None = None) -> httpx2.AsyncClient:
                return _client(config, headers, timeout, auth, self._on_response)

            async with sse_client(config.url, headers=headers, timeout=_HTTP_TIMEOUT,
                                  sse_read_timeout=_SSE_READ_TIMEOUT, httpx_client_factory=factory) as streams:
                yield streams[0], streams[1]
        else:
            async with _client(config, headers, None, None, self._on_response) as client, streamable_http_client(
                    config.url, http_client=client) as streams:
                yield streams[0], streams[1]

    async def _on_response(self, response: httpx2.Response) -> None:
        if response.status_code >= 400:
            self._http_error = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, Exception):
            _log.warning("MCP server %r transport error: %s", self.id, _reason(message))
            self._transport_error = message

    def _failure(self, error: BaseException) -> str:
        if isinstance(error, McpError):
            return str(error)
        return _reason(error)


# --------------------------------------------------------------------------- schema and results
def function_schema(tool: Mapping[str, Any] | mcp_types.Tool, function_name: str | None = None) -> dict[str, Any]:
    """The OpenAI function schema the model sees for an MCP tool (ragflow's
    ``mcp_tool_metadata_to_openai_tool``): ``tool`` is a canvas's stored meta or an SDK ``Tool``."""
    if isinstance(tool, mcp_types.Tool):
        tool = _tool_dict(tool)
    schema = tool.get("inputSchema", tool.get("input_schema"))
    return {
        "type": "function",
        "function": {
            "name": function_name or str(tool["name"]),
            "description": tool.get("description") or "",
            "parameters": schema if schema is not None else {"type": "object", "properties": {}},
        },
    }


def _tool_dict(tool: mcp_types.Tool) -> dict[str, Any]:
    data: dict[str, Any] = tool.model_dump(by_alias=True, exclude_none=True, mode="json")
    data.setdefault("description", "")
    return data


def _result_text(result: mcp_types.CallToolResult) -> str:
    if result.is_error:
        texts = [block.text for block in result.content if isinstance(block, mcp_types.TextContent)]
        detail = "\n".join(texts) if texts else ", ".join(type(b).__name__ for b in result.content)
        return f"MCP server error: {detail}"
    if not result.content:
        return "MCP server returned empty content."
    first = result.content[0]
    if isinstance(first, mcp_types.TextContent):
        return first.text
    return f"Unsupported content type {type(first).__name__}"


# --------------------------------------------------------------------------- configuration
def _parse_server(settings: Settings, mcp_id: str, table: Any) -> McpServerConfig:
    where = f'[mcp_servers."{mcp_id}"]'
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} in the configuration must be a table")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ConfigError(f"{where} has unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}")
    url = table.get("url")
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f'{where} needs url = "http(s)://..." (the MCP endpoint)')
    url = url.strip()
    try:
        parsed = httpx2.URL(url)
    except Exception:
        raise ConfigError(f"{where} url {url!r} is not a valid URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(f"{where} url must be an http or https URL with a host, not {_display_url(url)!r}")
    transport = table.get("transport", "streamable-http")
    if transport not in TRANSPORTS:
        raise ConfigError(f"{where} transport must be \"streamable-http\" or \"sse\", not {transport!r}")
    raw_headers = table.get("headers", {})
    if not isinstance(raw_headers, Mapping):
        raise ConfigError(f"{where} headers must be a table of header names to values")
    headers: dict[str, str] = {}
    missing: list[str] = []
    for key in raw_headers:
        name = key[:-4] if key.endswith("_env") else key
        if not isinstance(raw_headers[key], str):
            raise ConfigError(f"{where} headers.{key} must be a string")
        if name in headers:
            continue
        value = settings.secret(raw_headers, name)
        if value is None:
            missing.append(str(raw_headers[key]))
        elif value.strip():
            headers[name] = value
    if "api_key" in table or "api_key_env" in table:
        key = settings.secret(table, "api_key")
        if key:
            headers.setdefault("Authorization", f"Bearer {key}")
        elif table.get("api_key_env"):
            missing.append(str(table["api_key_env"]))
    proxy = table.get("proxy")
    if proxy is not None and not (isinstance(proxy, str) and proxy.startswith(("http://", "https://"))):
        raise ConfigError(f"{where} proxy must be an http or https URL")
    timeout = table.get("initialize_timeout", INITIALIZE_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError(f"{where} initialize_timeout must be a positive number of seconds")
    return McpServerConfig(id=mcp_id, url=url, transport=transport, headers=headers, missing=tuple(missing),
                           proxy=proxy or None, initialize_timeout=float(timeout),
                           name=str(table.get("name", "")), description=str(table.get("description", "")))


def _merge_headers(config: McpServerConfig, custom: Mapping[str, Any] | None) -> dict[str, str]:
    """The operator's headers, then a canvas's ``custom_header`` (ragflow substitutes ``${name}`` in
    it from itself) for names the operator did not set and that are not connection headers."""
    headers = dict(config.headers)
    taken = {k.lower() for k in headers}
    values = {str(k): str(v) for k, v in (custom or {}).items()}
    for key, value in values.items():
        name = Template(key).safe_substitute(values).strip()
        if not name:
            continue
        if name.lower() in taken or name.lower() in _PROTECTED:
            _log.warning("MCP server %r: the canvas header %r is ignored (set by the configuration or reserved)",
                         config.id, name)
            continue
        headers[name] = Template(value).safe_substitute(values)
        taken.add(name.lower())
    return headers


def _client(config: McpServerConfig, headers: Mapping[str, str] | None, timeout: httpx2.Timeout | None,
            auth: httpx2.Auth | None,
            on_response: Callable[[httpx2.Response], Awaitable[None]]) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        event_hooks={"response": [on_response]},
        headers=dict(headers or {}),
        timeout=timeout or httpx2.Timeout(_HTTP_TIMEOUT, read=_SSE_READ_TIMEOUT),
        auth=auth,
        proxy=config.proxy,
        trust_env=False,
        follow_redirects=False,
    )


# --------------------------------------------------------------------------- helpers
def _leaf(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def _reason(error: BaseException | None) -> str:
    if error is None:
        return "unknown error"
    error = _leaf(error)
    if isinstance(error, httpx2.HTTPStatusError):
        return f"HTTP {error.response.status_code} {error.response.reason_phrase}".rstrip()
    text = str(error).strip()
    if isinstance(error, httpx2.HTTPError) or not text:
        return f"{type(error).__name__}: {text}" if text else type(error).__name__
    return text


def _display_url(url: str) -> str:
    """``url`` without user info, query or fragment: they may carry secrets."""
    try:
        return str(httpx2.URL(url).copy_with(userinfo=b"", query=None, fragment=None))
    except Exception:
        return "<invalid URL>"
