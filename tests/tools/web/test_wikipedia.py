"""Wikipedia against a loopback server answering like the MediaWiki Action API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from taskcanvas.dsl.errors import DslError
from taskcanvas.tools.http import GuardedClient
from taskcanvas.tools.wikipedia import Wikipedia
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
    "name": "wikipedia_search",
    "description": """A wide range of how-to and information pages are made available in wikipedia. Since 2001, it has grown rapidly to become the world's largest reference website. From Wikipedia, the free encyclopedia.""",  # noqa: E501
    "parameters": {
        "query": {
            "type": "string",
            "description": "The search keyword to execute with wikipedia. The keyword MUST be a specific subject that can match the title.",  # noqa: E501
            "default": "{sys.query}",
            "required": True,
        }
    },
}

# list=search, formatversion=2
SEARCH = {
    "batchcomplete": True,
    "continue": {"sroffset": 4, "continue": "-||"},
    "query": {"searchinfo": {"totalhits": 5120}, "search": [
        {"ns": 0, "title": "Alan Turing", "pageid": 1208},
        {"ns": 0, "title": "Turing (disambiguation)", "pageid": 30720},
        {"ns": 0, "title": "Turing machine", "pageid": 30403},
        {"ns": 0, "title": "Deleted page", "pageid": 99999},
    ]},
}
# prop=extracts|info|pageprops for those ids (MediaWiki returns pages in its own order)
PAGES = {
    "batchcomplete": True,
    "query": {"pages": [
        {"pageid": 30403, "ns": 0, "title": "Turing machine", "contentmodel": "wikitext", "pagelanguage": "en",
         "touched": "2024-06-01T00:00:00Z", "lastrevid": 1, "length": 10,
         "fullurl": "https://en.wikipedia.org/wiki/Turing_machine",
         "editurl": "https://en.wikipedia.org/w/index.php?title=Turing_machine&action=edit",
         "canonicalurl": "https://en.wikipedia.org/wiki/Turing_machine",
         "extract": "A Turing machine is a mathematical model of computation."},
        {"pageid": 1208, "ns": 0, "title": "Alan Turing", "fullurl": "https://en.wikipedia.org/wiki/Alan_Turing",
         "extract": "Alan Mathison Turing was an English mathematician.\nHe was highly influential."},
        {"pageid": 30720, "ns": 0, "title": "Turing (disambiguation)",
         "fullurl": "https://en.wikipedia.org/wiki/Turing_(disambiguation)",
         "pageprops": {"disambiguation": ""}, "extract": "Turing may refer to:"},
        {"pageid": 99999, "missing": True},
    ]},
}
DOCS = [
    Doc("Alan Turing", "https://en.wikipedia.org/wiki/Alan_Turing",
        "Alan Mathison Turing was an English mathematician.\nHe was highly influential."),
    Doc("Turing machine", "https://en.wikipedia.org/wiki/Turing_machine",
        "A Turing machine is a mathematical model of computation."),
]


def _settings(tmp_path: Path, replay: ReplayServer) -> Any:
    return make_settings(tmp_path, endpoints={"wikipedia": replay.base + "/{language}"})


async def test_search_then_intros(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/en/w/api.php", json=SEARCH)
    replay.reply("GET", "/en/w/api.php", json=PAGES)
    turn = await run_tool(Wikipedia, {"top_n": 4}, http=http, settings=_settings(tmp_path, replay),
                          query="Turing")
    assert turn.error is None, turn.error

    search, pages = replay.requests
    assert search.args() == {"action": "query", "format": "json", "formatversion": "2", "list": "search",
                             "srsearch": "Turing", "srlimit": "4", "srprop": ""}
    assert pages.args() == {"action": "query", "format": "json", "formatversion": "2",
                            "pageids": "1208|30720|30403|99999", "prop": "extracts|info|pageprops",
                            "exintro": "1", "explaintext": "1", "exlimit": "4", "inprop": "url",
                            "ppprop": "disambiguation", "redirects": "1"}
    assert "taskcanvas" in search.headers["user-agent"]
    # Search order; the disambiguation page and the missing one are left out.
    assert turn.output(TOOL, "formalized_content") == kb_prompt(DOCS)
    assert turn.text == kb_prompt(DOCS)
    assert_references(turn.state, DOCS)
    started = next(d for d in turn.of("node_started") if d["component_id"] == TOOL)
    assert started["thoughts"] == "\nKeywords: Turing\nLooking for the most relevant articles.\n        "


async def test_language_picks_the_wiki(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/de/w/api.php", json={"batchcomplete": True, "query": {"search": []}})
    turn = await run_tool(Wikipedia, {"language": "de"}, http=http, settings=_settings(tmp_path, replay),
                          query="Turing")
    assert turn.error is None, turn.error
    assert [r.path for r in replay.requests] == ["/de/w/api.php"]
    assert turn.output(TOOL, "formalized_content") == ""


async def test_many_pages_are_asked_for_twenty_at_a_time(replay: ReplayServer, http: GuardedClient,
                                                         tmp_path: Path) -> None:
    hits = [{"ns": 0, "title": f"Page {i}", "pageid": i} for i in range(1, 26)]
    replay.reply("GET", "/en/w/api.php", json={"query": {"search": hits}})
    replay.reply("GET", "/en/w/api.php", json={"query": {"pages": [
        {"pageid": i, "title": f"Page {i}", "fullurl": f"https://en.wikipedia.org/wiki/Page_{i}",
         "extract": f"Text {i}"} for i in range(1, 21)]}})
    replay.reply("GET", "/en/w/api.php", json={"query": {"pages": [
        {"pageid": i, "title": f"Page {i}", "fullurl": f"https://en.wikipedia.org/wiki/Page_{i}",
         "extract": f"Text {i}"} for i in range(21, 26)]}})
    turn = await run_tool(Wikipedia, {"top_n": 25}, http=http, settings=_settings(tmp_path, replay), query="page")
    assert turn.error is None, turn.error
    assert [r.arg("pageids").count("|") + 1 for r in replay.requests[1:]] == [20, 5]
    docs = [Doc(f"Page {i}", f"https://en.wikipedia.org/wiki/Page_{i}", f"Text {i}") for i in range(1, 26)]
    assert turn.output(TOOL, "formalized_content") == kb_prompt(docs)


async def test_api_error_is_the_components_error(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/en/w/api.php", json={
        "error": {"code": "maxlag", "info": "Waiting for 10.64.48.23: 1.2 seconds lagged."}, "servedby": "mw1"})
    turn = await run_tool(Wikipedia, {}, http=http, settings=_settings(tmp_path, replay), query="Turing")
    assert_failed(turn, "Wikipedia: Waiting for 10.64.48.23: 1.2 seconds lagged.")


async def test_http_error(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/en/w/api.php", text="Too many requests", status=429)
    turn = await run_tool(Wikipedia, {}, http=http, settings=_settings(tmp_path, replay), query="Turing")
    assert_failed(turn, "Wikipedia answered HTTP 429: Too many requests")


async def test_agent_tool_call(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/en/w/api.php", json=SEARCH)
    replay.reply("GET", "/en/w/api.php", json=PAGES)
    call = await call_as_agent_tool(Wikipedia, {}, {"query": "Turing"}, http=http,
                                    settings=_settings(tmp_path, replay))
    assert call.result == kb_prompt(DOCS)
    assert replay.requests[0].arg("srlimit") == "10"


def test_language_is_checked_like_ragflow() -> None:
    with pytest.raises(DslError, match="language 'xx' is not supported"):
        schema_of(Wikipedia, {"language": "xx"})


def test_schema_is_ragflows() -> None:
    assert schema_of(Wikipedia) == ragflow_schema(RAGFLOW_META)
    assert Wikipedia.meta == RAGFLOW_META
