"""The application: faces mounted, errors mapped, services opened for the process's lifetime."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskcanvas import __version__
from taskcanvas.api import coder, errors, experimental, ragflow, system
from taskcanvas.config import Settings
from taskcanvas.service.services import Services, import_examples, open_services


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> FastAPI:
    """The ASGI app. Given ``services``, the caller owns them; otherwise they open and close with the app."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened = services or await open_services(settings or Settings.load())
        app.state.services = opened
        await import_examples(opened)
        try:
            yield
        finally:
            if services is None:
                await opened.close()

    app = FastAPI(title="taskcanvas", version=__version__, lifespan=lifespan, openapi_url="/openapi.json",
                  docs_url="/docs", redoc_url=None,
                  description="Run ragflow agent canvases as tasks: coder's Tasks API on /api/v2 and "
                              "/api/experimental, ragflow's agent API on /api/v1.")
    errors.install(app)
    app.include_router(system.router)
    app.include_router(coder.router, prefix="/api/v2")
    app.include_router(experimental.router, prefix="/api/experimental")
    app.include_router(ragflow.router, prefix="/api/v1")

    app.add_middleware(_Measured)
    return app


class _Measured:
    """Each request's duration up to its response's start, by route, for ``/metrics``.

    A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` runs every request in a task of
    its own with a stream between, which cost more than many a route here.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def send_measured(message: Message) -> None:
            if message["type"] == "http.response.start":
                route = scope.get("route")
                system.observe(scope["method"], getattr(route, "path", "unmatched"), message["status"],
                               time.perf_counter() - started)
            await send(message)

        await self.app(scope, receive, send_measured)
