"""VariableAggregator (spec §4.13, §8.3 case 36); expected values from ragflow's oracle unless marked."""

from __future__ import annotations

from typing import Any

import pytest

from taskcanvas.components import builtin_registry
from taskcanvas.components.variable_aggregator import VariableAggregator
from taskcanvas.dsl.errors import DslError
from taskcanvas.runtime.registry import Registry
from tests.support.canvas import Turn, build, cpn, make_canvas, run_turn

OUTPUTS = {"g": {"type": "string"}, "h": {"type": "string"}}


def registry() -> Registry:
    r = builtin_registry()
    r.register(VariableAggregator)
    return r


def canvas(groups: Any, glob: dict[str, Any] | None = None, *, msg: str = "{x@g}|{x@h}") -> dict[str, Any]:
    return make_canvas({
        "begin": cpn("Begin", down=["x"]),
        "x": cpn("VariableAggregator", {"groups": groups, "outputs": OUTPUTS}, down=["m"]),
        "m": cpn("Message", {"content": [msg], "stream": False}),
    }, globals=glob)


async def run(groups: Any, glob: dict[str, Any] | None = None, *, msg: str = "{x@g}|{x@h}",
              query: str = "") -> Turn:
    return await run_turn(build(canvas(groups, glob, msg=msg), registry()), query=query)


def refs(*names: str) -> list[dict[str, str]]:
    return [{"value": n} for n in names]


async def test_first_truthy_value_of_each_group() -> None:
    groups = [{"group_name": "g", "variables": refs("env.a", "env.b", "{env.c}")},
              {"group_name": "h", "variables": refs("env.a", "env.b")}]
    turn = await run(groups, {"env.a": "", "env.b": 0, "env.c": "C"})
    assert turn.output("x", "g") == "C"
    assert turn.finished("x")["outputs"]["h"] is None  # no value: the output is left alone
    assert turn.text == "C|"
    assert turn.finished("x")["inputs"] == {"g.variables": refs("env.a", "env.b", "{env.c}"),
                                            "h.variables": refs("env.a", "env.b")}
    assert turn.of("node_started")[1]["thoughts"] == "Aggregating variables from canvas and grouping as configured."


async def test_values_keep_their_type() -> None:
    turn = await run([{"group_name": "g", "variables": refs("env.a", "env.l")}], {"env.a": [], "env.l": [1]})
    assert turn.output("x", "g") == [1]
    assert turn.text == "[1]|"


async def test_component_outputs_and_globals() -> None:
    turn = await run([{"group_name": "g", "variables": refs("begin@nothing", "sys.query")}], query="Q")
    assert turn.output("x", "g") == "Q"


async def test_group_outputs_need_no_declaration() -> None:
    turn = await run([{"group_name": "q", "variables": refs("env.a")}], {"env.a": "A"}, msg="{x@q}")
    assert turn.text == "A"


async def test_bare_references_work_too() -> None:
    # Deliberate: ragflow's check asks for "a list of strings" but its run fails on them
    # ("string indices must be integers, not 'str'").
    turn = await run([{"group_name": "g", "variables": ["env.a"]}], {"env.a": "x"})
    assert turn.output("x", "g") == "x"


async def test_unknown_variable_fails() -> None:
    turn = await run([{"group_name": "g", "variables": refs("env.zz")}])
    assert "env.zz" in turn.finished("x")["error"]
    assert turn.text == ""


@pytest.mark.parametrize(("groups", "message"), [
    ([], "groups must not be empty"),
    ([{"group_name": "", "variables": refs("env.a")}], "group_name can not be empty"),
    ([{"group_name": "g", "variables": []}], "variables of group `g` can not be empty"),
    ([{"group_name": "g", "variables": "env.a"}], "variables of group `g` should be a list"),
])
def test_load_errors(groups: Any, message: str) -> None:
    with pytest.raises(DslError, match=message):
        build(canvas(groups), registry())


def test_groups_are_required() -> None:
    dsl = make_canvas({"begin": cpn("Begin", down=["x"]), "x": cpn("VariableAggregator", {})})
    with pytest.raises(DslError, match="groups must not be empty"):
        build(dsl, registry())
