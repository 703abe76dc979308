"""The behavioural cases of the spec (§8.3) that need only the flow components.

Each test asserts what ragflow's own runtime gives (values marked [V] in the spec, or re-run
with the oracle, /work/oracle/oracle.sh), except where taskcanvas deliberately differs: those
assertions carry a ``# deliberate difference`` comment pointing at docs/compat.md.

Components the cases need that are not flow components (VariableAssigner's ``+=``,
StringTransform's merge) are stood in for by small test-only components defined here, next to
the oracle's own test helpers ``Probe`` and ``Fail`` (/work/shared/oracle/h.py).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from taskcanvas.components import builtin_registry
from taskcanvas.components.message import text_values
from taskcanvas.runtime.cancel import CancelToken
from taskcanvas.runtime.component import Component, ComponentParams, RunContext
from taskcanvas.runtime.engine import Engine
from taskcanvas.runtime.errors import RunStatus
from taskcanvas.runtime.registry import Registry
from taskcanvas.runtime.templates import render, string_format
from tests.support.canvas import Turn, build, cpn, make_canvas, next_turn, run_turn

# --------------------------------------------------------------------------- test-only components


class ProbeParams(ComponentParams):
    value: Any = None


class Probe(Component):
    """Records its ``value`` with references resolved (as the oracle's Probe: ``string_format``)."""

    component_name = "Probe"
    Params = ProbeParams

    async def invoke(self, ctx: RunContext) -> None:
        value = self.params.value  # type: ignore[attr-defined]
        if isinstance(value, str):
            found = {name: ctx.state.get_variable_value(target) for name, target in self.text_refs_of(value).items()}
            value = string_format(value, found)
        ctx.state.set_output(self.id, "result", value)
        calls = list(ctx.state.globals.get("probe.calls") or [])
        ctx.state.set_global("probe.calls", [*calls, value])


class Fail(Component):
    """Always fails with "boom" (the oracle's Fail)."""

    component_name = "Fail"

    async def invoke(self, ctx: RunContext) -> None:
        raise RuntimeError("boom")


class IncrParams(ComponentParams):
    variable: str = ""


class Incr(Component):
    """Stands in for VariableAssigner ``{variable, operator: "+=", parameter: 1}``."""

    component_name = "Incr"
    Params = IncrParams

    async def invoke(self, ctx: RunContext) -> None:
        ref = self.params.variable  # type: ignore[attr-defined]
        ctx.state.set_variable_value(ref, ctx.state.get_variable_value(ref) + 1)


class FmtParams(ComponentParams):
    script: str = ""


class Fmt(Component):
    """Stands in for StringTransform ``merge`` (a text-reading component, output ``result``)."""

    component_name = "Fmt"
    Params = FmtParams
    reads_text = True

    def text_inputs(self) -> list[str]:
        return [self.params.script]  # type: ignore[attr-defined]

    async def invoke(self, ctx: RunContext) -> None:
        script = self.params.script  # type: ignore[attr-defined]
        values = await text_values(self, ctx.state, script)
        ctx.state.set_output(self.id, "result", render(script, values, jinja=False))


SLEEP_STARTED: dict[str, asyncio.Event] = {}


class Sleep(Component):
    """Awaits a long sleep; records that it started and whether it ever woke up."""

    component_name = "Sleep"
    timeout = 600.0

    async def invoke(self, ctx: RunContext) -> None:
        ctx.state.set_output(self.id, "started", True)
        event = SLEEP_STARTED.get(self.id)
        if event is not None:
            event.set()
        await asyncio.sleep(60)
        ctx.state.set_output(self.id, "woke", True)


class CancelSelf(Component):
    """Cancels the run it is part of, then awaits a long sleep (that must not complete)."""

    component_name = "CancelSelf"

    async def invoke(self, ctx: RunContext) -> None:
        ctx.cancel.cancel()
        await asyncio.sleep(60)
        ctx.state.set_output(self.id, "woke", True)


def registry() -> Registry:
    r = builtin_registry()
    for cls in (Probe, Fail, Incr, Fmt, Sleep, CancelSelf):
        r.register(cls)
    return r


def engine(dsl: dict[str, Any]) -> Engine:
    return build(dsl, registry())


async def run(dsl: dict[str, Any], **kw: Any) -> Turn:
    return await run_turn(engine(dsl), **kw)


def started(turn: Turn) -> list[str]:
    return [d["component_id"] for d in turn.of("node_started")]


def finished_ids(turn: Turn) -> list[str]:
    return [d["component_id"] for d in turn.of("node_finished")]


def probe_calls(turn: Turn) -> list[Any]:
    return list(turn.state.globals.get("probe.calls") or [])


def assert_failed(turn: Turn, error: str) -> None:
    """taskcanvas's clear ending of a failed run: status, error, one terminal event last."""
    assert turn.status is RunStatus.FAILED
    assert turn.error is not None and error in turn.error, turn.error
    assert turn.names[-1] == "workflow_finished"
    assert turn.names.count("workflow_finished") == 1
    last = turn.events[-1]["data"]
    assert last["status"] == "failed"
    assert error in last["error"]


def msg(content: str, *, stream: bool | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"content": [content]}
    if stream is not None:
        params["stream"] = stream
    return params


# --------------------------------------------------------------------------- 1–7 Message


async def test_case01_begin_message_non_streaming() -> None:
    dsl = make_canvas({"begin": cpn("Begin", down=["m"]), "m": cpn("Message", msg("{sys.query}", stream=False))})
    turn = await run(dsl, query="hello")
    assert turn.text == "hello"
    assert turn.names == ["workflow_started", "node_started", "node_finished", "node_started", "message",
                          "message_end", "node_finished", "workflow_finished"]
    assert started(turn) == ["begin", "m"]
    assert finished_ids(turn) == ["begin", "m"]
    assert turn.state.path == ["begin", "m"]
    assert turn.status is RunStatus.FINISHED


async def test_case02_streaming_keeps_spaces_next_to_refs() -> None:
    dsl = make_canvas({"begin": cpn("Begin", down=["m"]), "m": cpn("Message", msg("Hello {sys.query}!"))})
    turn = await run(dsl, query="Bob")
    # deliberate difference: spaces next to a reference are kept; ragflow streams "Hello", "Bob", "!"
    # and says "HelloBob!" (docs/compat.md)
    assert [d["content"] for d in turn.of("message")] == ["Hello ", "Bob", "!"]
    assert turn.output("m", "content") == "Hello Bob!"
    assert turn.finished("m")["outputs"]["content"] == "Hello Bob!"


async def test_case03_double_braces_without_streaming() -> None:
    dsl = make_canvas({"begin": cpn("Begin", down=["m"]), "m": cpn("Message", msg("Hi {{sys.query}}", stream=False))})
    turn = await run(dsl, query="Bob")
    assert turn.text == "Hi {Bob}"


async def test_case04_jinja_with_sanitized_names() -> None:
    dsl = make_canvas({
        "begin": cpn("Begin", down=["m"]),
        "m": cpn("Message", msg("{% if sys_query %}yes{% endif %} {sys.query}")),
    })
    turn = await run(dsl, query="Bob")
    assert turn.text == "yes Bob"


ENV_VALUES = {"env.l": ["a", 1], "env.d": {"k": "v"}, "env.n": 1.5, "env.b": True, "env.x": None}


async def test_case05_values_as_text_non_streaming() -> None:
    dsl = make_canvas({
        "begin": cpn("Begin", down=["m"]),
        "m": cpn("Message", msg("L={env.l} D={env.d} N={env.n} B={env.b} X={env.x}", stream=False)),
    }, globals=ENV_VALUES)
    turn = await run(dsl, query="q")
    assert turn.text == 'L=["a", 1] D={"k": "v"} N=1.5 B=true X='


async def test_case05_values_as_text_streaming() -> None:
    dsl = make_canvas({
        "begin": cpn("Begin", down=["m"]),
        "m": cpn("Message", msg("L={env.l} D={env.d} N={env.n} B={env.b} X={env.x}")),
    }, globals=ENV_VALUES)
    turn = await run(dsl, query="q")
    # ragflow (oracle): chunks 'L=', '["a", 1]', 'D=', ... 'X=' (None gives no chunk), content without spaces.
    # deliberate difference: the spaces next to the references are kept (docs/compat.md)
    assert [d["content"] for d in turn.of("message")] == [
        "L=", '["a", 1]', " D=", '{"k": "v"}', " N=", "1.5", " B=", "true", " X="]
    assert turn.output("m", "content") == 'L=["a", 1] D={"k": "v"} N=1.5 B=true X='


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize(("text", "ref"), [
    ("{unknown@x}", "unknown@x"),
    # ragflow: KeyError 'sys.missing' / 'env.d.k' out of run()
    ("{sys.missing}", "sys.missing"),
    ("{env.d.k}", "env.d.k"),
])
async def test_case06_unknown_reference_fails_the_run(text: str, ref: str, stream: bool) -> None:
    dsl = make_canvas({"begin": cpn("Begin", down=["m"]), "m": cpn("Message", msg(text, stream=stream))},
                      globals={"env.d": {"k": 1}})
    turn = await run(dsl, query="q")
    # deliberate difference: ragflow raises out of run() with no terminal event (and KeyError text for
    # globals); taskcanvas fails the run with "Can't find variable" and a terminal event (docs/compat.md)
    assert_failed(turn, f"Can't find variable: '{ref}'")
    assert turn.of("message") == []


async def test_case07_undeclared_output_reads_empty() -> None:
    dsl = make_canvas({"begin": cpn("Begin", down=["m"]), "m": cpn("Message", msg("{begin@nothing}|"))})
    turn = await run(dsl, query="q")
    assert turn.text == "|"


# --------------------------------------------------------------------------- 8–9 references


def _state_with_probe() -> Any:
    dsl = make_canvas({"begin": cpn("Begin", down=["p"]), "p": cpn("Probe", {"value": "x"})})
    state = engine(dsl).new_session()
    state.set_output("p", "js", '{"a":{"b":[10,20,30]}}')
    state.set_output("p", "d", {"a": {"b": [10, 20, 30]}})
    return state


@pytest.mark.parametrize(("exp", "expected"), [
    ("p@js.a.b.1", 20),
    ("p@d.a.b.-1", 30),
    ("p@d.a.b.9", None),
    ("p@js.a.b.9", None),
    ("{{p@d.a}}", {"b": [10, 20, 30]}),
    ("p@undeclared", ""),
    ("p@d.missing.path", None),
])
def test_case08_get_variable_value(exp: str, expected: Any) -> None:
    assert _state_with_probe().get_variable_value(exp) == expected


@pytest.mark.parametrize(("exp", "expected"), [
    ("sys.query", True), ("{sys.query}", True), ("sys.nope", False), ("zz@x", False), ("a@b@c", False),
    ("p@anything", True),
])
def test_case09_is_ref(exp: str, expected: bool) -> None:
    assert _state_with_probe().is_ref(exp) is expected


# --------------------------------------------------------------------------- 10–17 Switch


def item(ref: str, op: str, value: Any = "") -> dict[str, Any]:
    return {"cpn_id": ref, "operator": op, "value": value}


def cond(*items: dict[str, Any], to: list[str], logic: str = "and") -> dict[str, Any]:
    return {"logical_operator": logic, "items": list(items), "to": to}


async def switch(conditions: list[dict[str, Any]], query: Any = "q", globals: dict[str, Any] | None = None) -> Turn:
    dsl = make_canvas({
        "begin": cpn("Begin", down=["sw"]),
        "sw": cpn("Switch", {"conditions": conditions, "end_cpn_ids": ["E"]}),
        **{t: cpn("Message", msg(t, stream=False)) for t in ("A", "B", "E")},
    }, globals=globals)
    return await run(dsl, query=query)


def routed(turn: Turn) -> list[str]:
    assert turn.status is RunStatus.FINISHED, turn.error
    nxt = turn.finished("sw")["outputs"]["_next"]
    assert finished_ids(turn)[2:] == nxt
    return list(nxt)


async def test_case10_equals_is_case_sensitive() -> None:
    assert routed(await switch([cond(item("sys.query", "=", "yes"), to=["A"])], "YES")) == ["E"]


async def test_case11_contains_is_case_insensitive() -> None:
    assert routed(await switch([cond(item("sys.query", "contains", "WOR"), to=["A"])], "hello world")) == ["A"]


async def test_case12_numeric_variable_coerces_the_operand() -> None:
    assert routed(await switch([cond(item("env.n", "=", "5"), to=["A"])], globals={"env.n": 5})) == ["A"]
    assert routed(await switch([cond(item("env.n", ">", "4.5"), to=["A"])], globals={"env.n": 5})) == ["A"]
    turn = await switch([cond(item("env.n", ">", ""), to=["A"])], globals={"env.n": 5})
    assert turn.finished("sw")["error"] == "could not convert string to float: ''"
    # deliberate difference: ragflow ends without workflow_finished; taskcanvas ends failed (docs/compat.md)
    assert_failed(turn, "could not convert string to float: ''")
    assert finished_ids(turn) == ["begin", "sw"]
    assert turn.state.path == ["begin"]


async def test_case13_order_compares_numbers_then_raw() -> None:
    assert routed(await switch([cond(item("sys.query", ">", "10"), to=["A"])], "9")) == ["E"]
    assert routed(await switch([cond(item("sys.query", ">", "apple"), to=["A"])], "banana")) == ["A"]


async def test_case14_not_equal_greater_equal_empty() -> None:
    assert routed(await switch([cond(item("sys.query", "≠", "y"), to=["A"])], "x")) == ["A"]
    assert routed(await switch([cond(item("sys.query", "≥", "3"), to=["A"])], "3")) == ["A"]
    assert routed(await switch([cond(item("sys.query", "≥", "y"), to=["A"])], "y")) == ["A"]
    assert routed(await switch([cond(item("env.l", "empty"), to=["A"])], globals={"env.l": []})) == ["A"]
    turn = await switch([cond(item("env.z", "empty"), to=["A"])], globals={"env.z": 0})
    assert_failed(turn, "could not convert string to float: ''")


async def test_case15_or_short_circuits_and_falls_through() -> None:
    turn = await switch([cond(item("sys.query", "=", "a"), item("sys.query", "bogus", "x"), to=["A"], logic="or")],
                        "a")
    assert routed(turn) == ["A"]
    turn = await switch([cond(item("sys.query", "=", "zzz"), to=["A"]),
                         cond(item("sys.query", "start with", "A"), to=["B"])], "abc")
    assert routed(turn) == ["B"]


async def test_case16_several_targets_run_in_one_wave() -> None:
    turn = await switch([cond(item("sys.query", "=", "a"), to=["A", "B"])], "a")
    assert routed(turn) == ["A", "B"]
    assert turn.state.path == ["begin", "sw", "A", "B"]
    # A and B both start before either finishes: one wave.
    assert [(e["event"], e["data"].get("component_id")) for e in turn.events[5:9]] == [
        ("node_started", "A"), ("node_started", "B"), ("message", None), ("message_end", None)]


async def test_case16_empty_items_go_to_else() -> None:
    assert routed(await switch([cond(to=["A"])], "a")) == ["E"]
    assert routed(await switch([cond(item("", "=", "a"), to=["A"])], "a")) == ["E"]


async def test_case17_unknown_component_in_condition_stops_the_run() -> None:
    turn = await switch([cond(item("zz@x", "=", "a"), to=["A"])], "a")
    assert turn.finished("sw")["error"] == "Can't find variable: 'zz@x'"
    # deliberate difference: terminal workflow_finished with status failed (docs/compat.md)
    assert_failed(turn, "Can't find variable: 'zz@x'")
    assert turn.state.path == ["begin"]


# --------------------------------------------------------------------------- 18–23 Loop


COUNTER = [{"variable": "counter", "input_mode": "constant", "value": 0, "type": "number"}]


def ge(value: Any) -> list[dict[str, Any]]:
    return [{"variable": "loop@counter", "operator": "≥", "value": value, "input_mode": "constant"}]


def loop_canvas(conditions: list[dict[str, Any]], maximum: int = 10, logic: str = "and",
                variables: list[dict[str, Any]] | None = None, exit_switch: bool = False) -> dict[str, Any]:
    comps = {
        "begin": cpn("Begin", down=["loop"]),
        "loop": cpn("Loop", {"loop_variables": COUNTER if variables is None else variables,
                             "loop_termination_condition": conditions, "logical_operator": logic,
                             "maximum_loop_count": maximum}, down=["after"]),
        "li": cpn("LoopItem", down=["inc"], parent="loop"),
        "inc": cpn("Incr", {"variable": "loop@counter"}, down=["sw"] if exit_switch else ["P"], parent="loop"),
        "P": cpn("Probe", {"value": "cont {loop@counter}" if exit_switch else "{loop@counter}"}, parent="loop"),
        "after": cpn("Probe", {"value": "done {loop@counter}" if exit_switch else "{loop@counter}"}),
    }
    if exit_switch:
        comps["sw"] = cpn("Switch", {"conditions": [cond(item("loop@counter", "≥", "2"), to=["x"])],
                                     "end_cpn_ids": ["P"]}, parent="loop")
        comps["x"] = cpn("ExitLoop", parent="loop")
    return make_canvas(comps)


def loop_events(turn: Turn) -> list[str]:
    return [e["event"] for e in turn.events
            if e["event"] in ("node_started", "node_finished") and e["data"]["component_id"] == "loop"]


async def test_case18_counter_loop() -> None:
    turn = await run(loop_canvas(ge(3)), query="q")
    assert probe_calls(turn) == ["1", "2", "3", "3"]
    assert loop_events(turn) == ["node_started", "node_finished"]
    assert turn.state.output("loop", "counter") == 3
    assert turn.status is RunStatus.FINISHED


@pytest.mark.parametrize(("conditions", "maximum", "logic", "calls"), [
    (ge(100), 5, "and", ["1", "2", "3", "4", "5", "5"]),  # capped by maximum_loop_count
    (ge(100), 0, "and", ["0"]),  # maximum 0: no pass
    (ge(0), 10, "and", ["0"]),  # condition true at once: no pass (while loop)
    ([], 3, "and", ["0"]),  # no conditions, "and": all([]) ends at once
    ([], 3, "or", ["1", "2", "3", "3"]),  # no conditions, "or": runs the maximum
])
async def test_case19_20_pass_counts(conditions: list[dict[str, Any]], maximum: int, logic: str,
                                     calls: list[str]) -> None:
    turn = await run(loop_canvas(conditions, maximum, logic), query="q")
    assert probe_calls(turn) == calls
    assert loop_events(turn) == ["node_started", "node_finished"]
    assert turn.status is RunStatus.FINISHED


async def test_case21_condition_type_mismatch() -> None:
    turn = await run(loop_canvas(ge("2")), query="q")
    # deliberate difference: ragflow's TypeError escapes run(); taskcanvas fails the run with its message
    # and a terminal event (docs/compat.md)
    assert_failed(turn, "'>=' not supported between instances of 'int' and 'str'")
    assert probe_calls(turn) == []
    assert loop_events(turn) == ["node_started"]


async def test_case22_exit_loop() -> None:
    turn = await run(loop_canvas([], 10, "or", exit_switch=True), query="q")
    assert probe_calls(turn) == ["cont 1", "done 2"]
    assert started(turn) == ["begin", "loop", "li", "inc", "sw", "P", "li", "inc", "sw", "x", "after"]
    # deliberate difference: ragflow never finishes a Loop left by ExitLoop; taskcanvas emits its
    # node_finished when ExitLoop runs (docs/compat.md)
    assert loop_events(turn) == ["node_started", "node_finished"]
    assert finished_ids(turn).index("loop") == finished_ids(turn).index("x") + 1
    assert turn.status is RunStatus.FINISHED


async def test_case23_incomplete_loop_variable() -> None:
    bad = [{"variable": "", "input_mode": "constant", "value": 0, "type": "number"}]
    turn = await run(loop_canvas(ge(3), variables=bad), query="q")
    assert started(turn) == ["begin", "loop"]
    assert loop_events(turn) == ["node_started"]
    # deliberate difference: ragflow ends without a terminal event (docs/compat.md)
    assert_failed(turn, "Loop Variable is not complete.")


# --------------------------------------------------------------------------- 24–25 Iteration


def iteration_canvas(script: str, items: Any) -> dict[str, Any]:
    return make_canvas({
        "begin": cpn("Begin", down=["it"]),
        "it": cpn("Iteration", {"items_ref": "env.items",
                                "outputs": {"lines": {"ref": "fmt@result", "type": "Array<string>"}}}, down=["m"]),
        "ii": cpn("IterationItem", down=["fmt"], parent="it"),
        "fmt": cpn("Fmt", {"script": script}, parent="it"),
        "m": cpn("Message", msg("{it@lines}", stream=False)),
    }, globals={"env.items": items})


async def test_case24_iteration_collects_outputs() -> None:
    turn = await run(iteration_canvas("{ii@index}: {ii@item}", ["a", "b", "c"]), query="q")
    assert turn.state.output("it", "lines") == ["0: a", "1: b", "2: c"]
    assert turn.text == '["0: a", "1: b", "2: c"]'
    assert finished_ids(turn) == ["begin", "ii", "fmt", "ii", "fmt", "ii", "fmt", "ii", "it", "m"]
    assert turn.state.path == ["begin", "it", "ii", "fmt", "ii", "fmt", "ii", "fmt", "ii", "m"]
    items = [d["outputs"] for d in turn.of("node_finished") if d["component_id"] == "ii"]
    assert [(o["item"], o["index"]) for o in items] == [("a", 0), ("b", 1), ("c", 2), ("c", 2)]


async def test_case25_bare_aliases() -> None:
    turn = await run(iteration_canvas("{index}:{item}", ["a", "b"]), query="q")
    assert turn.state.output("it", "lines") == ["0:a", "1:b"]
    assert turn.text == '["0:a", "1:b"]'


async def test_case25_items_not_an_array() -> None:
    turn = await run(iteration_canvas("{index}:{item}", "abc"), query="q")
    assert started(turn) == ["begin", "it"]
    assert finished_ids(turn) == ["begin"]  # an Iteration that errors never finishes
    # deliberate difference: ragflow ends without a terminal event (docs/compat.md)
    assert_failed(turn, "env.items must be an array, but its type is <class 'str'>")


# --------------------------------------------------------------------------- 26–29 forms and Begin


def form_canvas(form_id: str = "UserFillUp:1", *, stream: bool = False) -> dict[str, Any]:
    return make_canvas({
        "begin": cpn("Begin", down=[form_id]),
        form_id: cpn("UserFillUp", {
            "inputs": {"value": {"type": "line", "name": "Value", "optional": False},
                       "doc": {"type": "file", "name": "Doc", "optional": True}},
            "tips": "Hi {sys.query}, enter",
        }, down=["m"]),
        "m": cpn("Message", msg(f"got {{{form_id}@value}} / {{{form_id}@doc}}", stream=stream)),
    })


async def test_case26_form_pauses_the_run() -> None:
    turn = await run(form_canvas(), query="Ann")
    assert turn.names == ["workflow_started", "node_started", "node_finished", "user_inputs"]
    assert started(turn) == ["begin"]
    assert turn.of("user_inputs") == [{
        "inputs": {"value": {"type": "line", "name": "Value", "optional": False, "value": None}},
        "tips": "Hi Ann, enter",
    }]
    assert turn.state.path == ["UserFillUp:1"]
    assert turn.status is RunStatus.WAITING
    assert turn.state.globals["sys.history"] == ["user: Ann"]


async def test_case27_resume_with_the_answer() -> None:
    first = await run(form_canvas(), query="Ann")
    turn = await next_turn(first, query="", inputs={"value": {"value": "42"}})
    assert turn.names == ["node_started", "node_finished", "node_started", "message", "message_end",
                          "node_finished", "workflow_finished"]
    assert started(turn) == ["UserFillUp:1", "m"]
    assert turn.text == "got 42 / "
    assert turn.finished("UserFillUp:1")["outputs"]["value"] == "42"
    assert turn.state.path == ["UserFillUp:1", "m"]
    assert turn.status is RunStatus.FINISHED
    assert turn.state.globals["sys.conversation_turns"] == 2
    history = turn.state.globals["sys.history"]
    assert history[:2] == ["user: Ann", "user: "]
    assert re.fullmatch(r"assistant: \{'content': 'got 42 / ', 'downloads': \[\], '_created_time': [0-9.e-]+, "
                        r"'_elapsed_time': [0-9.e-]+\}", history[2]), history[2]
    assert turn.state.globals["sys.query"] == "Ann"  # an empty query keeps the previous one


async def test_case27_resume_streamed() -> None:
    first = await run(form_canvas(stream=True), query="Ann")
    turn = await next_turn(first, query="", inputs={"value": {"value": "42"}})
    # deliberate difference: ragflow streams "got", "42", "/" → "got42/" (spaces eaten) (docs/compat.md)
    assert [d["content"] for d in turn.of("message")] == ["got ", "42", " / "]
    assert turn.text == "got 42 / "


async def test_case28_form_with_any_id_resumes() -> None:
    first = await run(form_canvas("ask"), query="Ann")
    assert first.names[-1] == "user_inputs"
    assert first.state.path == ["ask"]
    turn = await next_turn(first, query="", inputs={"value": {"value": "42"}})
    # deliberate difference: ragflow resumes only when the form's id contains "userfillup"; a form
    # with id "ask" restarts at begin and pauses again. taskcanvas resumes by its waiting state
    # (docs/compat.md)
    assert started(turn) == ["ask", "m"]
    assert turn.text == "got 42 / "
    assert turn.status is RunStatus.FINISHED


def begin_canvas(form: dict[str, Any], probe: str) -> dict[str, Any]:
    return make_canvas({"begin": cpn("Begin", {"inputs": form}, down=["p"]), "p": cpn("Probe", {"value": probe})})


NAME_FORM = {"name": {"type": "line", "name": "Name", "optional": False}}


@pytest.mark.parametrize(("query", "inputs", "expected"), [
    ("Zed", None, "Zed"),  # a single field takes the query
    ("Zed", {"name": {"value": "Yan"}}, "Yan"),  # run inputs win
    ({"name": "Dict"}, None, "Dict"),  # a dict query fills fields by key
])
async def test_case29_begin_inputs(query: Any, inputs: dict[str, Any] | None, expected: str) -> None:
    turn = await run(begin_canvas(NAME_FORM, "{begin@name}"), query=query, inputs=inputs)
    assert turn.state.output("begin", "name") == expected
    assert turn.finished("begin")["inputs"] == {"name": expected}
    assert probe_calls(turn) == [expected]


@pytest.mark.parametrize(("query", "inputs"), [("", {"obj": {"value": '{"a": 7}'}}), ('{"a": 7}', None)])
async def test_case29_begin_object_field(query: str, inputs: dict[str, Any] | None) -> None:
    turn = await run(begin_canvas({"obj": {"type": "object", "name": "Obj"}}, "{begin@obj.a}"),
                     query=query, inputs=inputs)
    assert turn.state.get_variable_value("begin@obj.a") == 7
    assert probe_calls(turn) == ["7"]


# --------------------------------------------------------------------------- 30–32 exceptions


def fail_canvas(**params: Any) -> dict[str, Any]:
    return make_canvas({
        "begin": cpn("Begin", down=["f"]),
        "f": cpn("Fail", params, down=["n"]),
        "n": cpn("Probe", {"value": "next {f@result}"}),
        "handler": cpn("Probe", {"value": "handled"}),
    })


@pytest.mark.parametrize("params", [{}, {"exception_method": "comment", "exception_default_value": ""}])
async def test_case30_unhandled_error_stops_the_run(params: dict[str, Any]) -> None:
    turn = await run(fail_canvas(**params), query="q")
    assert turn.finished("f")["error"] == "boom"
    assert started(turn) == ["begin", "f"]
    assert probe_calls(turn) == []
    assert turn.state.path == ["begin"]
    # deliberate difference: ragflow ends with no workflow_finished (canvas.error "boom") (docs/compat.md)
    assert_failed(turn, "boom")
    assert turn.events[-1]["data"]["component_id"] == "f"


async def test_case31_comment_with_default() -> None:
    turn = await run(fail_canvas(exception_method="comment", exception_default_value="DEF"), query="q")
    assert turn.finished("f")["error"] is None
    assert turn.finished("f")["outputs"]["result"] == "DEF"
    assert probe_calls(turn) == ["next DEF"]
    assert turn.names[-1] == "workflow_finished"
    assert turn.status is RunStatus.FINISHED
    assert turn.of("message") == []


async def test_case32_goto() -> None:
    turn = await run(fail_canvas(exception_method="goto", exception_goto=["handler"]), query="q")
    assert turn.finished("f")["error"] == "boom"
    assert started(turn) == ["begin", "f", "handler"]
    assert probe_calls(turn) == ["handled"]
    assert turn.state.path == ["begin", "f", "handler"]
    assert turn.status is RunStatus.FINISHED
    assert turn.events[-1]["data"]["outputs"]["result"] == "handled"


# --------------------------------------------------------------------------- 34 joins


def join_canvas(text: str) -> dict[str, Any]:
    return make_canvas({
        "begin": cpn("Begin", down=["A", "B"]),
        "A": cpn("Probe", {"value": "A"}, down=["J"]),
        "B": cpn("Probe", {"value": "B"}, down=["C"]),
        "C": cpn("Probe", {"value": "C"}, down=["J"]),
        "J": cpn("Message", msg(text, stream=False)),
    })


async def test_case34_join_waits_for_a_referenced_branch() -> None:
    turn = await run(join_canvas("{A@result}+{C@result}"), query="q")
    assert turn.text == "A+C"
    assert started(turn) == ["begin", "A", "B", "J", "C", "J"]
    assert finished_ids(turn) == ["begin", "A", "B", "C", "J"]
    assert turn.state.path == ["begin", "A", "B", "C", "J"]


async def test_case34_join_without_reference_runs_twice() -> None:
    turn = await run(join_canvas("{A@result}"), query="q")
    assert turn.text == "AA"
    assert started(turn) == ["begin", "A", "B", "J", "C", "J"]
    assert finished_ids(turn) == ["begin", "A", "B", "J", "C", "J"]
    assert turn.state.path == ["begin", "A", "B", "J", "C", "J"]


# --------------------------------------------------------------------------- 45 reset


async def test_case45_reset() -> None:
    dsl = make_canvas(
        {"begin": cpn("Begin", down=["m"]), "m": cpn("Message", {"content": ["{sys.query}"], "stream": False})},
        globals={"sys.flag": True, "sys.f": 1.5, "env.x": "changed", "env.n": 7, "env.arr": [1],
                 "env.unknown": "u"},
        variables={"x": {"name": "x", "type": "string", "value": "declared"},
                   "n": {"name": "n", "type": "number"}, "arr": {"name": "arr", "type": "array<string>"}},
    )
    turn = await run(dsl, query="hello")
    state = turn.state
    assert state.history and state.path
    state.reset()
    g = state.globals
    assert (g["sys.flag"], g["sys.f"], g["sys.query"], g["sys.history"]) == (0, 0, "", [])
    assert (g["env.x"], g["env.n"], g["env.arr"], g["env.unknown"]) == ("declared", 0, [], "")
    assert (state.history, state.path, state.retrieval, state.memory) == ([], [], [], [])
    assert state.output("m", "content") is None
    again = await next_turn(turn, query="fresh")
    assert again.text == "fresh"


# --------------------------------------------------------------------------- 46 cancel


def cancel_canvas(first: str) -> dict[str, Any]:
    return make_canvas({
        "begin": cpn("Begin", down=["s"]),
        "s": cpn(first, down=["n"]),
        "n": cpn("Probe", {"value": "after"}),
    })


def assert_cancelled(turn: Turn) -> None:
    assert turn.status is RunStatus.CANCELLED
    assert turn.names[-1] == "workflow_finished"
    assert turn.names.count("workflow_finished") == 1
    assert turn.events[-1]["data"]["outputs"] == "Task has been canceled"
    assert probe_calls(turn) == []


async def test_case46_cancel_before_the_run() -> None:
    token = CancelToken()
    token.cancel()
    turn = await asyncio.wait_for(run(cancel_canvas("Sleep"), query="q", cancel=token), 10)
    # deliberate difference: ragflow raises TaskCanceledException out of run(); taskcanvas ends the
    # run cancelled with ragflow's cancel ending (docs/compat.md)
    assert_cancelled(turn)
    assert turn.names == ["workflow_finished"]
    # The task that ran it is not left with a pending cancellation.
    await asyncio.sleep(0)
    await asyncio.sleep(0.01)


async def test_case46_cancel_from_a_component() -> None:
    turn = await asyncio.wait_for(run(cancel_canvas("CancelSelf"), query="q", cancel=CancelToken()), 10)
    assert_cancelled(turn)
    assert started(turn) == ["begin", "s"]
    assert turn.state.output("s", "woke") == ""  # the sleep was interrupted
    await asyncio.sleep(0.01)


async def test_case46_cancel_while_a_component_awaits() -> None:
    token = CancelToken()
    SLEEP_STARTED["s"] = asyncio.Event()
    try:
        task = asyncio.create_task(run(cancel_canvas("Sleep"), query="q", cancel=token))
        await asyncio.wait_for(SLEEP_STARTED["s"].wait(), 10)
        token.cancel()
        turn = await asyncio.wait_for(task, 10)
    finally:
        SLEEP_STARTED.pop("s", None)
    assert_cancelled(turn)
    assert turn.state.output("s", "started") is True
    assert turn.state.output("s", "woke") == ""


# --------------------------------------------------------------------------- 47 dangling ids


async def test_case47_route_to_an_unknown_id() -> None:
    dsl = make_canvas({
        "begin": cpn("Begin", down=["sw"]),
        "sw": cpn("Switch", {"conditions": [cond(item("sys.query", "=", "go"), to=["Gone:X"])], "end_cpn_ids": ["E"]}),
        "E": cpn("Message", msg("else")),
    })
    eng = engine(dsl)
    assert any(w.component_id == "sw" and "Gone:X" in w.message for w in eng.canvas.warnings)
    turn = await run_turn(eng, query="go")
    assert turn.finished("sw")["outputs"]["_next"] == ["Gone:X"]
    # deliberate difference: ragflow raises TypeError out of run(); taskcanvas fails naming the id
    # (docs/compat.md)
    assert_failed(turn, "'Gone:X'")
    assert "not a component" in (turn.error or "")
    assert "sw" in (turn.error or "")
    assert "Gone:X" not in started(turn)
    # The other branch still works.
    other = await run_turn(eng, query="stay")
    assert other.text == "else"


# --------------------------------------------------------------------------- 48 history


async def test_case48_history_after_a_turn() -> None:
    dsl = make_canvas({"begin": cpn("Begin", down=["m"]), "m": cpn("Message", msg("{sys.query}", stream=False))})
    turn = await run(dsl, query="hello")
    history = turn.state.globals["sys.history"]
    assert history[0] == "user: hello"
    assert re.fullmatch(r"assistant: \{'content': 'hello', 'downloads': \[\], '_created_time': [0-9.e-]+, "
                        r"'_elapsed_time': [0-9.e-]+\}", history[1]), history[1]
    assert len(history) == 2
    assert turn.state.history[0] == ["user", "hello"]
    assert turn.state.history[1][0] == "assistant"
    assert turn.state.history[1][1]["content"] == "hello"


# --------------------------------------------------------------------------- §6.1 event shapes


ENVELOPE = {"event", "message_id", "created_at", "task_id", "data"}


@pytest.fixture
async def begin_message_turn() -> Turn:
    dsl = make_canvas({"begin": cpn("Begin", down=["m"]), "m": cpn("Message", msg("{sys.query}", stream=False))})
    return await run(dsl, query="hello")


def one(turn: Turn, name: str) -> dict[str, Any]:
    found = [e for e in turn.events if e["event"] == name]
    assert found, name
    event = found[0]
    assert set(event) == ENVELOPE
    assert isinstance(event["message_id"], str) and event["message_id"]
    assert isinstance(event["created_at"], int)
    assert isinstance(event["task_id"], str) and event["task_id"]
    data: dict[str, Any] = event["data"]
    return data


def test_event_envelope_is_shared(begin_message_turn: Turn) -> None:
    ids = {(e["message_id"], e["created_at"], e["task_id"]) for e in begin_message_turn.events}
    assert len(ids) == 1


def test_event_workflow_started(begin_message_turn: Turn) -> None:
    assert one(begin_message_turn, "workflow_started") == {"inputs": None}


def test_event_node_started(begin_message_turn: Turn) -> None:
    data = one(begin_message_turn, "node_started")
    assert set(data) == {"inputs", "created_at", "component_id", "component_name", "component_type", "thoughts"}
    assert data["inputs"] is None
    assert isinstance(data["created_at"], int)
    assert (data["component_id"], data["component_name"], data["component_type"], data["thoughts"]) == (
        "begin", "", "Begin", "")


def test_event_node_finished(begin_message_turn: Turn) -> None:
    data = one(begin_message_turn, "node_finished")
    assert set(data) == {"inputs", "outputs", "component_id", "component_name", "component_type", "error",
                         "elapsed_time", "created_at"}
    assert isinstance(data["inputs"], dict)
    assert isinstance(data["outputs"], dict)
    assert data["error"] is None
    assert isinstance(data["elapsed_time"], float)
    assert isinstance(data["created_at"], float)  # perf_counter, as ragflow
    m = begin_message_turn.finished("m")
    assert list(m["outputs"]) == ["content", "downloads", "_created_time", "_elapsed_time"]
    assert m["outputs"]["content"] == "hello"
    assert m["inputs"] == {"sys.query": "hello"}
    assert m["created_at"] == m["outputs"]["_created_time"]


def test_event_message(begin_message_turn: Turn) -> None:
    assert one(begin_message_turn, "message") == {"content": "hello"}


def test_event_message_end(begin_message_turn: Turn) -> None:
    assert one(begin_message_turn, "message_end") == {}


def test_event_workflow_finished(begin_message_turn: Turn) -> None:
    data = one(begin_message_turn, "workflow_finished")
    # taskcanvas adds "status" (ragflow's keys are all there)
    assert set(data) == {"inputs", "outputs", "elapsed_time", "created_at", "usage", "status"}
    assert data["inputs"] is None
    assert data["outputs"] == begin_message_turn.finished("m")["outputs"]
    assert isinstance(data["elapsed_time"], float)
    assert isinstance(data["created_at"], float)
    assert data["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "calls": 0}
    assert data["status"] == "finished"


async def test_event_user_inputs() -> None:
    turn = await run(form_canvas(), query="Ann")
    data = one(turn, "user_inputs")
    assert set(data) == {"inputs", "tips"}
    assert isinstance(data["inputs"], dict)
    assert isinstance(data["tips"], str)


async def test_event_workflow_started_with_inputs() -> None:
    turn = await run(begin_canvas(NAME_FORM, "{begin@name}"), query="", inputs={"name": {"value": "Yan"}})
    assert one(turn, "workflow_started") == {"inputs": {"name": {"value": "Yan"}}}
    assert one(turn, "workflow_finished")["inputs"] == {"name": {"value": "Yan"}}
