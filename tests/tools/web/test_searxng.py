"""SearXNG against a loopback server answering like an instance's /search?format=json."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from taskcanvas.tools.http import GuardedClient, HttpPolicy, create_client
from taskcanvas.tools.searxng import SearXNG
from tests.support.replay import ReplayServer
from tests.tools.web.conftest import (
    TOOL,
    Doc,
    assert_failed,
    assert_references,
    call_as_agent_tool,
    kb_prompt,
    ragflow_schema,
    run_tool,
    schema_of,
)

RAGFLOW_META: dict[str, Any] = {
    "name": "searxng_search",
    "description": "SearXNG is a privacy-focused metasearch engine that aggregates results from multiple search engines without tracking users. It provides comprehensive web search capabilities.",  # noqa: E501
    "parameters": {
        "query": {
            "type": "string",
            "description": "The search keywords to execute with SearXNG. The keywords should be the most important words/terms(includes synonyms) from the original request.",  # noqa: E501
            "default": "{sys.query}",
            "required": True,
        },
        "searxng_url": {
            "type": "string",
            "description": "The base URL of your SearXNG instance (e.g., http://localhost:4000). This is required to connect to your SearXNG server.",  # noqa: E501
            "required": False,
            "default": "",
        },
    },
}


def _hit(i: int) -> dict[str, Any]:
    return {"url": f"https://site{i}.example/page", "title": f"Result {i}", "content": f"About result {i}.",
            "engine": "duckduckgo", "parsed_url": ["https", f"site{i}.example", "/page", "", "", ""],
            "template": "default.html", "engines": ["duckduckgo", "brave"], "positions": [i], "score": 2.0 / i,
            "category": "general"}


ANSWER = {"query": "searx", "number_of_results": 0, "results": [_hit(1), _hit(2), _hit(3)], "answers": [],
          "corrections": [], "infoboxes": [], "suggestions": ["searx github"], "unresponsive_engines": []}


async def test_search(replay: ReplayServer, http: GuardedClient) -> None:
    replay.reply("GET", "/search", json=ANSWER)
    turn = await run_tool(SearXNG, {"searxng_url": replay.base + "/", "top_n": "2"}, http=http, settings=None,
                          query="searx")
    assert turn.error is None, turn.error
    request = replay.only()
    assert (request.method, request.path) == ("GET", "/search")
    assert request.args() == {"q": "searx", "format": "json", "categories": "general", "language": "auto",
                              "safesearch": "1", "pageno": "1"}
    assert turn.output(TOOL, "json") == [_hit(1), _hit(2)]
    docs = [Doc("Result 1", "https://site1.example/page", "About result 1."),
            Doc("Result 2", "https://site2.example/page", "About result 2.")]
    assert turn.output(TOOL, "formalized_content") == kb_prompt(docs)
    assert turn.text == kb_prompt(docs)
    assert_references(turn.state, docs)


@pytest.fixture
async def strict_http() -> AsyncIterator[GuardedClient]:
    """The guarded client as a deployment has it by default: no private addresses."""
    async with create_client(HttpPolicy()) as client:
        yield client


async def test_private_instance_is_blocked_unless_allowed(replay: ReplayServer, strict_http: GuardedClient) -> None:
    replay.reply("GET", "/search", json=ANSWER)
    turn = await run_tool(SearXNG, {"searxng_url": replay.base}, http=strict_http, settings=None, query="searx")
    assert_failed(turn, f"SSRF guard blocked '{replay.base}/search': 127.0.0.1 is not a public address")
    assert replay.requests == []


async def test_no_instance_finds_nothing(replay: ReplayServer, http: GuardedClient) -> None:
    turn = await run_tool(SearXNG, {}, http=http, settings=None, query="searx")
    assert turn.error is None, turn.error
    assert turn.output(TOOL, "formalized_content") == ""
    assert replay.requests == []


async def test_json_format_disabled(replay: ReplayServer, http: GuardedClient) -> None:
    replay.reply("GET", "/search", text="403 Forbidden", status=403, content_type="text/html")
    turn = await run_tool(SearXNG, {"searxng_url": replay.base}, http=http, settings=None, query="searx")
    assert_failed(turn, "SearXNG answered HTTP 403: 403 Forbidden (does the instance allow the json format? see "
                        "search.formats in its settings.yml)")


async def test_not_an_http_url(http: GuardedClient) -> None:
    turn = await run_tool(SearXNG, {"searxng_url": "localhost:4000"}, http=http, settings=None, query="searx")
    assert_failed(turn, "searxng_url 'localhost:4000' is not an http(s) URL")


async def test_invalid_answer(replay: ReplayServer, http: GuardedClient) -> None:
    replay.reply("GET", "/search", json={"results": "none"})
    turn = await run_tool(SearXNG, {"searxng_url": replay.base}, http=http, settings=None, query="searx")
    assert_failed(turn, "Invalid results format from SearXNG")


async def test_agent_tool_call_uses_the_models_url_when_the_component_has_none(replay: ReplayServer,
                                                                              http: GuardedClient) -> None:
    replay.reply("GET", "/search", json=ANSWER)
    call = await call_as_agent_tool(SearXNG, {"top_n": 1}, {"query": "searx", "searxng_url": replay.base},
                                    http=http, settings=None)
    assert call.result == kb_prompt([Doc("Result 1", "https://site1.example/page", "About result 1.")])


async def test_agent_tool_call_component_url_wins(replay: ReplayServer, http: GuardedClient) -> None:
    replay.reply("GET", "/search", json=ANSWER)
    call = await call_as_agent_tool(SearXNG, {"searxng_url": replay.base},
                                    {"query": "searx", "searxng_url": "http://169.254.169.254"}, http=http,
                                    settings=None)
    assert call.output("_ERROR") == ""
    assert len(replay.requests) == 1


async def test_agent_tool_call_blocked(replay: ReplayServer, strict_http: GuardedClient) -> None:
    call = await call_as_agent_tool(SearXNG, {}, {"query": "searx", "searxng_url": "http://169.254.169.254/"},
                                    http=strict_http, settings=None)
    assert call.result == ("SearXNG error: SSRF guard blocked 'http://169.254.169.254/search': "
                           "169.254.169.254 is not a public address")


def test_schema_is_ragflows() -> None:
    assert schema_of(SearXNG) == ragflow_schema(RAGFLOW_META)
    assert SearXNG.meta == RAGFLOW_META

