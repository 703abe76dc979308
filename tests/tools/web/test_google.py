"""Google against a loopback server answering like SerpApi's /search.json (engine=google)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from taskcanvas.dsl.errors import DslError
from taskcanvas.tools.google import Google
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
    "name": "google_search",
    "description": """Search the world's information, including webpages, images, videos and more. Google has many special features to help you find exactly what you're looking ...""",  # noqa: E501
    "parameters": {
        "q": {
            "type": "string",
            "description": "The search keywords to execute with Google. The keywords should be the most important words/terms(includes synonyms) from the original request.",  # noqa: E501
            "default": "{sys.query}",
            "required": True,
        },
        "start": {
            "type": "integer",
            "description": "Parameter defines the result offset. It skips the given number of results. It's used for pagination. (e.g., 0 (default) is the first page of results, 10 is the 2nd page of results, 20 is the 3rd page of results, etc.). Google Local Results only accepts multiples of 20(e.g. 20 for the second page results, 40 for the third page results, etc.) as the `start` value.",  # noqa: E501
            "default": "0",
            "required": False,
        },
        "num": {
            "type": "integer",
            "description": "Parameter defines the maximum number of results to return. (e.g., 10 (default) returns 10 results, 40 returns 40 results, and 100 returns 100 results). The use of num may introduce latency, and/or prevent the inclusion of specialized result types. It is better to omit this parameter unless it is strictly necessary to increase the number of results per page. Results are not guaranteed to have the number of results specified in num.",  # noqa: E501
            "default": "6",
            "required": False,
        },
    },
}

ANSWER: dict[str, Any] = {
    "search_metadata": {"id": "6666f0c0a1b2c3d4e5f60718", "status": "Success",
                        "json_endpoint": "https://serpapi.com/searches/x/6666f0c0a1b2c3d4e5f60718.json",
                        "created_at": "2024-06-10 12:00:00 UTC", "processed_at": "2024-06-10 12:00:00 UTC",
                        "google_url": "https://www.google.com/search?q=coffee&oq=coffee&hl=en&gl=us",
                        "total_time_taken": 1.21},
    "search_parameters": {"engine": "google", "q": "coffee", "google_domain": "google.com", "hl": "en", "gl": "us",
                          "device": "desktop"},
    "search_information": {"query_displayed": "coffee", "total_results": 1570000000, "time_taken_displayed": 0.41,
                           "organic_results_state": "Results for exact spelling"},
    "organic_results": [
        {"position": 1, "title": "Coffee - Wikipedia", "link": "https://en.wikipedia.org/wiki/Coffee",
         "redirect_link": "https://www.google.com/url?...",
         "displayed_link": "https://en.wikipedia.org › wiki › Coffee",
         "snippet": "Coffee is a beverage brewed from roasted coffee beans.",
         "about_this_result": {"source": {"description": "Wikipedia is a free online encyclopedia.",
                                          "security": "secure", "icon": "https://serpapi.com/x.png"}},
         "source": "Wikipedia"},
        {"position": 2, "title": "The Coffee Bean", "link": "https://www.coffeebean.com/",
         "snippet": "Handcrafted coffee and tea.", "source": "coffeebean.com"},
        {"position": 3, "title": "No text at all", "link": "https://example.com/"},
    ],
}
DOCS = [
    Doc("Coffee - Wikipedia", "https://en.wikipedia.org/wiki/Coffee", "Wikipedia is a free online encyclopedia."),
    Doc("The Coffee Bean", "https://www.coffeebean.com/", "Handcrafted coffee and tea."),
]


def _settings(tmp_path: Path, replay: ReplayServer, key: str | None = None) -> Any:
    env = {"SERPAPI_API_KEY": key} if key else {}
    return make_settings(tmp_path, endpoints={"serpapi": replay.base},
                         tools={"serpapi": {"api_key_env": "SERPAPI_API_KEY"}}, env=env)


async def test_search(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/search.json", json=ANSWER)
    # As ragflow's web_search_assistant template stores it, with the key filled in.
    params = {"api_key": "serp-own", "country": "us", "language": "en"}
    turn = await run_tool(Google, params, http=http, settings=_settings(tmp_path, replay, "serp-env"),
                          query="coffee")
    assert turn.error is None, turn.error
    assert replay.only().args() == {"engine": "google", "q": "coffee", "google_domain": "google.com", "gl": "us",
                                    "hl": "en", "start": "0", "num": "6", "api_key": "serp-own"}
    assert turn.output(TOOL, "formalized_content") == kb_prompt(DOCS)
    assert turn.text == kb_prompt(DOCS)
    assert turn.output(TOOL, "json") == ANSWER["organic_results"]
    assert_references(turn.state, DOCS)
    started = next(d for d in turn.of("node_started") if d["component_id"] == TOOL)
    assert started["thoughts"] == "\nKeywords: coffee\nLooking for the most relevant articles.\n        "


async def test_key_from_settings(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/search.json", json=ANSWER)
    turn = await run_tool(Google, {"api_key": ""}, http=http, settings=_settings(tmp_path, replay, "serp-env"),
                          query="coffee")
    assert turn.error is None, turn.error
    request = replay.only()
    assert request.arg("api_key") == "serp-env"
    assert (request.arg("gl"), request.arg("hl")) == ("cn", "en")


async def test_missing_key(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    turn = await run_tool(Google, {}, http=http, settings=_settings(tmp_path, replay), query="coffee")
    assert_failed(turn, "Google needs a SerpApi API key: set api_key in the component, or api_key_env in "
                        "[tools.serpapi] of the taskcanvas settings")
    assert replay.requests == []


async def test_invalid_key(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/search.json", status=401, json={
        "error": "Invalid API key. Your API key should be here: https://serpapi.com/manage-api-key"})
    turn = await run_tool(Google, {"api_key": "wrong"}, http=http, settings=_settings(tmp_path, replay),
                          query="coffee")
    assert_failed(turn, "Google answered HTTP 401: Invalid API key. Your API key should be here: "
                        "https://serpapi.com/manage-api-key")
    assert "wrong" not in (turn.error or "")


async def test_no_results_is_serpapis_error(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/search.json", json={
        "search_metadata": {"status": "Success"}, "search_parameters": {"engine": "google", "q": "qwxzzqv"},
        "search_information": {"organic_results_state": "Fully empty"},
        "error": "Google hasn't returned any results for this query."})
    turn = await run_tool(Google, {"api_key": "k"}, http=http, settings=_settings(tmp_path, replay), query="qwxzzqv")
    assert_failed(turn, "Google hasn't returned any results for this query.")


async def test_agent_tool_call_pages(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/search.json", json=ANSWER)
    call = await call_as_agent_tool(Google, {"api_key": "k"}, {"q": "coffee", "start": 10, "num": "20"}, http=http,
                                    settings=_settings(tmp_path, replay))
    assert call.result == kb_prompt(DOCS)
    request = replay.only()
    assert (request.arg("start"), request.arg("num")) == ("10", "20")


async def test_agent_tool_call_bad_argument(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    call = await call_as_agent_tool(Google, {"api_key": "k"}, {"q": "coffee", "num": "many"}, http=http,
                                    settings=_settings(tmp_path, replay))
    assert call.result == "Google error: num 'many' is not a whole number"
    assert replay.requests == []


def test_country_and_language_are_checked_like_ragflow() -> None:
    with pytest.raises(DslError, match="country 'zz' is not supported"):
        schema_of(Google, {"country": "zz"})
    with pytest.raises(DslError, match="language 'english' is not supported"):
        schema_of(Google, {"language": "english"})


def test_schema_is_ragflows() -> None:
    assert schema_of(Google) == ragflow_schema(RAGFLOW_META)
    assert Google.meta == RAGFLOW_META
