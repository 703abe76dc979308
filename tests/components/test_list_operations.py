"""ListOperations (spec §4.11, §8.3 cases 33 and 38); expected values from ragflow's oracle unless marked."""

from __future__ import annotations

from typing import Any

import pytest

from taskcanvas.components import builtin_registry
from taskcanvas.components.list_operations import ListOperations
from taskcanvas.dsl.errors import DslError
from taskcanvas.runtime.registry import Registry
from tests.support.canvas import Turn, build, cpn, make_canvas, run_turn

OUTPUTS = {"result": {"type": "Array"}, "first": {"type": "?"}, "last": {"type": "?"}}
LETTERS = ["a", "b", "c", "d", "e"]


def registry() -> Registry:
    r = builtin_registry()
    r.register(ListOperations)
    return r


def canvas(params: dict[str, Any], glob: dict[str, Any] | None = None, *, msg: str = "{x@result}") -> dict[str, Any]:
    return make_canvas({
        "begin": cpn("Begin", down=["x"]),
        "x": cpn("ListOperations", {"query": "env.l", "outputs": OUTPUTS, **params}, down=["m"]),
        "m": cpn("Message", {"content": [msg], "stream": False}),
    }, globals=glob)


async def run(params: dict[str, Any], items: Any = LETTERS, *, msg: str = "{x@result}") -> Turn:
    return await run_turn(build(canvas(params, {"env.l": items}, msg=msg), registry()))


@pytest.mark.parametrize(("n", "expected"), [
    (0, []), (-1, ["e"]), (-5, ["a"]), (-6, []), (2, ["b"]), (5, ["e"]), (6, []),
    ("2", ["b"]), ("x", []), (2.7, ["b"]), ("2.5", []), (None, []), (True, ["a"]),
])
async def test_nth(n: Any, expected: list[str]) -> None:
    turn = await run({"operations": "nth", "n": n})
    assert turn.output("x", "result") == expected
    assert turn.output("x", "first") == (expected[0] if expected else None)
    assert turn.output("x", "last") == (expected[-1] if expected else None)
    assert turn.finished("x")["inputs"] == {"env.l": LETTERS}


@pytest.mark.parametrize(("op", "n", "expected"), [
    ("head", 0, []), ("head", 2, ["a", "b"]), ("head", "2", ["a", "b"]), ("head", 9, LETTERS),
    ("tail", 0, []), ("tail", 2, ["d", "e"]), ("tail", 9, LETTERS),
    ("topN", 2, ["a", "b"]), (" head ", 2, ["a", "b"]), ("", 2, ["b"]), (None, 2, ["b"]),
])
async def test_head_tail_and_operation_names(op: Any, n: Any, expected: list[str]) -> None:
    turn = await run({"query": "{env.l}", "operations": op, "n": n})
    assert turn.output("x", "result") == expected


async def test_first_and_last_of_an_empty_result_are_none() -> None:
    turn = await run({"operations": "head", "n": 0}, msg="[{x@first}][{x@last}]")
    assert turn.output("x", "first") is None
    assert turn.text == "[][]"


@pytest.mark.parametrize(("op", "n"), [("head", 9), ("tail", 0), ("nth", 0), ("nth", -9)])
async def test_strict_range_errors(op: str, n: int) -> None:
    turn = await run({"operations": op, "n": n, "strict": True})
    assert turn.finished("x")["error"] == f"{op} requires n to be within the valid range in strict mode, got {n}."
    assert turn.text == ""


@pytest.mark.parametrize(("strict", "fails"), [
    (True, True), ("yes", True), ("1", True), (1, True), ("no", False), (0, False), (None, False),
])
async def test_strict_flag_values(strict: Any, fails: bool) -> None:
    turn = await run({"operations": "head", "n": 9, "strict": strict})
    assert (turn.finished("x")["error"] is not None) is fails


async def test_strict_in_range_works() -> None:
    turn = await run({"operations": "tail", "n": 2, "strict": True})
    assert turn.output("x", "result") == ["d", "e"]


@pytest.mark.parametrize(("rule", "items", "expected"), [
    ({"operator": "contains", "value": "a"}, ["apple", "Berry", "banana", None, 1], ["apple", "banana"]),
    ({"operator": "=", "value": "1"}, [1, "1", 1.0, True], [1, "1"]),
    ({"operator": "≠", "value": "1"}, [1, "1", 1.0, True], [1.0, True]),
    ({"operator": "start with", "value": "b"}, ["apple", "Berry", "banana"], ["banana"]),
    ({"operator": "end with", "value": "y"}, ["apple", "Berry", "banana"], ["Berry"]),
    ({"operator": "bogus", "value": "y"}, ["apple"], []),
    ({"operator": "=", "value": 1}, [1, "1"], []),
    ({"operator": "contains", "value": "'k': 1"}, [{"k": 1}, {"k": 2}], [{"k": 1}]),
    ({"operator": "=", "value": "{env.t}"}, ["a", "{env.t}"], ["{env.t}"]),  # no substitution here
])
async def test_filter_compares_items_as_text(rule: dict[str, Any], items: list[Any], expected: list[Any]) -> None:
    turn = await run({"operations": "filter", "filter": rule}, items)
    assert turn.output("x", "result") == expected


async def test_filter_without_operator_fails() -> None:
    turn = await run({"operations": "filter", "filter": {"value": "a"}}, ["a"])
    assert turn.finished("x")["error"] == "'operator'"


@pytest.mark.parametrize(("params", "items", "expected"), [
    ({}, [3, 1, 2], [1, 2, 3]),
    ({"sort_method": "desc"}, [3, 1, 2], [3, 2, 1]),
    ({"sort_method": "DESC"}, [3, 1, 2], [1, 2, 3]),
    ({}, [], []),
    ({}, [[2], [1, 5]], [[1, 5], [2]]),
    # Objects without sort_by compare by their sorted (key, value) pairs.
    ({"sort_method": "desc"}, [{"id": 1, "z": 9}, {"id": 3, "a": 0}, {"id": 2, "z": 1}],
     [{"id": 2, "z": 1}, {"id": 1, "z": 9}, {"id": 3, "a": 0}]),
    ({}, [{"id": 2, "name": "b"}, {"id": 1, "name": "z"}, {"id": 1, "name": "a"}],
     [{"id": 1, "name": "a"}, {"id": 1, "name": "z"}, {"id": 2, "name": "b"}]),
    ({"sort_by": "name, id"}, [{"id": 2, "name": "b"}, {"id": 1, "name": "b"}, {"id": 1, "name": "a"}],
     [{"id": 1, "name": "a"}, {"id": 1, "name": "b"}, {"id": 2, "name": "b"}]),
    ({"sort_by": "q"}, [{"id": 2}, {"id": 1}], [{"id": 2}, {"id": 1}]),
])
async def test_sort(params: dict[str, Any], items: list[Any], expected: list[Any]) -> None:
    turn = await run({"operations": "sort", **params}, items)
    assert turn.output("x", "result") == expected


@pytest.mark.parametrize(("params", "items", "error"), [
    ({}, [3, "a"], "'<' not supported between instances of 'str' and 'int'"),
    ({"sort_by": "q"}, [{"q": 2}, {"id": 1}], "'<' not supported between instances of 'NoneType' and 'int'"),
    ({"sort_by": "q"}, [{"q": 2}, 1], "'int' object has no attribute 'get'"),
])
async def test_sort_of_incomparable_items_fails(params: dict[str, Any], items: list[Any], error: str) -> None:
    turn = await run({"operations": "sort", **params}, items)
    assert turn.finished("x")["error"] == error
    assert turn.text == ""


async def test_drop_duplicates_keeps_the_first_of_equal_items() -> None:
    items = [1, "a", 1, {"a": [1]}, {"a": [1]}, [1], [1], True, 1.0, None, None]
    turn = await run({"operations": "drop_duplicates"}, items)
    assert turn.output("x", "result") == [1, "a", {"a": [1]}, [1], None]


@pytest.mark.parametrize("query", ["env.l", "begin@x"])
async def test_input_that_is_not_a_list_fails(query: str) -> None:
    turn = await run({"query": query, "operations": "nth", "n": 1}, "abc")
    assert turn.finished("x")["error"] == "The input of List Operations should be an array."
    assert turn.finished("x")["inputs"] == {}
    assert turn.text == ""


async def test_non_list_with_comment_default_continues() -> None:
    # Case 33: the default becomes the result and the run goes on.
    turn = await run({"operations": "nth", "n": 1, "exception_method": "comment", "exception_default_value": "DV"},
                     "abc")
    assert turn.finished("x")["error"] is None
    assert turn.output("x", "result") == "DV"
    assert turn.text == "DV"
    assert turn.names[-1] == "workflow_finished"
    assert turn.error is None


async def test_first_and_last_are_written_even_when_not_declared() -> None:
    # Deliberate: ragflow fails with KeyError 'first' when the canvas declares only `result`.
    dsl = canvas({"operations": "nth", "n": 1, "outputs": {"result": {"type": "Array"}}}, {"env.l": [1]},
                 msg="{x@result} {x@first} {x@last}")
    turn = await run_turn(build(dsl, registry()))
    assert turn.text == "[1] 1 1"


async def test_thoughts() -> None:
    turn = await run({"operations": "nth", "n": 1})
    assert [d["thoughts"] for d in turn.of("node_started")][1] == "ListOperation in progress"


@pytest.mark.parametrize(("params", "message"), [
    ({"query": ""}, "query must name the list variable"),
    ({"operations": "bogus"}, "operations 'bogus' is not supported"),
])
def test_load_errors(params: dict[str, Any], message: str) -> None:
    with pytest.raises(DslError, match=message):
        build(canvas(params), registry())
