"""Invoke through the real engine against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl

import pytest

from taskcanvas.components import builtin_registry
from taskcanvas.components.invoke import Invoke, html_text
from taskcanvas.dsl.errors import DslError
from taskcanvas.runtime.engine import Engine
from taskcanvas.runtime.errors import RunStatus
from taskcanvas.tools.http import GuardedClient, HttpPolicy, create_client
from tests.support.canvas import Turn, build, cpn, make_canvas, run_turn
from tests.support.replay import ANY, Recorded, ReplayServer, Reply

PAGE = """<!DOCTYPE html><html><head><title>Ignored</title><style>p {color: red}</style></head>
<body><h1>Weather <b>today</b></h1><p>Sunny   and
  warm<br>High 25&deg;C</p><script>track()</script><!-- note -->
<ul><li>Mon</li><li>Tue</li></ul></body></html>"""


HELLO = Reply(body=b"hello from the server", content_type="text/plain")


def _echo_request(request: Recorded) -> Reply:
    echo = {"method": request.method, "target": request.target, "headers": dict(request.headers.items()),
            "body": request.body.decode()}
    return Reply(body=json.dumps(echo))


@pytest.fixture
def server(replay: ReplayServer) -> ReplayServer:
    """Echoes any other request; ``/flaky`` hangs up the first time, ``/down`` every time."""
    replay.route("GET", "/html", Reply(body=PAGE, content_type="text/html; charset=utf-8"))
    replay.route("GET", "/redirect", Reply(302, b"moved elsewhere", "text/plain", headers={"Location": "/echo"}))
    replay.route("GET", "/text", HELLO)
    replay.route("GET", "/slow", replace(HELLO, delay=1.5))
    replay.route("GET", "/flaky", Reply(hang_up=True), HELLO)
    replay.route("GET", "/down", Reply(hang_up=True))
    replay.route(ANY, ANY, _echo_request)
    return replay


@pytest.fixture
async def http() -> AsyncIterator[GuardedClient]:
    async with create_client(HttpPolicy(allowed_hosts=frozenset({"127.0.0.1"}))) as client:
        yield client


def _engine(invoke: dict[str, Any], http: Any, *, globals: dict[str, Any] | None = None,
            message: str = "{invoke@result}") -> Engine:
    dsl = make_canvas({
        "begin": cpn("Begin", down=["invoke"]),
        "invoke": cpn("Invoke", invoke, down=["answer"]),
        "answer": cpn("Message", {"content": [message]}),
    }, globals=globals)
    registry = builtin_registry()
    registry.register(Invoke)
    return build(dsl, registry, http=http)


async def _run(invoke: dict[str, Any], http: Any, *, query: str = "", **kw: Any) -> Turn:
    return await run_turn(_engine(invoke, http, **kw), query=query)


def _echo(turn: Turn) -> dict[str, Any]:
    assert turn.error is None, turn.error
    echo: dict[str, Any] = json.loads(turn.output("invoke", "result"))
    return echo


# --------------------------------------------------------------------------- requests
async def test_get_sends_variables_as_query_params_like_requests(server: ReplayServer, http: GuardedClient) -> None:
    turn = await _run({
        "url": server.url("/echo?fixed=1"),
        "variables": [
            {"key": "q", "ref": "sys.query"},
            {"key": "n", "value": "5"},           # JSON mode: "5" is sent as the number 5
            {"key": "flag", "value": "true"},     # ... and "true" as True, which requests writes "True"
            {"key": "tags", "value": '["a", "b"]'},  # a list repeats the key
            {"key": "none", "value": "null"},     # None leaves the key out
            {"key": "text", "value": "about {sys.query} today"},
        ],
    }, http, query="hello world")
    echo = _echo(turn)
    assert echo["method"] == "GET"
    assert echo["target"] == ("/echo?fixed=1&q=hello+world&n=5&flag=True&tags=a&tags=b"
                              "&text=about+hello+world+today")
    assert turn.finished("invoke")["inputs"] == {"sys.query": "hello world"}


async def test_url_references_and_missing_scheme(server: ReplayServer, http: GuardedClient) -> None:
    bare = server.url("/echo/{sys.query}?city= {env.city}").removeprefix("http://")
    turn = await _run({"url": bare}, http, query="forecast", globals={"env.city": "Oslo"})
    assert _echo(turn)["target"] == "/echo/forecast?city=%20Oslo"


async def test_post_json_body(server: ReplayServer, http: GuardedClient) -> None:
    turn = await _run({
        "url": server.url("/echo"),
        "method": "post",
        "variables": [
            {"key": "name", "ref": "sys.query"},
            {"key": "count", "value": "3"},
            {"key": "obj", "value": '{"a": [1, 2]}'},
            {"key": "note", "value": "not json: {sys.query}"},
            {"key": "empty"},
        ],
    }, http, query="Bob")
    echo = _echo(turn)
    assert echo["method"] == "POST"
    assert echo["headers"]["Content-Type"] == "application/json"
    # requests' json= encoding: default separators, ASCII escapes.
    assert echo["body"] == '{"name": "Bob", "count": 3, "obj": {"a": [1, 2]}, "note": "not json: Bob", "empty": ""}'


async def test_put_formdata_body(server: ReplayServer, http: GuardedClient) -> None:
    turn = await _run({
        "url": server.url("/echo"),
        "method": "PUT",
        "datatype": "formdata",
        "variables": [{"key": "name", "ref": "sys.query"}, {"key": "count", "value": "3"}],
    }, http, query="Zoë & co")
    echo = _echo(turn)
    assert echo["method"] == "PUT"
    assert echo["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert echo["body"] == "name=Zo%C3%AB+%26+co&count=3"
    assert dict(parse_qsl(echo["body"])) == {"name": "Zoë & co", "count": "3"}


async def test_headers_with_placeholders(server: ReplayServer, http: GuardedClient) -> None:
    headers = {
        "Authorization": "Bearer {token}",
        "X-User": "{sys.query}",
        "X-Key": "{env.api_key}-{token}",
        "X-Count": 3,
        "X-Dropped": None,
        "Content-Type": "text/plain",
    }
    turn = await _run({"url": server.url("/echo"), "method": "post", "headers": json.dumps(headers),
                       "variables": [{"key": "a", "value": "1"}]},
                      http, query="ann", globals={"token": "t0k", "env.api_key": "k3y"})
    got = _echo(turn)["headers"]
    assert got["Authorization"] == "Bearer t0k"
    assert got["X-User"] == "ann"
    assert got["X-Key"] == "k3y-t0k"
    assert got["X-Count"] == "3"
    assert "X-Dropped" not in got
    assert got["Content-Type"] == "text/plain"  # the author's content type wins, as with requests


async def test_a_missing_header_placeholder_fails_the_component(server: ReplayServer, http: GuardedClient) -> None:
    turn = await _run({"url": server.url("/echo"), "headers": '{"Authorization": "Bearer {nope}"}'}, http)
    assert turn.status is RunStatus.FAILED
    assert turn.finished("invoke")["error"] == "Can't find variable: 'nope'"
    assert server.hits == {}


async def test_clean_html(server: ReplayServer, http: GuardedClient) -> None:
    turn = await _run({"url": server.url("/html"), "clean_html": True}, http)
    assert turn.output("invoke", "result") == "# Weather today\nSunny and warm\nHigh 25°C\nMon\nTue"


def test_html_text_keeps_tables_as_html_at_the_end() -> None:
    page = "<div>before<table style='x'><tr><td>a &amp; b</td></tr></table></div><p>after</p><pre> x\n  y</pre>"
    assert html_text(page) == "before\nafter\n x\n  y\n<table><tr><td>a & b</td></tr></table>"


async def test_redirects_are_not_followed(server: ReplayServer, http: GuardedClient) -> None:
    turn = await _run({"url": server.url("/redirect")}, http)
    assert turn.output("invoke", "result") == "moved elsewhere"
    assert server.hits == {"/redirect": 1}


# --------------------------------------------------------------------------- canvas
async def test_the_response_reaches_the_user(server: ReplayServer, http: GuardedClient) -> None:
    turn = await _run({"url": server.url("/text")}, http, message="Server says: {invoke@result}")
    assert turn.status is RunStatus.FINISHED
    assert turn.text == "Server says: hello from the server"
    assert turn.of("node_started")[1]["thoughts"] == "Waiting for the server respond..."


async def test_a_failed_attempt_is_retried_by_the_engine(server: ReplayServer, http: GuardedClient) -> None:
    turn = await _run({"url": server.url("/flaky"), "max_retries": 1, "delay_after_error": 0}, http)
    assert turn.status is RunStatus.FINISHED
    assert turn.text == "hello from the server"
    assert server.hits == {"/flaky": 2}


async def test_the_last_error_is_kept_when_retries_run_out(server: ReplayServer, http: GuardedClient) -> None:
    turn = await _run({"url": server.url("/down"), "max_retries": 1, "delay_after_error": 0}, http)
    assert turn.status is RunStatus.FAILED
    assert turn.finished("invoke")["error"] == "Server disconnected without sending a response."
    assert server.hits == {"/down": 2}


async def test_the_request_timeout_applies(server: ReplayServer, http: GuardedClient) -> None:
    turn = await _run({"url": server.url("/slow"), "timeout": 1}, http)
    assert turn.status is RunStatus.FAILED
    assert turn.finished("invoke")["error"] == "the request timed out after 1 seconds (ReadTimeout)"


def test_the_time_limit_follows_the_timeout_param(http: GuardedClient) -> None:
    engine = _engine({"url": "http://example.test/"}, http)
    assert engine.canvas.components["invoke"].time_limit() == 65.0
    engine = _engine({"url": "http://example.test/", "timeout": 200}, http)
    assert engine.canvas.components["invoke"].time_limit() == 205.0


# --------------------------------------------------------------------------- SSRF
@pytest.mark.parametrize("url", [
    "http://127.0.0.1:{port}/echo",
    "127.0.0.1:{port}/echo",                      # the scheme is added, then the URL checked
    "http://localhost:{port}/echo",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:{port}/echo",
])
async def test_private_urls_are_not_valid(server: ReplayServer, url: str) -> None:
    async with create_client(HttpPolicy()) as guarded:
        port = server.server_address[1]
        turn = await _run({"url": url.format(port=port), "max_retries": 2, "delay_after_error": 0}, guarded)
    assert turn.status is RunStatus.FAILED
    assert turn.output("invoke", "_ERROR") == "URL not valid"
    assert turn.finished("invoke")["error"] == "URL not valid"
    assert server.hits == {}


async def test_a_private_proxy_is_not_valid(server: ReplayServer, monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "public.test":  # passes the check; never connected to (the proxy is refused first)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]
        return await real(host, port, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", resolve)
    async with create_client(HttpPolicy()) as guarded:
        proxy = f"127.0.0.1:{server.server_address[1]}"
        turn = await _run({"url": "http://public.test/", "proxy": proxy}, guarded)
    assert turn.output("invoke", "_ERROR") == "URL not valid"
    assert server.hits == {}


async def test_an_allowed_proxy_is_used(server: ReplayServer, http: GuardedClient) -> None:
    turn = await _run({"url": server.url("/echo"), "proxy": f"http://127.0.0.1:{server.server_address[1]}"}, http)
    # A forward proxy receives the absolute URL.
    assert _echo(turn)["target"] == server.url("/echo")


async def test_no_http_client_is_a_clear_error() -> None:
    turn = await _run({"url": "http://example.test/"}, None)
    assert turn.status is RunStatus.FAILED
    assert turn.finished("invoke")["error"] == "Invoke needs an HTTP client (none was configured)"


# --------------------------------------------------------------------------- params
@pytest.mark.parametrize(("params", "field"), [
    ({"url": ""}, "url"),
    ({"url": "http://x.test", "method": "delete"}, "method"),
    ({"url": "http://x.test", "timeout": 0}, "timeout"),
    ({"url": "http://x.test", "timeout": 1.5}, "timeout"),
    ({"url": "http://x.test", "timeout": "60"}, "timeout"),
    ({"url": "http://x.test", "datatype": "xml"}, "datatype"),
    ({"url": "http://x.test", "clean_html": "yes"}, "clean_html"),
    ({"url": "http://x.test", "variables": [{"ref": "sys.query"}]}, "variables.0.key"),
])
def test_params_are_checked_like_ragflow(params: dict[str, Any], field: str) -> None:
    with pytest.raises(DslError) as info:
        _engine(params, None)
    assert f"params.{field}" in str(info.value)
