"""coder's search-query dialects: queries → filters, and queries → coder's exact validation errors."""

from __future__ import annotations

import pytest

from taskcanvas.service.errors import Invalid
from taskcanvas.service.search import (
    TASK_QUERY_INVALID,
    WORKSPACE_QUERY_INVALID,
    WORKSPACE_STATUSES,
    TaskQuery,
    WorkspaceQuery,
    parse_task_query,
    parse_workspace_query,
)

ONE_COLON = "can only contain 1 ':'"
EDGE_COLON = "cannot start or end with ':'"


def twice(key: str, times: int = 2) -> tuple[str, str]:
    return (key, f'Query param "{key}" provided more than once, found {times} times. '
                 "Only provide 1 instance of this query param.")


def unknown(key: str) -> tuple[str, str]:
    return (key, f'"{key}" is not a valid query param')


# ---------------------------------------------------------------------------- tasks (E3)
@pytest.mark.parametrize("q, expected", [
    ("", TaskQuery()),
    ("   ", TaskQuery()),
    ("owner:alice", TaskQuery(owner="alice")),
    ("OWNER:Alice", TaskQuery(owner="alice")),  # the whole query is lower-cased
    ("owner:me organization:acme status:active", TaskQuery(owner="me", organization="acme", status="active")),
    ("status:paused", TaskQuery(status="paused")),
    ("status:whatever", TaskQuery(status="whatever")),  # not checked against the status names
    ("organization:0b5ac5a4-8a64-4b8e-9d0f-2b8c0d9f7a11",
     TaskQuery(organization="0b5ac5a4-8a64-4b8e-9d0f-2b8c0d9f7a11")),
    ("alice", TaskQuery(owner="alice")),  # bare words mean owner
    ("alice  status:active", TaskQuery(owner="alice", status="active")),
    ("jane doe", TaskQuery(owner="jane doe")),  # ... all of them, joined
    ('owner:"alice"', TaskQuery(owner="alice")),
    ('owner:"Jane Doe" status:"active"', TaskQuery(owner="jane doe", status="active")),
    ('owner:"a:b"', TaskQuery(owner="a:b")),  # a quoted ':' does not split
    ('owner:""', TaskQuery()),  # empty is "any"
    ('owner:"" owner:bob', TaskQuery()),  # coder reads the first value only: empty, so "any"
    ("owner::alice", TaskQuery(owner="alice")),  # empty fields vanish when coder splits on ':'
    ('"alice"', TaskQuery(owner='"alice"')),  # a bare term keeps its quotes in coder too
])
def test_task_queries_become_filters(q: str, expected: TaskQuery) -> None:
    assert parse_task_query(q) == expected


@pytest.mark.parametrize("q, validations", [
    (":alice", [("q", f'Query element ":alice" {EDGE_COLON}')]),
    ("owner:", [("q", f'Query element "owner:" {EDGE_COLON}')]),
    ("Owner:A:B", [("q", f'Query element "owner:a:b" {ONE_COLON}')]),
    ("a:b:c :d", [("q", f'Query element "a:b:c" {ONE_COLON}')]),  # the first bad element only
    ('a:b:c"', [("q", f'Query element "a:b:c\\"" {ONE_COLON}')]),  # quoted as Go's %q does
    ('owner:x "y:z"', [twice("owner")]),  # a quoted ':' makes no key: "y:z" is a bare term, so an owner
    ("foo:bar", [unknown("foo")]),
    ("Template:x status:active", [unknown("template")]),
    ("foo:1 owner:a bar:2", [unknown("foo"), unknown("bar")]),
    ("owner:a owner:b", [twice("owner")]),
    ("alice owner:bob", [twice("owner")]),
    ("status:a status:b status:c", [twice("status", 3)]),
    ("owner:a owner:b has-ai-task:true", [twice("owner"), unknown("has-ai-task")]),
])
def test_bad_task_queries_are_refused_in_coders_words(q: str, validations: list[tuple[str, str]]) -> None:
    with pytest.raises(Invalid) as caught:
        parse_task_query(q)
    error = caught.value
    assert (error.status_code, error.message, error.detail) == (400, TASK_QUERY_INVALID, None)
    assert list(error.validations) == validations


def test_the_refusal_reads_whole_on_one_line() -> None:
    with pytest.raises(Invalid) as caught:
        parse_task_query("foo:bar")
    assert str(caught.value) == 'Invalid task search query. foo: "foo" is not a valid query param.'


# ---------------------------------------------------------------------------- workspaces (E1 task list)
@pytest.mark.parametrize("q, expected", [
    ("", WorkspaceQuery()),
    ("my-task", WorkspaceQuery(name="my-task")),  # bare words mean the workspace name
    ("fix login", WorkspaceQuery(name="fix login")),
    ("alice/my-task", WorkspaceQuery(owner="alice", name="my-task")),  # ... or owner/name
    ('"alice/my-task"', WorkspaceQuery(name="alice/my-task")),  # a quoted '/' does not split either
    ("alice/", WorkspaceQuery(name="alice")),  # empty fields vanish when coder splits on '/'
    ("owner:me status:running", WorkspaceQuery(owner="me", status="running")),
    ("Status:RUNNING", WorkspaceQuery(status="running")),
    ('owner:"alice" name:"my task" template:"claude-code"',
     WorkspaceQuery(owner="alice", name="my task", template="claude-code")),
    ("organization:acme", WorkspaceQuery(organization="acme")),
    ("has-ai-task:true", WorkspaceQuery(has_ai_task=True)),
    ("has-ai-task:T", WorkspaceQuery(has_ai_task=True)),
    ("has-ai-task:1", WorkspaceQuery(has_ai_task=True)),
    ("has-ai-task:false", WorkspaceQuery(has_ai_task=False)),
    ("has-ai-task:0", WorkspaceQuery(has_ai_task=False)),
    ('status:""', WorkspaceQuery()),
])
def test_workspace_queries_become_filters(q: str, expected: WorkspaceQuery) -> None:
    assert parse_workspace_query(q) == expected


@pytest.mark.parametrize("status", WORKSPACE_STATUSES)
def test_every_workspace_status_is_accepted(status: str) -> None:
    assert parse_workspace_query(f"status:{status}") == WorkspaceQuery(status=status)


def bad_status(value: str) -> tuple[str, str]:
    return ("status", f'Query param "status" has invalid value: "{value}" is not a valid value')


@pytest.mark.parametrize("q, validations", [
    ("a/b/c", [("q", "Query element \"a/b/c\" can only contain 1 '/'")]),
    ("/", [("q", "Query element \"/\" can only contain 1 '/'")]),
    (":x", [("q", f'Query element ":x" {EDGE_COLON}')]),
    ("owner:a:b", [("q", f'Query element "owner:a:b" {ONE_COLON}')]),
    ("status:active", [bad_status("active")]),  # a task status is not a workspace status
    ("status:Paused", [bad_status("paused")]),
    ("has-ai-task:maybe", [("has-ai-task", 'Query param "has-ai-task" must be a valid boolean: '
                                           'strconv.ParseBool: parsing "maybe": invalid syntax')]),
    ("dormant:true", [unknown("dormant")]),
    ("id:0b5ac5a4-8a64-4b8e-9d0f-2b8c0d9f7a11 param:x", [unknown("id"), unknown("param")]),
    ("alice/x owner:bob", [twice("owner")]),
    ("name:a b", [twice("name")]),
    ("status:nope has-ai-task:x last_used_after:2025", [
        bad_status("nope"),
        ("has-ai-task", 'Query param "has-ai-task" must be a valid boolean: strconv.ParseBool: parsing "x": '
                        "invalid syntax"),
        unknown("last_used_after")]),
])
def test_bad_workspace_queries_are_refused_in_coders_words(q: str, validations: list[tuple[str, str]]) -> None:
    with pytest.raises(Invalid) as caught:
        parse_workspace_query(q)
    error = caught.value
    assert (error.status_code, error.message) == (400, WORKSPACE_QUERY_INVALID)
    assert list(error.validations) == validations


def test_the_two_dialects_differ_on_bare_words_and_status() -> None:
    assert parse_task_query("alice").owner == "alice"
    assert parse_workspace_query("alice").name == "alice"
    assert parse_task_query("status:active").status == "active"
    with pytest.raises(Invalid):
        parse_workspace_query("status:active")
