"""What every ragflow route shares: the envelopes, request parsing, ids, times, pages.

ragflow answers in two envelopes (``api/utils/api_utils.py``): ``get_json_result`` always has
``code``, ``message`` and ``data``; ``get_result`` has only ``code`` and ``data`` on success
(no ``message``) and ``code`` + ``message`` on failure. Both are HTTP 200.
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import functools
import json
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, Final, ParamSpec, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse

from taskcanvas.api.errors import RagflowError
from taskcanvas.service.errors import Forbidden, Invalid
from taskcanvas.service.sessions import SessionBusy, parse_id

DEFAULT_PAGE: Final = 1
DEFAULT_PAGE_SIZE: Final = 30
MAX_PAGE_SIZE: Final = 100


def json_result(data: Any = None, *, message: str = "success", code: int = 0,
                headers: Mapping[str, str] | None = None) -> JSONResponse:
    """``get_json_result``: ``{"code", "message", "data"}``."""
    return JSONResponse({"code": code, "message": message, "data": data}, headers=dict(headers or {}))


def result(data: Any = None) -> JSONResponse:
    """``get_result`` on success: ``{"code": 0, "data": ...}`` (no ``data`` key when there is none)."""
    body: dict[str, Any] = {"code": 0}
    if data is not None:
        body["data"] = data
    return JSONResponse(body)


def refuse(code: int, message: str, *, data: Any = None, with_data: bool = False) -> RagflowError:
    """An error in ragflow's envelope, to ``raise``."""
    return RagflowError(code, message, data=data, with_data=with_data)


def refuse_json(code: int, message: str) -> RagflowError:
    """``get_json_result(data=False, code=..., message=...)``: the error carries ``"data": false``."""
    return RagflowError(code, message, data=False, with_data=True)


@contextlib.contextmanager
def ragflow_refusals() -> Iterator[None]:
    """Service refusals in the envelope ragflow's routes use for them: its permission checks answer
    ``get_json_result(data=False, code=103)``; a busy session is 103 too (the Go port's answer)."""
    try:
        yield
    except SessionBusy as e:
        raise refuse_json(103, e.message) from None
    except Forbidden as e:
        raise refuse_json(103, e.message) from None
    except Invalid as e:
        raise refuse_json(101, f"{e.message} {e.detail}" if e.detail else e.message) from None


_P = ParamSpec("_P")
_R = TypeVar("_R")


def with_refusals(route: Callable[_P, Awaitable[_R]]) -> Callable[_P, Awaitable[_R]]:
    """A route whose service refusals are answered by :func:`ragflow_refusals`."""

    @functools.wraps(route)
    async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with ragflow_refusals():
            return await route(*args, **kwargs)

    return wrapper


async def read_json(request: Request) -> dict[str, Any]:
    """The JSON object in the body; ``{}`` for an empty, broken or non-object body (ragflow reads it so)."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        decoded = json.loads(raw)
    except ValueError:
        return {}
    return dict(decoded) if isinstance(decoded, dict) else {}


def require_fields(body: Mapping[str, Any], *names: str) -> None:
    """ragflow's ``validate_request``: 101 naming every missing key."""
    missing = [n for n in names if n not in body]
    if missing:
        raise RagflowError(101, f"required argument are missing: {','.join(missing)}; ", data=None, with_data=True)


def mapping(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else ``{}`` (payloads and configurations are read defensively)."""
    return dict(value) if isinstance(value, Mapping) else {}


def truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return False


def desc_flag(value: str | None, *, default: bool = True) -> bool:
    """ragflow's ``desc``: only ``false`` (any case) turns it off."""
    if value is None:
        return default
    return value.strip().lower() != "false"


def page_args(page: str | None, page_size: str | None) -> tuple[int, int]:
    """ragflow's paging: a bad value falls back to the default; a size above 100 is refused as ragflow does."""
    number = _positive(page, DEFAULT_PAGE)
    size = _positive(page_size, DEFAULT_PAGE_SIZE)
    if size > MAX_PAGE_SIZE:
        raise RagflowError(100, f"ValueError('page_size must be less than or equal to {MAX_PAGE_SIZE}')",
                           data=None, with_data=True)
    return number, size


def _positive(value: str | None, default: int) -> int:
    try:
        number = int(value) if value is not None else default
    except ValueError:
        return default
    return number if number >= 1 else default


def ident(value: uuid.UUID | None) -> str | None:
    """An id as ragflow writes them: 32 hex digits."""
    return None if value is None else value.hex


def path_id(value: str) -> uuid.UUID | None:
    """An id from a path (32 hex digits, or dashed); ``None`` when it cannot be one."""
    return parse_id(value)


def ms(when: datetime.datetime | None) -> int | None:
    """ragflow's ``create_time``/``update_time``: milliseconds since the epoch."""
    return None if when is None else int(when.timestamp() * 1000)


def http_date(when: datetime.datetime | None) -> str | None:
    """ragflow's ``create_date``/``update_date`` as its JSON encoder writes a datetime."""
    return None if when is None else email.utils.format_datetime(when.astimezone(datetime.UTC), usegmt=True)
