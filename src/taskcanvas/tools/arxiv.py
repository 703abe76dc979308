"""ArXiv (ragflow ``agent/tools/arxiv.py``, spec §5.2).

ragflow uses the ``arxiv`` library (2.1), which reads arXiv's Atom API. taskcanvas asks the same
API through the guarded client and reads the Atom feed with the standard library's XML parser::

    GET {arxiv}/api/query?search_query=<query>&id_list=&sortBy=<sort_by>&sortOrder=descending
                         &start=0&max_results=<top_n>

Each entry is a chunk: its title (whitespace folded, as the library does), its PDF link (the
``link`` titled ``pdf``; the library's ``pdf_url``) and its abstract (``summary``, trimmed).
The library asks for pages of 100 and keeps ``top_n``; taskcanvas asks for ``top_n``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any, ClassVar

import httpx
from pydantic import field_validator

from taskcanvas.runtime.component import RunContext
from taskcanvas.tools._endpoints import SearchParams, ServiceError, WebTool, endpoint
from taskcanvas.tools.base import ToolMeta

__all__ = ["ArXiv", "ArXivParams", "parse_feed"]

_META: ToolMeta = {
    "name": "arxiv_search",
    "description": "arXiv is a free distribution service and an open-access archive for nearly 2.4 million scholarly "
                   "articles in the fields of physics, mathematics, computer science, quantitative biology, "
                   "quantitative finance, statistics, electrical engineering and systems science, and economics. "
                   "Materials on this site are not peer-reviewed by arXiv.",
    "parameters": {
        "query": {
            "type": "string",
            "description": "The search keywords to execute with arXiv. The keywords should be the most important "
                           "words/terms(includes synonyms) from the original request.",
            "default": "{sys.query}",
            "required": True,
        }
    },
}

_ATOM = "{http://www.w3.org/2005/Atom}"
_SORTS = ("submittedDate", "lastUpdatedDate", "relevance")


class ArXivParams(SearchParams):
    top_n: int = 12
    sort_by: str = "submittedDate"

    @field_validator("sort_by")
    @classmethod
    def _sort_by(cls, v: str) -> str:
        if v not in _SORTS:
            raise ValueError(f"sort_by {v!r} is not supported: use one of {', '.join(_SORTS)}")
        return v


class ArXiv(WebTool):
    component_name = "ArXiv"
    Params = ArXivParams
    meta: ClassVar[ToolMeta] = _META
    timeout = 12.0
    service = "ArXiv"
    thoughts_text = "\nKeywords: {}\nLooking for the most relevant articles.\n                "

    async def call(self, ctx: RunContext, **args: Any) -> Any:
        params = self.params
        assert isinstance(params, ArXivParams)
        state = ctx.state
        query = args.get("query")
        if not query:
            return self.empty(state)
        response = await self.request(ctx, "GET", endpoint(ctx, "arxiv") + "/api/query", params={
            "search_query": str(query), "id_list": "", "sortBy": params.sort_by, "sortOrder": "descending",
            "start": 0, "max_results": params.top_n})
        entries = parse_feed(response.content)[:params.top_n]
        self.add_chunks(state, entries, title=lambda e: e["title"], url=lambda e: e["pdf_url"],
                        content=lambda e: e["summary"])
        return state.output(self.id, "formalized_content")

    def describe_error(self, response: httpx.Response) -> str:
        """arXiv explains an error in the summary of an Atom entry titled "Error"."""
        try:
            entries = parse_feed(response.content)
        except ServiceError:
            entries = []
        return entries[0]["summary"] if entries and entries[0]["summary"] else super().describe_error(response)


def parse_feed(content: bytes) -> list[dict[str, Any]]:
    """The entries of an arXiv Atom feed: ``{id, title, summary, pdf_url}``."""
    try:
        root = ET.fromstring(content)
    except ET.ParseError as e:
        raise ServiceError(f"arXiv answered something that is not an Atom feed: {e}") from None
    entries = []
    for entry in root.iter(f"{_ATOM}entry"):
        entry_id = (entry.findtext(f"{_ATOM}id") or "").strip()
        if not entry_id:
            continue  # the library skips entries without an id
        title = entry.findtext(f"{_ATOM}title")
        pdf = next((link.get("href") for link in entry.iter(f"{_ATOM}link") if link.get("title") == "pdf"), None)
        entries.append({
            "id": entry_id,
            "title": re.sub(r"\s+", " ", title.strip()) if title is not None else "0",
            "summary": (entry.findtext(f"{_ATOM}summary") or "").strip(),
            "pdf_url": pdf,
        })
    return entries
