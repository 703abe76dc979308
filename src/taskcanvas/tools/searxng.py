"""SearXNG (ragflow ``agent/tools/searxng.py``, spec §5.2).

Asks the canvas's own SearXNG instance for JSON results through the guarded client::

    GET <searxng_url>/search?q=<query>&format=json&categories=general&language=auto&safesearch=1&pageno=1

and keeps the first ``top_n`` results (chunks: ``title``, ``url``, ``content``; ``json``: the
results). The instance must allow the ``json`` format (``search.formats`` in its settings.yml);
otherwise it answers 403.

The URL is the component's ``searxng_url``, else the model's argument, as in ragflow; with none,
or no query, the tool finds nothing (empty ``formalized_content``), as ragflow does for a
try-run. The instance is reached through the SSRF guard like any other URL: an instance on
loopback or a private network (the usual place for one) is refused unless the operator allows
it (``[http] allowed_hosts = ["searxng.internal"]`` or ``allow_private``); ragflow's guard
(``ALLOW_ANY_HOST``) works the same way. A refused instance is the component's error,
"SSRF guard blocked …".
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx

from taskcanvas.runtime.component import RunContext
from taskcanvas.tools._endpoints import SearchParams, ServiceError, WebTool
from taskcanvas.tools.base import ToolMeta
from taskcanvas.tools.http import SsrfBlocked

__all__ = ["SearXNG", "SearXNGParams"]

_META: ToolMeta = {
    "name": "searxng_search",
    "description": "SearXNG is a privacy-focused metasearch engine that aggregates results from multiple search "
                   "engines without tracking users. It provides comprehensive web search capabilities.",
    "parameters": {
        "query": {
            "type": "string",
            "description": "The search keywords to execute with SearXNG. The keywords should be the most important "
                           "words/terms(includes synonyms) from the original request.",
            "default": "{sys.query}",
            "required": True,
        },
        "searxng_url": {
            "type": "string",
            "description": "The base URL of your SearXNG instance (e.g., http://localhost:4000). This is required to "
                           "connect to your SearXNG server.",
            "required": False,
            "default": "",
        },
    },
}


class SearXNGParams(SearchParams):
    searxng_url: Any = ""


class SearXNG(WebTool):
    component_name = "SearXNG"
    Params = SearXNGParams
    meta: ClassVar[ToolMeta] = _META
    timeout = 12.0
    service = "SearXNG"
    thoughts_text = "\nKeywords: {}\nSearching with SearXNG for relevant results...\n                "

    async def call(self, ctx: RunContext, **args: Any) -> Any:
        params = self.params
        assert isinstance(params, SearXNGParams)
        state = ctx.state
        query = args.get("query")
        if not query or not isinstance(query, str) or not query.strip():
            return self.empty(state)
        # ragflow: the component's URL first, then the model's.
        base = str(self.param_value(state, "searxng_url") or args.get("searxng_url") or "").strip()
        if not base:
            return self.empty(state)
        if not base.startswith(("http://", "https://")):
            raise ServiceError(f"searxng_url {base!r} is not an http(s) URL")
        try:
            data = await self.request_json(ctx, "GET", base.rstrip("/") + "/search", params={
                "q": query, "format": "json", "categories": "general", "language": "auto", "safesearch": 1,
                "pageno": 1})
        except SsrfBlocked as e:
            raise ServiceError(f"SSRF guard blocked {e.url!r}: {e.reason}") from None
        except httpx.InvalidURL:
            raise ServiceError("searxng_url is not a valid URL") from None
        if not data or not isinstance(data, dict):
            raise ServiceError("Invalid response from SearXNG")
        results = data.get("results", [])
        if not isinstance(results, list):
            raise ServiceError("Invalid results format from SearXNG")
        results = results[:params.top_n]
        self.add_chunks(state, results, title=lambda r: r.get("title", ""), url=lambda r: r.get("url", ""),
                        content=lambda r: r.get("content", ""))
        state.set_output(self.id, "json", results)
        return state.output(self.id, "formalized_content")

    def describe_error(self, response: httpx.Response) -> str:
        detail = super().describe_error(response)
        if response.status_code == 403:
            return f"{detail} (does the instance allow the json format? see search.formats in its settings.yml)"
        return detail
