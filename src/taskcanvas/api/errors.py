"""Errors as each face's clients expect them; the one place a failure becomes an HTTP answer.

coder's clients read ``{"message", "detail"?, "validations"?}`` with the HTTP status; ragflow's
read the envelope ``{"code", "message"}`` (HTTP 200 except for 401 and unknown routes). A
route's path decides the shape. Nothing unexpected leaks: an internal error is logged with its
traceback and answered with a short message.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from taskcanvas.service.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError, Unauthorized
from taskcanvas.store import StoreError

_log = logging.getLogger("taskcanvas.api")

RAGFLOW_PREFIX = "/api/v1"


class RagflowError(Exception):
    """An answer in ragflow's envelope: ``{"code": code, "message": message}`` (HTTP 200 by default)."""

    def __init__(self, code: int, message: str, *, http_status: int = 200, data: Any = None,
                 with_data: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status
        self.data = data
        self.with_data = with_data


def ragflow_code(error: ServiceError) -> int:
    """ragflow's RetCode for a service error: 101 bad argument, 102 data error, 103 permission."""
    if isinstance(error, Invalid):
        return 101
    if isinstance(error, Forbidden):
        return 103
    if isinstance(error, (NotFound, Conflict)):
        return 102
    if isinstance(error, Unauthorized):
        return 401
    return 100


def coder_body(message: str, detail: str | None = None,
               validations: list[dict[str, str]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message}
    if detail:
        body["detail"] = detail
    if validations:
        body["validations"] = validations
    return body


def _is_ragflow(request: Request) -> bool:
    return request.url.path.startswith(RAGFLOW_PREFIX + "/") or request.url.path == RAGFLOW_PREFIX


def _ragflow(code: int, message: str, *, http_status: int = 200, data: Any = None,
             with_data: bool = False) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if with_data:
        body["data"] = data
    return JSONResponse(body, status_code=http_status)


def _validations(error: ServiceError) -> list[dict[str, str]] | None:
    pairs = getattr(error, "validations", None)
    if pairs:
        return [{"field": f, "detail": d} for f, d in pairs]
    field = getattr(error, "field", None)
    if field and error.detail:
        return [{"field": field, "detail": error.detail}]
    return None


async def _service_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ServiceError)
    if _is_ragflow(request):
        if isinstance(error, Unauthorized):
            return _ragflow(401, error.message, http_status=401)
        return _ragflow(ragflow_code(error), error.message)
    return JSONResponse(coder_body(error.message, error.detail, _validations(error)), status_code=error.status_code)


async def _ragflow_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RagflowError)
    return _ragflow(error.code, error.message, http_status=error.http_status, data=error.data,
                    with_data=error.with_data)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = [{"field": ".".join(str(p) for p in e.get("loc", ())[1:]) or "body", "detail": str(e.get("msg"))}
                for e in error.errors()]
    if _is_ragflow(request):
        return _ragflow(101, "; ".join(f"{p['field']}: {p['detail']}" for p in problems))
    body_broken = any(e.get("type") == "json_invalid" for e in error.errors())
    if body_broken:
        return JSONResponse(coder_body("Request body must be valid JSON.", str(error.errors()[0].get("msg"))),
                            status_code=400)
    return JSONResponse(coder_body("Validation failed.", validations=problems), status_code=400)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code in (404, 405) and _is_ragflow(request):
        return JSONResponse({"code": 404, "message": f"Not Found: {request.url.path}", "data": None,
                             "error": "Not Found"}, status_code=404)
    if error.status_code == 404:
        return JSONResponse(coder_body("Route not found."), status_code=404)
    if error.status_code == 405:
        return JSONResponse(coder_body("Method not allowed."), status_code=405)
    return JSONResponse(coder_body(str(error.detail)), status_code=error.status_code)


async def _store_error(request: Request, error: Exception) -> JSONResponse:
    _log.error("store error on %s %s: %s", request.method, request.url.path, error)
    if _is_ragflow(request):
        return _ragflow(100, f"The database failed: {error}")
    return JSONResponse(coder_body("Internal error.", f"The database failed: {error}"), status_code=500)


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    _log.exception("unexpected error on %s %s", request.method, request.url.path)
    if _is_ragflow(request):
        return _ragflow(100, f"Internal error: {type(error).__name__}")
    return JSONResponse(coder_body("Internal error.", type(error).__name__), status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RagflowError, _ragflow_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(StoreError, _store_error)
    app.add_exception_handler(Exception, _unexpected)
