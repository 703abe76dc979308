"""Crawler: fetch a web page and return it as Markdown, cleaned HTML or plain text (ragflow
``agent/tools/crawler.py``, spec §5.2).

ragflow drives a headless browser (crawl4ai). taskcanvas fetches the page with the run's one
HTTP client (``ctx.http``) instead, so the SSRF guard checks the URL, every redirect and the
proxy, and converts the HTML itself (standard library parser). So:

- the page is the HTML the server sends: what JavaScript would add in a browser is missing;
- ``extract_type: markdown`` is this module's conversion (headings, paragraphs, lists, links and
  images with absolute URLs, emphasis, code, quotes, tables), close to crawl4ai's but not the
  same text; ``html`` is the page's body without scripts, styles, comments and presentational
  attributes; ``content`` is the page's plain text — crawl4ai returns nothing there (its
  ``extracted_content`` needs an extraction strategy ragflow never sets), which no author meant;
- a page that is not HTML (text, JSON) is returned as it is; at most 10 MiB of a page is read;
- an HTTP error status is an error ("An unexpected error occurred: HTTP 404 Not Found ...")
  where crawl4ai would return the error page's text.

As in ragflow: an empty URL gives an empty ``formalized_content``; a URL that is not http(s) or
that the guard refuses sets ``_ERROR`` "URL not valid"; any other failure sets ``_ERROR``
"An unexpected error occurred: ..."; none of these is retried, and the text is also what the
model is told. ``proxy`` is a proxy URL (or crawl4ai's ``{"server": url}``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, ClassVar
from urllib.parse import urljoin

import httpx
from pydantic import field_validator

from taskcanvas.runtime.component import RunContext
from taskcanvas.runtime.errors import RunError
from taskcanvas.runtime.stream import TextStream
from taskcanvas.tools.base import Tool, ToolMeta, ToolParams
from taskcanvas.tools.http import GuardedClient, SsrfBlocked

__all__ = ["Crawler", "CrawlerParams", "html_to_markdown", "html_to_text"]

_log = logging.getLogger(__name__)

_META: ToolMeta = {
    "name": "web_crawler",
    "description": "This tool can be used to crawl a web page and return its content as HTML, Markdown, or the "
                   "extracted main text.",
    "parameters": {
        "query": {
            "type": "string",
            "description": "The absolute URL (including the http:// or https:// scheme) of the web page to crawl.",
            "default": "{sys.query}",
            "required": True,
        }
    },
}

URL_NOT_VALID = "URL not valid"
_MAX_BYTES = 10 * 1024 * 1024
_FETCH_TIMEOUT = 60.0
_HEADERS = {
    "User-Agent": "Mozilla/5.0 (compatible; taskcanvas-crawler/1.0)",
    "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8",
}
_EXTRACT_TYPES = ("html", "markdown", "content")


class CrawlerParams(ToolParams):
    query: Any = "{sys.query}"
    proxy: Any = None
    extract_type: str = "markdown"

    @field_validator("extract_type", mode="before")
    @classmethod
    def _known_type(cls, v: Any) -> Any:
        if v not in _EXTRACT_TYPES:
            raise ValueError(f"extract_type {v!r} is not supported: use one of {', '.join(_EXTRACT_TYPES)}")
        return v


class Crawler(Tool):
    component_name = "Crawler"
    Params = CrawlerParams
    meta: ClassVar[ToolMeta] = _META
    timeout = 600.0

    async def call(self, ctx: RunContext, **args: Any) -> Any:
        params = self.params
        assert isinstance(params, CrawlerParams)
        state = ctx.state
        url = args.get("query")
        if isinstance(url, TextStream):
            url = await url.read()
        if not url:
            state.set_output(self.id, "formalized_content", "")
            return ""
        url = str(url).strip()
        if not url.lower().startswith(("http://", "https://")):
            return self._failed(ctx, URL_NOT_VALID)
        if ctx.http is None:
            raise RunError("Crawler needs an HTTP client (none was configured)", self.id)
        try:
            final_url, content_type, body = await self._fetch(ctx.http, url, _proxy(params.proxy))
        except (SsrfBlocked, httpx.InvalidURL, httpx.UnsupportedProtocol) as e:
            _log.warning("Crawler %s: %s", self.id, e if isinstance(e, SsrfBlocked) else "invalid URL")
            return self._failed(ctx, URL_NOT_VALID)
        except _HttpStatus as e:
            return self._failed(ctx, f"An unexpected error occurred: {e}")
        except httpx.TimeoutException as e:
            return self._failed(ctx, f"An unexpected error occurred: the page did not answer in time "
                                     f"({type(e).__name__})")
        except httpx.HTTPError as e:
            return self._failed(ctx, f"An unexpected error occurred: {e or type(e).__name__}")
        if _is_html(content_type, body):
            if params.extract_type == "html":
                result = clean_html(body)
            elif params.extract_type == "content":
                result = html_to_text(body)
            else:
                result = html_to_markdown(body, final_url)
        else:
            result = body
        state.set_output(self.id, "formalized_content", result)
        return result

    def _failed(self, ctx: RunContext, message: str) -> str:
        ctx.state.set_output(self.id, "_ERROR", message)
        return message

    async def _fetch(self, http: Any, url: str, proxy: str | None) -> tuple[str, str, str]:
        if proxy is None:
            return await _read(http, url)
        if not isinstance(http, GuardedClient):
            raise RunError("Crawler cannot use a proxy: the configured HTTP client has no SSRF policy", self.id)
        async with http.with_proxy(proxy) as proxied:
            return await _read(proxied, url)


class _HttpStatus(Exception):
    """The page answered with an HTTP error status."""


async def _read(http: Any, url: str) -> tuple[str, str, str]:
    """The final URL, the content type and the text of the page (at most 10 MiB of it)."""
    async with http.stream("GET", url, headers=_HEADERS, follow_redirects=True, timeout=_FETCH_TIMEOUT) as response:
        if response.status_code >= 400:
            raise _HttpStatus(f"HTTP {response.status_code} {response.reason_phrase} from {_shown(response.url)}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= _MAX_BYTES:
                break
        raw = b"".join(chunks)[:_MAX_BYTES]
        content_type = response.headers.get("content-type", "")
        encoding = response.charset_encoding or _meta_charset(raw) or "utf-8"
        try:
            text = raw.decode(encoding, errors="replace")
        except LookupError:
            text = raw.decode("utf-8", errors="replace")
        return str(response.url), content_type, text


def _shown(url: httpx.URL) -> str:
    return str(url.copy_with(userinfo=b"", query=None, fragment=None))


def _proxy(proxy: Any) -> str | None:
    if isinstance(proxy, dict):
        proxy = proxy.get("server")
    text = str(proxy or "").strip()
    if not re.sub(r"https?:?/?/?", "", text):
        return None
    return text if text.startswith(("http://", "https://")) else "http://" + text


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


def _meta_charset(raw: bytes) -> str | None:
    m = _META_CHARSET.search(raw[:4096])
    return m.group(1).decode("ascii") if m else None


def _is_html(content_type: str, body: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind in ("text/html", "application/xhtml+xml"):
        return True
    if kind:
        return False
    head = body[:1024].lstrip().lower()
    return head.startswith(("<!doctype html", "<html"))


# --------------------------------------------------------------------------- HTML tree
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
                   "track", "wbr"})
_DROPPED = frozenset({"script", "style", "noscript", "template", "svg", "math", "iframe", "object", "canvas",
                      "head", "select", "button"})
_BLOCKS = frozenset({"p", "div", "section", "article", "main", "header", "footer", "nav", "aside", "address",
                     "figure", "figcaption", "form", "fieldset", "details", "summary", "center", "body", "html",
                     "dl", "dt", "dd"})
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
# An opening tag closes an open one of these (HTML's implied end tags, simplified).
_CLOSES: dict[str, frozenset[str]] = {
    "li": frozenset({"li"}),
    "dt": frozenset({"dt", "dd"}),
    "dd": frozenset({"dt", "dd"}),
    "tr": frozenset({"tr", "td", "th"}),
    "td": frozenset({"td", "th"}),
    "th": frozenset({"td", "th"}),
    "option": frozenset({"option"}),
    "thead": frozenset({"tbody", "tfoot", "thead", "tr", "td", "th"}),
    "tbody": frozenset({"tbody", "tfoot", "thead", "tr", "td", "th"}),
    "tfoot": frozenset({"tbody", "tfoot", "thead", "tr", "td", "th"}),
}
_P_CLOSERS = frozenset({"p", "div", "ul", "ol", "table", "pre", "blockquote", "section", "article", "header",
                        "footer", "nav", "aside", "form", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "dl", "figure"})
_BOUNDARIES = frozenset({"ul", "ol", "table", "dl"})
_KEPT_ATTRS = frozenset({"href", "src", "alt", "title", "colspan", "rowspan"})


@dataclass
class _Node:
    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[_Node | str] = field(default_factory=list)


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = _Node("#document")
        self.base: str | None = None
        self._open = [self.root]
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base" and self.base is None:
            self.base = dict(attrs).get("href") or None
        if tag == "body" and self._skip:
            self._skip = 0  # a <head> whose end tag was left out
        if self._skip:
            if tag in _DROPPED and tag not in _VOID:
                self._skip += 1
            return
        if tag in _DROPPED:
            self._skip = 1
            return
        closes = _CLOSES.get(tag, frozenset())
        if tag in _P_CLOSERS:
            closes = closes | {"p"}
        if closes:
            for i in range(len(self._open) - 1, 0, -1):
                name = self._open[i].tag
                if name in closes:
                    del self._open[i:]
                    break
                if name in _BOUNDARIES:
                    break
        node = _Node(tag, {k: v or "" for k, v in attrs})
        self._open[-1].children.append(node)
        if tag not in _VOID:
            self._open.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base" and self.base is None:
            self.base = dict(attrs).get("href") or None
        if self._skip or tag in _DROPPED:
            return  # a self-closed <svg/> opens nothing to skip
        if tag in _VOID:
            self.handle_starttag(tag, attrs)
            return
        self._open[-1].children.append(_Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if self._skip:
            if tag in _DROPPED:
                self._skip -= 1
            return
        for i in range(len(self._open) - 1, 0, -1):
            if self._open[i].tag == tag:
                del self._open[i:]
                return

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        children = self._open[-1].children
        if children and isinstance(children[-1], str):
            children[-1] += data
        else:
            children.append(data)


def _parse(page: str) -> _Builder:
    builder = _Builder()
    builder.feed(page)
    builder.close()
    return builder


def _body(root: _Node) -> _Node:
    stack = [root]
    while stack:
        node = stack.pop(0)
        if node.tag == "body":
            return node
        stack.extend(c for c in node.children if isinstance(c, _Node))
    return root


# --------------------------------------------------------------------------- Markdown and text
_SPACES = re.compile(r"[ \t\r\n\f\v]+")
_BLANKS = re.compile(r"\n{3,}")
_BREAK = "\x00"
"""A hard line break inside inline text (``<br>``), kept through whitespace folding."""


class _Renderer:
    def __init__(self, base: str, plain: bool) -> None:
        self.base = base
        self.plain = plain

    def blocks(self, node: _Node, depth: int = 0) -> str:
        """The children of ``node`` as text whose blocks are separated by blank lines."""
        out: list[str] = []
        inline: list[str] = []

        def flush() -> None:
            text = _fold("".join(inline))
            inline.clear()
            if text:
                out.append(text)

        for child in node.children:
            if isinstance(child, str):
                inline.append(child)
                continue
            block = self.block(child, depth)
            if block is None:
                inline.append(self.inline(child))
                continue
            flush()
            if block.strip():
                out.append(block.strip("\n"))
        flush()
        return "\n\n".join(out)

    def block(self, node: _Node, depth: int) -> str | None:
        tag = node.tag
        if tag in _HEADINGS:
            text = _fold(self.inline_children(node))
            if not text:
                return ""
            return text if self.plain else "#" * _HEADINGS[tag] + " " + text
        if tag in ("ul", "ol"):
            return self.list(node, depth)
        if tag == "pre":
            code = _text_of(node).strip("\n")
            return code if self.plain else f"```\n{code}\n```"
        if tag == "blockquote":
            inner = self.blocks(node, depth)
            if self.plain or not inner:
                return inner
            return "\n".join("> " + line if line else ">" for line in inner.splitlines())
        if tag == "table":
            return self.table(node)
        if tag == "hr":
            return "" if self.plain else "---"
        if tag == "li":
            return self.blocks(node, depth)
        if tag in _BLOCKS or tag in ("tr", "tbody", "thead", "tfoot", "td", "th"):
            return self.blocks(node, depth)
        return None

    def list(self, node: _Node, depth: int) -> str:
        lines: list[str] = []
        number = _int(node.attrs.get("start"), 1)
        for child in node.children:
            if isinstance(child, str):
                if child.strip():
                    lines.append(_fold(child))
                continue
            if child.tag != "li":
                block = self.block(child, depth + 1)
                text = block if block is not None else _fold(self.inline(child))
                if text:
                    lines.append(text)
                continue
            marker = f"{number}. " if node.tag == "ol" else "- "
            number += 1
            body = self.blocks(child, depth + 1)
            body_lines = [line for line in body.splitlines() if line.strip()] or [""]
            pad = " " * len(marker)
            lines.append(marker + body_lines[0])
            lines.extend(pad + line for line in body_lines[1:])
        return "\n".join(lines)

    def table(self, node: _Node) -> str:
        rows: list[list[str]] = []
        has_header = False
        for row, in_head in _rows(node):
            cells = [c for c in row.children if isinstance(c, _Node) and c.tag in ("td", "th")]
            if not cells:
                continue
            if not rows:
                has_header = in_head or all(c.tag == "th" for c in cells)
            texts = [_fold(self.inline_children(c)).replace("\n", " ") for c in cells]
            rows.append(texts if self.plain else [t.replace("|", "\\|") for t in texts])
        if not rows:
            return ""
        if self.plain:
            return "\n".join("\t".join(r) for r in rows)
        width = max(len(r) for r in rows)
        rows = [r + [""] * (width - len(r)) for r in rows]
        head, body = (rows[0], rows[1:]) if has_header else ([""] * width, rows)
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * width) + "|"]
        lines.extend("| " + " | ".join(r) + " |" for r in body)
        return "\n".join(lines)

    def inline_children(self, node: _Node) -> str:
        return "".join(c if isinstance(c, str) else self.inline(c) for c in node.children)

    def inline(self, node: _Node) -> str:
        tag = node.tag
        if tag == "br":
            return _BREAK
        if tag == "img":
            alt = _fold(node.attrs.get("alt", ""))
            src = node.attrs.get("src", "").strip()
            if self.plain or not src or src.startswith("data:"):
                return alt
            return f"![{alt}]({self.url(src)})"
        inner = self.inline_children(node)
        if self.plain:
            return inner
        if tag == "a":
            href = node.attrs.get("href", "").strip()
            text = _fold(inner)
            if not href or href.lower().startswith(("javascript:", "data:")) or not text:
                return inner
            return f"[{text}]({self.url(href)})"
        if tag in ("strong", "b"):
            return _wrap(inner, "**")
        if tag in ("em", "i"):
            return _wrap(inner, "*")
        if tag in ("del", "s", "strike"):
            return _wrap(inner, "~~")
        if tag == "code":
            return _wrap(inner, "`")
        return inner

    def url(self, link: str) -> str:
        return urljoin(self.base, link) if self.base else link


def _rows(table: _Node) -> list[tuple[_Node, bool]]:
    found: list[tuple[_Node, bool]] = []
    for child in table.children:
        if not isinstance(child, _Node):
            continue
        if child.tag == "tr":
            found.append((child, False))
        elif child.tag in ("thead", "tbody", "tfoot"):
            found.extend((row, child.tag == "thead") for row in child.children
                         if isinstance(row, _Node) and row.tag == "tr")
    return found


def _wrap(inner: str, mark: str) -> str:
    text = inner.strip()
    if not text:
        return inner
    lead = inner[: len(inner) - len(inner.lstrip())]
    trail = inner[len(inner.rstrip()):]
    return f"{lead}{mark}{text}{mark}{trail}"


def _fold(text: str) -> str:
    lines = text.split(_BREAK)
    return "\n".join(_SPACES.sub(" ", line).strip() for line in lines).strip()


def _text_of(node: _Node) -> str:
    return "".join(c if isinstance(c, str) else ("\n" if c.tag == "br" else _text_of(c)) for c in node.children)


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default


def _finish(text: str) -> str:
    lines = [line.rstrip() for line in text.splitlines()]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


def html_to_markdown(page: str, base_url: str = "") -> str:
    """The page's body as Markdown; links and images made absolute against ``base_url`` (or ``<base>``)."""
    built = _parse(page)
    base = urljoin(base_url, built.base) if built.base else base_url
    return _finish(_Renderer(base, plain=False).blocks(_body(built.root)))


def html_to_text(page: str) -> str:
    """The page's body as plain text, one block a paragraph."""
    built = _parse(page)
    return _finish(_Renderer("", plain=True).blocks(_body(built.root)))


def clean_html(page: str) -> str:
    """The page's body without scripts, styles, comments and presentational attributes."""
    return _serialize(_body(_parse(page).root))


def _serialize(node: _Node) -> str:
    from html import escape

    inner = "".join(escape(c, quote=False) if isinstance(c, str) else _serialize(c) for c in node.children)
    if node.tag == "#document":
        return inner
    attrs = "".join(f' {k}="{escape(v)}"' for k, v in node.attrs.items() if k in _KEPT_ATTRS)
    if node.tag in _VOID:
        return f"<{node.tag}{attrs}>"
    return f"<{node.tag}{attrs}>{inner}</{node.tag}>"
