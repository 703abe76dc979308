"""TavilySearch and TavilyExtract (ragflow ``agent/tools/tavily.py``, spec §5.2).

Tavily's REST API through the guarded client: ``POST {tavily}/search`` and ``POST {tavily}/extract``
with ``Authorization: Bearer <key>`` and a JSON body — the requests tavily-python 0.5 (ragflow's
pin) sends, without the copy of the key it also put in the body. The key is the component's
``api_key``, else ``[tools.tavily]`` of the settings (see :mod:`taskcanvas.tools._endpoints`).

As in ragflow, a search never asks for images or raw page content (``include_images`` and
``include_raw_content`` are sent false whatever the params say), a search result's text is its
``raw_content`` when there is one and its ``content`` otherwise, and TavilyExtract writes only
``json`` (the extracted pages), which is also what the model is told.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import field_validator

from taskcanvas.runtime.component import RunContext
from taskcanvas.tools._endpoints import ServiceError, WebTool, endpoint, tool_secret
from taskcanvas.tools.base import ToolMeta, ToolParams

__all__ = ["TavilyExtract", "TavilyExtractParams", "TavilySearch", "TavilySearchParams"]

_SEARCH_META: ToolMeta = {
    "name": "tavily_search",
    "description": """
Tavily is a search engine optimized for LLMs, aimed at efficient, quick and persistent search results.
When searching:
   - Start with specific query which should focus on just a single aspect.
   - Number of keywords in query should be less than 5.
   - Broaden search terms if needed
   - Cross-reference information from multiple sources
             """,
    "parameters": {
        "query": {
            "type": "string",
            "description": "The search keywords to execute with Tavily. The keywords should be the most important "
                           "words/terms(includes synonyms) from the original request.",
            "default": "{sys.query}",
            "required": True,
        },
        "topic": {
            "type": "string",
            "description": "default:general. The category of the search.news is useful for retrieving real-time "
                           "updates, particularly about politics, sports, and major current events covered by "
                           "mainstream media sources. general is for broader, more general-purpose searches that "
                           "may include a wide range of sources.",
            "enum": ["general", "news"],
            "default": "general",
            "required": False,
        },
        "include_domains": {
            "type": "array",
            "description": "default:[]. A list of domains only from which the search results can be included.",
            "default": [],
            "items": {"type": "string", "description": "Domain name that must be included, e.g. www.yahoo.com"},
            "required": False,
        },
        "exclude_domains": {
            "type": "array",
            "description": "default:[]. A list of domains from which the search results can not be included",
            "default": [],
            "items": {"type": "string", "description": "Domain name that must be excluded, e.g. www.yahoo.com"},
            "required": False,
        },
    },
}

_EXTRACT_META: ToolMeta = {
    "name": "tavily_extract",
    "description": "Extract web page content from one or more specified URLs using Tavily Extract.",
    "parameters": {
        "urls": {
            "type": "array",
            "description": "The URLs to extract content from.",
            "default": "",
            "items": {"type": "string", "description": "The URL to extract content from, e.g. www.yahoo.com"},
            "required": True,
        },
        "extract_depth": {
            "type": "string",
            "description": "The depth of the extraction process. advanced extraction retrieves more data, including "
                           "tables and embedded content, with higher success but may increase latency.basic "
                           "extraction costs 1 credit per 5 successful URL extractions, while advanced extraction "
                           "costs 2 credits per 5 successful URL extractions.",
            "enum": ["basic", "advanced"],
            "default": "basic",
            "required": False,
        },
        "format": {
            "type": "string",
            "description": "The format of the extracted web page content. markdown returns content in markdown "
                           "format. text returns plain text and may increase latency.",
            "enum": ["markdown", "text"],
            "default": "markdown",
            "required": False,
        },
    },
}

_SEARCH_FIELDS = ("search_depth", "topic", "max_results", "days", "include_answer", "include_raw_content",
                  "include_images", "include_image_descriptions", "include_domains", "exclude_domains")


def _one_of(value: Any, name: str, allowed: tuple[str, ...]) -> Any:
    if value not in allowed:
        raise ValueError(f"{name} {value!r} is not supported: use one of {', '.join(allowed)}")
    return value


def _positive(value: Any, name: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} {value!r} is not supported: it is a positive whole number")
    return value


class TavilySearchParams(ToolParams):
    query: Any = "{sys.query}"
    topic: str = "general"
    include_domains: Any = []
    exclude_domains: Any = []
    api_key: str | None = ""
    search_depth: str = "basic"
    max_results: int = 6
    days: int = 14
    include_answer: bool = False
    include_raw_content: bool = False
    include_images: bool = False
    include_image_descriptions: bool = False

    @field_validator("topic")
    @classmethod
    def _topic(cls, v: Any) -> Any:
        return _one_of(v, "topic", ("general", "news"))

    @field_validator("search_depth")
    @classmethod
    def _depth(cls, v: Any) -> Any:
        return _one_of(v, "search_depth", ("basic", "advanced"))

    @field_validator("max_results", "days")
    @classmethod
    def _positive(cls, v: Any) -> Any:
        return _positive(v, "max_results and days")


class TavilySearch(WebTool):
    component_name = "TavilySearch"
    Params = TavilySearchParams
    meta: ClassVar[ToolMeta] = _SEARCH_META
    timeout = 12.0
    service = "Tavily"
    thoughts_text = "\nKeywords: {}\nLooking for the most relevant articles.\n                "

    async def call(self, ctx: RunContext, **args: Any) -> Any:
        params = self.params
        assert isinstance(params, TavilySearchParams)
        state = ctx.state
        if not args.get("query"):
            return self.empty(state)
        key = params.api_key or tool_secret(ctx, "tavily")
        if not key:
            raise self.missing_key("tavily")
        body = dict(args)
        for name in _SEARCH_FIELDS:
            body.setdefault(name, getattr(params, name))
        body["include_images"] = False
        body["include_raw_content"] = False
        data = await self.request_json(ctx, "POST", endpoint(ctx, "tavily") + "/search", json_body=body,
                                       headers={"Authorization": f"Bearer {key}"})
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, list):
            raise ServiceError("Tavily's answer has no results list")
        self.add_chunks(state, results,
                        title=lambda r: r.get("title"),
                        url=lambda r: r.get("url"),
                        content=lambda r: r.get("raw_content") or r.get("content"),
                        score=lambda r: r.get("score"))
        state.set_output(self.id, "json", results)
        return state.output(self.id, "formalized_content")


class TavilyExtractParams(ToolParams):
    urls: Any = []
    extract_depth: str = "basic"
    format: str = "markdown"
    api_key: str | None = ""
    include_images: bool = False

    @field_validator("extract_depth")
    @classmethod
    def _depth(cls, v: Any) -> Any:
        return _one_of(v, "extract_depth", ("basic", "advanced"))

    @field_validator("format")
    @classmethod
    def _format(cls, v: Any) -> Any:
        return _one_of(v, "format", ("markdown", "text"))


class TavilyExtract(WebTool):
    component_name = "TavilyExtract"
    Params = TavilyExtractParams
    meta: ClassVar[ToolMeta] = _EXTRACT_META
    timeout = 600.0
    service = "Tavily"
    thoughts_text = "Opened {}—pulling out the main text…"
    thoughts_arg = "urls"

    async def call(self, ctx: RunContext, **args: Any) -> Any:
        params = self.params
        assert isinstance(params, TavilyExtractParams)
        state = ctx.state
        key = params.api_key or tool_secret(ctx, "tavily")
        if not key:
            raise self.missing_key("tavily")
        body = dict(args)
        for name in ("urls", "extract_depth", "format"):
            body.setdefault(name, getattr(params, name))
        urls = body.get("urls")
        if isinstance(urls, str):
            urls = [u.strip() for u in urls.split(",") if u.strip()]
        if not urls:
            raise ServiceError("TavilyExtract needs at least one URL to extract")
        body["urls"] = urls
        body["include_images"] = False
        data = await self.request_json(ctx, "POST", endpoint(ctx, "tavily") + "/extract", json_body=body,
                                       headers={"Authorization": f"Bearer {key}"})
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, list):
            raise ServiceError("Tavily's answer has no results list")
        state.set_output(self.id, "json", results)
        return results
