"""TuShare and Jin10 through the engine against replays of their HTTP APIs on 127.0.0.1."""

from __future__ import annotations

from typing import Any

import pytest

from taskcanvas.tools.china_market import UNAVAILABLE, Jin10, TuShare
from tests.support.replay import ReplayServer, Reply
from tests.tools.data.support import run_tool, settings

NEWS = {"request_id": "f6a8", "code": 0, "msg": "", "data": {
    "fields": ["datetime", "content", "title", "channels"],
    "items": [["2024-05-06 09:30:00", "贵州茅台发布年报，营收增长", "茅台年报", ""],
              ["2024-05-06 09:31:00", "Nvidia shares rise", "", ""],
              ["2024-05-06 09:32:00", "茅台 dividend announced", "分红", ""]],
    "has_more": False}}


def _tushare(replay: ReplayServer, **tools: Any) -> Any:
    return settings(endpoints={"tushare": replay.base + "/tushare"}, tools=tools)


async def test_tushare_news_filtered_by_keyword(replay: ReplayServer, http: Any) -> None:
    replay.route("POST", "/tushare", NEWS)
    params = {"token": "tk", "src": "sina", "start_date": "2024-05-06 09:00:00", "end_date": "2024-05-06 10:00:00"}
    turn = await run_tool(TuShare, params, http=http, config=_tushare(replay), query="茅台",
                          message="{tool@content}")
    assert turn.error is None, turn.error
    assert turn.output("tool", "content") == (
        "|    | datetime            | content                    | title    | channels   |\n"
        "|---:|:--------------------|:---------------------------|:---------|:-----------|\n"
        "|  0 | 2024-05-06 09:30:00 | 贵州茅台发布年报，营收增长 | 茅台年报 |            |\n"
        "|  2 | 2024-05-06 09:32:00 | 茅台 dividend announced    | 分红     |            |")
    assert replay.requests_to("/tushare")[0].json() == {
        "api_name": "news", "token": "tk",
        "params": {"src": "sina", "start_date": "2024-05-06 09:00:00", "end_date": "2024-05-06 10:00:00"}}


async def test_tushare_keyword_param_and_token_from_settings(replay: ReplayServer, http: Any) -> None:
    replay.route("POST", "/tushare", NEWS)
    turn = await run_tool(TuShare, {"keyword": "NVIDIA"}, http=http,
                          config=_tushare(replay, tushare={"token": "from-settings"}), query="茅台")
    assert "Nvidia shares rise" in turn.output("tool", "content")
    assert "茅台" not in turn.output("tool", "content")
    assert replay.requests_to("/tushare")[0].json()["token"] == "from-settings"


async def test_tushare_errors(replay: ReplayServer, http: Any) -> None:
    replay.route("POST", "/tushare",
                 {"request_id": "x", "code": 40101, "msg": "抱歉，您输入的TOKEN无效！", "data": None})
    turn = await run_tool(TuShare, {"token": "bad"}, http=http, config=_tushare(replay), query="茅台")
    assert turn.output("tool", "_ERROR") == "TuShare error: TuShare answered code 40101: 抱歉，您输入的TOKEN无效！"
    turn = await run_tool(TuShare, {}, http=http, config=_tushare(replay), query="茅台")
    assert turn.output("tool", "_ERROR").startswith("TuShare error: TuShare needs a token")
    turn = await run_tool(TuShare, {"token": "tk"}, http=http, config=_tushare(replay), query="")
    assert turn.error is None
    assert turn.output("tool", "content") == ""


# --------------------------------------------------------------------------- Jin10
FLASH = {"status": 200, "message": "OK", "data": [
    {"id": "20240506093000000100", "time": "2024-05-06 09:30:00", "type": 0, "important": 1,
     "data": {"content": "【美联储】维持利率不变。", "pic": ""}, "tags": [], "channel": [1], "remark": []},
    {"id": "20240506093100000200", "time": "2024-05-06 09:31:00", "type": 0, "important": 0,
     "data": {"content": "现货黄金上涨0.5%。", "pic": ""}, "tags": [], "channel": [1], "remark": []}]}
QUOTES = {"status": 200, "message": "OK", "data": [
    {"a": 63510.2, "b": 63500.1, "c": "BTCUSD", "e": "CRYPTO", "h": 64000.0, "hc": 62000.0, "l": 61900.0,
     "o": 62100.0, "p": 63505.5, "t": "2024-05-06 09:30:00", "v": 1200}]}


def _jin10(replay: ReplayServer) -> Any:
    return settings(endpoints={"jin10": replay.base + "/jin10"})


async def test_jin10_flash(replay: ReplayServer, http: Any) -> None:
    replay.route("GET", "/jin10/data-api/flash", FLASH)
    turn = await run_tool(Jin10, {"secret_key": "sk", "flash_type": "3", "contain": "黄金"}, http=http,
                          config=_jin10(replay), message="{tool@content}")
    assert turn.error is None, turn.error
    assert turn.output("tool", "content") == "【美联储】维持利率不变。\n现货黄金上涨0.5%。"
    seen = replay.requests_to("/jin10/data-api/flash")[0]
    assert seen.method == "GET"
    assert seen.headers.get("secret-key") == "sk"
    assert seen.arg("category") == "3"
    assert seen.json() == {"category": "3", "contain": "黄金", "filter": ""}


async def test_jin10_quotes_renamed(replay: ReplayServer, http: Any) -> None:
    replay.route("GET", "/jin10/data-api/quotes", QUOTES)
    turn = await run_tool(Jin10, {"secret_key": "sk", "type": "symbols", "symbols_type": "CRYPTO",
                                  "symbols_datatype": "quotes"}, http=http, config=_jin10(replay))
    table = turn.output("tool", "content")
    header = [cell.strip() for cell in table.splitlines()[0].split("|")[1:-1]]
    assert header == ["", "v", "Selling Price", "Buying Price", "Commodity Code", "Stock Exchange", "Highest Price",
                      "Yesterday’s Closing Price", "Lowest Price", "Opening Price", "Latest Price",
                      "Market Quote Time"]
    assert [cell.strip() for cell in table.splitlines()[2].split("|")[1:-1]] == [
        "0", "1200", "63510.2", "63500.1", "BTCUSD", "CRYPTO", "64000", "62000", "61900", "62100", "63505.5",
        "2024-05-06 09:30:00"]
    seen = replay.requests_to("/jin10/data-api/quotes")[0]
    assert seen.arg("type") == "CRYPTO"
    assert seen.json() == {"type": "CRYPTO", "codes": "BTCUSD"}


async def test_jin10_calendar_and_errors(replay: ReplayServer, http: Any) -> None:
    replay.route("GET", "/jin10/data-api/calendar/event", {"status": 200, "message": "OK", "data": [
        {"pub_time": "2024-05-07 20:30", "country": "美国", "name": "非农就业", "star": 5}]})
    turn = await run_tool(Jin10, {"secret_key": "sk", "type": "calendar", "calendar_datatype": "event",
                                  "calendar_type": "us"}, http=http, config=_jin10(replay))
    assert turn.output("tool", "content") == (
        "|    | pub_time         | country   | name     |   star |\n"
        "|---:|:-----------------|:----------|:---------|-------:|\n"
        "|  0 | 2024-05-07 20:30 | 美国      | 非农就业 |      5 |")
    assert replay.requests_to("/jin10/data-api/calendar/event")[0].arg("category") == "us"

    replay.route("GET", "/jin10/data-api/news", Reply(401, {"status": 401, "message": "secret-key invalid"}))
    turn = await run_tool(Jin10, {"secret_key": "bad", "type": "news", "max_retries": 1, "delay_after_error": 0},
                          http=http, config=_jin10(replay))
    assert turn.output("tool", "_ERROR") == (
        'Jin10 error: Jin10 answered HTTP 401: {"status": 401, "message": "secret-key invalid"}')
    assert len(replay.requests_to("/jin10/data-api/news")) == 2
    turn = await run_tool(Jin10, {}, http=http, config=_jin10(replay))
    assert turn.output("tool", "_ERROR").startswith("Jin10 error: Jin10 needs a secret key")


def test_params_checked_at_load() -> None:
    from taskcanvas.components import builtin_registry
    from taskcanvas.dsl.errors import DslError
    from tests.support.canvas import build, cpn, make_canvas

    registry = builtin_registry()
    registry.register(Jin10)
    registry.register(TuShare)
    for ctype, params, message in (("Jin10", {"type": "ticks"}, "type 'ticks' is not supported"),
                                   ("TuShare", {"src": "reuters"}, "src 'reuters' is not supported")):
        dsl = make_canvas({"begin": cpn("Begin", down=["tool"]), "tool": cpn(ctype, params)})
        with pytest.raises(DslError, match=message):
            build(dsl, registry)


def test_unavailable_wording() -> None:
    from taskcanvas.components import builtin_registry
    from taskcanvas.runtime.registry import Registry

    registry = Registry(unavailable=UNAVAILABLE)
    assert registry.why_unavailable("AkShare") == (
        "component type 'AkShare' is not available: its client library (akshare) makes network calls outside "
        "taskcanvas's guarded HTTP client")
    assert "WenCai" in UNAVAILABLE
    assert builtin_registry().get("AkShare") is None
