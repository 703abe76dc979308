"""GitHub (ragflow ``agent/tools/github.py``, spec §5.2).

GitHub's REST search, through the guarded client::

    GET {github}/search/repositories?q=<query>&sort=stars&order=desc&per_page=<top_n>
    Accept: application/vnd.github+json
    X-GitHub-Api-Version: 2022-11-28
    [Authorization: Bearer <token>]      when [tools.github] has one

A chunk per repository: title ``name``, URL ``html_url``, text ``"<description>\\n stars:<watchers>"``
(a missing description reads ``None``, as in ragflow); ``json`` is the ``items``. An answer
without ``items`` (rate limit, invalid query) is an error with GitHub's ``message``.

Differences from ragflow: the query is URL-encoded (ragflow pastes it into the URL as is, so
``&`` or ``#`` in a query cut it short); the media type goes in ``Accept`` (ragflow sends it as
``Content-Type``, which GitHub ignores); an optional token raises GitHub's rate limit.
"""

from __future__ import annotations

from typing import Any, ClassVar

from taskcanvas.runtime.component import RunContext
from taskcanvas.tools._endpoints import SearchParams, ServiceError, WebTool, endpoint, tool_secret
from taskcanvas.tools.base import ToolMeta

__all__ = ["GitHub", "GitHubParams"]

_META: ToolMeta = {
    "name": "github_search",
    "description": "GitHub repository search is a feature that enables users to find specific repositories on the "
                   "GitHub platform. This search functionality allows users to locate projects, codebases, and other "
                   "content hosted on GitHub based on various criteria.",
    "parameters": {
        "query": {
            "type": "string",
            "description": "The search keywords to execute with GitHub. The keywords should be the most important "
                           "words/terms(includes synonyms) from the original request.",
            "default": "{sys.query}",
            "required": True,
        }
    },
}


class GitHubParams(SearchParams):
    """The query and ``top_n`` (10) of every search tool."""


class GitHub(WebTool):
    component_name = "GitHub"
    Params = GitHubParams
    meta: ClassVar[ToolMeta] = _META
    timeout = 12.0
    service = "GitHub"
    thoughts_text = "Scanning GitHub repos related to `{}`."

    async def call(self, ctx: RunContext, **args: Any) -> Any:
        params = self.params
        assert isinstance(params, GitHubParams)
        state = ctx.state
        query = args.get("query")
        if not query:
            return self.empty(state)
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        token = tool_secret(ctx, "github")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = await self.request_json(ctx, "GET", endpoint(ctx, "github") + "/search/repositories", params={
            "q": str(query), "sort": "stars", "order": "desc", "per_page": params.top_n}, headers=headers)
        if not isinstance(data, dict) or "items" not in data:
            message = data.get("message") if isinstance(data, dict) else None
            raise ServiceError(str(message or "GitHub search returned no items."))
        items = data["items"]
        self.add_chunks(state, items, title=lambda r: r["name"], url=lambda r: r["html_url"],
                        content=lambda r: str(r.get("description")) + "\n stars:" + str(r.get("watchers")))
        state.set_output(self.id, "json", items)
        return state.output(self.id, "formalized_content")
