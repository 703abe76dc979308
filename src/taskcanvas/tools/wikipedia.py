"""Wikipedia (ragflow ``agent/tools/wikipedia.py``, spec §5.2).

ragflow uses the ``wikipedia`` library (1.4), which asks the MediaWiki Action API of
``<language>.wikipedia.org`` for the titles matching the query (``list=search``) and then, page
by page, for each title's page and its intro (``prop=extracts``). taskcanvas asks the same API
through the guarded client, in two requests:

1. ``GET {wikipedia}/w/api.php?action=query&list=search&srsearch=<query>&srlimit=<top_n>&srprop=``
2. ``GET {wikipedia}/w/api.php?action=query&pageids=<ids>&prop=extracts|info|pageprops&exintro=1``
   ``&explaintext=1&inprop=url&ppprop=disambiguation&redirects=1`` (20 pages a request, the API's
   limit for intros)

(``format=json&formatversion=2`` on both.) Each chunk is a page's title, its URL and its plain
text intro — the library's ``page.title``, ``page.url`` and ``page.summary`` — in search order.
Disambiguation pages and pages that are gone are skipped, as ragflow skips the errors the
library raises for them. ``{wikipedia}`` is ``[endpoints] wikipedia`` with ``{language}``
replaced by the ``language`` param (default ``https://{language}.wikipedia.org``).

Difference from ragflow: the library looks every found title up again through the search's
"did you mean" suggestion (``auto_suggest``), which can swap a page for a different one; the
pages found are used as found.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import field_validator

from taskcanvas.runtime.component import RunContext
from taskcanvas.tools._endpoints import SearchParams, ServiceError, WebTool, endpoint
from taskcanvas.tools.base import ToolMeta

__all__ = ["LANGUAGES", "Wikipedia", "WikipediaParams"]

_META: ToolMeta = {
    "name": "wikipedia_search",
    "description": "A wide range of how-to and information pages are made available in wikipedia. Since 2001, it "
                   "has grown rapidly to become the world's largest reference website. From Wikipedia, the free "
                   "encyclopedia.",
    "parameters": {
        "query": {
            "type": "string",
            "description": "The search keyword to execute with wikipedia. The keyword MUST be a specific subject "
                           "that can match the title.",
            "default": "{sys.query}",
            "required": True,
        }
    },
}

_LANGUAGES_TEXT = (
    "af pl ar ast az bg nan bn be ca cs cy da de et el en es eo eu fa fr gl ko hy hi hr id it he ka lld la lv lt "
    "hu mk arz ms min my nl ja nb nn ce uz pt kk ro ru ceb sk sl sr sh fi sv ta tt th tg azb tr uk ur vi war zh "
    "yue"
)
LANGUAGES = tuple(_LANGUAGES_TEXT.split())
"""The languages ragflow accepts (its ``WikipediaParam.check``)."""

_BATCH = 20


class WikipediaParams(SearchParams):
    language: str = "en"

    @field_validator("language")
    @classmethod
    def _language(cls, v: str) -> str:
        if v not in LANGUAGES:
            raise ValueError(f"language {v!r} is not supported: use one of {', '.join(LANGUAGES)}")
        return v


class Wikipedia(WebTool):
    component_name = "Wikipedia"
    Params = WikipediaParams
    meta: ClassVar[ToolMeta] = _META
    timeout = 60.0
    service = "Wikipedia"
    thoughts_text = "\nKeywords: {}\nLooking for the most relevant articles.\n        "

    async def call(self, ctx: RunContext, **args: Any) -> Any:
        params = self.params
        assert isinstance(params, WikipediaParams)
        state = ctx.state
        query = args.get("query")
        if not query:
            return self.empty(state)
        api = endpoint(ctx, "wikipedia").replace("{language}", params.language) + "/w/api.php"
        found = await self._api(ctx, api, {"list": "search", "srsearch": str(query), "srlimit": params.top_n,
                                           "srprop": ""})
        ids = [hit["pageid"] for hit in found.get("search", []) if isinstance(hit, dict) and "pageid" in hit]
        pages: dict[int, dict[str, Any]] = {}
        for start in range(0, len(ids), _BATCH):
            batch = ids[start:start + _BATCH]
            answer = await self._api(ctx, api, {
                "pageids": "|".join(str(i) for i in batch), "prop": "extracts|info|pageprops", "exintro": 1,
                "explaintext": 1, "exlimit": len(batch), "inprop": "url", "ppprop": "disambiguation",
                "redirects": 1})
            for page in answer.get("pages", []):
                if isinstance(page, dict) and "pageid" in page:
                    pages[page["pageid"]] = page
        usable = [pages[i] for i in ids if i in pages and not pages[i].get("missing")
                  and "disambiguation" not in (pages[i].get("pageprops") or {})]
        self.add_chunks(state, usable, title=lambda p: p.get("title"), url=lambda p: p.get("fullurl"),
                        content=lambda p: p.get("extract"))
        return state.output(self.id, "formalized_content")

    async def _api(self, ctx: RunContext, api: str, query: dict[str, Any]) -> dict[str, Any]:
        data = await self.request_json(ctx, "GET", api, params={
            "action": "query", "format": "json", "formatversion": 2, **query})
        if not isinstance(data, dict):
            raise ServiceError("Wikipedia's answer is not a JSON object")
        error = data.get("error")
        if isinstance(error, dict):
            raise ServiceError(f"Wikipedia: {error.get('info') or error.get('code') or error}")
        result = data.get("query", {})
        return result if isinstance(result, dict) else {}
