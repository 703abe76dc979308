"""A real MCP server (the official SDK) on loopback, for tests of MCP tools."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def mcp_server(name: str, tools: list[Callable[..., Any]]) -> Iterator[str]:
    """Serve ``tools`` over streamable HTTP on 127.0.0.1; yields the server's URL."""
    app = MCPServer(name)
    for fn in tools:
        app.tool()(fn)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app.streamable_http_app(), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
