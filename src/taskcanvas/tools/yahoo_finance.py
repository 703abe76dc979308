"""YahooFinance: stock information, prices, calendar, statements and news for a ticker (ragflow
``agent/tools/yahoofinance.py``, spec §5.2).

Yahoo Finance's JSON endpoints through the run's guarded client, the ones yfinance (ragflow's
pin, 0.2.65) reads, instead of yfinance itself (whose own HTTP client would bypass the SSRF
guard):

- a session: ``GET {yahoo_cookie}/`` for Yahoo's cookie, ``GET {yahoo_query1}/v1/test/getcrumb``
  for the crumb sent with every request below;
- ``info``: ``GET {yahoo}/v10/finance/quoteSummary/<symbol>?modules=financialData,quoteType,
  defaultKeyStatistics,assetProfile,summaryDetail`` and ``GET {yahoo_query1}/v7/finance/quote``,
  merged and flattened as yfinance's ``Ticker.info`` does;
- ``history``: ``GET {yahoo}/v8/finance/chart/<symbol>?range=1mo&interval=1d`` with dividends
  and splits, prices adjusted as yfinance's ``history()`` does by default (``auto_adjust``);
- ``financials``: ``quoteSummary`` ``calendarEvents`` (ragflow labels it "Calendar");
- ``balance_sheet`` / ``cash_flow_statement``: ``GET {yahoo}/ws/fundamentals-timeseries/v1/finance/
  timeseries/<symbol>`` for the annual and quarterly line items (a selection of the most used
  ones; yfinance asks for every item Yahoo knows);
- ``news``: ``POST {yahoo_root}/xhr/ncp?queryRef=latestNews&serviceKey=ncp_fin``, ads left out.

Base URLs from ``[endpoints] yahoo`` (``https://query2.finance.yahoo.com``), ``yahoo_query1``
(``https://query1.finance.yahoo.com``), ``yahoo_root`` (``https://finance.yahoo.com``) and
``yahoo_cookie`` (``https://fc.yahoo.com``).

The ``report`` output is ragflow's: one ``# <Section>:`` heading and a Markdown table (pandas'
``to_markdown``: tabulate's ``pipe`` format) a section, joined by blank lines. As in ragflow the
``count`` and ``income_stmt`` flags do nothing. A failure raises, is retried ``max_retries``
times, and tells the model ``"YahooFinance error: ..."``; a symbol Yahoo does not know is such a
failure (yfinance would print an almost empty table). yfinance's extra call for
``trailingPegRatio`` and its price repairs are not reproduced.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from collections.abc import Mapping
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from tabulate import tabulate

from taskcanvas.runtime.component import RunContext
from taskcanvas.runtime.stream import TextStream
from taskcanvas.runtime.templates import stringify
from taskcanvas.tools._endpoints import ServiceError, WebTool, endpoint
from taskcanvas.tools.base import ToolMeta, ToolParams

__all__ = ["YahooFinance", "YahooFinanceParams"]

_META: ToolMeta = {
    "name": "yahoo_finance",
    "description": "The Yahoo Finance is a service that provides access to real-time and historical stock market "
                   "data. It enables users to fetch various types of stock information, such as price quotes, "
                   "historical prices, company profiles, and financial news. The API offers structured data, "
                   "allowing developers to integrate market data into their applications and analysis tools.",
    "parameters": {"stock_code": {"type": "string", "description": "The stock code or company name.",
                                  "default": "{sys.query}", "required": True}},
}

_BROWSER_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
               "Chrome/124.0.0.0 Safari/537.36")
_INFO_MODULES = "financialData,quoteType,defaultKeyStatistics,assetProfile,summaryDetail"
_BALANCE_SHEET_KEYS = (
    "TreasurySharesNumber", "OrdinarySharesNumber", "ShareIssued", "NetDebt", "TotalDebt", "TangibleBookValue",
    "InvestedCapital", "WorkingCapital", "NetTangibleAssets", "CapitalLeaseObligations", "CommonStockEquity",
    "TotalCapitalization", "TotalEquityGrossMinorityInterest", "MinorityInterest", "StockholdersEquity",
    "GainsLossesNotAffectingRetainedEarnings", "RetainedEarnings", "CapitalStock", "CommonStock",
    "TotalLiabilitiesNetMinorityInterest", "TotalNonCurrentLiabilitiesNetMinorityInterest",
    "LongTermDebtAndCapitalLeaseObligation", "LongTermDebt", "CurrentLiabilities", "CurrentDebt",
    "AccountsPayable", "Payables", "TotalAssets", "TotalNonCurrentAssets", "NetPPE", "GrossPPE",
    "AccumulatedDepreciation", "Goodwill", "GoodwillAndOtherIntangibleAssets", "InvestmentsAndAdvances",
    "CurrentAssets", "Inventory", "Receivables", "AccountsReceivable",
    "CashCashEquivalentsAndShortTermInvestments", "OtherShortTermInvestments", "CashAndCashEquivalents",
)
_CASH_FLOW_KEYS = (
    "FreeCashFlow", "RepurchaseOfCapitalStock", "RepaymentOfDebt", "IssuanceOfDebt", "IssuanceOfCapitalStock",
    "CapitalExpenditure", "EndCashPosition", "BeginningCashPosition", "ChangesInCash", "FinancingCashFlow",
    "CashDividendsPaid", "NetIssuancePaymentsOfDebt", "InvestingCashFlow", "NetInvestmentPurchaseAndSale",
    "PurchaseOfInvestment", "SaleOfInvestment", "NetBusinessPurchaseAndSale", "NetPPEPurchaseAndSale",
    "OperatingCashFlow", "ChangeInWorkingCapital", "ChangeInReceivables", "ChangeInInventory",
    "ChangeInPayable", "StockBasedCompensation", "DeferredIncomeTax", "DepreciationAndAmortization",
    "NetIncomeFromContinuingOperations",
)
_TIMESERIES_START = int(datetime.datetime(2016, 12, 31, tzinfo=datetime.UTC).timestamp())


class YahooFinanceParams(ToolParams):
    stock_code: Any = "{sys.query}"
    info: bool = True
    history: bool = False
    count: bool = False
    financials: bool = False
    income_stmt: bool = False
    balance_sheet: bool = False
    cash_flow_statement: bool = False
    news: bool = True


class YahooFinance(WebTool):
    component_name = "YahooFinance"
    Params = YahooFinanceParams
    meta: ClassVar[ToolMeta] = _META
    timeout = 60.0
    service = "YahooFinance"
    thoughts_text = "Pulling live financial data for `{}`."
    thoughts_arg = "stock_code"

    async def call(self, ctx: RunContext, **args: Any) -> Any:
        params = self.params
        assert isinstance(params, YahooFinanceParams)
        state = ctx.state
        symbol = args.get("stock_code")
        if isinstance(symbol, TextStream):
            symbol = await symbol.read()
        if not symbol:
            state.set_output(self.id, "report", "")
            return ""
        symbol = (symbol if isinstance(symbol, str) else stringify(symbol)).strip()
        session = _Session(self, ctx, symbol)
        await session.start()
        sections: list[str] = []
        if params.info:
            sections.append("# Information:\n" + _series_markdown(await session.info()) + "\n")
        if params.history:
            sections.append("# History:\n" + await session.history() + "\n")
        if params.financials:
            sections.append("# Calendar:\n" + await session.calendar() + "\n")
        if params.balance_sheet:
            sections.append("# Balance sheet:\n" + await session.statement("annual", _BALANCE_SHEET_KEYS) + "\n")
            sections.append("# Quarterly balance sheet:\n"
                            + await session.statement("quarterly", _BALANCE_SHEET_KEYS) + "\n")
        if params.cash_flow_statement:
            sections.append("# Cash flow statement:\n" + await session.statement("annual", _CASH_FLOW_KEYS) + "\n")
            sections.append("# Quarterly cash flow statement:\n"
                            + await session.statement("quarterly", _CASH_FLOW_KEYS) + "\n")
        if params.news:
            sections.append("# News:\n" + _records_markdown(await session.news()) + "\n")
        report = "\n\n".join(sections)
        state.set_output(self.id, "report", report)
        return report


class _Session:
    """One call's conversation with Yahoo: its cookie and crumb, then the data requests."""

    def __init__(self, tool: YahooFinance, ctx: RunContext, symbol: str) -> None:
        self.tool = tool
        self.ctx = ctx
        self.symbol = symbol
        self.crumb = ""
        self.cookie = ""

    def url(self, key: str, path: str) -> str:
        return endpoint(self.ctx, key) + path

    async def start(self) -> None:
        response = await self._send("GET", self.url("yahoo_cookie", "/"), check=False)
        self.cookie = "; ".join(f"{name}={value}" for name, value in response.cookies.items())
        crumb = await self._send("GET", self.url("yahoo_query1", "/v1/test/getcrumb"))
        self.crumb = crumb.text.strip()
        if not self.crumb or "<html" in self.crumb.lower() or " " in self.crumb:
            raise ServiceError("Yahoo Finance did not hand out a crumb (its session token); try again later")

    async def _send(self, method: str, url: str, *, params: Mapping[str, Any] | None = None,
                    body: Any = None, check: bool = True) -> httpx.Response:
        http = self.ctx.http
        if http is None:
            raise ServiceError("YahooFinance needs an HTTP client (none was configured)")
        query = dict(params or {})
        if self.crumb:
            query["crumb"] = self.crumb
        headers = {"User-Agent": _BROWSER_UA, "Accept": "application/json,text/plain,*/*"}
        if self.cookie:
            headers["Cookie"] = self.cookie
        try:
            response: httpx.Response = await http.request(method, url, params=query or None, json=body,
                                                          headers=headers, timeout=self.tool.timeout)
        except httpx.TimeoutException:
            raise ServiceError(f"Yahoo Finance did not answer within {self.tool.timeout:g} seconds") from None
        except httpx.TransportError as e:
            raise ServiceError(f"could not reach Yahoo Finance: {e or type(e).__name__}") from None
        if check and not response.is_success:
            raise ServiceError(f"Yahoo Finance answered HTTP {response.status_code}: {_yahoo_error(response)}")
        return response

    async def _json(self, method: str, url: str, **kw: Any) -> dict[str, Any]:
        response = await self._send(method, url, **kw)
        try:
            data = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ServiceError("Yahoo Finance answered something that is not JSON") from None
        if not isinstance(data, dict):
            raise ServiceError("Yahoo Finance answered JSON that is not an object")
        return data

    async def _quote_summary(self, modules: str) -> dict[str, Any]:
        data = await self._json("GET", self.url("yahoo", f"/v10/finance/quoteSummary/{self.symbol}"),
                                params={"modules": modules, "corsDomain": "finance.yahoo.com", "formatted": "false",
                                        "symbol": self.symbol})
        summary = data.get("quoteSummary") or {}
        results = summary.get("result") or []
        if not results:
            raise ServiceError(_described(summary.get("error"), f"no data for symbol {self.symbol}"))
        result: dict[str, Any] = results[0]
        return result

    async def info(self) -> dict[str, Any]:
        merged: dict[str, Any] = dict(await self._quote_summary(_INFO_MODULES))
        merged["symbol"] = self.symbol
        quote = await self._json("GET", self.url("yahoo_query1", "/v7/finance/quote"),
                                 params={"symbols": self.symbol, "formatted": "false"})
        for item in (quote.get("quoteResponse") or {}).get("result") or []:
            if isinstance(item, dict) and item.get("symbol") == self.symbol:
                merged.update(item)
        flat: dict[str, Any] = {}
        for key, value in merged.items():
            if isinstance(value, dict):
                for inner_key, inner in value.items():
                    if inner is not None:
                        flat[inner_key] = 86400 if inner_key == "maxAge" and inner == 1 else inner
            elif value is not None:
                flat[key] = value
        return {k: _format(k, v) for k, v in flat.items()}

    async def history(self) -> str:
        data = await self._json("GET", self.url("yahoo", f"/v8/finance/chart/{self.symbol}"),
                                params={"range": "1mo", "interval": "1d", "includePrePost": "False",
                                        "events": "div,splits,capitalGains"})
        chart = data.get("chart") or {}
        results = chart.get("result") or []
        if not results:
            raise ServiceError(_described(chart.get("error"), f"no price data for symbol {self.symbol}"))
        return _history_markdown(results[0])

    async def calendar(self) -> str:
        events = (await self._quote_summary("calendarEvents")).get("calendarEvents") or {}
        calendar: dict[str, Any] = {}
        if "dividendDate" in events:
            calendar["Dividend Date"] = _date(events["dividendDate"])
        if "exDividendDate" in events:
            calendar["Ex-Dividend Date"] = _date(events["exDividendDate"])
        earnings = events.get("earnings")
        if isinstance(earnings, dict):
            calendar["Earnings Date"] = [_date(d) for d in earnings.get("earningsDate", [])]
            for label, key in (("Earnings High", "earningsHigh"), ("Earnings Low", "earningsLow"),
                               ("Earnings Average", "earningsAverage"), ("Revenue High", "revenueHigh"),
                               ("Revenue Low", "revenueLow"), ("Revenue Average", "revenueAverage")):
                calendar[label] = earnings.get(key)
        if not calendar:
            return _table([], [])
        # pandas.DataFrame(dict): list values make the rows, scalars repeat on each.
        height = max((len(v) for v in calendar.values() if isinstance(v, list)), default=1) or 1
        rows = [[i] + [(v[i] if i < len(v) else None) if isinstance(v, list) else v for v in calendar.values()]
                for i in range(height)]
        return _table(rows, ["", *calendar])

    async def statement(self, timescale: str, keys: tuple[str, ...]) -> str:
        now = int(datetime.datetime.now(datetime.UTC).timestamp()) + 86400
        path = f"/ws/fundamentals-timeseries/v1/finance/timeseries/{self.symbol}"
        data = await self._json("GET", self.url("yahoo", path), params={
            "symbol": self.symbol, "type": ",".join(timescale + k for k in keys),
            "period1": _TIMESERIES_START, "period2": now})
        series = (data.get("timeseries") or {}).get("result") or []
        values: dict[str, dict[str, Any]] = {}
        dates: set[str] = set()
        for entry in series:
            if not isinstance(entry, dict):
                continue
            for name, points in entry.items():
                if name in ("meta", "timestamp") or not isinstance(points, list):
                    continue
                row = values.setdefault(name.removeprefix(timescale), {})
                for point in points:
                    if isinstance(point, dict) and point.get("asOfDate"):
                        row[point["asOfDate"]] = (point.get("reportedValue") or {}).get("raw")
                        dates.add(point["asOfDate"])
        columns = sorted(dates, reverse=True)
        # ragflow reads yfinance's ``balance_sheet``/``cashflow`` properties, which title their rows.
        rows = [[_title(key)] + [_float(values[key].get(d)) for d in columns] for key in keys if key in values]
        return _table(rows, ["", *(f"{d} 00:00:00" for d in columns)])

    async def news(self) -> list[dict[str, Any]]:
        data = await self._json("POST", self.url("yahoo_root", "/xhr/ncp"),
                                params={"queryRef": "latestNews", "serviceKey": "ncp_fin"},
                                body={"serviceConfig": {"snippetCount": 10, "s": [self.symbol]}})
        stream = ((data.get("data") or {}).get("tickerStream") or {}).get("stream") or []
        return [item for item in stream if isinstance(item, dict) and not item.get("ad")]


# --------------------------------------------------------------------------- tables
def _title(key: str) -> str:
    """A line item as yfinance's ``pretty`` statements name it: ``NetPPE`` → ``Net PPE``."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", key)


def _table(rows: list[list[Any]], headers: list[str]) -> str:
    """``DataFrame.to_markdown()``: tabulate's pipe format, the index as the first column."""
    return tabulate(rows, headers=headers, tablefmt="pipe")


def _series_markdown(info: Mapping[str, Any]) -> str:
    """``pandas.Series(info).to_markdown()``."""
    return _table([[k, v] for k, v in info.items()], ["", "0"])


def _records_markdown(records: list[dict[str, Any]]) -> str:
    """``pandas.DataFrame(records).to_markdown()``."""
    columns: dict[str, None] = {}
    for record in records:
        columns.update(dict.fromkeys(record))
    return _table([[i, *(record.get(c) for c in columns)] for i, record in enumerate(records)], ["", *columns])


def _history_markdown(result: Mapping[str, Any]) -> str:
    meta = result.get("meta") or {}
    try:
        tz: datetime.tzinfo = ZoneInfo(str(meta.get("exchangeTimezoneName") or "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        tz = datetime.UTC
    stamps = result.get("timestamp") or []
    indicators = result.get("indicators") or {}
    quote = (indicators.get("quote") or [{}])[0]
    adjclose = ((indicators.get("adjclose") or [{}])[0] or {}).get("adjclose")
    events = result.get("events") or {}

    def day(stamp: Any) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(int(stamp), tz).replace(hour=0, minute=0, second=0, microsecond=0)

    dividends: dict[datetime.datetime, float] = {}
    for event in (events.get("dividends") or {}).values():
        dividends[day(event["date"])] = dividends.get(day(event["date"]), 0.0) + float(event["amount"])
    splits = {day(e["date"]): float(e["numerator"]) / float(e["denominator"])
              for e in (events.get("splits") or {}).values() if e.get("denominator")}

    def column(name: str) -> list[Any]:
        values = quote.get(name) or []
        return list(values) + [None] * (len(stamps) - len(values))

    opens, highs, lows, closes, volumes = (column(n) for n in ("open", "high", "low", "close", "volume"))
    rows = []
    for i, stamp in enumerate(stamps):
        if all(v is None for v in (opens[i], highs[i], lows[i], closes[i])):
            continue
        ratio = 1.0
        if adjclose and i < len(adjclose) and adjclose[i] is not None and closes[i]:
            ratio = float(adjclose[i]) / float(closes[i])
        date = day(stamp)
        rows.append([str(date), *(_scaled(v, ratio) for v in (opens[i], highs[i], lows[i], closes[i])),
                     volumes[i] if volumes[i] is not None else math.nan,
                     dividends.get(date, 0.0), splits.get(date, 0.0)])
    return _table(rows, ["Date", "Open", "High", "Low", "Close", "Volume", "Dividends", "Stock Splits"])


def _scaled(value: Any, ratio: float) -> float:
    return math.nan if value is None else float(value) * ratio


def _float(value: Any) -> float:
    try:
        return math.nan if value is None else float(value)
    except (TypeError, ValueError):
        return math.nan


def _date(stamp: Any) -> datetime.date:
    """A calendar date (UTC; yfinance uses the machine's time zone)."""
    return datetime.datetime.fromtimestamp(int(stamp), datetime.UTC).date()


def _format(key: str | None, value: Any) -> Any:
    """yfinance's ``info`` formatting: ``{"raw", "fmt"}`` pairs become the raw value."""
    if isinstance(value, dict) and "raw" in value and "fmt" in value:
        return value["fmt"] if key in ("regularMarketTime", "postMarketTime") else value["raw"]
    if isinstance(value, list):
        return [_format(None, v) for v in value]
    if isinstance(value, dict):
        return {k: _format(k, v) for k, v in value.items()}
    if isinstance(value, str):
        return value.replace("\xa0", " ")
    return value


def _described(error: Any, fallback: str) -> str:
    if isinstance(error, dict) and error.get("description"):
        return f"Yahoo Finance: {error['description']}"
    return f"Yahoo Finance: {fallback}"


def _yahoo_error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, dict) and isinstance(value.get("error"), dict):
                error = value["error"]
                return str(error.get("description") or error.get("code") or "no details")
    text = " ".join(response.text.split())
    return text[:200] or response.reason_phrase or "no details"
