"""Wiring: the services a canvas's components use, built once from :class:`Settings`.

The engine gets its outside world injected (DESIGN.md): the one guarded HTTP client, the chat
models, knowledge bases, the code sandbox, MCP servers, the file store. The CLI and the
server build them here, the same way, and close them when done.
"""

from __future__ import annotations

from typing import Any

from taskcanvas.config import Settings
from taskcanvas.files import FileReader, blob_store
from taskcanvas.llm.config import ModelRegistry
from taskcanvas.runtime.engine import Limits
from taskcanvas.tools.http import GuardedClient, HttpPolicy, create_client
from taskcanvas.tools.knowledge import KnowledgeBases
from taskcanvas.tools.mcp import McpServers
from taskcanvas.tools.sandbox import ArtifactStore, sandbox_services

__all__ = ["close_services", "engine_services", "http_client", "limits"]


def http_client(settings: Settings) -> GuardedClient:
    """The one outbound HTTP client, guarded as the settings allow."""
    return create_client(HttpPolicy.from_settings(settings))


def limits(settings: Settings) -> Limits:
    return Limits(concurrency=settings.concurrency, timeout=settings.timeout, timeouts=settings.timeouts)


def engine_services(settings: Settings) -> dict[str, Any]:
    """Every service by the name components look it up under (``RunContext.services``).

    One blob store keeps every file: what runs are given (``files``, read for components by
    ``file_reader``) and what they make, CodeExec's artifacts included.
    """
    files = blob_store(settings)
    return {
        "settings": settings,
        "models": ModelRegistry.from_settings(settings),
        "knowledge": KnowledgeBases.from_settings(settings),
        "mcp": McpServers.from_settings(settings),
        **sandbox_services(settings),
        "files": files,
        "file_reader": FileReader(files, max_bytes=settings.files_max_bytes),
        "artifacts": ArtifactStore(files),
    }


async def close_services(services: dict[str, Any]) -> None:
    """Close what the services hold open (model clients, the sandbox)."""
    await services["models"].aclose()
    await services["sandbox"].aclose()
