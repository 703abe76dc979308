"""YahooFinance through the engine against a replay of Yahoo Finance's JSON endpoints on 127.0.0.1."""

from __future__ import annotations

from typing import Any

import pytest

from taskcanvas.runtime.cancel import CancelToken
from taskcanvas.runtime.component import RunContext
from taskcanvas.tools.yahoo_finance import YahooFinance
from tests.support.canvas import build, cpn, make_canvas
from tests.support.replay import Recorded, ReplayServer, Reply
from tests.tools.data.support import run_tool, settings

CRUMB = "Xy7.crumb"

SUMMARY = {"quoteSummary": {"result": [{
    "assetProfile": {"address1": "One Microsoft Way", "city": "Redmond", "fullTimeEmployees": 228000,
                     "companyOfficers": [{"name": "Mr. Satya  Nadella", "title": "Chairman & CEO",
                                          "totalPay": {"raw": 7869791, "fmt": "7.87M"}}],
                     "maxAge": 86400},
    "summaryDetail": {"maxAge": 1, "previousClose": 420.5, "currency": "USD", "dividendYield": None},
    "financialData": {"currentPrice": 425.1, "financialCurrency": "USD"},
    "quoteType": {"exchange": "NMS", "quoteType": "EQUITY", "longName": "Microsoft\xa0Corporation"},
}], "error": None}}
QUOTE = {"quoteResponse": {"result": [{"symbol": "MSFT", "regularMarketPrice": 425.1, "marketState": "REGULAR"}],
                           "error": None}}
CHART = {"chart": {"result": [{
    "meta": {"currency": "USD", "symbol": "MSFT", "exchangeTimezoneName": "America/New_York"},
    "timestamp": [1714570200, 1714656600],
    "events": {"dividends": {"1714656600": {"amount": 0.75, "date": 1714656600}}},
    "indicators": {"quote": [{"open": [400.0, 402.0], "high": [405.0, 410.0], "low": [398.0, 401.0],
                              "close": [404.0, 408.0], "volume": [20000000, 21000000]}],
                   "adjclose": [{"adjclose": [202.0, 408.0]}]},
}], "error": None}}
CALENDAR = {"quoteSummary": {"result": [{"calendarEvents": {
    "dividendDate": 1718236800, "exDividendDate": 1715817600,
    "earnings": {"earningsDate": [1721908800, 1722340800], "earningsAverage": 2.94, "earningsLow": 2.85,
                 "earningsHigh": 3.0, "revenueAverage": 64360000000, "revenueLow": 63710000000,
                 "revenueHigh": 64880000000}}}], "error": None}}
TIMESERIES = {"timeseries": {"result": [
    {"meta": {"symbol": ["MSFT"], "type": ["annualTotalAssets"]}, "timestamp": [1688083200, 1719705600],
     "annualTotalAssets": [
         {"dataId": 20976, "asOfDate": "2023-06-30", "periodType": "12M", "currencyCode": "USD",
          "reportedValue": {"raw": 411976000000, "fmt": "411.98B"}},
         {"dataId": 20976, "asOfDate": "2024-06-30", "periodType": "12M", "currencyCode": "USD",
          "reportedValue": {"raw": 512163000000, "fmt": "512.16B"}}]},
    {"meta": {"symbol": ["MSFT"], "type": ["annualNetDebt"]}, "timestamp": [1719705600],
     "annualNetDebt": [{"dataId": 1, "asOfDate": "2024-06-30", "periodType": "12M", "currencyCode": "USD",
                        "reportedValue": {"raw": 33315000000, "fmt": "33.32B"}}]},
    {"meta": {"symbol": ["MSFT"], "type": ["annualFreeCashFlow"]}, "timestamp": [1719705600],
     "annualFreeCashFlow": [{"dataId": 2, "asOfDate": "2024-06-30", "periodType": "12M", "currencyCode": "USD",
                             "reportedValue": {"raw": 74071000000, "fmt": "74.07B"}}]},
], "error": None}}
NEWS = {"data": {"tickerStream": {"stream": [
    {"id": "a1", "content": {"title": "Microsoft beats estimates", "pubDate": "2024-05-01T20:00:00Z"}},
    {"id": "ad", "ad": [{"creative": "buy now"}], "content": {"title": "Ad"}},
    {"id": "a2", "content": {"title": "Azure grows", "pubDate": "2024-05-02T10:00:00Z"}},
]}}}


@pytest.fixture
def yahoo(replay: ReplayServer) -> Any:
    def crumb(seen: Recorded) -> Reply:
        if "A3=cookie-value" not in (seen.headers.get("Cookie") or ""):
            return Reply(401, {"finance": {"error": {"code": "Unauthorized", "description": "Invalid Cookie"}}})
        return Reply(body=CRUMB, content_type="text/plain")

    def summary(seen: Recorded) -> Reply:
        return Reply(body=CALENDAR if seen.arg("modules") == "calendarEvents" else SUMMARY)

    replay.route("GET", "/cookie/", Reply(404, b"", content_type="text/html",
                                          headers={"Set-Cookie": "A3=cookie-value; Path=/; HttpOnly"}))
    replay.route("GET", "/q1/v1/test/getcrumb", crumb)
    replay.route("GET", "/q2/v10/finance/quoteSummary/MSFT", summary)
    replay.route("GET", "/q1/v7/finance/quote", QUOTE)
    replay.route("GET", "/q2/v8/finance/chart/MSFT", CHART)
    def timeseries(seen: Recorded) -> Reply:
        wanted = set((seen.arg("type") or "").split(","))
        result = [s for s in TIMESERIES["timeseries"]["result"] if s["meta"]["type"][0] in wanted]
        return Reply(body={"timeseries": {"result": result, "error": None}})

    replay.route("GET", "/q2/ws/fundamentals-timeseries/v1/finance/timeseries/MSFT", timeseries)
    replay.route("POST", "/root/xhr/ncp", NEWS)
    base = replay.base
    return settings(endpoints={"yahoo": base + "/q2", "yahoo_query1": base + "/q1", "yahoo_root": base + "/root",
                               "yahoo_cookie": base + "/cookie"})


async def test_info_and_news_by_default(yahoo: Any, replay: ReplayServer, http: Any) -> None:
    turn = await run_tool(YahooFinance, {}, http=http, config=yahoo, query="MSFT", message="{tool@report}")
    assert turn.error is None, turn.error
    report = turn.output("tool", "report")
    assert turn.text == report
    info, news = report.split("\n\n\n")
    assert info.splitlines()[:3] == [
        "# Information:",
        "|                    | 0                                                                                |",
        "|:-------------------|:---------------------------------------------------------------------------------|",
    ]
    lines = [line.split("|")[1:3] for line in info.splitlines()[3:]]
    rows = {k.strip(): v.strip() for k, v in lines}
    assert rows["address1"] == "One Microsoft Way"
    assert rows["maxAge"] == "86400"  # summaryDetail's maxAge of 1 (day), in seconds, as yfinance writes it
    assert rows["longName"] == "Microsoft Corporation"  # no-break space replaced
    assert rows["regularMarketPrice"] == "425.1"  # from the v7 quote
    assert rows["symbol"] == "MSFT"
    assert rows["companyOfficers"] == ("[{'name': 'Mr. Satya  Nadella', 'title': 'Chairman & CEO', "
                                       "'totalPay': 7869791}]")
    assert "dividendYield" not in info
    assert news == (
        "# News:\n"
        "|    | id   | content                                                                   |\n"
        "|---:|:-----|:--------------------------------------------------------------------------|\n"
        "|  0 | a1   | {'title': 'Microsoft beats estimates', 'pubDate': '2024-05-01T20:00:00Z'} |\n"
        "|  1 | a2   | {'title': 'Azure grows', 'pubDate': '2024-05-02T10:00:00Z'}               |\n")

    summary = replay.requests_to("/q2/v10/finance/quoteSummary/MSFT")[0]
    assert summary.arg("modules") == "financialData,quoteType,defaultKeyStatistics,assetProfile,summaryDetail"
    assert summary.arg("crumb") == CRUMB
    assert summary.headers.get("Cookie") == "A3=cookie-value"
    assert replay.requests_to("/q1/v7/finance/quote")[0].arg("symbols") == "MSFT"
    ncp = replay.requests_to("/root/xhr/ncp")[0]
    assert (ncp.arg("queryRef"), ncp.arg("serviceKey")) == ("latestNews", "ncp_fin")
    assert ncp.json() == {"serviceConfig": {"snippetCount": 10, "s": ["MSFT"]}}
    started = next(d for d in turn.of("node_started") if d["component_id"] == "tool")
    assert started["thoughts"] == "Pulling live financial data for `MSFT`."


async def test_history_calendar_and_statements(yahoo: Any, replay: ReplayServer, http: Any) -> None:
    params = {"info": False, "news": False, "history": True, "financials": True, "balance_sheet": True,
              "cash_flow_statement": True}
    turn = await run_tool(YahooFinance, params, http=http, config=yahoo, query="MSFT", message="{tool@report}")
    assert turn.error is None, turn.error
    sections = turn.output("tool", "report").split("\n\n\n")
    assert [s.splitlines()[0] for s in sections] == [
        "# History:", "# Calendar:", "# Balance sheet:", "# Quarterly balance sheet:", "# Cash flow statement:",
        "# Quarterly cash flow statement:"]
    assert sections[0] == (
        "# History:\n"
        "| Date                      |   Open |   High |   Low |   Close |   Volume |   Dividends |   Stock Splits |\n"
        "|:--------------------------|-------:|-------:|------:|--------:|---------:|------------:|---------------:|\n"
        "| 2024-05-01 00:00:00-04:00 |    200 |  202.5 |   199 |     202 | 20000000 |        0    |              0 |\n"
        "| 2024-05-02 00:00:00-04:00 |    402 |  410   |   401 |     408 | 21000000 |        0.75 |              0 |")
    assert sections[1] == (
        "# Calendar:\n"
        "|    | Dividend Date   | Ex-Dividend Date   | Earnings Date   |   Earnings High |   Earnings Low |"
        "   Earnings Average |   Revenue High |   Revenue Low |   Revenue Average |\n"
        "|---:|:----------------|:-------------------|:----------------|----------------:|---------------:|"
        "-------------------:|---------------:|--------------:|------------------:|\n"
        "|  0 | 2024-06-13      | 2024-05-16         | 2024-07-25      |               3 |           2.85 |"
        "               2.94 |    64880000000 |   63710000000 |       64360000000 |\n"
        "|  1 | 2024-06-13      | 2024-05-16         | 2024-07-30      |               3 |           2.85 |"
        "               2.94 |    64880000000 |   63710000000 |       64360000000 |")
    assert sections[2] == (
        # Titled rows, as yfinance's balance_sheet property (which ragflow reads) titles them.
        "# Balance sheet:\n"
        "|              |   2024-06-30 00:00:00 |   2023-06-30 00:00:00 |\n"
        "|:-------------|----------------------:|----------------------:|\n"
        "| Net Debt     |           3.3315e+10  |         nan           |\n"
        "| Total Assets |           5.12163e+11 |           4.11976e+11 |")
    assert sections[3] == "# Quarterly balance sheet:\n|    |\n|----|"
    assert sections[4].endswith("| Free Cash Flow |            7.4071e+10 |")
    chart = replay.requests_to("/q2/v8/finance/chart/MSFT")[0]
    assert (chart.arg("range"), chart.arg("interval"), chart.arg("events")) == ("1mo", "1d", "div,splits,capitalGains")
    series = replay.requests_to("/q2/ws/fundamentals-timeseries/v1/finance/timeseries/MSFT")
    assert [(s.arg("type") or "").split(",")[0] for s in series] == ["annualTreasurySharesNumber",
                                                                "quarterlyTreasurySharesNumber",
                                                                "annualFreeCashFlow", "quarterlyFreeCashFlow"]


async def test_unknown_symbol_is_an_error_and_retried(yahoo: Any, replay: ReplayServer, http: Any) -> None:
    replay.route("GET", "/q2/v10/finance/quoteSummary/NOPE", Reply(404, {"quoteSummary": {"result": None, "error": {
        "code": "Not Found", "description": "Quote not found for symbol: NOPE"}}}))
    turn = await run_tool(YahooFinance, {"max_retries": 1, "delay_after_error": 0}, http=http, config=yahoo,
                          query="NOPE")
    assert turn.output("tool", "_ERROR") == "Yahoo Finance answered HTTP 404: Quote not found for symbol: NOPE"
    assert len(replay.requests_to("/q2/v10/finance/quoteSummary/NOPE")) == 2


async def test_as_a_models_tool(yahoo: Any, replay: ReplayServer, http: Any) -> None:
    from taskcanvas.components import builtin_registry

    registry = builtin_registry()
    registry.register(YahooFinance)
    dsl = make_canvas({"begin": cpn("Begin", down=["tool"]), "tool": cpn("YahooFinance", {"info": False})})
    engine = build(dsl, registry, http=http, services={"settings": yahoo})
    tool = engine.canvas.components["tool"]
    assert isinstance(tool, YahooFinance)
    ctx = RunContext(state=engine.new_session(), canvas=engine.canvas, cancel=CancelToken(), http=http,
                     services={"settings": yahoo})
    result = await tool.call_for_model(ctx, {"stock_code": "MSFT"})
    assert result.startswith("# News:\n")
    replay.route("POST", "/root/xhr/ncp", Reply(500, b"Will be right back", content_type="text/html"))
    result = await tool.call_for_model(ctx, {"stock_code": "MSFT"})
    assert result == "YahooFinance error: Yahoo Finance answered HTTP 500: Will be right back"
    assert tool.function_schema() == {"type": "function", "function": {
        "name": "yahoo_finance",
        "description": "The Yahoo Finance is a service that provides access to real-time and historical stock market "
                       "data. It enables users to fetch various types of stock information, such as price quotes, "
                       "historical prices, company profiles, and financial news. The API offers structured data, "
                       "allowing developers to integrate market data into their applications and analysis tools.",
        "parameters": {"type": "object", "properties": {
            "stock_code": {"type": "string", "description": "The stock code or company name."}},
            "required": ["stock_code"]}}}


async def test_empty_code(http: Any) -> None:
    turn = await run_tool(YahooFinance, {}, http=http, query="", message="{tool@report}")
    assert turn.error is None
    assert turn.output("tool", "report") == ""
