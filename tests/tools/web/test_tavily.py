"""TavilySearch and TavilyExtract against a loopback server answering like api.tavily.com."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from taskcanvas.dsl.errors import DslError
from taskcanvas.tools.http import GuardedClient
from taskcanvas.tools.tavily import TavilyExtract, TavilySearch
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

# ragflow's TavilySearchParam.meta and TavilyExtractParam.meta, verbatim.
RAGFLOW_SEARCH_META: dict[str, Any] = {
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
            "description": "The search keywords to execute with Tavily. The keywords should be the most important words/terms(includes synonyms) from the original request.",  # noqa: E501
            "default": "{sys.query}",
            "required": True,
        },
        "topic": {
            "type": "string",
            "description": "default:general. The category of the search.news is useful for retrieving real-time updates, particularly about politics, sports, and major current events covered by mainstream media sources. general is for broader, more general-purpose searches that may include a wide range of sources.",  # noqa: E501
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

RAGFLOW_EXTRACT_META: dict[str, Any] = {
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
            "description": "The depth of the extraction process. advanced extraction retrieves more data, including tables and embedded content, with higher success but may increase latency.basic extraction costs 1 credit per 5 successful URL extractions, while advanced extraction costs 2 credits per 5 successful URL extractions.",  # noqa: E501
            "enum": ["basic", "advanced"],
            "default": "basic",
            "required": False,
        },
        "format": {
            "type": "string",
            "description": "The format of the extracted web page content. markdown returns content in markdown format. text returns plain text and may increase latency.",  # noqa: E501
            "enum": ["markdown", "text"],
            "default": "markdown",
            "required": False,
        },
    },
}

# The documented shape of POST /search.
SEARCH_ANSWER: dict[str, Any] = {
    "query": "who won the 2024 tour de france",
    "follow_up_questions": None,
    "answer": None,
    "images": [],
    "results": [
        {"title": "Tour de France 2024 - Wikipedia", "url": "https://en.wikipedia.org/wiki/2024_Tour_de_France",
         "content": "The 2024 Tour de France was won by Tadej Pogačar.", "score": 0.98, "raw_content": None},
        {"title": "Pogačar wins third Tour", "url": "https://www.cyclingnews.com/races/tour-de-france-2024/",
         "content": "short snippet", "score": 0.87,
         "raw_content": "Tadej Pogačar sealed his third Tour de France title in Nice."},
        {"title": "Empty page", "url": "https://example.com/empty", "content": "", "score": 0.1, "raw_content": None},
    ],
    "response_time": 1.09,
}

DOCS = [
    Doc("Tour de France 2024 - Wikipedia", "https://en.wikipedia.org/wiki/2024_Tour_de_France",
        "The 2024 Tour de France was won by Tadej Pogačar.", 0.98),
    Doc("Pogačar wins third Tour", "https://www.cyclingnews.com/races/tour-de-france-2024/",
        "Tadej Pogačar sealed his third Tour de France title in Nice.", 0.87),
]

EXTRACT_ANSWER: dict[str, Any] = {
    "results": [
        {"url": "https://en.wikipedia.org/wiki/Artificial_intelligence",
         "raw_content": "# Artificial intelligence\nArtificial intelligence (AI) is ...", "images": []},
        {"url": "https://example.com/", "raw_content": "Example Domain", "images": []},
    ],
    "failed_results": [{"url": "https://unreachable.example", "error": "Failed to fetch url"}],
    "response_time": 0.72,
}


def _settings(tmp_path: Path, replay: ReplayServer, key: str | None = "tvly-from-env") -> Any:
    env = {"TAVILY_API_KEY": key} if key else {}
    return make_settings(tmp_path, endpoints={"tavily": replay.base},
                         tools={"tavily": {"api_key_env": "TAVILY_API_KEY"}}, env=env)


# --------------------------------------------------------------------------- TavilySearch
async def test_search_sends_ragflows_request_and_writes_chunks(replay: ReplayServer, http: GuardedClient,
                                                               tmp_path: Path) -> None:
    replay.reply("POST", "/search", json=SEARCH_ANSWER)
    # As the web_search_assistant template stores it: a bare reference, raw content asked for.
    params = {"query": "sys.query", "include_raw_content": True, "max_results": 5, "days": 7}
    turn = await run_tool(TavilySearch, params, http=http, settings=_settings(tmp_path, replay),
                          query="who won the 2024 tour de france")
    assert turn.error is None, turn.error

    request = replay.only()
    assert (request.method, request.path) == ("POST", "/search")
    assert request.headers["authorization"] == "Bearer tvly-from-env"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {
        "query": "who won the 2024 tour de france", "topic": "general", "include_domains": [],
        "exclude_domains": [], "search_depth": "basic", "max_results": 5, "days": 7, "include_answer": False,
        "include_raw_content": False, "include_images": False, "include_image_descriptions": False,
    }
    assert turn.output(TOOL, "formalized_content") == kb_prompt(DOCS)
    assert turn.text == kb_prompt(DOCS)
    assert turn.output(TOOL, "json") == SEARCH_ANSWER["results"]
    assert_references(turn.state, DOCS)
    started = next(d for d in turn.of("node_started") if d["component_id"] == TOOL)
    assert started["thoughts"] == ("\nKeywords: who won the 2024 tour de france\n"
                                   "Looking for the most relevant articles.\n                ")


async def test_component_api_key_wins_over_settings(replay: ReplayServer, http: GuardedClient,
                                                    tmp_path: Path) -> None:
    replay.reply("POST", "/search", json=SEARCH_ANSWER)
    turn = await run_tool(TavilySearch, {"api_key": "tvly-own", "topic": "news", "include_domains": ["a.com"]},
                          http=http, settings=_settings(tmp_path, replay), query="tour")
    assert turn.error is None, turn.error
    request = replay.only()
    assert request.headers["authorization"] == "Bearer tvly-own"
    assert request.json()["topic"] == "news"
    assert request.json()["include_domains"] == ["a.com"]


async def test_empty_query_searches_nothing(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    turn = await run_tool(TavilySearch, {}, http=http, settings=_settings(tmp_path, replay), query="")
    assert turn.error is None
    assert turn.output(TOOL, "formalized_content") == ""
    assert replay.requests == []


async def test_missing_api_key_is_a_clear_error(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    turn = await run_tool(TavilySearch, {}, http=http, settings=_settings(tmp_path, replay, key=None), query="q")
    assert_failed(turn, "TavilySearch needs an API key: set api_key in the component, or api_key_env in "
                        "[tools.tavily] of the taskcanvas settings")
    assert replay.requests == []


@pytest.mark.parametrize(("status", "answer", "message"), [
    (401, {"detail": {"error": "Unauthorized: missing or invalid API key."}},
     "Tavily answered HTTP 401: Unauthorized: missing or invalid API key."),
    (432, {"detail": {"error": "This request exceeds your plan's set usage limit."}},
     "Tavily answered HTTP 432: This request exceeds your plan's set usage limit."),
    (500, None, "Tavily answered HTTP 500: upstream exploded"),
])
async def test_service_errors_are_the_components_error(replay: ReplayServer, http: GuardedClient, tmp_path: Path,
                                                       status: int, answer: Any, message: str) -> None:
    if answer is None:
        replay.reply("POST", "/search", text="upstream exploded", status=status)
    else:
        replay.reply("POST", "/search", json=answer, status=status)
    turn = await run_tool(TavilySearch, {}, http=http, settings=_settings(tmp_path, replay), query="q")
    assert_failed(turn, message)


async def test_retries_as_configured(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("POST", "/search", json={"detail": {"error": "busy"}}, status=500)
    replay.reply("POST", "/search", json=SEARCH_ANSWER)
    turn = await run_tool(TavilySearch, {"max_retries": 1, "delay_after_error": 0}, http=http,
                          settings=_settings(tmp_path, replay), query="tour")
    assert turn.error is None, turn.error
    assert len(replay.requests) == 2
    assert turn.output(TOOL, "formalized_content") == kb_prompt(DOCS)


async def test_a_malformed_answer_is_an_error(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("POST", "/search", text="<html>maintenance</html>", content_type="text/html")
    turn = await run_tool(TavilySearch, {}, http=http, settings=_settings(tmp_path, replay), query="q")
    assert_failed(turn, "Tavily answered something that is not JSON (text/html)")


async def test_unreachable_service(http: GuardedClient, tmp_path: Path) -> None:
    closed = ReplayServer()
    base = closed.base
    closed.server_close()  # nothing listens there any more
    settings = make_settings(tmp_path, endpoints={"tavily": base})
    turn = await run_tool(TavilySearch, {"api_key": "k"}, http=http, settings=settings, query="q")
    error = turn.finished(TOOL)["error"]
    assert error.startswith(f"could not reach Tavily at {base}: ")


def test_params_are_checked_like_ragflow() -> None:
    with pytest.raises(DslError, match="search_depth"):
        schema_of(TavilySearch, {"search_depth": "deep"})
    with pytest.raises(DslError, match="max_results"):
        schema_of(TavilySearch, {"max_results": 0})


# --------------------------------------------------------------------------- as an Agent's tool
async def test_agent_tool_call(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("POST", "/search", json=SEARCH_ANSWER)
    call = await call_as_agent_tool(TavilySearch, {"max_results": 3},
                                    {"query": "tour de france 2024", "topic": "news", "exclude_domains": ["x.com"]},
                                    http=http, settings=_settings(tmp_path, replay))
    assert call.result == kb_prompt(DOCS)
    assert call.output("_ERROR") == ""
    body = replay.only().json()
    assert (body["query"], body["topic"], body["exclude_domains"], body["max_results"]) == (
        "tour de france 2024", "news", ["x.com"], 3)
    assert_references(call.state, DOCS)


async def test_agent_tool_call_failure_tells_the_model(replay: ReplayServer, http: GuardedClient,
                                                       tmp_path: Path) -> None:
    replay.reply("POST", "/search", json={"detail": {"error": "Unauthorized: missing or invalid API key."}},
                 status=401)
    call = await call_as_agent_tool(TavilySearch, {}, {"query": "q"}, http=http,
                                    settings=_settings(tmp_path, replay))
    assert call.output("_ERROR") == "Tavily answered HTTP 401: Unauthorized: missing or invalid API key."
    assert call.result == "Tavily error: Tavily answered HTTP 401: Unauthorized: missing or invalid API key."


def test_search_schema_is_ragflows() -> None:
    assert schema_of(TavilySearch) == ragflow_schema(RAGFLOW_SEARCH_META)
    assert TavilySearch.meta == RAGFLOW_SEARCH_META
    renamed = schema_of(TavilySearch, {"function_name": "tavily_search_1", "description": "Search the web."})
    assert renamed["function"]["name"] == "tavily_search_1"
    assert renamed["function"]["description"] == "Search the web."


# --------------------------------------------------------------------------- TavilyExtract
async def test_extract_sends_urls_and_writes_json(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("POST", "/extract", json=EXTRACT_ANSWER)
    params = {"urls": "https://en.wikipedia.org/wiki/Artificial_intelligence, https://example.com/",
              "api_key": "tvly-own", "include_images": True}
    turn = await run_tool(TavilyExtract, params, http=http, settings=_settings(tmp_path, replay),
                          message="{tool@json}")
    assert turn.error is None, turn.error
    request = replay.only()
    assert (request.method, request.path) == ("POST", "/extract")
    assert request.headers["authorization"] == "Bearer tvly-own"
    assert request.json() == {"urls": ["https://en.wikipedia.org/wiki/Artificial_intelligence",
                                       "https://example.com/"],
                              "extract_depth": "basic", "format": "markdown", "include_images": False}
    assert turn.output(TOOL, "json") == EXTRACT_ANSWER["results"]
    started = next(d for d in turn.of("node_started") if d["component_id"] == TOOL)
    assert started["thoughts"].startswith("Opened https://en.wikipedia.org/wiki/Artificial_intelligence, ")


async def test_extract_as_agent_tool_returns_the_pages(replay: ReplayServer, http: GuardedClient,
                                                       tmp_path: Path) -> None:
    replay.reply("POST", "/extract", json=EXTRACT_ANSWER)
    call = await call_as_agent_tool(TavilyExtract, {}, {"urls": ["https://example.com/"], "extract_depth": "advanced",
                                                        "format": "text"},
                                    http=http, settings=_settings(tmp_path, replay))
    assert call.result == EXTRACT_ANSWER["results"]
    assert replay.only().json() == {"urls": ["https://example.com/"], "extract_depth": "advanced", "format": "text",
                                    "include_images": False}


async def test_extract_without_urls_is_a_clear_error(replay: ReplayServer, http: GuardedClient,
                                                     tmp_path: Path) -> None:
    turn = await run_tool(TavilyExtract, {}, http=http, settings=_settings(tmp_path, replay))
    assert_failed(turn, "TavilyExtract needs at least one URL to extract")
    assert replay.requests == []


async def test_extract_missing_key(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    turn = await run_tool(TavilyExtract, {"urls": ["https://example.com"]}, http=http,
                          settings=_settings(tmp_path, replay, key=None))
    assert_failed(turn, "TavilyExtract needs an API key: set api_key in the component, or api_key_env in "
                        "[tools.tavily] of the taskcanvas settings")


def test_extract_schema_is_ragflows() -> None:
    assert schema_of(TavilyExtract) == ragflow_schema(RAGFLOW_EXTRACT_META)
    assert TavilyExtract.meta == RAGFLOW_EXTRACT_META
