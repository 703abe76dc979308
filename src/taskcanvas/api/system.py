"""Health, metrics and version: the routes operators and load balancers use (no auth)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from taskcanvas import __version__
from taskcanvas.api.deps import ServicesDep
from taskcanvas.store import StoreError

router = APIRouter(tags=["system"])

REGISTRY = CollectorRegistry()
_REQUESTS = Counter("taskcanvas_http_requests_total", "HTTP requests answered", ["method", "route", "status"],
                    registry=REGISTRY)
_LATENCY = Histogram("taskcanvas_http_request_seconds", "Time to answer an HTTP request (streams: to the headers)",
                     ["method", "route"], registry=REGISTRY)
_EXECUTING = Gauge("taskcanvas_runs_executing", "Runs executing in this process", registry=REGISTRY)


def observe(method: str, route: str, status: int, seconds: float) -> None:
    _REQUESTS.labels(method, route, str(status)).inc()
    _LATENCY.labels(method, route).observe(seconds)


@router.get("/healthz", summary="Is the server up and its database reachable?")
async def healthz(services: ServicesDep) -> JSONResponse:
    try:
        await services.database.ping()
    except StoreError as e:
        return JSONResponse({"status": "unavailable", "database": str(e)}, status_code=503)
    return JSONResponse({"status": "ok", "database": services.database.backend, "version": __version__})


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(services: ServicesDep) -> Response:
    _EXECUTING.set(services.executor.executing)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
