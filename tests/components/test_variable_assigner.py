"""VariableAssigner (spec §4.14, §8.3 case 35); expected values from ragflow's oracle unless marked."""

from __future__ import annotations

from typing import Any

import pytest

from taskcanvas.components import builtin_registry
from taskcanvas.components.variable_assigner import VariableAssigner
from taskcanvas.runtime.registry import Registry
from tests.support.canvas import Turn, build, cpn, make_canvas, run_turn


def registry() -> Registry:
    r = builtin_registry()
    r.register(VariableAssigner)
    return r


async def run(variables: Any, glob: dict[str, Any] | None = None, *, msg: str = "{env.a}", query: str = "") -> Turn:
    dsl = make_canvas({
        "begin": cpn("Begin", down=["x"]),
        "x": cpn("VariableAssigner", {"variables": variables}, down=["m"]),
        "m": cpn("Message", {"content": [msg], "stream": False}),
    }, globals=glob)
    return await run_turn(build(dsl, registry()), query=query)


def item(variable: str, operator: str, parameter: Any = None) -> dict[str, Any]:
    entry = {"variable": variable, "operator": operator}
    if parameter is not None:
        entry["parameter"] = parameter
    return entry


async def test_overwrite_copies_another_variable() -> None:
    turn = await run([item("env.a", "overwrite", "env.b")], {"env.a": [], "env.b": [1]})
    assert turn.text == "[1]"
    assert turn.state.globals["env.a"] == [1]
    assert turn.of("node_started")[1]["thoughts"] == "Assign variables from canvas."


async def test_references_may_have_braces() -> None:
    turn = await run([item("{env.a}", "overwrite", "{env.b}")], {"env.a": [], "env.b": [1]})
    assert turn.text == "[1]"


async def test_overwrite_with_a_literal_fails() -> None:
    turn = await run([item("env.a", "overwrite", "hello")], {"env.a": []})
    assert "hello" in turn.finished("x")["error"]
    assert turn.text == ""


@pytest.mark.parametrize(("value", "shown"), [
    ([1], "[]"), ("str", ""), ({"k": 1}, "{}"), (True, "false"), (5, "0"), (1.5, "0.0"), (None, ""),
])
async def test_clear_empties_by_type(value: Any, shown: str) -> None:
    turn = await run([item("env.a", "clear")], {"env.a": value}, msg="{env.a}|")
    assert turn.text == f"{shown}|"


@pytest.mark.parametrize(("value", "parameter", "shown"), [
    ("str", "v={env.i}!", "v=5!"),
    (None, "{env.d}", '{"k": 1}'),
    ("x", "", ""),
    (5, "7", "7"),  # a number takes the parameter as is ...
    (5, "{env.f}", "{env.f}"),  # ... without substituting references
])
async def test_set(value: Any, parameter: str, shown: str) -> None:
    turn = await run([item("env.a", "set", parameter)], {"env.a": value, "env.i": 5, "env.d": {"k": 1}, "env.f": 1.5})
    assert turn.text == shown


async def test_set_keeps_spaces_around_references() -> None:
    # Deliberate: ragflow's whole-match replacement gives "A5B".
    turn = await run([item("env.a", "set", "A {env.i} B")], {"env.a": "", "env.i": 5})
    assert turn.text == "A 5 B"


async def test_set_takes_a_non_text_parameter_literally() -> None:
    # Deliberate: ragflow fails with "expected string or bytes-like object, got 'int'".
    turn = await run([item("env.a", "set", 7)], {"env.a": None})
    assert turn.state.globals["env.a"] == 7
    assert turn.finished("x")["error"] is None


async def test_set_on_a_component_output_path_and_a_system_variable() -> None:
    turn = await run([item("begin@o.p.q", "set", "z"), item("sys.query", "set", "{sys.query}!")],
                     msg="{begin@o} {sys.query}", query="hi")
    assert turn.text == '{"p": {"q": "z"}} hi!'


@pytest.mark.parametrize(("value", "parameter", "result"), [
    ([1, 2], 3, [1, 2, 3]),
    ([1, 2], "3", "ERROR:PARAMETER_NOT_LIST_ELEMENT_TYPE"),
    (None, "3", ["3"]),
    ("x", "3", "ERROR:VARIABLE_NOT_LIST"),
    ([1], True, [1, True]),  # bool is an int in Python's eyes
])
async def test_append(value: Any, parameter: Any, result: Any) -> None:
    turn = await run([item("env.a", "append", "env.p")], {"env.a": value, "env.p": parameter})
    assert turn.state.globals["env.a"] == result
    assert turn.finished("x")["error"] is None


async def test_append_parameter_must_be_a_reference() -> None:
    turn = await run([item("env.a", "append", "3")], {"env.a": [1]})
    assert "'3'" in turn.finished("x")["error"]


async def test_append_leaves_a_copied_list_alone() -> None:
    # Deliberate: ragflow appends in place, so after overwrite env.b changes too ("[1, 2] [1, 2]").
    turn = await run([item("env.a", "overwrite", "env.b"), item("env.a", "append", "env.x")],
                     {"env.a": [], "env.b": [1], "env.x": 2}, msg="{env.a} {env.b}")
    assert turn.text == "[1, 2] [1]"


@pytest.mark.parametrize(("value", "parameter", "result"), [
    ([1, 2], [3, 4], [1, 2, 3, 4]),
    ([1, 2], 3, "ERROR:PARAMETER_NOT_LIST"),
    ([1, 2], ["x"], "ERROR:PARAMETER_NOT_LIST_ELEMENT_TYPE"),
    ("q", [1], "ERROR:VARIABLE_NOT_LIST"),
    (None, [1], [1]),
])
async def test_extend(value: Any, parameter: Any, result: Any) -> None:
    turn = await run([item("env.a", "extend", "env.p")], {"env.a": value, "env.p": parameter})
    assert turn.state.globals["env.a"] == result


@pytest.mark.parametrize(("operator", "value", "result"), [
    ("remove_first", [1, 2, 3], [2, 3]),
    ("remove_last", [1, 2, 3], [1, 2]),
    ("remove_first", [], []),
    ("remove_last", "abc", "ERROR:VARIABLE_NOT_LIST"),
    ("remove_last", None, "ERROR:VARIABLE_NOT_LIST"),
])
async def test_remove(operator: str, value: Any, result: Any) -> None:
    turn = await run([item("env.a", operator)], {"env.a": value})
    assert turn.state.globals["env.a"] == result


@pytest.mark.parametrize(("operator", "value", "parameter", "shown"), [
    ("+=", 1, 2, "3"), ("-=", 1, 2, "-1"), ("*=", 3, 2, "6"), ("/=", 3, 2, "1.5"), ("/=", 4, 2, "2.0"),
    ("+=", 1, 0.5, "1.5"),
    ("/=", 1, 0, "ERROR:DIVIDE_BY_ZERO"),
    ("+=", 1, "2", "ERROR:VARIABLE_NOT_NUMBER or PARAMETER_NOT_NUMBER"),  # the parameter is not resolved
    ("+=", 1, True, "ERROR:VARIABLE_NOT_NUMBER or PARAMETER_NOT_NUMBER"),
    ("+=", True, 1, "ERROR:VARIABLE_NOT_NUMBER or PARAMETER_NOT_NUMBER"),
])
async def test_arithmetic(operator: str, value: Any, parameter: Any, shown: str) -> None:
    turn = await run([item("env.a", operator, parameter)], {"env.a": value})
    assert turn.text == shown
    assert turn.finished("x")["error"] is None


async def test_unknown_operator_writes_none() -> None:
    turn = await run([item("env.a", "bogus", 1)], {"env.a": 4}, msg="[{env.a}]")
    assert turn.state.globals["env.a"] is None
    assert turn.text == "[]"


@pytest.mark.parametrize("variables", [
    [item("env.a", "set")],
    [item("", "set", 1)],
    [{"variable": "env.a", "parameter": 1}],
    ["env.a"],  # ragflow: "'str' object has no attribute 'get'"
])
async def test_incomplete_item_fails(variables: list[Any]) -> None:
    turn = await run(variables, {"env.a": 4})
    assert turn.finished("x")["error"] == "Variable is not complete."
    assert turn.text == ""


async def test_items_before_an_incomplete_one_take_effect() -> None:
    turn = await run([item("env.a", "+=", 1), item("env.a", "set")], {"env.a": 4})
    assert turn.finished("x")["error"] == "Variable is not complete."
    assert turn.state.globals["env.a"] == 5


async def test_variables_that_are_not_a_list_assign_nothing() -> None:
    turn = await run(item("env.a", "clear"), {"env.a": 4})
    assert turn.text == "4"


async def test_unknown_variable_fails() -> None:
    turn = await run([item("env.new", "set", "z")], msg="x")
    assert "env.new" in turn.finished("x")["error"]


async def test_counter_in_a_loop() -> None:
    # Case 18: the body adds 1 to the Loop's variable until it reaches 3.
    dsl = make_canvas({
        "begin": cpn("Begin", down=["loop"]),
        "loop": cpn("Loop", {
            "loop_variables": [{"variable": "counter", "input_mode": "constant", "value": 0, "type": "number"}],
            "loop_termination_condition": [{"variable": "loop@counter", "operator": "≥", "value": 3,
                                            "input_mode": "constant"}],
            "maximum_loop_count": 10, "outputs": {"counter": {"type": "number"}}}, down=["m"]),
        "li": cpn("LoopItem", {}, down=["x"], parent="loop"),
        "x": cpn("VariableAssigner", {"variables": [item("loop@counter", "+=", 1)]}, down=["p"], parent="loop"),
        "p": cpn("Message", {"content": ["[{loop@counter}]"], "stream": False}, parent="loop"),
        "m": cpn("Message", {"content": ["after {loop@counter}"], "stream": False}),
    })
    turn = await run_turn(build(dsl, registry()))
    assert turn.text == "[1][2][3]after 3"
