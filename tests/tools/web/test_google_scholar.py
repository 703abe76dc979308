"""GoogleScholar against a loopback server answering like SerpApi's /search.json (engine=google_scholar)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from taskcanvas.dsl.errors import DslError
from taskcanvas.tools.google_scholar import GoogleScholar
from taskcanvas.tools.http import GuardedClient
from tests.support.replay import ReplayServer
from tests.tools.web.conftest import (
    TOOL,
    Doc,
    assert_failed,
    assert_references,
    call_as_agent_tool,
    kb_prompt,
    make_settings,
    ragflow_schema,
    run_tool,
    schema_of,
)

RAGFLOW_META: dict[str, Any] = {
    "name": "google_scholar_search",
    "description": """Google Scholar provides a simple way to broadly search for scholarly literature. From one place, you can search across many disciplines and sources: articles, theses, books, abstracts and court opinions, from academic publishers, professional societies, online repositories, universities and other web sites. Google Scholar helps you find relevant work across the world of scholarly research.""",  # noqa: E501
    "parameters": {
        "query": {
            "type": "string",
            "description": "The search keyword to execute with Google Scholar. The keywords should be the most important words/terms(includes synonyms) from the original request.",  # noqa: E501
            "default": "{sys.query}",
            "required": True,
        }
    },
}

ATTENTION: dict[str, Any] = {
    "position": 0,
    "title": "Attention is all you need",
    "result_id": "5Gohgn6QFikJ",
    "link": "https://proceedings.neurips.cc/paper/7181-attention-is-all",
    "snippet": "The dominant sequence transduction models are based on complex recurrent or convolutional neural "
               "networks …",
    "publication_info": {
        "summary": "A Vaswani, N Shazeer, N Parmar… - Advances in neural …, 2017 - proceedings.neurips.cc",
        "authors": [
            {"name": "A Vaswani", "link": "https://scholar.google.com/citations?user=oR9sCGYAAAAJ&hl=en&oi=sra",
             "serpapi_scholar_link": "https://serpapi.com/search.json?author_id=oR9sCGYAAAAJ",
             "author_id": "oR9sCGYAAAAJ"},
            {"name": "N Shazeer", "link": "https://scholar.google.com/citations?user=wsGvgA8AAAAJ&hl=en&oi=sra",
             "serpapi_scholar_link": "https://serpapi.com/search.json?author_id=wsGvgA8AAAAJ",
             "author_id": "wsGvgA8AAAAJ"},
        ],
    },
    "resources": [{"title": "neurips.cc", "file_format": "PDF",
                   "link": "https://proceedings.neurips.cc/paper/7181-attention-is-all-you-need.pdf"}],
    "inline_links": {
        "serpapi_cite_link": "https://serpapi.com/search.json?engine=google_scholar_cite&q=5Gohgn6QFikJ",
        "cited_by": {"total": 120345, "link": "https://scholar.google.com/scholar?cites=2960712678066186980",
                     "cites_id": "2960712678066186980"},
        "related_pages_link": "https://scholar.google.com/scholar?q=related:5Gohgn6QFikJ:scholar.google.com/",
        "versions": {"total": 62, "link": "https://scholar.google.com/scholar?cluster=2960712678066186980"},
    },
}
BOOK: dict[str, Any] = {
    "position": 1,
    "title": "Deep learning",
    "result_id": "d3Ao0dQ4F0UJ",
    "link": "https://www.nature.com/articles/nature14539",
    "publication_info": {"summary": "Y LeCun, Y Bengio, G Hinton - nature, 2015 - nature.com"},
}
PUBLICATIONS = [
    {"container_type": "Publication", "source": "PUBLICATION_SEARCH_SNIPPET",
     "bib": {"title": "Attention is all you need", "author": ["A Vaswani", "N Shazeer", "N Parmar"],
             "pub_year": "2017", "venue": "Advances in neural …", "abstract": ATTENTION["snippet"]},
     "filled": False, "gsrank": 1, "pub_url": "https://proceedings.neurips.cc/paper/7181-attention-is-all",
     "author_id": ["oR9sCGYAAAAJ", "wsGvgA8AAAAJ"], "num_citations": 120345,
     "citedby_url": "https://scholar.google.com/scholar?cites=2960712678066186980",
     "url_related_articles": "https://scholar.google.com/scholar?q=related:5Gohgn6QFikJ:scholar.google.com/",
     "eprint_url": "https://proceedings.neurips.cc/paper/7181-attention-is-all-you-need.pdf"},
    {"container_type": "Publication", "source": "PUBLICATION_SEARCH_SNIPPET",
     "bib": {"title": "Deep learning", "author": ["Y LeCun", "Y Bengio", "G Hinton"], "pub_year": "2015",
             "venue": "nature"},
     "filled": False, "gsrank": 2, "pub_url": "https://www.nature.com/articles/nature14539", "author_id": [],
     "num_citations": 0, "citedby_url": None, "url_related_articles": None, "eprint_url": None},
]
DOCS = [
    Doc("Attention is all you need", "https://proceedings.neurips.cc/paper/7181-attention-is-all",
        "\n author: A Vaswani,N Shazeer,N Parmar\n Abstract: " + ATTENTION["snippet"]),
    Doc("Deep learning", "https://www.nature.com/articles/nature14539",
        "\n author: Y LeCun,Y Bengio,G Hinton\n Abstract: no abstract"),
]


def _answer(*results: dict[str, Any]) -> dict[str, Any]:
    return {"search_metadata": {"status": "Success"},
            "search_parameters": {"engine": "google_scholar", "q": "deep learning", "hl": "en"},
            "search_information": {"organic_results_state": "Results for exact spelling", "total_results": 5000},
            "organic_results": list(results)}


def _settings(tmp_path: Path, replay: ReplayServer, key: str | None = "serp-env") -> Any:
    env = {"SERPAPI_API_KEY": key} if key else {}
    return make_settings(tmp_path, endpoints={"serpapi": replay.base},
                         tools={"serpapi": {"api_key_env": "SERPAPI_API_KEY"}}, env=env)


async def test_search(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/search.json", json=_answer(ATTENTION, BOOK))
    turn = await run_tool(GoogleScholar, {}, http=http, settings=_settings(tmp_path, replay), query="deep learning")
    assert turn.error is None, turn.error
    assert replay.only().args() == {"engine": "google_scholar", "q": "deep learning", "as_sdt": "7", "num": "12",
                                    "start": "0", "api_key": "serp-env"}
    assert turn.output(TOOL, "json") == PUBLICATIONS
    assert turn.output(TOOL, "formalized_content") == kb_prompt(DOCS)
    assert turn.text == kb_prompt(DOCS)
    assert_references(turn.state, DOCS)


async def test_filters(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/search.json", json=_answer(BOOK))
    params = {"patents": False, "year_low": 2015, "year_high": "2020", "sort_by": "date", "api_key": "serp-own"}
    turn = await run_tool(GoogleScholar, params, http=http, settings=_settings(tmp_path, replay), query="dl")
    assert turn.error is None, turn.error
    assert replay.only().args() == {"engine": "google_scholar", "q": "dl", "as_sdt": "0", "as_ylo": "2015",
                                    "as_yhi": "2020", "scisbd": "1", "num": "12", "start": "0", "api_key": "serp-own"}


async def test_pages_of_twenty(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/search.json", json=_answer(*[dict(BOOK, title=f"Paper {i}") for i in range(20)]))
    replay.reply("GET", "/search.json", json=_answer(*[dict(BOOK, title=f"Paper {i}") for i in range(20, 25)]))
    turn = await run_tool(GoogleScholar, {"top_n": 25}, http=http, settings=_settings(tmp_path, replay), query="dl")
    assert turn.error is None, turn.error
    assert [(r.arg("num"), r.arg("start")) for r in replay.requests] == [("20", "0"), ("5", "20")]
    assert [p["bib"]["title"] for p in turn.output(TOOL, "json")] == [f"Paper {i}" for i in range(25)]
    assert [p["gsrank"] for p in turn.output(TOOL, "json")] == list(range(1, 26))


async def test_nothing_found_is_not_an_error(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/search.json", json={
        "search_metadata": {"status": "Success"}, "search_information": {"organic_results_state": "Fully empty"},
        "error": "Google hasn't returned any results for this query."})
    turn = await run_tool(GoogleScholar, {}, http=http, settings=_settings(tmp_path, replay), query="qwxzzqv")
    assert turn.error is None, turn.error
    assert turn.output(TOOL, "formalized_content") == ""
    assert turn.output(TOOL, "json") == []


async def test_missing_key(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    turn = await run_tool(GoogleScholar, {}, http=http, settings=_settings(tmp_path, replay, key=None), query="dl")
    assert_failed(turn, "GoogleScholar needs a SerpApi API key: set api_key in the component, or api_key_env in "
                        "[tools.serpapi] of the taskcanvas settings")


async def test_quota_exhausted(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/search.json", status=429, json={"error": "Your account has run out of searches."})
    turn = await run_tool(GoogleScholar, {}, http=http, settings=_settings(tmp_path, replay), query="dl")
    assert_failed(turn, "GoogleScholar answered HTTP 429: Your account has run out of searches.")


async def test_agent_tool_call(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/search.json", json=_answer(ATTENTION, BOOK))
    call = await call_as_agent_tool(GoogleScholar, {"top_n": 2}, {"query": "deep learning"}, http=http,
                                    settings=_settings(tmp_path, replay))
    assert call.result == kb_prompt(DOCS)
    assert replay.only().arg("num") == "2"


async def test_empty_query_clears_json(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    call = await call_as_agent_tool(GoogleScholar, {}, {"query": ""}, http=http, settings=_settings(tmp_path, replay))
    assert call.result == ""
    assert call.output("json") == []
    assert replay.requests == []


def test_sort_by_is_checked() -> None:
    with pytest.raises(DslError, match="sort_by"):
        schema_of(GoogleScholar, {"sort_by": "citations"})


def test_schema_is_ragflows() -> None:
    assert schema_of(GoogleScholar) == ragflow_schema(RAGFLOW_META)
    assert GoogleScholar.meta == RAGFLOW_META
