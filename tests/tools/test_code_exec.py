"""CodeExec's contract (spec §5.3) through the engine: Begin → CodeExec → Message.

The contract cases are ragflow's pinned ones (``test/testcases/test_web_api/test_canvas_app/
test_code_exec_contract_unit.py``): a scripted sandbox hands CodeExec exactly the stdout,
stderr, result and artifacts ragflow's test feeds ``_process_execution_result``. The rest run
real scripts in the local sandbox.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from taskcanvas.components import builtin_registry
from taskcanvas.dsl.errors import DslError
from taskcanvas.runtime.cancel import CancelToken
from taskcanvas.runtime.component import RunContext
from taskcanvas.runtime.engine import Engine
from taskcanvas.tools.code_exec import (
    CodeExec,
    ContractError,
    build_code_exec_contract,
    infer_actual_type,
    normalize_output_value,
    render_canonical_content,
    select_business_output,
)
from taskcanvas.tools.sandbox import (
    Artifact,
    ArtifactStore,
    ExecutionResult,
    LocalSandbox,
    SandboxError,
    StructuredResult,
)
from taskcanvas.tools.sandbox.local import SAFE_PATH
from tests.support.canvas import Turn, build, cpn, make_canvas, run_turn

NODE = shutil.which("node", path=SAFE_PATH) or shutil.which("node")


class ScriptedSandbox:
    """Answers every run with the next scripted result and records what it was asked."""

    def __init__(self, *results: ExecutionResult) -> None:
        self.results = list(results)
        self.calls: list[dict[str, Any]] = []

    async def run(self, code: str, language: str, arguments: Mapping[str, Any] | None = None,
                  timeout: float | None = None) -> ExecutionResult:
        self.calls.append({"code": code, "language": language, "arguments": dict(arguments or {}),
                           "timeout": timeout})
        return self.results.pop(0)

    async def aclose(self) -> None:
        pass


def _result(stdout: str = "", stderr: str = "", *, exit_code: int = 0, value: Any = None, present: bool = False,
            artifacts: list[Artifact] | None = None) -> ExecutionResult:
    return ExecutionResult(stdout=stdout, stderr=stderr, exit_code=exit_code, artifacts=artifacts or [],
                           result=StructuredResult(present=present, value=value))


def _engine(params: dict[str, Any], services: dict[str, Any], *, message: str = "{cx@content}",
            globals: dict[str, Any] | None = None) -> Engine:
    dsl = make_canvas({
        "begin": cpn("Begin", down=["cx"]),
        "cx": cpn("CodeExec", {"lang": "python", "script": "def main():\n    return None\n", **params},
                  down=["answer"]),
        "answer": cpn("Message", {"content": [message]}),
    }, globals=globals)
    registry = builtin_registry()
    registry.register(CodeExec)
    return build(dsl, registry, services=services)


async def _scripted(outputs: dict[str, Any], *results: ExecutionResult,
                    **services: Any) -> tuple[Turn, ScriptedSandbox]:
    sandbox = ScriptedSandbox(*results)
    turn = await run_turn(_engine({"outputs": outputs}, {"sandbox": sandbox, **services}))
    return turn, sandbox


def _one(type_: Any) -> dict[str, Any]:
    return {"result": {"value": None, "type": type_}}


# --------------------------------------------------------------------------- pure contract (pinned cases)
def test_select_business_output_ignores_system_outputs() -> None:
    outputs = {
        "content": {"value": "", "type": "string"},
        "actual_type": {"value": "", "type": "string"},
        "_ERROR": {"value": "", "type": "string"},
        "_ARTIFACTS": {"value": [], "type": "Array<Object>"},
        "attachments": {"value": [], "type": "Array<String>"},
        "raw_result": {"value": None, "type": "Any"},
        "_created_time": {"value": 1.0, "type": "Number"},
        "_elapsed_time": {"value": 2.0, "type": "Number"},
        "result": {"value": None, "type": "Array<Number>"},
    }
    name, meta = select_business_output(outputs)
    assert name == "result" and meta["type"] == "Array<Number>"


def test_contract_values_types_and_canonical_content() -> None:
    contract = build_code_exec_contract(_one("Array<Number>"), (1, 2, 3))
    assert contract == {"business_output": "result", "value": [1, 2, 3], "actual_type": "Array<Number>",
                        "content": "[\n  1,\n  2,\n  3\n]"}
    obj = build_code_exec_contract(_one("Object"), {"foo": "bar", "n": 1})
    assert obj["value"] == {"foo": "bar", "n": 1} and obj["content"] == '{\n  "foo": "bar",\n  "n": 1\n}'
    assert render_canonical_content({"b": 1, "a": 2}) == '{\n  "a": 2,\n  "b": 1\n}'
    assert build_code_exec_contract(_one("object"), {"foo": "bar"})["actual_type"] == "Object"
    assert normalize_output_value((1, 2, 3)) == [1, 2, 3]
    assert infer_actual_type((1, 2, 3)) == "Array<Number>"
    assert infer_actual_type([]) == "Array<Any>" and infer_actual_type([1, "a"]) == "Array<Any>"
    assert infer_actual_type(True) == "Boolean" and infer_actual_type(None) == "Null"
    assert render_canonical_content("hello") == "hello"
    assert render_canonical_content(None) == ""
    assert render_canonical_content(1.5) == "1.5"
    assert render_canonical_content({"x": [1, 2]}) == '{\n  "x": [\n    1,\n    2\n  ]\n}'
    for lowered, value, actual in (("array<number>", (1, 2, 3), "Array<Number>"), ("array<string>", ("a", "b"),
                                                                                  "Array<String>")):
        assert build_code_exec_contract(_one(lowered), value)["actual_type"] == actual
    for skip in ("Any", "", None):
        assert build_code_exec_contract(_one(skip), {"foo": "bar"})["value"] == {"foo": "bar"}


@pytest.mark.parametrize(("outputs", "value", "message"), [
    (_one("Any"), {1, 2}, "unsupported top-level result type"),
    (_one("Number"), "not-a-number", "expected type Number"),
    (_one("Array<Number>"), ["1", 2], r"mismatch at \[0\]: expected type Number, got String"),
    (_one("Boolean"), "true", "expected type Boolean, got String"),
    (_one("Array<>"), [1, 2], "Unsupported expected type"),
    (_one("array< >"), [1, 2], "Unsupported expected type"),
    (_one("Array<Array<Number>>"), [[1], [2, "x"]], r"mismatch at \[1\]\[1\]"),
    ({"result": {"type": "Number"}, "answer": {"type": "String"}, "_ERROR": {}}, 1, "exactly one business output"),
    ({"content": {"type": "String"}}, "ok", "reserved output name is not allowed: content"),
    ({"raw_result": {"type": "String"}}, "ok", "reserved output name"),
    ({"payload.items": {"type": "Array<String>"}}, ["a"], "must not contain '.'"),
])
def test_contract_errors(outputs: dict[str, Any], value: Any, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        build_code_exec_contract(outputs, value)


# --------------------------------------------------------------------------- through the engine
async def test_whole_array_is_the_single_business_output() -> None:
    turn, _ = await _scripted(_one("Array<String>"), _result('["a", "b"]'))
    assert turn.error is None
    assert turn.output("cx", "result") == ["a", "b"]
    assert turn.output("cx", "content") == '[\n  "a",\n  "b"\n]'
    assert turn.output("cx", "raw_result") == ["a", "b"]
    assert turn.output("cx", "actual_type") == "Array<String>"
    assert turn.output("cx", "_ERROR") == ""
    assert turn.text == '[\n  "a",\n  "b"\n]'


async def test_actual_type_comes_from_the_contract_value() -> None:
    turn, _ = await _scripted(_one("Object"), _result('{"foo": "bar"}'))
    assert turn.output("cx", "result") == {"foo": "bar"}
    assert turn.output("cx", "actual_type") == "Object"


async def test_a_mismatch_sets_error_and_clears_the_business_output() -> None:
    turn, _ = await _scripted(_one("Number"), _result('["a", "b"]'))
    assert "expected type Number" in turn.output("cx", "_ERROR")
    assert turn.output("cx", "_ERROR") == "CodeExec contract mismatch at value: expected type Number, got Array<String>"
    assert turn.output("cx", "result") is None
    assert turn.output("cx", "actual_type") == "Array<String>"
    assert turn.output("cx", "raw_result") == ["a", "b"]
    assert turn.output("cx", "content") == '[\n  "a",\n  "b"\n]'  # still rendered
    assert turn.error is not None and "expected type Number" in turn.error  # nobody handles the error


async def test_an_invalid_schema_clears_stale_business_outputs() -> None:
    outputs = {"result": {"value": "stale-result", "type": "String"},
               "answer": {"value": {"stale": True}, "type": "Object"},
               "_ERROR": {"value": "", "type": "string"}}
    turn, _ = await _scripted(outputs, _result('["a", "b"]'))
    assert "exactly one business output" in turn.output("cx", "_ERROR")
    assert turn.output("cx", "result") is None and turn.output("cx", "answer") is None
    assert turn.output("cx", "actual_type") == "Array<String>"
    assert turn.output("cx", "raw_result") == ["a", "b"]


async def test_stderr_next_to_a_result_is_only_a_warning() -> None:
    turn, _ = await _scripted(_one("Object"), _result('{"foo": "bar"}', "warning on stderr"))
    assert turn.output("cx", "_ERROR") == ""
    assert turn.output("cx", "result") == {"foo": "bar"}
    assert turn.output("cx", "content") == '{\n  "foo": "bar"\n}'
    assert turn.error is None


async def test_stderr_alone_is_the_error() -> None:
    turn, _ = await _scripted(_one("String"), _result("", "hard failure"))
    assert turn.output("cx", "_ERROR") == "hard failure"
    assert turn.output("cx", "result") is None
    assert turn.output("cx", "content") == ""  # never written
    assert turn.error is not None and "hard failure" in turn.error


async def test_a_script_that_exits_with_an_error_code_failed() -> None:
    # Output printed before the failure is not taken as the result (ragflow's executor drops it).
    turn, _ = await _scripted(_one("String"), _result("partial\n", "Traceback: boom", exit_code=1))
    assert turn.output("cx", "_ERROR") == "Traceback: boom"
    silent, _ = await _scripted(_one("String"), _result("", "", exit_code=3))
    assert silent.output("cx", "_ERROR") == "The script exited with code 3"


async def test_the_structured_result_wins_over_stdout() -> None:
    turn, _ = await _scripted(_one("Object"), _result('{"fake":"stdout-log"}', value={"real": "value"}, present=True))
    assert turn.output("cx", "result") == {"real": "value"}
    assert turn.output("cx", "actual_type") == "Object"
    assert turn.output("cx", "content") == '{\n  "real": "value"\n}'


async def test_a_json_looking_string_result_stays_a_string() -> None:
    turn, _ = await _scripted(_one("String"), _result('{"a":1}', value='{"a":1}', present=True))
    assert turn.output("cx", "result") == '{"a":1}'
    assert turn.output("cx", "actual_type") == "String"
    assert turn.output("cx", "content") == '{"a":1}'


async def test_stdout_fallback_python_literal_and_unsupported_values() -> None:
    turn, _ = await _scripted(_one("Any"), _result("{'a': (1, 2)}"))
    assert turn.output("cx", "result") == {"a": [1, 2]}
    as_set, _ = await _scripted(_one("Any"), _result("{1, 2}"))
    assert "unsupported top-level result type: set" in as_set.output("cx", "_ERROR")
    text, _ = await _scripted(_one("String"), _result("just words\n"))
    assert text.output("cx", "result") == "just words"


async def test_artifacts_are_stored_linked_and_appended_to_content(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    png = Artifact(name="chart.png", content=b"\x89PNGfake", mime_type="image/png", size=8)
    csv = Artifact(name="data.csv", content=b"a,b\n1,2\n", mime_type="text/csv", size=8)
    html = Artifact(name="page.html", content=b"<html><head><title>t</title></head><body><h1>Hi</h1>"
                                              b"<script>x()</script><p>there</p></body></html>",
                    mime_type="text/html", size=10)
    engine = _engine({"outputs": _one("Object")},
                     {"sandbox": ScriptedSandbox(_result('{"foo": "bar"}', artifacts=[png, csv, html])),
                      "artifacts": store})
    turn = await run_turn(engine)
    assert turn.error is None
    arts = turn.output("cx", "_ARTIFACTS")
    assert [(a["name"], a["mime_type"], a["size"]) for a in arts] == [
        ("chart.png", "image/png", 8), ("data.csv", "text/csv", 8), ("page.html", "text/html", 10)]
    for art, original in zip(arts, (png, csv, html), strict=True):
        stored = art["url"].removeprefix("/api/v1/documents/artifact/").split("?")[0]
        assert art["url"].startswith("/api/v1/documents/artifact/") and "?session_id=" in art["url"]
        assert stored.endswith(Path(original.name).suffix) and len(stored.split(".")[0]) == 32
        assert store.read(stored) == original.content
    assert turn.output("cx", "attachments") == [
        f"![chart.png]({arts[0]['url']})", f"[Download data.csv]({arts[1]['url']})",
        f"[Download page.html]({arts[2]['url']})"]
    attachment = turn.output("cx", "_ATTACHMENT_CONTENT")
    assert attachment == ("attachment_count: 3\n\nattachment1 (image): chart.png\n\n"
                          "attachment2 (csv): data.csv\na,b\n1,2\n\nattachment3 (html): page.html\nHi\nthere")
    assert turn.output("cx", "content") == '{\n  "foo": "bar"\n}\n\n' + attachment
    assert turn.output("cx", "result") == {"foo": "bar"}


async def test_without_artifacts_stale_artifact_outputs_are_cleared() -> None:
    outputs = {"result": {"value": None, "type": "String"},
               "_ARTIFACTS": {"value": [{"name": "stale"}], "type": "Array<Object>"}}
    turn, _ = await _scripted(outputs, _result('"ok"'))
    assert turn.output("cx", "result") == "ok"
    assert turn.output("cx", "_ARTIFACTS") is None
    assert turn.output("cx", "attachments") == []
    assert turn.output("cx", "_ATTACHMENT_CONTENT") == ""


async def test_arguments_are_resolved_references_and_the_request_is_ragflows() -> None:
    sandbox = ScriptedSandbox(_result(value="ok", present=True))
    engine = _engine({"lang": "javascript", "script": "function main(a) { return 'ok' }",
                      "arguments": {"q": "sys.query", "n": "{env.n}", "blank": "", "none": None},
                      "outputs": _one("String")},
                     {"sandbox": sandbox}, globals={"env.n": 5})
    turn = await run_turn(engine, query="hello")
    assert turn.error is None
    [call] = sandbox.calls
    assert call == {"code": "function main(a) { return 'ok' }", "language": "nodejs",
                    "arguments": {"q": "hello", "n": 5, "blank": None, "none": None}, "timeout": 600.0}
    started = turn.of("node_started")
    assert [d["thoughts"] for d in started if d["component_id"] == "cx"] == ["Running a short script to process data."]


async def test_no_sandbox_is_a_clear_error() -> None:
    turn = await run_turn(_engine({"outputs": _one("Any")}, {}))
    assert "no code sandbox is configured" in turn.output("cx", "_ERROR")
    assert turn.error is not None and "no code sandbox is configured" in turn.error


async def test_a_sandbox_failure_is_the_components_error() -> None:
    class Broken(ScriptedSandbox):
        async def run(self, *args: Any, **kwargs: Any) -> ExecutionResult:
            raise SandboxError("the sandbox executor at http://x:9385 cannot be reached: refused")

    turn = await run_turn(_engine({"outputs": _one("Any")}, {"sandbox": Broken()}))
    assert turn.output("cx", "_ERROR") == "the sandbox executor at http://x:9385 cannot be reached: refused"


@pytest.mark.parametrize(("params", "message"), [
    ({"lang": "ruby"}, "language 'ruby' is not supported"),
    ({"script": "  "}, "script must not be empty"),
    ({"arguments": {"a": 5}}, "argument 'a' must be a reference"),
])
def test_bad_params_fail_the_canvas_load(params: dict[str, Any], message: str) -> None:
    with pytest.raises(DslError, match=rf"component 'cx', field 'params\.\w+': .*{message}"):
        _engine(params, {})


# --------------------------------------------------------------------------- real scripts
@pytest.fixture
def work() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="taskcanvas-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def local(work: Path) -> AsyncIterator[LocalSandbox]:
    sb = LocalSandbox(timeout=20, work_dir=work)
    yield sb
    await sb.aclose()


async def test_python_script_end_to_end(local: LocalSandbox, tmp_path: Path) -> None:
    script = ("def main(q, n):\n"
              "    print('computing')\n"
              "    with open('artifacts/out.csv', 'w') as f:\n"
              "        f.write('q,n\\n' + q + ',' + str(n) + '\\n')\n"
              "    return [n, n * 2, n * 3]\n")
    engine = _engine({"script": script, "arguments": {"q": "sys.query", "n": "env.n"},
                      "outputs": _one("Array<Number>")},
                     {"sandbox": local, "artifacts": ArtifactStore(tmp_path / "artifacts")},
                     globals={"env.n": 2}, message="{cx@result}")
    turn = await run_turn(engine, query="hi")
    assert turn.error is None, turn.error
    assert turn.output("cx", "result") == [2, 4, 6]
    assert turn.output("cx", "actual_type") == "Array<Number>"
    assert turn.output("cx", "content").startswith("[\n  2,\n  4,\n  6\n]\n\nattachment_count: 1\n\n"
                                                   "attachment1 (csv): out.csv\nq,n\nhi,2")
    assert turn.text == "[2, 4, 6]"


@pytest.mark.skipif(NODE is None, reason="node is not installed: JavaScript runs need Node.js")
async def test_javascript_script_end_to_end(local: LocalSandbox) -> None:
    script = "async function main(args) { return {greeting: 'hello ' + args.who}; }\nmodule.exports = { main };"
    engine = _engine({"lang": "javascript", "script": script, "arguments": {"who": "sys.query"},
                      "outputs": _one("Object")}, {"sandbox": local})
    turn = await run_turn(engine, query="world")
    assert turn.error is None, turn.error
    assert turn.output("cx", "result") == {"greeting": "hello world"}


async def test_a_real_traceback_is_the_error(local: LocalSandbox) -> None:
    engine = _engine({"script": "def main():\n    return 1 / 0\n", "outputs": _one("Number")}, {"sandbox": local})
    turn = await run_turn(engine)
    assert "ZeroDivisionError" in turn.output("cx", "_ERROR")


# --------------------------------------------------------------------------- as an Agent's tool
def _tool_ctx(engine: Engine, services: dict[str, Any]) -> tuple[CodeExec, RunContext]:
    tool = engine.canvas.components["cx"]
    assert isinstance(tool, CodeExec)
    ctx = RunContext(state=engine.new_session(), canvas=engine.canvas, cancel=CancelToken(), services=services)
    return tool, ctx


async def test_called_by_a_model(local: LocalSandbox) -> None:
    engine = _engine({"outputs": _one("Object")}, {"sandbox": local})
    tool, ctx = _tool_ctx(engine, {"sandbox": local})
    schema = tool.function_schema()["function"]
    assert schema["name"] == "execute_code"
    assert schema["parameters"]["properties"]["lang"]["enum"] == ["python", "javascript"]
    assert schema["parameters"]["required"] == ["lang", "script"]

    told = await tool.call_for_model(ctx, {"lang": "python", "script": "def main():\n    return {'x': 1}\n"})
    assert told["result"] == {"x": 1}
    assert told["content"] == '{\n  "x": 1\n}'
    assert told["_ERROR"] == ""
    assert "_created_time" not in told
    assert ctx.state.output("cx", "result") == {"x": 1}

    failed = await tool.call_for_model(ctx, {"lang": "python", "script": "def main():\n    raise KeyError('k')\n"})
    assert "KeyError: 'k'" in failed["_ERROR"]
    assert "KeyError" in ctx.state.output("cx", "_ERROR")  # kept, as ragflow keeps it

    again = await tool.call_for_model(ctx, {"lang": "python", "script": "def main():\n    return {'y': 2}\n"})
    assert again["result"] == {"y": 2} and ctx.state.output("cx", "_ERROR") == ""


async def test_a_model_asking_for_an_unknown_language_is_told(local: LocalSandbox) -> None:
    engine = _engine({"outputs": _one("Any")}, {"sandbox": local})
    tool, ctx = _tool_ctx(engine, {"sandbox": local})
    told = await tool.call_for_model(ctx, {"lang": "cobol", "script": "x"})
    assert told == "unsupported language 'cobol': use python or javascript"
    assert ctx.state.output("cx", "_ERROR") == told
