"""DuckDuckGo (ragflow ``agent/tools/duckduckgo.py``, spec §5.2).

ragflow searches with the ``duckduckgo_search`` library (7.x), which opens its own connections
(past any SSRF guard) with a browser-impersonating client. DuckDuckGo has no documented search
API, so taskcanvas makes the requests that library makes, through the guarded client:

- web search (channel ``text``/``general``): ``POST {duckduckgo_html}/html/`` with the form
  ``q``, ``b``, ``kl=wt-wt`` — DuckDuckGo's HTML-only page — parsed with the standard library's
  ``html.parser`` the way the library reads it with lxml: every ``div`` with an ``h2`` child is a
  result whose link is its first ``a`` child, whose title is the ``h2``'s link text and whose
  body is the text of its ``a`` children; ads (links to ``duckduckgo.com/y.js?ad_domain``) are
  skipped; further pages come from the hidden fields of the last ``nav-link`` form, up to five
  pages or ``top_n`` results. (The stdlib parser keeps the tool free of an HTML dependency; the
  page is simple and regular.)
- news (channel ``news``): ``GET {duckduckgo}/?q=…`` for the page's ``vqd`` token, then
  ``GET {duckduckgo}/news.js`` (``l=wt-wt, o=json, noamp=1, q, vqd, p=-1``), following ``next``.

Outputs keep the library's shapes: ``json`` is ``[{title, href, body}]`` for the web and
``[{date, title, body, url, image, source}]`` for news.

Difference from ragflow: ragflow picks the news search when the arguments hold
``topic == "news"``, but the tool's parameter is ``channel`` (``topic`` is not in its schema),
so ragflow always searches the web. taskcanvas searches news when ``channel`` is ``news`` —
what the parameter says. DuckDuckGo answering 202 (its rate limit page) is an error, as in the
library.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import unescape
from html.parser import HTMLParser
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import field_validator

from taskcanvas.runtime.component import RunContext
from taskcanvas.tools._endpoints import SearchParams, ServiceError, WebTool, endpoint
from taskcanvas.tools.base import ToolMeta

__all__ = ["DuckDuckGo", "DuckDuckGoParams", "parse_html_results"]

_META: ToolMeta = {
    "name": "duckduckgo_search",
    "description": "DuckDuckGo is a search engine focused on privacy. It offers search capabilities for web pages, "
                   "images, and provides translation services. DuckDuckGo also features a private AI chat "
                   "interface, providing users with an AI assistant that prioritizes data protection.",
    "parameters": {
        "query": {
            "type": "string",
            "description": "The search keywords to execute with DuckDuckGo. The keywords should be the most "
                           "important words/terms(includes synonyms) from the original request.",
            "default": "{sys.query}",
            "required": True,
        },
        "channel": {
            "type": "string",
            "description": "default:general. The category of the search. `news` is useful for retrieving real-time "
                           "updates, particularly about politics, sports, and major current events covered by "
                           "mainstream media sources. `general` is for broader, more general-purpose searches that "
                           "may include a wide range of sources.",
            "enum": ["general", "news"],
            "default": "general",
            "required": False,
        },
    },
}

_REGION = "wt-wt"
_MAX_PAGES = 5
_ADS = ("http://www.google.com/search?q=", "https://duckduckgo.com/y.js?ad_domain")
_TAGS = re.compile("<.*?>")


class DuckDuckGoParams(SearchParams):
    channel: str = "text"

    @field_validator("channel")
    @classmethod
    def _channel(cls, v: Any) -> Any:
        if v not in ("text", "general", "news"):
            raise ValueError(f"channel {v!r} is not supported: use text (the web) or news")
        return v


class DuckDuckGo(WebTool):
    component_name = "DuckDuckGo"
    Params = DuckDuckGoParams
    meta: ClassVar[ToolMeta] = _META
    timeout = 12.0
    service = "DuckDuckGo"
    thoughts_text = "\nKeywords: {}\nLooking for the most relevant articles.\n                "

    async def call(self, ctx: RunContext, **args: Any) -> Any:
        params = self.params
        assert isinstance(params, DuckDuckGoParams)
        state = ctx.state
        query = args.get("query")
        if not query:
            return self.empty(state)
        channel = args.get("channel") or params.channel
        if channel == "news":
            results = await self._news(ctx, str(query), params.top_n)
            url_of = "url"
        else:
            results = await self._web(ctx, str(query), params.top_n)
            url_of = "href"
        self.add_chunks(state, results, title=lambda r: r["title"], url=lambda r: r[url_of],
                        content=lambda r: r["body"])
        state.set_output(self.id, "json", results)
        return state.output(self.id, "formalized_content")

    async def _web(self, ctx: RunContext, query: str, top_n: int) -> list[dict[str, str]]:
        url = endpoint(ctx, "duckduckgo_html") + "/html/"
        form: dict[str, str] = {"q": query, "b": "", "kl": _REGION}
        seen: set[str] = set()
        results: list[dict[str, str]] = []
        for _ in range(_MAX_PAGES):
            response = await self.request(ctx, "POST", url, data=form)
            _refuse_rate_limit(response.status_code)
            page = response.text
            if "No  results." in page:
                break
            found, next_form = parse_html_results(page)
            for item in found:
                if item["href"] in seen:
                    continue
                seen.add(item["href"])
                results.append(item)
                if len(results) >= top_n:
                    return results
            if next_form is None:
                break
            form = next_form
        return results

    async def _news(self, ctx: RunContext, query: str, top_n: int) -> list[dict[str, str]]:
        base = endpoint(ctx, "duckduckgo")
        response = await self.request(ctx, "GET", base + "/", params={"q": query})
        _refuse_rate_limit(response.status_code)
        vqd = _extract_vqd(response.content)
        form = {"l": _REGION, "o": "json", "noamp": "1", "q": query, "vqd": vqd, "p": "-1"}
        seen: set[str] = set()
        results: list[dict[str, str]] = []
        for _ in range(_MAX_PAGES):
            data = await self.request_json(ctx, "GET", base + "/news.js", params=form)
            rows = data.get("results", []) if isinstance(data, dict) else []
            for row in rows:
                if not isinstance(row, dict) or str(row.get("url")) in seen:
                    continue
                seen.add(str(row.get("url")))
                results.append(_news_item(row))
                if len(results) >= top_n:
                    return results
            following = data.get("next") if isinstance(data, dict) else None
            if not following:
                break
            form["s"] = str(following).split("s=")[-1].split("&")[0]
        return results


def _refuse_rate_limit(status: int) -> None:
    if status != 200:
        raise ServiceError(f"DuckDuckGo answered HTTP {status}: it is limiting the rate of searches")


def _extract_vqd(page: bytes) -> str:
    for start, end in ((b'vqd="', b'"'), (b"vqd=", b"&"), (b"vqd='", b"'")):
        at = page.find(start)
        if at < 0:
            continue
        at += len(start)
        stop = page.find(end, at)
        if stop >= 0:
            return page[at:stop].decode("ascii", "replace")
    raise ServiceError("DuckDuckGo's page has no search token (vqd) for the news search")


def _news_item(row: dict[str, Any]) -> dict[str, str]:
    date = row.get("date")
    try:
        when = datetime.fromtimestamp(float(date), UTC).isoformat() if date is not None else ""
    except (TypeError, ValueError, OverflowError, OSError):
        when = str(date)
    return {"date": when, "title": str(row.get("title") or ""), "body": _normalize(str(row.get("excerpt") or "")),
            "url": _normalize_url(str(row.get("url") or "")), "image": _normalize_url(str(row.get("image") or "")),
            "source": str(row.get("source") or "")}


def _normalize(text: str) -> str:
    return unescape(_TAGS.sub("", text)) if text else ""


def _normalize_url(url: str) -> str:
    """The library's ``unquote`` + ``+`` for spaces; DuckDuckGo's ``/l/?uddg=`` redirect links unwrapped."""
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.path.rstrip("/").endswith("/l") and "uddg" in parts.query:
        target = parse_qs(parts.query).get("uddg")
        if target:
            return target[0].replace(" ", "+")
    return unquote(url).replace(" ", "+")


# ---------------------------------------------------------------------- the HTML page
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
                   "source", "track", "wbr"})


@dataclass
class _Node:
    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[_Node | str] = field(default_factory=list)

    def elements(self, tag: str) -> list[_Node]:
        return [c for c in self.children if isinstance(c, _Node) and c.tag == tag]

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def walk(self) -> list[_Node]:
        found = [self]
        for c in self.children:
            if isinstance(c, _Node):
                found.extend(c.walk())
        return found


class _Tree(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = _Node("#document")
        self._open = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = _Node(tag, {k: v or "" for k, v in attrs})
        self._open[-1].children.append(node)
        if tag not in _VOID:
            self._open.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open[-1].children.append(_Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._open) - 1, 0, -1):
            if self._open[i].tag == tag:
                del self._open[i:]
                return

    def handle_data(self, data: str) -> None:
        self._open[-1].children.append(data)


def parse_html_results(page: str) -> tuple[list[dict[str, str]], dict[str, str] | None]:
    """The results of one HTML results page, and the form fields of the next page (or ``None``)."""
    tree = _Tree()
    tree.feed(page)
    tree.close()
    nodes = tree.root.walk()
    results: list[dict[str, str]] = []
    for div in nodes:
        if div.tag != "div" or not div.elements("h2"):
            continue
        links = div.elements("a")
        href = links[0].attrs.get("href", "") if links else ""
        if not href or href.startswith(_ADS):
            continue
        title_links = div.elements("h2")[0].elements("a")
        title = title_links[0].text() if title_links else ""
        body = "".join(a.text() for a in links)
        results.append({"title": _normalize(title.strip()), "href": _normalize_url(href),
                        "body": _normalize(body.strip())})
    navs = [n for n in nodes if n.tag == "div" and n.attrs.get("class", "").strip() == "nav-link"]
    next_form = None
    if navs:
        hidden = [n for n in navs[-1].walk() if n.tag == "input" and n.attrs.get("type") == "hidden"]
        next_form = {n.attrs.get("name", ""): n.attrs.get("value", "") for n in hidden if n.attrs.get("name")}
    return results, next_form or None
