"""China-market data: TuShare and Jin10, and why AkShare and WenCai are not available (ragflow
``agent/tools/{tushare,jin10,akshare,wencai}.py``, spec §5.2).

**TuShare** and **Jin10** are ragflow v1 components (``ComponentBase`` with ``_run``, not tools):
ragflow's current runtime never calls ``_run``, so in ragflow they fail without a message, and
they have no function schema, so an Agent cannot call them. taskcanvas runs them as their code
says, through the run's guarded HTTP client, as canvas components writing ``content``:

- TuShare: ``POST {tushare}`` (``http://api.tushare.pro``) with ``{"api_name": "news", "token",
  "params": {"src", "start_date", "end_date"}}``; the news whose text contains the keyword (case
  insensitive) as a Markdown table (``DataFrame.to_markdown()``, the row numbers of the full
  answer kept). The keyword is the ``keyword`` param (references allowed), else ``sys.query``;
  ragflow v1 took the upstream component's text, which components no longer hand on. With no
  keyword, ``content`` is empty and nothing is asked.
- Jin10: ``GET {jin10}/data-api/...`` (``https://open-data-api.jin10.com``) with the
  ``secret-key`` header and ragflow's JSON body: ``flash`` (the flashes' texts, one a line),
  ``calendar``, ``symbols`` (``symbols`` or ``quotes``, columns renamed as ragflow does) and
  ``news`` (Markdown tables). ragflow v1 ran it only when an upstream component said something,
  and then ignored what it said; taskcanvas runs it whenever the canvas reaches it.

Differences: a failure (HTTP error, an answer with an error code) is an error of the component,
"TuShare error: ..." / "Jin10 error: ...", retried ``max_retries`` times; ragflow v1 wrote
``"**ERROR**: ..."`` or TuShare's ``msg`` as the component's text. The token / secret key is the
node's unless empty or ragflow's placeholder ``xxx``, else ``[tools.tushare] token`` /
``[tools.jin10] secret_key`` of the settings (or ``token_env`` / ``secret_key_env``). Base URLs
from ``[endpoints] tushare`` and ``jin10``.

**AkShare** and **WenCai** call their services through their own client libraries (akshare,
pywencai), which open connections of their own past the SSRF guard; ragflow ships WenCai
disabled (its pywencai call is commented out, so it always reports nothing). Canvases using
them fail validation with the sentences in :data:`UNAVAILABLE`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import Field, field_validator
from tabulate import tabulate

from taskcanvas.runtime.component import Component, ComponentParams, RunContext
from taskcanvas.runtime.state import RunState
from taskcanvas.runtime.stream import TextStream
from taskcanvas.runtime.templates import string_format
from taskcanvas.tools._endpoints import USER_AGENT, ServiceError, endpoint, tool_secret

__all__ = ["UNAVAILABLE", "Jin10", "Jin10Params", "TuShare", "TuShareParams"]

UNAVAILABLE: dict[str, str] = {
    "AkShare": "is not available: its client library (akshare) makes network calls outside taskcanvas's guarded "
               "HTTP client",
    "WenCai": "is not available: its client library (pywencai) makes network calls outside taskcanvas's guarded "
              "HTTP client, and ragflow itself ships it disabled (it always returns an empty report)",
}
"""Reasons, for the registry, that canvases using these types fail validation."""

_PLACEHOLDER = "xxx"
_TUSHARE_SOURCES = ("sina", "wallstreetcn", "10jqka", "eastmoney", "yuncaijing", "fenghuang", "jinrongjie")


def _one_of(value: Any, name: str, allowed: tuple[str, ...]) -> Any:
    if value not in allowed:
        raise ValueError(f"{name} {value!r} is not supported: use one of {', '.join(allowed)}")
    return value



def _frame_markdown(records: list[Any], index: list[Any] | None = None) -> str:
    """``pandas.DataFrame(records).to_markdown()`` for a list of objects (or of rows with ``index``)."""
    columns: dict[str, None] = {}
    for record in records:
        if isinstance(record, Mapping):
            columns.update(dict.fromkeys(record))
    rows = [[index[i] if index else i, *(record.get(c) if isinstance(record, Mapping) else None for c in columns)]
            for i, record in enumerate(records)]
    return tabulate(rows, headers=["", *columns], tablefmt="pipe")


async def _send(ctx: RunContext, service: str, method: str, url: str, *, timeout: float, **kw: Any) -> Any:
    """The JSON answer of one request through the guarded client; failures raise :class:`ServiceError`."""
    if ctx.http is None:
        raise ServiceError(f"{service} needs an HTTP client (none was configured)")
    headers = {"User-Agent": USER_AGENT, **kw.pop("headers", {})}
    try:
        response: httpx.Response = await ctx.http.request(method, url, headers=headers, timeout=timeout, **kw)
    except httpx.TimeoutException:
        raise ServiceError(f"{service} did not answer within {timeout:g} seconds") from None
    except httpx.TransportError as e:
        raise ServiceError(f"could not reach {service}: {e or type(e).__name__}") from None
    if not response.is_success:
        text = " ".join(response.text.split())[:200]
        raise ServiceError(f"{service} answered HTTP {response.status_code}: {text or response.reason_phrase}")
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ServiceError(f"{service} answered something that is not JSON") from None


# --------------------------------------------------------------------------- TuShare
class TuShareParams(ComponentParams):
    token: str | None = _PLACEHOLDER
    src: str = "eastmoney"
    start_date: str = "2024-01-01 09:00:00"
    end_date: str = Field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime()))
    keyword: Any = ""

    @field_validator("src", mode="before")
    @classmethod
    def _source(cls, v: Any) -> Any:
        return _one_of(v, "src", _TUSHARE_SOURCES)


class TuShare(Component):
    component_name = "TuShare"
    Params = TuShareParams
    timeout = 60.0
    default_on_error = False

    async def invoke(self, ctx: RunContext) -> None:
        params = self.params
        assert isinstance(params, TuShareParams)
        state = ctx.state
        keyword = self._keyword(state, params)
        if not keyword:
            state.set_output(self.id, "content", "")
            return
        token = params.token if params.token and params.token != _PLACEHOLDER else tool_secret(
            ctx, "tushare", "token")
        if not token:
            raise ServiceError("TuShare error: TuShare needs a token: set token in the component, or token_env in "
                               "[tools.tushare] of the taskcanvas settings")
        body = {"api_name": "news", "token": token,
                "params": {"src": params.src, "start_date": params.start_date, "end_date": params.end_date}}
        try:
            answer = await _send(ctx, "TuShare", "POST", endpoint(ctx, "tushare"), timeout=self.timeout,
                                 json=body)
            if not isinstance(answer, dict):
                raise ServiceError("TuShare answered JSON that is not an object")
            if answer.get("code") != 0:
                raise ServiceError(f"TuShare answered code {answer.get('code')}: {answer.get('msg') or 'no message'}")
            data = answer.get("data") or {}
            fields = list(data.get("fields") or [])
            items = list(data.get("items") or [])
        except ServiceError as e:
            raise ServiceError(f"TuShare error: {e}") from None
        if "content" not in fields:
            raise ServiceError("TuShare error: the news have no content field")
        at = fields.index("content")
        wanted = keyword.lower()
        index, rows = [], []
        for i, item in enumerate(items):
            text = item[at] if isinstance(item, list) and at < len(item) else None
            if isinstance(text, str) and wanted in text.lower():
                index.append(i)
                rows.append(dict(zip(fields, item, strict=False)))
        table = tabulate([[i, *(row.get(f) for f in fields)] for i, row in zip(index, rows, strict=True)],
                         headers=["", *fields], tablefmt="pipe")
        state.set_output(self.id, "content", table)

    def _keyword(self, state: RunState, params: TuShareParams) -> str:
        value = params.keyword
        if isinstance(value, str) and value and state.is_ref(value):
            value = state.get_variable_value(value)
        elif isinstance(value, str) and "{" in value:
            refs = self.text_refs_of(value)
            if refs:
                value = string_format(value, {k: _text(state.get_variable_value(t)) for k, t in refs.items()})
        value = _text(value)
        if not value:
            value = _text(state.globals.get("sys.query"))
        state.set_input(self.id, "keyword", value)
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _text(value: Any) -> Any:
    if isinstance(value, TextStream):
        return value.text
    return "" if value is None else value


# --------------------------------------------------------------------------- Jin10
class Jin10Params(ComponentParams):
    type: str = "flash"
    secret_key: str | None = _PLACEHOLDER
    flash_type: str = "1"
    calendar_type: str = "cj"
    calendar_datatype: str = "data"
    symbols_type: str = "GOODS"
    symbols_datatype: str = "symbols"
    contain: str = ""
    filter: str = ""

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, v: Any) -> Any:
        return _one_of(v, "type", ("flash", "calendar", "symbols", "news"))

    @field_validator("flash_type", mode="before")
    @classmethod
    def _flash(cls, v: Any) -> Any:
        return _one_of(str(v), "flash_type", ("1", "2", "3", "4", "5"))

    @field_validator("calendar_type", mode="before")
    @classmethod
    def _calendar(cls, v: Any) -> Any:
        return _one_of(v, "calendar_type", ("cj", "qh", "hk", "us"))

    @field_validator("calendar_datatype", mode="before")
    @classmethod
    def _calendar_data(cls, v: Any) -> Any:
        return _one_of(v, "calendar_datatype", ("data", "event", "holiday"))

    @field_validator("symbols_type", mode="before")
    @classmethod
    def _symbols(cls, v: Any) -> Any:
        return _one_of(v, "symbols_type", ("GOODS", "FOREX", "FUTURE", "CRYPTO"))

    @field_validator("symbols_datatype", mode="before")
    @classmethod
    def _symbols_data(cls, v: Any) -> Any:
        return _one_of(v, "symbols_datatype", ("symbols", "quotes"))


_SYMBOL_NAMES = {"c": "Commodity Code", "e": "Stock Exchange", "n": "Commodity Name", "t": "Commodity Type"}
_QUOTE_NAMES = {"a": "Selling Price", "b": "Buying Price", "c": "Commodity Code", "e": "Stock Exchange",
                "h": "Highest Price", "hc": "Yesterday’s Closing Price", "l": "Lowest Price", "o": "Opening Price",
                "p": "Latest Price", "t": "Market Quote Time"}


class Jin10(Component):
    component_name = "Jin10"
    Params = Jin10Params
    timeout = 60.0
    default_on_error = False

    async def invoke(self, ctx: RunContext) -> None:
        params = self.params
        assert isinstance(params, Jin10Params)
        key = params.secret_key if params.secret_key and params.secret_key != _PLACEHOLDER else tool_secret(
            ctx, "jin10", "secret_key")
        if not key:
            raise ServiceError("Jin10 error: Jin10 needs a secret key: set secret_key in the component, or "
                               "secret_key_env in [tools.jin10] of the taskcanvas settings")
        try:
            content = await self._fetch(ctx, params, key)
        except ServiceError as e:
            raise ServiceError(f"Jin10 error: {e}") from None
        ctx.state.set_output(self.id, "content", content)

    async def _fetch(self, ctx: RunContext, params: Jin10Params, key: str) -> str:
        base = endpoint(ctx, "jin10") + "/data-api/"
        if params.type == "flash":
            data = await self._get(ctx, base + "flash", {"category": params.flash_type}, key,
                                   {"category": params.flash_type, "contain": params.contain,
                                    "filter": params.filter})
            texts = []
            for item in data:
                inner = item.get("data") if isinstance(item, dict) else None
                if not isinstance(inner, dict) or "content" not in inner:
                    raise ServiceError("a flash has no data.content")
                texts.append(str(inner["content"]))
            return "\n".join(texts)
        if params.type == "calendar":
            data = await self._get(ctx, base + "calendar/" + params.calendar_datatype,
                                   {"category": params.calendar_type}, key, {"category": params.calendar_type})
            return _frame_markdown(data)
        if params.type == "symbols":
            body: dict[str, Any] = {"type": params.symbols_type}
            if params.symbols_datatype == "quotes":
                body["codes"] = "BTCUSD"
            data = await self._get(ctx, base + params.symbols_datatype, {"type": params.symbols_type}, key, body)
            names = _QUOTE_NAMES if params.symbols_datatype == "quotes" else _SYMBOL_NAMES
            renamed = []
            for item in data:
                if not isinstance(item, dict) or any(k not in item for k in names):
                    raise ServiceError(f"a {params.symbols_datatype[:-1]} lacks one of {', '.join(names)}")
                rest = {k: v for k, v in item.items() if k not in names}
                renamed.append({**rest, **{label: item[k] for k, label in names.items()}})
            return _frame_markdown(renamed)
        data = await self._get(ctx, base + "news", None, key, {"contain": params.contain, "filter": params.filter})
        return _frame_markdown(data)

    async def _get(self, ctx: RunContext, url: str, query: dict[str, str] | None, key: str,
                   body: dict[str, Any]) -> list[Any]:
        answer = await _send(ctx, "Jin10", "GET", url, timeout=self.timeout, params=query,
                             content=json.dumps(body).encode(), headers={"secret-key": key})
        if not isinstance(answer, dict):
            raise ServiceError("Jin10 answered JSON that is not an object")
        status = answer.get("status")
        if status is not None and status != 200:
            raise ServiceError(f"Jin10 answered status {status}: {answer.get('message') or 'no message'}")
        data = answer.get("data")
        if not isinstance(data, list):
            raise ServiceError("Jin10's answer has no data list")
        return data
