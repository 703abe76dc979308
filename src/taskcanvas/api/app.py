"""The application: faces mounted, errors mapped, services opened for the process's lifetime."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import FastAPI, Request, Response

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

    @app.middleware("http")
    async def _measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        system.observe(request.method, getattr(route, "path", "unmatched"), response.status_code,
                       time.perf_counter() - started)
        return response

    return app
