"""Crawler through the engine against pages served on 127.0.0.1."""

from __future__ import annotations

from typing import Any

import pytest

from taskcanvas.tools.crawler import URL_NOT_VALID, Crawler, html_to_markdown, html_to_text
from taskcanvas.tools.http import HttpPolicy, create_client
from tests.support.canvas import build, cpn, make_canvas
from tests.support.replay import ReplayServer, Reply
from tests.tools.data.support import run_tool

PAGE = """<!DOCTYPE html><html><head><title>Forecast</title><style>p {color: red}</style>
<script>track()</script></head>
<body><nav><a href="/">Home</a></nav>
<h1>Weather <b>today</b></h1>
<p>Sunny   and <em>warm</em><br>High 25&deg;C. <a href="/week?city=x">This week</a></p>
<ul><li>Mon</li><li>Tue<ul><li>morning rain</li></ul></li></ul>
<table><tr><th>Day</th><th>High</th></tr><tr><td>Mon</td><td>25</td></tr></table>
<img src="/sun.png" alt="sun"><!-- hidden -->
</body></html>"""

MARKDOWN = """[Home](BASE/)

# Weather **today**

Sunny and *warm*
High 25°C. [This week](BASE/week?city=x)

- Mon
- Tue
  - morning rain

| Day | High |
|---|---|
| Mon | 25 |

![sun](BASE/sun.png)"""

RAGFLOW_SCHEMA = {
    "type": "function",
    "function": {
        "name": "web_crawler",
        "description": "This tool can be used to crawl a web page and return its content as HTML, Markdown, or the "
                       "extracted main text.",
        "parameters": {"type": "object", "properties": {"query": {
            "type": "string",
            "description": "The absolute URL (including the http:// or https:// scheme) of the web page to crawl."}},
            "required": ["query"]},
    },
}


@pytest.fixture
def site(replay: ReplayServer) -> ReplayServer:
    replay.route("GET", "/page", Reply(body=PAGE, content_type="text/html; charset=utf-8"))
    replay.route("GET", "/moved", Reply(302, b"", headers={"Location": "/page"}))
    replay.route("GET", "/to-metadata", Reply(302, b"", headers={"Location": "http://169.254.169.254/latest/"}))
    replay.route("GET", "/gone", Reply(404, b"<h1>Not here</h1>", content_type="text/html"))
    replay.route("GET", "/notes.txt", Reply(body="plain <b>text</b>\n", content_type="text/plain"))
    replay.route("GET", "/latin1", Reply(body='<meta charset="iso-8859-1"><p>caf\xe9</p>'.encode("latin-1"),
                                         content_type="text/html"))
    return replay


async def test_markdown_by_default(site: ReplayServer, http: Any) -> None:
    turn = await run_tool(Crawler, {}, http=http, query=site.base + "/page")
    assert turn.error is None, turn.error
    assert turn.output("tool", "formalized_content") == MARKDOWN.replace("BASE", site.base)
    assert turn.text == turn.output("tool", "formalized_content")
    seen = site.requests_to("/page")[0]
    assert seen.method == "GET"
    assert "text/html" in (seen.headers.get("Accept") or "")


async def test_redirects_are_followed_and_links_resolved_against_the_final_url(site: ReplayServer,
                                                                                 http: Any) -> None:
    turn = await run_tool(Crawler, {"extract_type": "content"}, http=http, query=site.base + "/moved")
    assert turn.output("tool", "formalized_content") == (
        "Home\n\nWeather today\n\nSunny and warm\nHigh 25°C. This week\n\n- Mon\n- Tue\n  - morning rain\n\n"
        "Day\tHigh\nMon\t25\n\nsun")


async def test_cleaned_html(site: ReplayServer, http: Any) -> None:
    turn = await run_tool(Crawler, {"extract_type": "html"}, http=http, query=site.base + "/page")
    html = turn.output("tool", "formalized_content")
    assert html.startswith("<body><nav><a href=\"/\">Home</a></nav>")
    assert "<script" not in html and "<style" not in html and "hidden" not in html
    assert '<img src="/sun.png" alt="sun">' in html


async def test_not_html_is_returned_as_is_and_charsets_are_read(site: ReplayServer, http: Any) -> None:
    turn = await run_tool(Crawler, {}, http=http, query=site.base + "/notes.txt")
    assert turn.output("tool", "formalized_content") == "plain <b>text</b>\n"
    turn = await run_tool(Crawler, {}, http=http, query=site.base + "/latin1")
    assert turn.output("tool", "formalized_content") == "café"


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "127.0.0.1/page", "file:///etc/passwd"])
async def test_urls_that_are_not_http(url: str, http: Any) -> None:
    turn = await run_tool(Crawler, {}, http=http, query=url)
    assert turn.output("tool", "_ERROR") == URL_NOT_VALID
    assert not turn.output("tool", "formalized_content")


async def test_ssrf_guard(site: ReplayServer, http: Any) -> None:
    async with create_client(HttpPolicy()) as strict:
        turn = await run_tool(Crawler, {}, http=strict, query=site.base + "/page")
    assert turn.output("tool", "_ERROR") == URL_NOT_VALID
    assert site.requests_to("/page") == []
    # A redirect to the metadata address is refused at its hop.
    turn = await run_tool(Crawler, {}, http=http, query=site.base + "/to-metadata")
    assert turn.output("tool", "_ERROR") == URL_NOT_VALID


async def test_http_error(site: ReplayServer, http: Any) -> None:
    turn = await run_tool(Crawler, {"max_retries": 2, "delay_after_error": 0}, http=http, query=site.base + "/gone")
    assert turn.output("tool", "_ERROR") == f"An unexpected error occurred: HTTP 404 Not Found from {site.base}/gone"
    assert len(site.requests_to("/gone")) == 1  # as in ragflow, not retried


async def test_empty_url(http: Any) -> None:
    turn = await run_tool(Crawler, {}, http=http, query="")
    assert turn.error is None
    assert turn.output("tool", "formalized_content") == ""


async def test_through_a_proxy(site: ReplayServer, http: Any) -> None:
    turn = await run_tool(Crawler, {"proxy": site.base}, http=http, query=site.base + "/page")
    assert turn.error is None, turn.error
    assert site.requests_to("/page")[0].target == site.base + "/page"  # absolute form: sent to a proxy


def test_schema_and_params() -> None:
    from taskcanvas.components import builtin_registry
    from taskcanvas.dsl.errors import DslError

    registry = builtin_registry()
    registry.register(Crawler)
    dsl = make_canvas({"begin": cpn("Begin", down=["tool"]), "tool": cpn("Crawler", {})})
    tool = build(dsl, registry).canvas.components["tool"]
    assert isinstance(tool, Crawler)
    assert tool.function_schema() == RAGFLOW_SCHEMA
    dsl = make_canvas({"begin": cpn("Begin", down=["tool"]), "tool": cpn("Crawler", {"extract_type": "pdf"})})
    with pytest.raises(DslError, match="extract_type 'pdf' is not supported"):
        build(dsl, registry)


def test_conversion_details() -> None:
    page = ('<base href="https://docs.example/v2/"><ol start="3"><li><p>Three</p><p>more</p></li><li>Four</li></ol>'
            '<pre>a  b\n  c</pre><blockquote>said</blockquote><p>x<code>y</code> <s>old</s></p>'
            '<a href="guide.html"><img src="logo.png" alt="logo"></a><p>Unclosed<p>Next')
    assert html_to_markdown(page, "https://ignored.example/") == (
        "3. Three\n   more\n4. Four\n\n```\na  b\n  c\n```\n\n> said\n\nx`y` ~~old~~\n\n"
        "[![logo](https://docs.example/v2/logo.png)](https://docs.example/v2/guide.html)\n\nUnclosed\n\nNext")
    assert html_to_text("<p>one<br/>two</p><script>no()</script><p>three</p>") == "one\ntwo\n\nthree"
    # A <head> without its end tag, a self-closed <svg/>, a self-closed <base/>.
    page = ('<html><head><title>x</title><base href="https://a.example/d/"/><body><svg/><p>one <a href="x">link</a>'
            '</p><svg><path/></svg><p>two</p>')
    assert html_to_markdown(page) == "one [link](https://a.example/d/x)\n\ntwo"
