"""DuckDuckGo against a loopback server answering like html.duckduckgo.com and duckduckgo.com/news.js."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from taskcanvas.tools.duckduckgo import DuckDuckGo, parse_html_results
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
    "name": "duckduckgo_search",
    "description": "DuckDuckGo is a search engine focused on privacy. It offers search capabilities for web pages, images, and provides translation services. DuckDuckGo also features a private AI chat interface, providing users with an AI assistant that prioritizes data protection.",  # noqa: E501
    "parameters": {
        "query": {
            "type": "string",
            "description": "The search keywords to execute with DuckDuckGo. The keywords should be the most important words/terms(includes synonyms) from the original request.",  # noqa: E501
            "default": "{sys.query}",
            "required": True,
        },
        "channel": {
            "type": "string",
            "description": "default:general. The category of the search. `news` is useful for retrieving real-time updates, particularly about politics, sports, and major current events covered by mainstream media sources. `general` is for broader, more general-purpose searches that may include a wide range of sources.",  # noqa: E501
            "enum": ["general", "news"],
            "default": "general",
            "required": False,
        },
    },
}


def _result(href: str, title: str, snippet: str) -> str:
    """One organic result as html.duckduckgo.com renders it."""
    return f"""
  <div class="result results_links results_links_deep web-result ">
    <div class="links_main links_deep result__body">
      <h2 class="result__title">
        <a rel="nofollow" class="result__a" href="{href}">{title}</a>
      </h2>
      <div class="result__extras">
        <div class="result__extras__url">
          <span class="result__icon"><a rel="nofollow" href="{href}"><img class="result__icon__img" width="16"
            height="16" alt="" src="//external-content.duckduckgo.com/ip3/x.ico" name="i15" /></a></span>
          <a class="result__url" href="{href}">x</a>
        </div>
      </div>
      <a class="result__snippet" href="{href}">{snippet}</a>
      <div class="clear"></div>
    </div>
  </div>"""


AD = """
  <div class="result results_links results_links_deep result--ad ">
    <div class="links_main links_deep result__body">
      <h2 class="result__title"><a rel="nofollow" class="result__a"
        href="https://duckduckgo.com/y.js?ad_domain=ads.example&amp;ad_provider=bingv7aa">Buy snakes</a></h2>
      <a class="result__snippet" href="https://duckduckgo.com/y.js?ad_domain=ads.example&amp;ad_provider=bingv7aa"
        >Cheap snakes, delivered.</a>
    </div>
  </div>"""

NEXT_PAGE = """
  <div class="nav-link">
    <form action="/html/" method="post">
      <input type="submit" class='btn btn--alt' value="Next" />
      <input type="hidden" name="q" value="python language" />
      <input type="hidden" name="s" value="10" />
      <input type="hidden" name="nextParams" value="" />
      <input type="hidden" name="v" value="l" />
      <input type="hidden" name="o" value="json" />
      <input type="hidden" name="dc" value="11" />
      <input type="hidden" name="api" value="d.js" />
      <input type="hidden" name="vqd" value="4-115046585263487426376" />
      <input name="kl" value="wt-wt" type="hidden">
    </form>
  </div>"""


def _page(*results: str, nav: str = "") -> str:
    return f"""<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"
 "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html><head><meta http-equiv="content-type" content="text/html; charset=UTF-8">
<title>python language at DuckDuckGo</title>
<link rel="stylesheet" href="/dist/h.css" type="text/css"></head>
<body>
<div class="header"><form id="search_form" action="/html/" method="post"><input type="text" name="q" value="python">
</form></div>
<div id="links" class="results">{"".join(results)}{nav}
</div></body></html>"""


PAGE_1 = _page(
    AD,
    _result("https://www.python.org/", "Welcome to Python.org",
            "The official home of the <b>Python</b> Programming Language."),
    _result("//duckduckgo.com/l/?uddg=https%3A%2F%2Fdocs.python.org%2F3%2F&amp;rut=9f1e",
            "3.13 Documentation", "Python 3 docs &amp; tutorials"),
    nav=NEXT_PAGE,
)
PAGE_2 = _page(
    _result("https://www.python.org/", "Welcome to Python.org", "again"),
    _result("https://en.wikipedia.org/wiki/Python_(programming_language)", "Python (programming language)",
            "Python is a high-level, general-purpose programming language."),
    _result("https://realpython.com/", "Real Python", "Python tutorials"),
    nav=NEXT_PAGE,
)
WEB_JSON = [
    {"title": "Welcome to Python.org", "href": "https://www.python.org/",
     "body": "The official home of the Python Programming Language."},
    {"title": "3.13 Documentation", "href": "https://docs.python.org/3/", "body": "Python 3 docs & tutorials"},
    {"title": "Python (programming language)", "href": "https://en.wikipedia.org/wiki/Python_(programming_language)",
     "body": "Python is a high-level, general-purpose programming language."},
]


def _settings(tmp_path: Path, replay: ReplayServer) -> Any:
    return make_settings(tmp_path, endpoints={"duckduckgo_html": replay.base, "duckduckgo": replay.base})


async def test_web_search_reads_the_html_pages(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("POST", "/html/", text=PAGE_1, content_type="text/html; charset=UTF-8")
    replay.reply("POST", "/html/", text=PAGE_2, content_type="text/html; charset=UTF-8")
    # As ragflow's web_search_assistant template stores the tool.
    turn = await run_tool(DuckDuckGo, {"channel": "text", "top_n": 3}, http=http,
                          settings=_settings(tmp_path, replay), query="python language")
    assert turn.error is None, turn.error

    first, second = replay.requests
    assert (first.method, first.path) == ("POST", "/html/")
    assert first.headers["content-type"] == "application/x-www-form-urlencoded"
    assert first.form() == {"q": "python language", "b": "", "kl": "wt-wt"}
    assert second.form() == {"q": "python language", "s": "10", "nextParams": "", "v": "l", "o": "json", "dc": "11",
                             "api": "d.js", "vqd": "4-115046585263487426376", "kl": "wt-wt"}
    assert turn.output(TOOL, "json") == WEB_JSON
    docs = [Doc(r["title"], r["href"], r["body"]) for r in WEB_JSON]
    assert turn.output(TOOL, "formalized_content") == kb_prompt(docs)
    assert turn.text == kb_prompt(docs)
    assert_references(turn.state, docs)


async def test_no_results(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("POST", "/html/", text=_page('<div class="no-results">No  results.</div>'),
                 content_type="text/html")
    turn = await run_tool(DuckDuckGo, {}, http=http, settings=_settings(tmp_path, replay), query="qwxzzqv")
    assert turn.error is None, turn.error
    assert turn.output(TOOL, "formalized_content") == ""
    assert turn.output(TOOL, "json") == []


async def test_one_page_is_enough_when_it_has_top_n(replay: ReplayServer, http: GuardedClient,
                                                    tmp_path: Path) -> None:
    replay.reply("POST", "/html/", text=PAGE_1, content_type="text/html")
    turn = await run_tool(DuckDuckGo, {"top_n": 1}, http=http, settings=_settings(tmp_path, replay), query="python")
    assert turn.output(TOOL, "json") == WEB_JSON[:1]
    assert len(replay.requests) == 1


async def test_rate_limit_page_is_an_error(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("POST", "/html/", text="<html>anomaly</html>", status=202, content_type="text/html")
    turn = await run_tool(DuckDuckGo, {}, http=http, settings=_settings(tmp_path, replay), query="python")
    assert_failed(turn, "DuckDuckGo answered HTTP 202: it is limiting the rate of searches")


async def test_server_error(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("POST", "/html/", text="Service Unavailable", status=503)
    turn = await run_tool(DuckDuckGo, {}, http=http, settings=_settings(tmp_path, replay), query="python")
    assert_failed(turn, "DuckDuckGo answered HTTP 503: Service Unavailable")


# --------------------------------------------------------------------------- news
NEWS_1 = {
    "ads": [],
    "next": "news.js?l=wt-wt&o=json&noamp=1&q=python&vqd=4-98765&p=-1&s=2",
    "query": "python",
    "results": [
        {"date": 1718000000, "excerpt": "The <b>Python</b> Software Foundation &amp; friends announced ...",
         "image": "https://imgs.example/psf.jpg", "relative_time": "2 days ago", "source": "Example News",
         "title": "PSF announces Python 3.13", "url": "https://news.example/psf-313"},
        {"date": 1717900000, "excerpt": "Snakes on a plane, again.", "image": "",
         "relative_time": "3 days ago", "source": "Daily Reptile", "title": "Python found on plane",
         "url": "https://reptiles.example/plane"},
    ],
    "vqd": {"python": "4-98765"},
}
NEWS_2 = {
    "ads": [],
    "query": "python",
    "results": [
        {"date": 1717800000, "excerpt": "A third story", "image": None, "source": "Third",
         "title": "Third story", "url": "https://third.example/story"},
    ],
}


async def test_news_channel_searches_news(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/", text='<html><script>DDG.deep.initialize("/d.js?q=python&vqd="4-98765"&l=wt-wt");'
                                  "</script></html>", content_type="text/html")
    replay.reply("GET", "/news.js", json=NEWS_1)
    replay.reply("GET", "/news.js", json=NEWS_2)
    turn = await run_tool(DuckDuckGo, {"channel": "news", "top_n": 10}, http=http,
                          settings=_settings(tmp_path, replay), query="python")
    assert turn.error is None, turn.error

    token, page1, page2 = replay.requests
    assert (token.method, token.path, token.args()) == ("GET", "/", {"q": "python"})
    assert (page1.method, page1.path) == ("GET", "/news.js")
    assert page1.args() == {"l": "wt-wt", "o": "json", "noamp": "1", "q": "python", "vqd": "4-98765", "p": "-1"}
    assert page2.args()["s"] == "2"
    expected = [
        {"date": datetime.fromtimestamp(1718000000, UTC).isoformat(), "title": "PSF announces Python 3.13",
         "body": "The Python Software Foundation & friends announced ...", "url": "https://news.example/psf-313",
         "image": "https://imgs.example/psf.jpg", "source": "Example News"},
        {"date": datetime.fromtimestamp(1717900000, UTC).isoformat(), "title": "Python found on plane",
         "body": "Snakes on a plane, again.", "url": "https://reptiles.example/plane", "image": "",
         "source": "Daily Reptile"},
        {"date": datetime.fromtimestamp(1717800000, UTC).isoformat(), "title": "Third story",
         "body": "A third story", "url": "https://third.example/story", "image": "", "source": "Third"},
    ]
    assert turn.output(TOOL, "json") == expected
    docs = [Doc(r["title"], r["url"], r["body"]) for r in expected]
    assert turn.output(TOOL, "formalized_content") == kb_prompt(docs)
    assert_references(turn.state, docs)


async def test_news_without_token_is_an_error(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/", text="<html>nothing here</html>", content_type="text/html")
    turn = await run_tool(DuckDuckGo, {"channel": "news"}, http=http, settings=_settings(tmp_path, replay),
                          query="python")
    assert_failed(turn, "DuckDuckGo's page has no search token (vqd) for the news search")


# --------------------------------------------------------------------------- as an Agent's tool
async def test_agent_tool_call_picks_the_channel(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/", text="<html>vqd=4-555&amp;x</html>", content_type="text/html")
    replay.reply("GET", "/news.js", json=NEWS_2)
    call = await call_as_agent_tool(DuckDuckGo, {}, {"query": "python", "channel": "news"}, http=http,
                                    settings=_settings(tmp_path, replay))
    assert call.result == kb_prompt([Doc("Third story", "https://third.example/story", "A third story")])
    assert replay.requests[1].args()["vqd"] == "4-555"

    replay.requests.clear()
    replay.reply("POST", "/html/", text=PAGE_1, content_type="text/html")
    call = await call_as_agent_tool(DuckDuckGo, {"top_n": 2}, {"query": "python", "channel": "general"}, http=http,
                                    settings=_settings(tmp_path, replay))
    assert call.result == kb_prompt([Doc(r["title"], r["href"], r["body"]) for r in WEB_JSON[:2]])
    assert [r.path for r in replay.requests] == ["/html/"]


async def test_agent_tool_call_failure(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("POST", "/html/", text="Forbidden", status=403)
    call = await call_as_agent_tool(DuckDuckGo, {}, {"query": "python"}, http=http,
                                    settings=_settings(tmp_path, replay))
    assert call.result == "DuckDuckGo error: DuckDuckGo answered HTTP 403: Forbidden"


def test_html_parser_on_its_own() -> None:
    results, next_form = parse_html_results(_page(AD))
    assert results == []
    assert next_form is None


def test_schema_is_ragflows() -> None:
    assert schema_of(DuckDuckGo) == ragflow_schema(RAGFLOW_META)
    assert DuckDuckGo.meta == RAGFLOW_META
