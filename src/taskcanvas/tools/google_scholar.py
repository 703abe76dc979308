"""GoogleScholar through SerpApi (ragflow ``agent/tools/googlescholar.py``, spec §5.2).

ragflow uses ``scholarly``, which scrapes scholar.google.com with connections of its own (and
is routinely blocked by Google's captcha). taskcanvas asks SerpApi's Google Scholar engine
instead, through the guarded client, 20 results a page until ``top_n``::

    GET {serpapi}/search.json?engine=google_scholar&q=<query>&num=<≤20>&start=<offset>
                             &as_sdt=<7 with patents, 0 without>[&as_ylo=<year_low>][&as_yhi=<year_high>]
                             [&scisbd=1 when sort_by is date]&api_key=<key>

— the filters scholarly puts in its Scholar URL (``patents``, ``year_low``/``year_high``,
``sort_by="date"`` → recent abstracts sorted by date), in SerpApi's spelling. The key is the
component's ``api_key``, else ``[tools.serpapi]`` of the settings; ragflow's GoogleScholar has
no key (scholarly needs none), so a ragflow canvas needs the settings entry.

Each SerpApi result becomes scholarly's publication dict, so ``json`` keeps the shape a canvas
may refer to: ``{container_type, source, bib: {title, author: [names], pub_year, venue,
abstract}, filled, gsrank, pub_url, author_id, num_citations, citedby_url,
url_related_articles, eprint_url}``. Authors, venue and year come from the result's
``publication_info.summary`` ("A Author, B Author - Venue, 2020 - host"), as scholarly reads
them from the same line of the page; the abstract is the result's snippet, as in scholarly's
search results. Chunks are ragflow's: title ``bib.title``, URL ``pub_url``, text
``"\\n author: <a,b>\\n Abstract: <abstract or 'no abstract'>"``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import field_validator

from taskcanvas.runtime.component import RunContext
from taskcanvas.tools._endpoints import SearchParams, ServiceError, WebTool, endpoint, tool_secret
from taskcanvas.tools.base import ToolMeta

__all__ = ["GoogleScholar", "GoogleScholarParams", "publication"]

_META: ToolMeta = {
    "name": "google_scholar_search",
    "description": "Google Scholar provides a simple way to broadly search for scholarly literature. From one place, "
                   "you can search across many disciplines and sources: articles, theses, books, abstracts and court "
                   "opinions, from academic publishers, professional societies, online repositories, universities "
                   "and other web sites. Google Scholar helps you find relevant work across the world of scholarly "
                   "research.",
    "parameters": {
        "query": {
            "type": "string",
            "description": "The search keyword to execute with Google Scholar. The keywords should be the most "
                           "important words/terms(includes synonyms) from the original request.",
            "default": "{sys.query}",
            "required": True,
        }
    },
}

_PAGE = 20
_MAX_PAGES = 5


class GoogleScholarParams(SearchParams):
    top_n: int = 12
    sort_by: str = "relevance"
    year_low: int | None = None
    year_high: int | None = None
    patents: bool = True
    api_key: str | None = ""

    @field_validator("year_low", "year_high", mode="before")
    @classmethod
    def _no_year(cls, v: Any) -> Any:
        return None if v == "" else v

    @field_validator("sort_by")
    @classmethod
    def _sort_by(cls, v: str) -> str:
        if v not in ("date", "relevance"):
            raise ValueError(f"sort_by {v!r} is not supported: use date or relevance")
        return v


class GoogleScholar(WebTool):
    component_name = "GoogleScholar"
    Params = GoogleScholarParams
    meta: ClassVar[ToolMeta] = _META
    timeout = 12.0
    service = "GoogleScholar"
    thoughts_text = "Looking for scholarly papers on `{}`,” prioritising reputable sources."

    async def call(self, ctx: RunContext, **args: Any) -> Any:
        params = self.params
        assert isinstance(params, GoogleScholarParams)
        state = ctx.state
        query = args.get("query")
        if not query:
            return self.empty(state, "json")
        key = params.api_key or tool_secret(ctx, "serpapi")
        if not key:
            raise self.missing_key("serpapi", "a SerpApi API key")
        search: dict[str, Any] = {"engine": "google_scholar", "q": str(query), "as_sdt": 7 if params.patents else 0}
        if params.year_low is not None:
            search["as_ylo"] = params.year_low
        if params.year_high is not None:
            search["as_yhi"] = params.year_high
        if params.sort_by == "date":
            search["scisbd"] = 1
        url = endpoint(ctx, "serpapi") + "/search.json"
        results: list[dict[str, Any]] = []
        for _ in range(_MAX_PAGES):
            wanted = min(_PAGE, params.top_n - len(results))
            data = await self.request_json(ctx, "GET", url, params={
                **search, "num": wanted, "start": len(results), "api_key": key})
            page = _organic(data)
            offset = len(results)
            results.extend(publication(r, offset + i) for i, r in enumerate(page[:wanted]))
            if len(page) < wanted or len(results) >= params.top_n:
                break
        self.add_chunks(state, results,
                        title=lambda r: r["bib"]["title"],
                        url=lambda r: r["pub_url"],
                        content=lambda r: "\n author: " + ",".join(r["bib"]["author"]) + "\n Abstract: "
                        + r["bib"].get("abstract", "no abstract"))
        state.set_output(self.id, "json", results)
        return state.output(self.id, "formalized_content")


def _organic(data: Any) -> list[dict[str, Any]]:
    if not isinstance(data, dict):
        raise ServiceError("SerpApi's answer is not a JSON object")
    results = data.get("organic_results")
    if isinstance(results, list):
        return [r for r in results if isinstance(r, dict)]
    if (data.get("search_information") or {}).get("organic_results_state") == "Fully empty":
        return []  # nothing found: scholarly yields nothing, not an error
    raise ServiceError(str(data.get("error") or "SerpApi returned no organic_results."))


def publication(result: dict[str, Any], rank: int) -> dict[str, Any]:
    """A SerpApi Scholar result as scholarly's search-snippet publication."""
    info = result.get("publication_info") or {}
    summary = str(info.get("summary") or "").replace("\u2011", "-").replace("\xa0", " ")
    parts = summary.split(" - ")
    names = (n.strip().rstrip("…").strip() for n in parts[0].split(",")) if len(parts) > 1 else iter(())
    authors = [n for n in names if n]
    if not authors:
        authors = [str(a["name"]) for a in info.get("authors") or [] if isinstance(a, dict) and a.get("name")]
    venue, year = "NA", "NA"
    if len(parts) > 1:
        pieces = [p.strip() for p in parts[1].split(",")]
        if len(pieces) >= 2:
            venue, year = ", ".join(pieces[:-1]) or "NA", pieces[-1] or "NA"
        elif pieces[0].isdigit():
            year = pieces[0]
        elif pieces[0]:
            venue = pieces[0]
    bib: dict[str, Any] = {"title": result.get("title", ""), "author": authors, "pub_year": year, "venue": venue}
    if result.get("snippet"):
        bib["abstract"] = result["snippet"]
    links = result.get("inline_links") or {}
    cited = links.get("cited_by") or {}
    resources = result.get("resources") or []
    return {
        "container_type": "Publication",
        "source": "PUBLICATION_SEARCH_SNIPPET",
        "bib": bib,
        "filled": False,
        "gsrank": rank + 1,
        "pub_url": result.get("link"),
        "author_id": [str(a.get("author_id", "")) for a in info.get("authors") or [] if isinstance(a, dict)],
        "num_citations": int(cited.get("total") or 0),
        "citedby_url": cited.get("link"),
        "url_related_articles": links.get("related_pages_link"),
        "eprint_url": resources[0].get("link") if resources and isinstance(resources[0], dict) else None,
    }
