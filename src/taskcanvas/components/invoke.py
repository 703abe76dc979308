"""Invoke: call an HTTP endpoint and keep the response text (ragflow ``invoke.py``, spec §4.8).

The request goes out through the run's one HTTP client (``ctx.http``, see
:mod:`taskcanvas.tools.http`), whose SSRF guard refuses private and non-http destinations; a
refused URL or proxy ends the component with ragflow's ``_ERROR`` "URL not valid" and is not
retried. Any other failure raises, so the engine retries it (``max_retries``,
``delay_after_error``) and records the last error, as ragflow's own loop does.

Query strings and form bodies are encoded the way ``requests`` encodes them (``True`` stays
``True``, ``None`` drops the key, lists repeat it) and JSON bodies are dumped as ``requests``
dumps them, so an endpoint receives the bytes it received from ragflow.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from taskcanvas.runtime.component import Component, ComponentParams, RunContext
from taskcanvas.runtime.errors import RunError
from taskcanvas.runtime.refs import header_placeholders
from taskcanvas.runtime.state import RunState
from taskcanvas.runtime.stream import TextStream
from taskcanvas.runtime.templates import refs_in, stringify, substitute
from taskcanvas.tools.http import GuardedClient, SsrfBlocked

_log = logging.getLogger(__name__)

_URL_NOT_VALID = "URL not valid"
_TIME_MARGIN = 5.0
"""Seconds the engine allows beyond the request ``timeout`` (connecting, reading the body)."""
_METHODS = ("get", "post", "put")
_DATATYPES = ("json", "formdata")


class InvokeVariable(BaseModel):
    """One request argument: its ``key`` and a reference (``ref``) or a literal/template ``value``."""

    model_config = ConfigDict(extra="allow")
    key: str
    ref: str | None = None
    value: Any = None


class InvokeParams(ComponentParams):
    url: str = Field(default="", validate_default=True)
    method: str = "get"
    headers: str | dict[str, Any] = ""
    """A JSON object (as text, like ragflow stores it); values may hold ``{name}`` placeholders."""
    variables: list[InvokeVariable] = []
    proxy: str | None = None
    timeout: int = 60
    clean_html: bool = False
    datatype: str = "json"

    @field_validator("url", mode="before")
    @classmethod
    def _url_not_empty(cls, v: Any) -> Any:
        if not v:
            raise ValueError("url must not be empty: it is the endpoint to call")
        return v

    @field_validator("method", mode="before")
    @classmethod
    def _known_method(cls, v: Any) -> Any:
        if not isinstance(v, str) or v.lower() not in _METHODS:
            raise ValueError(f"method {v!r} is not supported: use one of {', '.join(_METHODS)}")
        return v.lower()

    @field_validator("datatype", mode="before")
    @classmethod
    def _known_datatype(cls, v: Any) -> Any:
        if not isinstance(v, str) or v.lower() not in _DATATYPES:
            raise ValueError(f"datatype {v!r} is not supported: use one of {', '.join(_DATATYPES)}")
        return v.lower()

    @field_validator("timeout", mode="before")
    @classmethod
    def _positive_int(cls, v: Any) -> Any:
        if type(v) is not int or v <= 0:
            raise ValueError(f"timeout {v!r} is not supported: it is a positive whole number of seconds")
        return v

    @field_validator("clean_html", mode="before")
    @classmethod
    def _strict_bool(cls, v: Any) -> Any:
        if type(v) is not bool:
            raise ValueError(f"clean_html {v!r} is not supported: use true or false")
        return v


class Invoke(Component):
    component_name = "Invoke"
    # As in ragflow, a failure stays the error; with exception_method "comment" the default is said.
    default_on_error = False
    Params = InvokeParams
    timeout = 3.0
    """ragflow's framework limit for Invoke; :meth:`time_limit` widens it to the ``timeout`` param."""

    def thoughts(self, state: RunState) -> str:
        return "Waiting for the server respond..."

    def time_limit(self) -> float:
        """The request's own ``timeout`` plus a margin, so a slow but allowed call is not cut at 3 s."""
        params = self.params
        assert isinstance(params, InvokeParams)
        return max(self.timeout, params.timeout + _TIME_MARGIN)

    async def invoke(self, ctx: RunContext) -> None:
        params = self.params
        assert isinstance(params, InvokeParams)
        if ctx.http is None:
            raise RunError("Invoke needs an HTTP client (none was configured)", self.id)
        state = ctx.state
        args = await self._request_args(state, params)
        headers = await self._headers(state, params)
        url = _with_scheme(await self._render(state, params.url.strip()))
        try:
            response = await self._send(ctx.http, params, url, args, headers)
        except (SsrfBlocked, httpx.InvalidURL) as e:
            # SsrfBlocked names the URL without secrets; InvalidURL may quote all of it.
            _log.warning("Invoke %s: %s", self.id, e if isinstance(e, SsrfBlocked) else "invalid URL")
            state.set_output(self.id, "_ERROR", _URL_NOT_VALID)
            return
        except httpx.TimeoutException as e:
            # httpx's timeouts carry no message; say which limit was hit.
            raise RunError(f"the request timed out after {params.timeout} seconds ({type(e).__name__})",
                           self.id) from e
        text = response.text
        state.set_output(self.id, "result", html_text(text) if params.clean_html else text)

    # ------------------------------------------------------------------ the request
    async def _send(self, http: Any, params: InvokeParams, url: str, args: dict[str, Any],
                    headers: dict[str, str]) -> httpx.Response:
        target = httpx.URL(url)
        content: bytes | None = None
        content_type: str | None = None
        if params.method == "get":
            target = _with_query(target, _form_encode(args))
        elif params.datatype == "json":
            content = json.dumps(args, allow_nan=False).encode("utf-8")
            content_type = "application/json"
        else:
            encoded = _form_encode(args)
            if encoded:
                content = encoded.encode("utf-8")
                content_type = "application/x-www-form-urlencoded"
        if content_type and not any(k.lower() == "content-type" for k in headers):
            headers = {**headers, "Content-Type": content_type}
        method = params.method.upper()
        proxy = _proxy_url(params.proxy)
        if proxy is None:
            response: httpx.Response = await http.request(method, target, content=content, headers=headers,
                                                          timeout=params.timeout, follow_redirects=False)
            return response
        if not isinstance(http, GuardedClient):
            raise RunError("Invoke cannot use a proxy: the configured HTTP client has no SSRF policy", self.id)
        async with http.with_proxy(proxy) as proxied:
            return await proxied.request(method, target, content=content, headers=headers,
                                         timeout=params.timeout, follow_redirects=False)

    async def _request_args(self, state: RunState, params: InvokeParams) -> dict[str, Any]:
        """Each variable's value: the reference's value, else the (templated) literal, else ``""``."""
        args: dict[str, Any] = {}
        for var in params.variables:
            value = await self._arg_value(state, var)
            if params.datatype == "json":
                value = _json_arg(var.key, value)
            args[var.key] = value
            if var.ref:
                state.set_input(self.id, var.ref, value)
        return args

    async def _arg_value(self, state: RunState, var: InvokeVariable) -> Any:
        ref = (var.ref or "").strip()
        if ref:
            value = state.get_variable_value(ref)
            if value is not None:
                return await _plain(value)
        if var.value is not None:
            return await self._render(state, var.value) if isinstance(var.value, str) else var.value
        return ""

    async def _headers(self, state: RunState, params: InvokeParams) -> dict[str, str]:
        if not params.headers:
            return {}
        raw = params.headers
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError as e:
                raise ValueError(f"Invoke headers are not valid JSON: {e}") from None
        if not isinstance(raw, dict):
            raise ValueError("Invoke headers must be a JSON object.")
        headers: dict[str, str] = {}
        for key, value in raw.items():
            if value is None:
                continue  # requests leaves a header whose value is None out
            headers[str(key)] = await self._header_value(state, value) if isinstance(value, str) else stringify(value)
        return headers

    async def _header_value(self, state: RunState, text: str) -> str:
        """``{name}`` placeholders (plain globals too, like ``{token}``) replaced in one pass."""
        names = list(dict.fromkeys(header_placeholders(text)))
        if not names:
            return text
        values = {"{" + n + "}": stringify(await _plain(state.get_variable_value(n))) for n in names}
        pattern = re.compile("|".join(re.escape(p) for p in values))
        return pattern.sub(lambda m: values[m.group(0)], text)

    async def _render(self, state: RunState, text: str) -> str:
        """Mode F: every reference replaced by its value; the spaces around it are kept."""
        values = {ref: await _plain(state.get_variable_value(ref)) for ref in refs_in(text)}
        return substitute(text, values.__getitem__)


async def _plain(value: Any) -> Any:
    """A reference's value as ragflow hands it on: streams read to the end, ``None`` as ``""``."""
    if isinstance(value, TextStream):
        return await value.read()
    return "" if value is None else value


def _json_arg(key: str, value: Any) -> Any:
    """JSON mode: text that parses as JSON is sent decoded; anything JSON cannot hold is an error."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return value
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"Invoke JSON argument '{key}' is not JSON-serializable.") from e
    return value


def _with_scheme(url: str) -> str:
    return url if url.startswith(("http://", "https://")) else "http://" + url


def _proxy_url(proxy: str | None) -> str | None:
    """ragflow's proxy normalisation: a bare scheme means no proxy; a missing one means http."""
    proxy = (proxy or "").strip()
    if not re.sub(r"https?:?/?/?", "", proxy):
        return None
    return proxy if proxy.startswith(("http://", "https://")) else "http://" + proxy


def _form_encode(args: dict[str, Any]) -> str:
    """``args`` urlencoded the way ``requests`` encodes ``params``/``data``."""
    pairs: list[tuple[str, Any]] = []
    for key, values in args.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            values = [values]
        pairs.extend((key, v) for v in values if v is not None)
    return urlencode(pairs, doseq=True)


def _with_query(url: httpx.URL, encoded: str) -> httpx.URL:
    if not encoded:
        return url
    query = url.query + b"&" + encoded.encode("ascii") if url.query else encoded.encode("ascii")
    return url.copy_with(query=query)


# ---------------------------------------------------------------------- clean_html
# ragflow's HtmlParser (deepdoc/parser/html_parser.py) over the stdlib parser: text sections of
# block elements, titles marked with "#", <br> kept as line breaks, whitespace folded, tables
# appended as HTML.
_BLOCK_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6", "p", "div", "article", "section", "aside", "ul", "ol",
                         "li", "table", "pre", "code", "blockquote", "figure", "figcaption"})
_TITLE_TAGS = {"h1": "#", "h2": "##", "h3": "###", "h4": "####", "h5": "#####", "h6": "######"}
_PRE_TAGS = frozenset({"pre", "textarea"})
_DROPPED_TAGS = frozenset({"script", "style"})
_VOID_TAGS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
                        "source", "track", "wbr"})
_HARD_BREAK = "\x0b"
_WHITESPACE = re.compile(r"[ \t\r\n\f]+")


@dataclass
class _Element:
    name: str
    attrs: list[tuple[str, str]] = field(default_factory=list)
    children: list[_Element | str] = field(default_factory=list)


@dataclass
class _Text:
    content: str
    tag: str
    block: int | None
    breaks: int


class _TreeBuilder(HTMLParser):
    """A minimal element tree, built like BeautifulSoup's ``html.parser`` builder builds it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = _Element("[document]")
        self.body: _Element | None = None
        self._open = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = _Element(tag, [(k, v or "") for k, v in attrs if k != "style"])
        self._open[-1].children.append(element)
        if tag == "body" and self.body is None:
            self.body = element
        if tag not in _VOID_TAGS:
            self._open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open[-1].children.append(_Element(tag, [(k, v or "") for k, v in attrs if k != "style"]))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._open) - 1, 0, -1):
            if self._open[i].name == tag:
                del self._open[i:]
                return

    def handle_data(self, data: str) -> None:
        children = self._open[-1].children
        if children and isinstance(children[-1], str):
            children[-1] += data
        else:
            children.append(data)


def html_text(page: str) -> str:
    """The text sections of an HTML page joined by newlines, tables last (``clean_html``)."""
    builder = _TreeBuilder()
    builder.feed(page)
    builder.close()
    texts: list[_Text] = []
    tables: list[str] = []
    _collect(builder.body or builder.root, texts, tables, None, 0, [0])
    return "\n".join([*_blocks(texts), *tables])


def _collect(element: _Element, texts: list[_Text], tables: list[str], block: int | None, breaks: int,
             counter: list[int]) -> None:
    """Text pieces in document order with their enclosing block and the <br>s before them."""
    pending = breaks
    for child in element.children:
        if isinstance(child, str):
            if child.strip():
                texts.append(_Text(child, element.name, block, pending))
                pending = 0
            continue
        if child.name in _DROPPED_TAGS:
            continue
        if child.name == "br":
            pending += 1
            continue
        if child.name == "table":
            tables.append(_serialize(child))
            pending = 0
            continue
        before = len(texts)
        child_block = block
        if child.name in _BLOCK_TAGS:
            counter[0] += 1
            child_block = counter[0]
        _collect(child, texts, tables, child_block, pending, counter)
        if len(texts) > before:
            pending = 0


def _blocks(texts: list[_Text]) -> list[str]:
    """Consecutive pieces of one block merged; loose pieces join the block before them."""
    blocks: list[str] = []
    current, current_pre, last_block = "", False, None
    for piece in texts:
        content = piece.content
        if piece.block is not None:
            if piece.tag in _TITLE_TAGS:
                content = f"{_TITLE_TAGS[piece.tag]} {content}"
            if piece.block != last_block:
                if current:
                    blocks.append(_fold(current, current_pre))
                current, current_pre, last_block = content, piece.tag in _PRE_TAGS, piece.block
                continue
        current += _HARD_BREAK * piece.breaks + content
    if current:
        blocks.append(_fold(current, current_pre))
    return blocks


def _fold(raw: str, preserve: bool) -> str:
    if preserve:
        return raw.replace(_HARD_BREAK, "\n")
    return "\n".join(_WHITESPACE.sub(" ", line).strip() for line in raw.split(_HARD_BREAK))


def _serialize(element: _Element) -> str:
    attrs = "".join(f' {k}="{v}"' for k, v in element.attrs)
    if element.name in _VOID_TAGS:
        return f"<{element.name}{attrs}/>"
    inner = "".join(c if isinstance(c, str) else _serialize(c) for c in element.children
                    if isinstance(c, str) or c.name not in _DROPPED_TAGS)
    return f"<{element.name}{attrs}>{inner}</{element.name}>"
