"""DataOperations (spec §4.10, §8.3 case 37); expected values from ragflow's oracle unless marked."""

from __future__ import annotations

from typing import Any

import pytest

from taskcanvas.components import builtin_registry
from taskcanvas.components.data_operations import DataOperations
from taskcanvas.dsl.errors import DslError
from taskcanvas.runtime.registry import Registry
from tests.support.canvas import Turn, build, cpn, make_canvas, run_turn

RESULT = {"result": {"type": "Array<Object>"}}


def registry() -> Registry:
    r = builtin_registry()
    r.register(DataOperations)
    return r


def canvas(params: dict[str, Any], *, msg: str = "{x@result}", globals: dict[str, Any] | None = None) -> dict[str, Any]:
    return make_canvas({
        "begin": cpn("Begin", down=["x"]),
        "x": cpn("DataOperations", params, down=["m"]),
        "m": cpn("Message", {"content": [msg], "stream": False}),
    }, globals=globals)


async def run(params: dict[str, Any], glob: dict[str, Any] | None = None, *, msg: str = "{x@result}") -> Turn:
    return await run_turn(build(canvas({"outputs": RESULT, **params}, msg=msg, globals=glob), registry()))


async def test_select_keys_keeps_the_dicts_of_lists_and_skips_the_rest() -> None:
    turn = await run({"query": ["env.o"], "operations": "select_keys", "select_keys": ["a"]},
                     {"env.o": [{"a": 1, "b": 2}, "skip", {"b": 3}]})
    assert turn.output("x", "result") == [{"a": 1}, {}]
    assert turn.text == '[{"a": 1}, {}]'
    assert turn.finished("x")["inputs"] == {"env.o": [{"a": 1, "b": 2}, "skip", {"b": 3}]}
    assert turn.of("node_started")[1]["thoughts"] == "DataOperation in progress"


async def test_query_may_be_one_reference_in_braces() -> None:
    turn = await run({"query": "{env.a}", "operations": "select_keys", "select_keys": ["k"]},
                     {"env.a": {"k": 1, "m": [1]}})
    assert turn.output("x", "result") == [{"k": 1}]
    assert turn.finished("x")["inputs"] == {"{env.a}": {"k": 1, "m": [1]}}


async def test_values_that_are_not_objects_are_ignored() -> None:
    turn = await run({"query": ["env.a", "env.s", "x@nothing"], "operations": "select_keys", "select_keys": ["k"]},
                     {"env.a": None, "env.s": '{"k": 1}'})
    assert turn.output("x", "result") == []
    assert turn.text == "[]"


async def test_literal_eval_converts_python_literals_only() -> None:
    source = {"a": "True", "b": "42", "c": "1.5", "d": "[1, 2]", "e": "true", "f": "-5", "g": '{"k": null}',
              "h": "none", "i": " (1,2) ", "j": "1.2.3", "k": "abc", "l": ["7", {"m": "False"}], "n": "'q'"}
    turn = await run({"query": ["env.o"], "operations": "literal_eval"}, {"env.o": source})
    assert turn.output("x", "result") == [{
        "a": True, "b": 42, "c": 1.5, "d": [1, 2], "e": "true", "f": "-5", "g": '{"k": null}', "h": "none",
        "i": (1, 2), "j": "1.2.3", "k": "abc", "l": [7, {"m": False}], "n": "q"}]
    assert turn.text.startswith('[{"a": true, "b": 42, "c": 1.5, "d": [1, 2], "e": "true", "f": "-5"')


async def test_combine_collects_repeated_keys_without_changing_the_sources() -> None:
    turn = await run({"query": ["env.a", "env.b"], "operations": "combine"},
                     {"env.a": {"k": 1, "m": [1]}, "env.b": [{"k": 2, "m": [2, 3], "n": "x"}, {"k": [4]}]},
                     msg="{x@result} | {env.a}")
    assert turn.output("x", "result") == {"k": [1, 2, 4], "m": [1, 2, 3], "n": "x"}
    # ragflow extends env.a's own list and shows {"k": 1, "m": [1, 2, 3]} here (a bug: combine must not edit sources).
    assert turn.text == '{"k": [1, 2, 4], "m": [1, 2, 3], "n": "x"} | {"k": 1, "m": [1]}'


async def test_filter_contains_compares_text() -> None:
    turn = await run({"query": ["env.a"], "operations": "filter_values",
                      "filter_values": [{"key": "k", "operator": "contains", "value": "1"}]},
                     {"env.a": [{"k": "1-a"}, {"k": 31}, {"k": "b"}, {"j": 1}, {"k": None}]})
    assert turn.output("x", "result") == [{"k": "1-a"}, {"k": 31}]


async def test_filter_value_is_a_template() -> None:
    turn = await run({"query": ["env.a"], "operations": "filter_values",
                      "filter_values": [{"key": "k", "operator": "=", "value": "{env.t}"}]},
                     {"env.a": [{"k": "x"}, {"k": "y"}], "env.t": "y"})
    assert turn.output("x", "result") == [{"k": "y"}]


async def test_filter_value_that_substitutes_to_nothing_is_kept_as_written() -> None:
    turn = await run({"query": ["env.a"], "operations": "filter_values",
                      "filter_values": [{"key": "k", "operator": "=", "value": "{env.e}"}]},
                     {"env.a": [{"k": "{env.e}"}, {"k": ""}], "env.e": ""})
    assert turn.output("x", "result") == [{"k": "{env.e}"}]


async def test_filter_all_rules_must_match() -> None:
    rules = [{"key": "k", "operator": "start with", "value": "a"}, {"key": "k", "operator": "end with", "value": "z"},
             {"key": "k", "operator": "≠", "value": "az"}]
    turn = await run({"query": ["env.a"], "operations": "filter_values", "filter_values": rules},
                     {"env.a": [{"k": "abz"}, {"k": "az"}, {"k": "ab"}]})
    assert turn.output("x", "result") == [{"k": "abz"}]


@pytest.mark.parametrize(("rules", "expected"), [
    ([{"key": "k", "value": "x"}], []),  # no operator means "equals", which ragflow never matches
    ([{"key": "k", "operator": "=", "value": None}], [{"k": None}, {"k": ""}]),
    ([], [{"k": None}, {"k": "y"}, {"k": ""}]),
])
async def test_filter_defaults(rules: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    turn = await run({"query": ["env.a"], "operations": "filter_values", "filter_values": rules},
                     {"env.a": [{"k": None}, {"k": "y"}, {"k": ""}]})
    assert turn.output("x", "result") == expected


async def test_append_or_update_resolves_references_in_braces_only() -> None:
    updates = [{"key": " u ", "value": "{sys.user_id}"}, {"key": "v", "value": "sys.user_id"},
               {"key": "", "value": "x"}, {"key": "k", "value": "{env.empty}"}, "junk"]
    turn = await run({"query": ["env.a"], "operations": "append_or_update", "updates": updates},
                     {"env.a": {"k": 1}, "sys.user_id": "u7", "env.empty": ""})
    assert turn.output("x", "result") == [{"k": "{env.empty}", "u": "u7", "v": "sys.user_id"}]


async def test_append_or_update_keeps_spaces_around_references() -> None:
    # Deliberate: ragflow's whole-match replacement gives "A1B".
    turn = await run({"query": ["env.a"], "operations": "append_or_update",
                      "updates": [{"key": "w", "value": "A {env.n} B"}]}, {"env.a": {"k": 1}, "env.n": 1})
    assert turn.output("x", "result") == [{"k": 1, "w": "A 1 B"}]


async def test_append_or_update_takes_non_text_values_literally() -> None:
    # Deliberate: ragflow fails with "expected string or bytes-like object, got 'int'".
    turn = await run({"query": ["env.a"], "operations": "append_or_update",
                      "updates": [{"key": "z", "value": 5}, {"key": "n", "value": None}]}, {"env.a": {"k": 1}})
    assert turn.output("x", "result") == [{"k": 1, "z": 5, "n": None}]
    assert turn.text == '[{"k": 1, "z": 5, "n": null}]'


async def test_remove_keys_ignores_keys_that_are_not_text() -> None:
    turn = await run({"query": ["env.a"], "operations": "remove_keys", "remove_keys": ["k", 3, "zz"]},
                     {"env.a": [{"k": 1, "j": 2}]})
    assert turn.output("x", "result") == [{"j": 2}]


async def test_rename_keys_skips_blank_and_identical_names() -> None:
    pairs = [{"old_key": "k", "new_key": "k"}, {"old_key": " j ", "new_key": "jj"}, {"old_key": "q", "new_key": "r"},
             {"old_key": "a", "new_key": "k"}]
    turn = await run({"query": ["env.a"], "operations": "rename_keys", "rename_keys": pairs},
                     {"env.a": [{"a": 0, "k": 1, "j": 2}]})
    assert turn.output("x", "result") == [{"k": 0, "jj": 2}]
    assert turn.text == '[{"k": 0, "jj": 2}]'


async def test_default_operation_and_outputs() -> None:
    dsl = canvas({"query": ["env.a"]}, globals={"env.a": [{"k": "1"}]})
    turn = await run_turn(build(dsl, registry()))
    assert turn.output("x", "result") == [{"k": 1}]


async def test_unknown_variable_fails_the_component() -> None:
    turn = await run({"query": ["env.zz"], "operations": "literal_eval"})
    assert "env.zz" in turn.finished("x")["error"]
    assert turn.text == ""
    assert turn.error is not None


def test_unknown_operation_is_a_load_error() -> None:
    with pytest.raises(DslError, match="operations 'bogus' is not supported"):
        build(canvas({"query": ["env.a"], "operations": "bogus"}), registry())
