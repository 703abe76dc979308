"""GitHub against a loopback server answering like api.github.com/search/repositories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from taskcanvas.tools.github import GitHub
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
    "name": "github_search",
    "description": """GitHub repository search is a feature that enables users to find specific repositories on the GitHub platform. This search functionality allows users to locate projects, codebases, and other content hosted on GitHub based on various criteria.""",  # noqa: E501
    "parameters": {
        "query": {
            "type": "string",
            "description": "The search keywords to execute with GitHub. The keywords should be the most important words/terms(includes synonyms) from the original request.",  # noqa: E501
            "default": "{sys.query}",
            "required": True,
        }
    },
}


def _repo(name: str, description: str | None, stars: int) -> dict[str, Any]:
    return {"id": stars, "node_id": "R_x", "name": name, "full_name": f"octo/{name}", "private": False,
            "owner": {"login": "octo", "id": 1, "type": "Organization"},
            "html_url": f"https://github.com/octo/{name}", "description": description, "fork": False,
            "url": f"https://api.github.com/repos/octo/{name}", "created_at": "2020-01-01T00:00:00Z",
            "updated_at": "2024-06-01T00:00:00Z", "stargazers_count": stars, "watchers_count": stars,
            "language": "Python", "forks_count": 10, "open_issues_count": 1, "watchers": stars,
            "default_branch": "main", "score": 1.0}


ANSWER = {"total_count": 2, "incomplete_results": False,
          "items": [_repo("ragflow", "RAG engine based on deep document understanding", 70000),
                    _repo("empty-desc", None, 5)]}
DOCS = [
    Doc("ragflow", "https://github.com/octo/ragflow", "RAG engine based on deep document understanding\n stars:70000"),
    Doc("empty-desc", "https://github.com/octo/empty-desc", "None\n stars:5"),
]


def _settings(tmp_path: Path, replay: ReplayServer, token: str | None = None) -> Any:
    tools = {"github": {"api_key_env": "GITHUB_TOKEN"}} if token else {}
    return make_settings(tmp_path, endpoints={"github": replay.base}, tools=tools,
                         env={"GITHUB_TOKEN": token} if token else {})


async def test_search(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/search/repositories", json=ANSWER)
    turn = await run_tool(GitHub, {"top_n": 5}, http=http, settings=_settings(tmp_path, replay),
                          query="rag & agents #1")
    assert turn.error is None, turn.error
    request = replay.only()
    assert request.args() == {"q": "rag & agents #1", "sort": "stars", "order": "desc", "per_page": "5"}
    assert request.headers["accept"] == "application/vnd.github+json"
    assert request.headers["x-github-api-version"] == "2022-11-28"
    assert "authorization" not in request.headers
    assert turn.output(TOOL, "json") == ANSWER["items"]
    assert turn.output(TOOL, "formalized_content") == kb_prompt(DOCS)
    assert turn.text == kb_prompt(DOCS)
    assert_references(turn.state, DOCS)
    started = next(d for d in turn.of("node_started") if d["component_id"] == TOOL)
    assert started["thoughts"] == "Scanning GitHub repos related to `rag & agents #1`."


async def test_token_from_settings(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/search/repositories", json=ANSWER)
    turn = await run_tool(GitHub, {}, http=http, settings=_settings(tmp_path, replay, token="ghp_test"), query="rag")
    assert turn.error is None, turn.error
    request = replay.only()
    assert request.headers["authorization"] == "Bearer ghp_test"
    assert request.arg("per_page") == "10"


async def test_rate_limited(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/search/repositories", status=403, json={
        "message": "API rate limit exceeded for 203.0.113.7.",
        "documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"})
    turn = await run_tool(GitHub, {}, http=http, settings=_settings(tmp_path, replay), query="rag")
    assert_failed(turn, "GitHub answered HTTP 403: API rate limit exceeded for 203.0.113.7.")


async def test_invalid_query(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/search/repositories", status=422, json={
        "message": "Validation Failed", "errors": [{"resource": "Search", "field": "q", "code": "missing"}]})
    call = await call_as_agent_tool(GitHub, {}, {"query": "language:"}, http=http,
                                    settings=_settings(tmp_path, replay))
    assert call.output("_ERROR") == "GitHub answered HTTP 422: Validation Failed"
    assert call.result == "GitHub error: GitHub answered HTTP 422: Validation Failed"


async def test_agent_tool_call(replay: ReplayServer, http: GuardedClient, tmp_path: Path) -> None:
    replay.reply("GET", "/search/repositories", json=ANSWER)
    call = await call_as_agent_tool(GitHub, {}, {"query": "ragflow"}, http=http, settings=_settings(tmp_path, replay))
    assert call.result == kb_prompt(DOCS)
    assert call.output("json") == ANSWER["items"]


def test_schema_is_ragflows() -> None:
    assert schema_of(GitHub) == ragflow_schema(RAGFLOW_META)
    assert GitHub.meta == RAGFLOW_META
