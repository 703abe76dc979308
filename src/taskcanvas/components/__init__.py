"""The built-in component types, by ragflow ``component_name``.

:func:`builtin_registry` is the explicit table; plug-ins add theirs through the
``taskcanvas.components`` entry point group. Types ragflow has that taskcanvas does not run
yet are named with the reason, so a canvas using them fails validation saying so.
"""

from __future__ import annotations

from taskcanvas.components.agent import Agent
from taskcanvas.components.begin import Begin
from taskcanvas.components.browser import Browser
from taskcanvas.components.categorize import Categorize
from taskcanvas.components.data_operations import DataOperations
from taskcanvas.components.doc_generator import DocGenerator, DocsGenerator
from taskcanvas.components.excel_processor import ExcelProcessor
from taskcanvas.components.exit_loop import ExitLoop
from taskcanvas.components.fillup import UserFillUp
from taskcanvas.components.invoke import Invoke
from taskcanvas.components.iteration import Iteration
from taskcanvas.components.iteration_item import IterationItem
from taskcanvas.components.list_operations import ListOperations
from taskcanvas.components.llm import LLM
from taskcanvas.components.loop import Loop
from taskcanvas.components.loop_item import LoopItem
from taskcanvas.components.message import Message
from taskcanvas.components.string_transform import StringTransform
from taskcanvas.components.switch import Switch
from taskcanvas.components.variable_aggregator import VariableAggregator
from taskcanvas.components.variable_assigner import VariableAssigner
from taskcanvas.runtime.component import Component
from taskcanvas.runtime.registry import Registry
from taskcanvas.tools import china_market
from taskcanvas.tools.arxiv import ArXiv
from taskcanvas.tools.china_market import Jin10, TuShare
from taskcanvas.tools.code_exec import CodeExec
from taskcanvas.tools.crawler import Crawler
from taskcanvas.tools.deepl import DeepL
from taskcanvas.tools.duckduckgo import DuckDuckGo
from taskcanvas.tools.email_tool import Email
from taskcanvas.tools.exesql import ExeSQL
from taskcanvas.tools.github import GitHub
from taskcanvas.tools.google import Google
from taskcanvas.tools.google_scholar import GoogleScholar
from taskcanvas.tools.pubmed import PubMed
from taskcanvas.tools.qweather import QWeather
from taskcanvas.tools.retrieval import Retrieval
from taskcanvas.tools.searxng import SearXNG
from taskcanvas.tools.tavily import TavilyExtract, TavilySearch
from taskcanvas.tools.wikipedia import Wikipedia
from taskcanvas.tools.yahoo_finance import YahooFinance

__all__ = ["BUILTIN_COMPONENTS", "builtin_registry"]

BUILTIN_COMPONENTS: tuple[type[Component], ...] = (
    Begin, UserFillUp, Message, Switch,
    Iteration, IterationItem, Loop, LoopItem, ExitLoop,
    DataOperations, ListOperations, StringTransform, VariableAggregator, VariableAssigner,
    Invoke, ExcelProcessor, DocGenerator, DocsGenerator,
    LLM, Agent, Categorize,
    Browser,
    Retrieval, TavilySearch, TavilyExtract, DuckDuckGo, Wikipedia, ArXiv, PubMed, Google, GoogleScholar, SearXNG,
    GitHub, CodeExec, ExeSQL, Email, Crawler, DeepL, QWeather, YahooFinance, TuShare, Jin10,
)

_NOT_YET = "is not available: taskcanvas does not implement this tool yet"
_LEGACY = "is a ragflow v1 type that ragflow itself no longer loads; re-save the canvas in ragflow's current editor"

UNAVAILABLE: dict[str, str] = {
    **{name: _NOT_YET for name in ("KeenableSearch", "QueritSearch", "QueritContents", "BGPT", "Bing")},
    **china_market.UNAVAILABLE,
    **{name: _LEGACY for name in ("Answer", "Generate", "Relevant", "RewriteQuestion", "KeywordExtract",
                                  "Baidu", "BaiduFanyi", "Concentrator")},
}


def builtin_registry(*, plugins: bool = True) -> Registry:
    """A registry with every built-in type (and, with ``plugins``, the entry-point ones)."""
    registry = Registry(BUILTIN_COMPONENTS, UNAVAILABLE)
    if plugins:
        registry.load_entry_points()
    return registry
