"""What the web tools share: where each service is, its key, and one way to call it.

Every web tool (spec §5.2) reaches its service through the run's one HTTP client
(``ctx.http``, :mod:`taskcanvas.tools.http`), so the SSRF guard sees every request. ragflow
uses each service's client library instead (tavily-python, duckduckgo_search, wikipedia, arxiv,
Bio.Entrez, serpapi, scholarly); those open connections of their own, past any guard, so
taskcanvas calls the services' documented HTTP APIs itself.

Where a service is. The base URL of each service comes from the ``[endpoints]`` table of the
settings, so an operator can point a tool at a mirror or a proxy (and a test at a server on
loopback — which the HTTP policy must then allow); a key that is absent means the real
service::

    [endpoints]
    tavily = "https://api.tavily.com"              # TavilySearch, TavilyExtract
    duckduckgo_html = "https://html.duckduckgo.com"  # DuckDuckGo web search (POST /html/)
    duckduckgo = "https://duckduckgo.com"          # DuckDuckGo news (vqd token, /news.js)
    wikipedia = "https://{language}.wikipedia.org" # {language}: the tool's language param
    arxiv = "https://export.arxiv.org"
    pubmed = "https://eutils.ncbi.nlm.nih.gov"
    serpapi = "https://serpapi.com"                # Google, GoogleScholar
    github = "https://api.github.com"

SearXNG has no entry: its instance is the canvas's ``searxng_url``.

Keys. A tool's ``api_key`` param wins (as in ragflow); without one the tool reads its table
under ``[tools]``, the key itself or, better, the name of the environment variable holding it::

    [tools.tavily]
    api_key_env = "TAVILY_API_KEY"
    [tools.serpapi]                  # Google and GoogleScholar
    api_key_env = "SERPAPI_API_KEY"
    [tools.github]                   # optional: a token raises GitHub's rate limit
    api_key_env = "GITHUB_TOKEN"
    [tools.pubmed]                   # optional: NCBI's api_key raises E-utilities' rate limit
    api_key_env = "NCBI_API_KEY"

Failures. A tool raises on any failure — the service answered an HTTP error, did not answer in
time, answered something unreadable — with a message naming the service and what it said; the
engine (or an Agent's tool call) retries it ``max_retries`` times, ``delay_after_error`` apart,
and records the last message as ``_ERROR``, as ragflow's own loops do. To a model, a failed call
reads ``"<Service> error: <message>"``, ragflow's text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import metadata
from typing import Any, ClassVar

import httpx
from pydantic import field_validator

from taskcanvas.errors import TaskcanvasError
from taskcanvas.runtime.component import RunContext
from taskcanvas.runtime.state import RunState
from taskcanvas.runtime.stream import TextStream
from taskcanvas.runtime.templates import string_format
from taskcanvas.tools.base import Tool, ToolParams

__all__ = ["DEFAULT_ENDPOINTS", "SearchParams", "ServiceError", "WebTool", "endpoint", "tool_secret"]

DEFAULT_ENDPOINTS: dict[str, str] = {
    "tavily": "https://api.tavily.com",
    "duckduckgo_html": "https://html.duckduckgo.com",
    "duckduckgo": "https://duckduckgo.com",
    "wikipedia": "https://{language}.wikipedia.org",
    "arxiv": "https://export.arxiv.org",
    "pubmed": "https://eutils.ncbi.nlm.nih.gov",
    "serpapi": "https://serpapi.com",
    "github": "https://api.github.com",
    "deepl": "https://api.deepl.com",
    "deepl_free": "https://api-free.deepl.com",
    "qweather_geo": "https://geoapi.qweather.com",
    "qweather_dev": "https://devapi.qweather.com",
    "qweather": "https://api.qweather.com",
    "tushare": "http://api.tushare.pro",
    "jin10": "https://open-data-api.jin10.com",
    "yahoo": "https://query2.finance.yahoo.com",
    "yahoo_query1": "https://query1.finance.yahoo.com",
    "yahoo_root": "https://finance.yahoo.com",
    "yahoo_cookie": "https://fc.yahoo.com",
}


class SearchParams(ToolParams):
    """Params of a search tool: the query (the user's by default) and how many results to keep."""

    query: Any = "{sys.query}"
    top_n: int = 10

    @field_validator("top_n")
    @classmethod
    def _top_n(cls, v: int) -> int:
        if v <= 0:
            raise ValueError(f"top_n {v} is not supported: it is a positive whole number")
        return v


def _user_agent() -> str:
    try:
        version = metadata.version("taskcanvas")
    except metadata.PackageNotFoundError:
        version = "dev"
    return f"taskcanvas/{version} (agent web tools)"


USER_AGENT = _user_agent()
"""Wikimedia and arXiv ask clients to say who they are."""


class ServiceError(TaskcanvasError):
    """A web service that answered with an error, or not at all."""


def _settings(ctx: RunContext) -> Any:
    return ctx.services.get("settings")


def endpoint(ctx: RunContext, key: str) -> str:
    """The base URL of service ``key``: ``[endpoints] <key>`` of the settings, else the real one."""
    settings = _settings(ctx)
    configured = settings.section("endpoints").get(key) if settings is not None else None
    return str(configured or DEFAULT_ENDPOINTS[key]).rstrip("/")


def tool_secret(ctx: RunContext, table: str, key: str = "api_key") -> str | None:
    """``[tools.<table>] <key>`` (or the environment variable named by ``<key>_env``)."""
    settings = _settings(ctx)
    if settings is None:
        return None
    tools = settings.section("tools")
    section = tools.get(table) if isinstance(tools, Mapping) else None
    if not isinstance(section, Mapping):
        return None
    value = settings.secret(section, key)
    return str(value) if value else None


class WebTool(Tool):
    """A tool that asks one web service (ragflow's search tools share this shape)."""

    service: ClassVar[str] = ""
    """The service's name in messages, and ragflow's prefix of a failed call: ``"<service> error: …"``."""
    thoughts_text: ClassVar[str] = "{}"
    """ragflow's ``thoughts()`` template, filled with :attr:`thoughts_arg`."""
    thoughts_arg: ClassVar[str] = "query"

    # ------------------------------------------------------------------ what the user and model read
    def thoughts(self, state: RunState) -> str:
        return self.thoughts_text.format(self._shown(state, self.thoughts_arg))

    def _shown(self, state: RunState, name: str) -> Any:
        try:
            value = self.param_value(state, name)
        except Exception:
            return "-_-!"
        return "-_-!" if value is None else value

    def param_value(self, state: RunState, name: str) -> Any:
        """Param ``name`` with its references resolved, as :meth:`node_arguments` resolves it."""
        value = getattr(self.params, name, None)
        if isinstance(value, str) and state.is_ref(value):
            value = state.get_variable_value(value)
        elif isinstance(value, str) and "{" in value:
            refs = self.text_refs_of(value)
            if refs:
                value = string_format(value, {k: _text(state.get_variable_value(t)) for k, t in refs.items()})
        return value.text if isinstance(value, TextStream) else value

    async def call_for_model(self, ctx: RunContext, args: Mapping[str, Any]) -> Any:
        result = await super().call_for_model(ctx, args)
        error = ctx.state.output(self.id, "_ERROR")
        if error:
            return f"{self.service} error: {error}"
        return result

    def empty(self, state: RunState, *outputs: str) -> str:
        """Nothing to look for: ``formalized_content`` (and ``outputs``) empty, as ragflow does."""
        state.set_output(self.id, "formalized_content", "")
        for name in outputs:
            state.set_output(self.id, name, [])
        return ""

    # ------------------------------------------------------------------ talking to the service
    def missing_key(self, table: str, what: str = "an API key") -> ServiceError:
        return ServiceError(
            f"{self.component_name} needs {what}: set api_key in the component, or api_key_env "
            f"in [tools.{table}] of the taskcanvas settings")

    async def request(self, ctx: RunContext, method: str, url: str, *, params: Any = None,
                      json_body: Any = None, data: Mapping[str, str] | None = None,
                      headers: Mapping[str, str] | None = None) -> httpx.Response:
        """One request through the guarded client; an HTTP error or no answer raises :class:`ServiceError`."""
        if ctx.http is None:
            raise ServiceError(f"{self.component_name} needs an HTTP client (none was configured)")
        sent = {"User-Agent": USER_AGENT, **(headers or {})}
        try:
            response: httpx.Response = await ctx.http.request(
                method, url, params=params, json=json_body, data=data, headers=sent, timeout=self.timeout)
        except httpx.TimeoutException:
            raise ServiceError(f"{self.service} did not answer within {self.timeout:g} seconds") from None
        except httpx.TransportError as e:
            reason = str(e) or type(e).__name__
            raise ServiceError(f"could not reach {self.service} at {_origin(url)}: {reason}") from None
        if not response.is_success:
            raise ServiceError(f"{self.service} answered HTTP {response.status_code}: {self.describe_error(response)}")
        return response

    def describe_error(self, response: httpx.Response) -> str:
        """What an error response of this service says."""
        return error_detail(response)

    async def request_json(self, ctx: RunContext, method: str, url: str, **kw: Any) -> Any:
        response = await self.request(ctx, method, url, **kw)
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ServiceError(f"{self.service} answered something that is not JSON "
                               f"({response.headers.get('content-type', 'no content type')})") from None


def error_detail(response: httpx.Response) -> str:
    """What an error response says, from the usual JSON shapes; else the start of its text."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, Mapping):
        for key in ("detail", "error", "message"):
            value = body.get(key)
            if isinstance(value, Mapping):
                value = value.get("error") or value.get("message") or value.get("info")
            if value:
                return str(value)
    text = " ".join(response.text.split())
    return text[:200] or response.reason_phrase or "no details"


def _text(value: Any) -> Any:
    return value.text if isinstance(value, TextStream) else value


def _origin(url: str) -> str:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "<invalid URL>"
    return f"{parsed.scheme}://{parsed.netloc.decode('ascii', 'replace')}"
