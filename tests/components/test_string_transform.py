"""StringTransform (spec §4.12, §2.4 mode E, §8.3 case 39); expected values from ragflow's oracle unless marked."""

from __future__ import annotations

from typing import Any

import pytest

from taskcanvas.components import builtin_registry
from taskcanvas.components.string_transform import StringTransform
from taskcanvas.dsl.errors import DslError
from taskcanvas.runtime.registry import Registry
from tests.support.canvas import Turn, build, cpn, make_canvas, run_turn

RESULT = {"result": {"type": "string"}}


def registry() -> Registry:
    r = builtin_registry()
    r.register(StringTransform)
    return r


def transform(params: dict[str, Any], down: list[str], parent: str | None = None) -> dict[str, Any]:
    return cpn("StringTransform", {"outputs": RESULT, **params}, down=down, parent=parent)


def canvas(params: dict[str, Any], glob: dict[str, Any] | None = None) -> dict[str, Any]:
    return make_canvas({
        "begin": cpn("Begin", down=["x"]),
        "x": transform(params, ["m"]),
        "m": cpn("Message", {"content": ["{x@result}"], "stream": False}),
    }, globals=glob)


async def run(params: dict[str, Any], glob: dict[str, Any] | None = None, *, query: str = "") -> Turn:
    return await run_turn(build(canvas(params, glob), registry()), query=query)


async def split(text: Any, delimiters: list[str]) -> Turn:
    return await run({"method": "split", "split_ref": "env.s", "delimiters": delimiters}, {"env.s": text})


async def merge(script: str, glob: dict[str, Any] | None = None, *, delimiter: str = ",", query: str = "") -> Turn:
    return await run({"method": "merge", "script": script, "delimiters": [delimiter]}, glob, query=query)


@pytest.mark.parametrize(("text", "delimiters", "expected"), [
    ("a,b;;c", [",", ";"], ["a", "b", "", "c"]),
    ("a.b|c", [".", "|"], ["a", "b", "c"]),
    ("a.*b\\c", [".*", "\\"], ["a", "b", "c"]),
    ("xabyaz", ["a", "ab"], ["x", "by", "z"]),  # the first delimiter that matches wins
    ("a\nb", ["\n"], ["a", "b"]),
    ("abc", [""], ["", "a", "b", "c", ""]),
    ("", [","], [""]),
    (None, [","], [""]),
])
async def test_split_is_literal_and_keeps_empty_fields(text: Any, delimiters: list[str], expected: list[str]) -> None:
    turn = await split(text, delimiters)
    assert turn.output("x", "result") == expected


async def test_split_ref_may_have_braces() -> None:
    turn = await run({"method": "split", "split_ref": "{env.s}"}, {"env.s": "a,b"})
    assert turn.output("x", "result") == ["a", "b"]
    assert turn.text == '["a", "b"]'


@pytest.mark.parametrize(("value", "type_name"), [(["a"], "list"), (5, "int")])
async def test_split_of_something_else_than_text_fails(value: Any, type_name: str) -> None:
    turn = await split(value, [","])
    assert turn.finished("x")["error"] == f"The input variable is not a string: <class '{type_name}'>"
    assert turn.text == ""


async def test_split_without_reference_fails() -> None:
    turn = await run({"method": "split", "split_ref": ""}, {"env.s": "abc"})
    assert turn.finished("x")["error"] is not None


async def test_merge_joins_lists_with_the_first_delimiter() -> None:
    turn = await merge("items: {env.l}", {"env.l": ["a", "b"]}, delimiter=" | ")
    assert turn.output("x", "result") == "items: a | b"
    assert turn.text == "items: a | b"
    assert turn.finished("x")["inputs"] == {"env.l": "a | b"}
    assert turn.of("node_started")[1]["thoughts"] == "It's mergeing."


async def test_merge_shows_objects_as_json_and_list_items_as_python_text() -> None:
    turn = await merge("{env.d} / {env.l}", {"env.d": {"k": "v"}, "env.l": [{"k": 1}, None, 2.5, True]})
    assert turn.output("x", "result") == "{\"k\": \"v\"} / {'k': 1},None,2.5,True"


async def test_merge_scalars_and_missing_outputs() -> None:
    turn = await merge("[{env.n}][{env.f}][{env.b}][{begin@nothing}]", {"env.n": None, "env.f": 1.5, "env.b": False})
    assert turn.output("x", "result") == "[][1.5][false][]"


async def test_merge_keeps_spaces_around_references() -> None:
    turn = await merge("A {env.x} B", {"env.x": 1})
    assert turn.output("x", "result") == "A 1 B"


async def test_merge_without_references() -> None:
    turn = await merge("plain")
    assert turn.output("x", "result") == "plain"


@pytest.mark.parametrize(("script", "expected"), [
    ("{% if env_x %}yes{% endif %} {env.x} {{ env_x }}", "yes hi hi"),
    ("{% if {env.x} %}yes{% endif %}", "yes"),
])
async def test_merge_renders_jinja_with_references_as_variables(script: str, expected: str) -> None:
    turn = await merge(script, {"env.x": "hi"})
    assert turn.output("x", "result") == expected


async def test_merge_double_braces_keep_one_pair() -> None:
    turn = await merge("Hi {{sys.query}}", query="Bob")
    assert turn.output("x", "result") == "Hi {Bob}"


async def test_merge_with_unknown_global_fails() -> None:
    turn = await merge("{env.missing}")
    assert "env.missing" in (turn.error or "")
    assert turn.text == ""


async def test_string_transform_says_nothing_itself() -> None:
    turn = await merge("hello")
    assert turn.names == ["workflow_started", "node_started", "node_finished", "node_started", "node_finished",
                          "node_started", "message", "message_end", "node_finished", "workflow_finished"]


async def test_waits_for_the_components_its_script_refers_to() -> None:
    # begin → A → J and begin → B → C → J: J refers to C, so it runs once, after C (case 34 shape).
    dsl = make_canvas({
        "begin": cpn("Begin", down=["A", "B"]),
        "A": transform({"method": "merge", "script": "a"}, ["J"]),
        "B": transform({"method": "merge", "script": "b"}, ["C"]),
        "C": transform({"method": "merge", "script": "c"}, ["J"]),
        "J": transform({"method": "merge", "script": "{A@result}+{C@result}"}, ["m"]),
        "m": cpn("Message", {"content": ["{J@result}"], "stream": False}),
    })
    turn = await run_turn(build(dsl, registry()))
    assert turn.text == "a+c"
    assert [d["component_id"] for d in turn.of("node_finished")].count("J") == 1


@pytest.mark.parametrize(("script", "expected"), [
    ("{ii@index}: {ii@item}", ["0: a", "1: b", "2: c"]),
    ("{index}:{item}", ["0:a", "1:b", "2:c"]),
])
async def test_merge_inside_an_iteration(script: str, expected: list[str]) -> None:
    dsl = make_canvas({
        "begin": cpn("Begin", down=["it"]),
        "it": cpn("Iteration", {"items_ref": "env.items",
                                "outputs": {"lines": {"ref": "x@result", "type": "Array<string>"}}}, down=["m"]),
        "ii": cpn("IterationItem", {}, down=["x"], parent="it"),
        "x": transform({"method": "merge", "script": script}, [], parent="it"),
        "m": cpn("Message", {"content": ["{it@lines}"], "stream": False}),
    }, globals={"env.items": ["a", "b", "c"]})
    turn = await run_turn(build(dsl, registry()))
    assert turn.output("it", "lines") == expected


async def test_default_method_is_split() -> None:
    turn = await run({"split_ref": "env.s"}, {"env.s": "a,b"})
    assert turn.output("x", "result") == ["a", "b"]
    assert turn.of("node_started")[1]["thoughts"] == "It's spliting."  # ragflow's f"It's {method}ing."


@pytest.mark.parametrize(("params", "message"), [
    ({"delimiters": []}, "delimiters must not be empty"),
    ({"method": "x"}, "method 'x' is not supported"),
])
def test_load_errors(params: dict[str, Any], message: str) -> None:
    with pytest.raises(DslError, match=message):
        build(canvas(params), registry())
