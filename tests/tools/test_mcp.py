"""The MCP adapter against real MCP servers (the SDK's ``MCPServer``) on 127.0.0.1.

Each transport gets its own uvicorn server in a thread, started once for the module; every test
talks to it over loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mcp_types
import pytest
import uvicorn
from mcp.server.mcpserver import Context, Image, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from taskcanvas.config import ConfigError, Settings
from taskcanvas.tools.mcp import McpError, McpServer, McpServers, function_schema

# --------------------------------------------------------------------------- the MCP server
calls: list[str] = []


def _build_server() -> MCPServer:
    server = MCPServer("taskcanvas-test")

    @server.tool(description="Add two numbers.")
    def add(a: int, b: int) -> str:
        calls.append("add")
        return str(a + b)

    @server.tool(description="Always fails.")
    def fail() -> str:
        raise ToolError("the tool broke")

    @server.tool(description="Crashes.")
    def crash() -> str:
        raise ValueError("internal detail")

    @server.tool(description="Sleeps, then answers.")
    async def slow(seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "done"

    @server.tool(description="Answers with no content at all.")
    def nothing() -> mcp_types.CallToolResult:
        return mcp_types.CallToolResult(content=[])

    @server.tool(description="Answers with an error result.")
    def refuse() -> mcp_types.CallToolResult:
        return mcp_types.CallToolResult(content=[mcp_types.TextContent(text="not allowed")], is_error=True)

    @server.tool(description="Answers with an image.")
    def picture() -> Image:
        return Image(data=b"\x89PNG\r\n", format="png")

    @server.tool(description="The request headers the server received.")
    def headers(ctx: Context) -> str:
        seen = ctx.headers or {}
        return json.dumps({k.lower(): v for k, v in seen.items() if k.lower().startswith(("x-", "authorization"))})

    return server


class _Uvicorn:
    def __init__(self, app: Starlette) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on",
                                                   timeout_graceful_shutdown=1))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> _Uvicorn:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test MCP server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    with _Uvicorn(_build_server().streamable_http_app()) as server:
        yield f"http://127.0.0.1:{server.port}/mcp"


@pytest.fixture(scope="module")
def sse_url() -> Iterator[str]:
    with _Uvicorn(_build_server().sse_app()) as server:
        yield f"http://127.0.0.1:{server.port}/sse"


@pytest.fixture(params=["streamable-http", "sse"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def url(transport: str, request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("http_url" if transport == "streamable-http" else "sse_url"))


@pytest.fixture(scope="module")
def deny_url() -> Iterator[str]:
    """A server that answers every request with 401, like an MCP server given no or a wrong token."""

    async def deny(request: Request) -> Response:
        return PlainTextResponse("unauthorized", status_code=401)

    app = Starlette(routes=[Route("/{path:path}", deny, methods=["GET", "POST", "DELETE"])])
    with _Uvicorn(app) as server:
        yield f"http://127.0.0.1:{server.port}/mcp"


def _servers(tables: dict[str, Any], env: dict[str, str] | None = None) -> McpServers:
    return McpServers.from_settings(Settings(raw={"mcp_servers": tables}, env=env or {}))


@pytest.fixture
def servers(url: str, transport: str) -> McpServers:
    return _servers({"srv": {"url": url, "transport": transport}})


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- tools
async def test_lists_tools(servers: McpServers) -> None:
    async with servers.get("srv") as server:
        tools = {t["name"]: t for t in await server.list_tools()}
    assert {"add", "fail", "slow", "nothing", "refuse", "picture", "headers"} <= tools.keys()
    add = tools["add"]
    assert add["description"] == "Add two numbers."
    assert add["inputSchema"]["type"] == "object"
    assert set(add["inputSchema"]["properties"]) == {"a", "b"}
    assert sorted(add["inputSchema"]["required"]) == ["a", "b"]


async def test_calls_a_tool_and_reuses_the_session(servers: McpServers) -> None:
    async with servers.get("srv") as server:
        assert await server.call("add", {"a": 2, "b": 3}) == "5"
        session = server._ready
        results = await asyncio.gather(*(server.call("add", {"a": i, "b": 1}) for i in range(5)))
        assert results == ["1", "2", "3", "4", "5"]
        assert server._ready is session  # one session for the whole invocation


async def test_result_rules(servers: McpServers) -> None:
    async with servers.get("srv") as server:
        assert await server.call("fail", {}) == "MCP server error: Error executing tool fail: the tool broke"
        assert await server.call("crash", {}) == "MCP server error: Error executing tool crash"
        assert await server.call("refuse") == "MCP server error: not allowed"
        assert await server.call("nothing", {}) == "MCP server returned empty content."
        assert await server.call("picture", {}) == "Unsupported content type ImageContent"
        assert await server.call("no_such_tool", {}) == "MCP server error: Unknown tool: no_such_tool"


async def test_timeout_leaves_the_session_usable(servers: McpServers) -> None:
    async with servers.get("srv") as server:
        assert await server.call("slow", {"seconds": 5}, timeout=0.3) == "Timeout calling tool 'slow' (timeout=0.3)."
        assert await server.call("slow", {"seconds": 0}, timeout=5) == "done"
        assert await server.call("add", {"a": 1, "b": 1}) == "2"


async def test_headers_are_sent(url: str, transport: str) -> None:
    servers = _servers({"srv": {"url": url, "transport": transport, "api_key_env": "TEST_MCP_KEY",
                                "headers": {"X-Team": "search", "X-Token_env": "TEST_MCP_TOKEN"}}},
                       env={"TEST_MCP_KEY": "k-123", "TEST_MCP_TOKEN": "t-456"})
    # ragflow substitutes ${name} in a canvas's custom_header from the custom_header itself.
    custom = {"X-Canvas": "c-${user}", "user": "u1", "X-Team": "canvas may not override", "Host": "evil.example",
              "X-User": "${user}"}
    async with servers.connections(headers=custom) as mcp:
        seen = json.loads(await mcp.get("srv").call("headers", {}))
    assert seen == {"authorization": "Bearer k-123", "x-team": "search", "x-token": "t-456",
                    "x-canvas": "c-u1", "x-user": "u1"}


async def test_connections_reuse_and_close(servers: McpServers) -> None:
    async with servers.connections() as mcp:
        server = mcp.get("srv")
        assert mcp.get("srv") is server
        assert await server.call("add", {"a": 1, "b": 2}) == "3"
    assert server._task is not None and server._task.done()
    assert await server.call("add", {"a": 1, "b": 2}) == (
        "Error calling tool 'add': the connection to MCP server 'srv' is closed.")
    with pytest.raises(McpError, match="closed"):
        await server.list_tools()


async def test_closing_an_unused_server_does_nothing(servers: McpServers) -> None:
    server = servers.get("srv")
    await server.aclose()
    await server.aclose()
    assert server._task is None


async def test_closing_while_calls_run(servers: McpServers) -> None:
    server = servers.get("srv")
    pending = asyncio.create_task(server.call("slow", {"seconds": 5}))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    await server.aclose()
    assert time.monotonic() - started < 4
    assert (await pending).startswith("Error calling tool 'slow': ")


# --------------------------------------------------------------------------- failures
async def test_unknown_mcp_id(servers: McpServers) -> None:
    with pytest.raises(McpError) as err:
        servers.get("nope")
    message = str(err.value)
    assert "'nope' is not configured" in message
    assert '[mcp_servers."nope"]' in message and "url" in message and "'srv'" in message


async def test_missing_secret_is_reported_when_used() -> None:
    servers = _servers({"srv": {"url": "http://127.0.0.1:1/mcp", "headers": {"Authorization_env": "NOT_SET"}}})
    with pytest.raises(McpError, match="NOT_SET"):
        servers.get("srv")


async def test_unreachable_server(transport: str) -> None:
    port = _closed_port()
    servers = _servers({"srv": {"url": f"http://127.0.0.1:{port}/mcp?key=secret", "transport": transport}})
    async with servers.get("srv") as server:
        started = time.monotonic()
        text = await server.call("add", {"a": 1, "b": 2})
        assert time.monotonic() - started < 10
        assert text.startswith("Error calling tool 'add': ")
        assert "'srv'" in text and f"127.0.0.1:{port}/mcp" in text and "secret" not in text
        with pytest.raises(McpError, match="'srv'"):
            await server.list_tools()


async def test_refused_authentication(deny_url: str, transport: str) -> None:
    servers = _servers({"srv": {"url": deny_url, "transport": transport}})
    async with servers.get("srv") as server:
        text = await server.call("add", {"a": 1, "b": 2})
    assert text.startswith(f"Error calling tool 'add': cannot connect to MCP server 'srv' at {deny_url}: ")
    assert "HTTP 401 Unauthorized" in text


async def test_initialize_timeout(transport: str) -> None:
    # A server that accepts connections and never answers.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                accepted.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    port = listener.getsockname()[1]
    servers = _servers({"srv": {"url": f"http://127.0.0.1:{port}/mcp", "transport": transport,
                                "initialize_timeout": 0.5}})
    try:
        async with servers.get("srv") as server:
            started = time.monotonic()
            text = await server.call("add", {"a": 1, "b": 2})
            assert time.monotonic() - started < 5
            assert text == (f"Error calling tool 'add': MCP server 'srv' at http://127.0.0.1:{port}/mcp "
                            "did not initialize within 0.5 s.")
    finally:
        listener.close()
        for conn in accepted:
            conn.close()


# --------------------------------------------------------------------------- configuration and schema
@pytest.mark.parametrize(("table", "message"), [
    ({}, "needs url"),
    ({"url": "ftp://x/mcp"}, "http or https"),
    ({"url": "http://x/mcp", "transport": "stdio"}, 'transport must be "streamable-http" or "sse"'),
    ({"url": "http://x/mcp", "header": {}}, "unknown key(s) header"),
    ({"url": "http://x/mcp", "headers": {"X-A": 1}}, "headers.X-A must be a string"),
    ({"url": "http://x/mcp", "initialize_timeout": 0}, "initialize_timeout"),
])
def test_bad_configuration(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape('[mcp_servers."s"]')) as err:
        _servers({"s": table})
    assert message in str(err.value)


def test_configuration_from_a_file(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[mcp_servers."abc"]\nurl = "http://127.0.0.1:9/sse"\ntransport = "sse"\n')
    servers = McpServers.from_settings(Settings.load({"TASKCANVAS_CONFIG": str(config)}))
    assert servers.ids() == ["abc"] and "abc" in servers
    server = servers.get("abc")
    assert isinstance(server, McpServer) and server.config.transport == "sse"
    with pytest.raises(McpError, match=str(config).replace("\\", "\\\\")):
        servers.get("other")


def test_function_schema() -> None:
    meta = {"name": "add", "description": "Add two numbers.",
            "inputSchema": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}}
    assert function_schema(meta, "add_3") == {
        "type": "function",
        "function": {"name": "add_3", "description": "Add two numbers.", "parameters": meta["inputSchema"]},
    }
    assert function_schema(meta)["function"]["name"] == "add"
    tool = mcp_types.Tool(name="t", input_schema={"type": "object", "properties": {}})
    assert function_schema(tool, "t_0") == {
        "type": "function",
        "function": {"name": "t_0", "description": "", "parameters": {"type": "object", "properties": {}}},
    }


async def test_server_going_away(transport: str) -> None:
    """A server that stops mid-session: the next call fails (streamable HTTP) or times out (SSE: the
    SDK logs the failed POST and leaves the request unanswered), and closing still works."""
    app = _build_server().streamable_http_app() if transport == "streamable-http" else _build_server().sse_app()
    path = "/mcp" if transport == "streamable-http" else "/sse"
    with _Uvicorn(app) as running:
        servers = _servers({"srv": {"url": f"http://127.0.0.1:{running.port}{path}", "transport": transport}})
        server = servers.get("srv")
        assert await server.call("add", {"a": 1, "b": 2}) == "3"
    try:
        started = time.monotonic()
        text = await server.call("add", {"a": 1, "b": 2}, timeout=1)
        assert time.monotonic() - started < 2
        assert text.startswith(("Error calling tool 'add': ", "Timeout calling tool 'add'")), text
    finally:
        await server.aclose()
