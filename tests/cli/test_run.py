"""The ``taskcanvas`` command, run for real in a subprocess as a user would run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.canvas import cpn, make_canvas


def taskcanvas(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "taskcanvas.cli.app", *args], cwd=cwd, capture_output=True,
                          text=True, encoding="utf-8", timeout=60)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc


def write(tmp_path: Path, name: str, dsl: dict[str, Any]) -> str:
    (tmp_path / name).write_text(json.dumps(dsl), encoding="utf-8")
    return name


def echo_canvas() -> dict[str, Any]:
    return make_canvas({
        "begin": cpn("Begin", down=["m"]),
        "m": cpn("Message", {"content": ["You said: {sys.query}, thanks"]}),
    })


def form_canvas() -> dict[str, Any]:
    return make_canvas({
        "begin": cpn("Begin", down=["form"]),
        "form": cpn("UserFillUp", {
            "tips": "Tell me about you",
            "inputs": {
                "name": {"type": "line", "name": "Your name", "optional": False},
                "color": {"type": "options", "options": ["red", "blue"], "optional": True},
            },
        }, down=["m"]),
        "m": cpn("Message", {"content": ["Hello {form@name}"]}),
    })


def failing_canvas() -> dict[str, Any]:
    # A number compared with "" -> float("") fails inside the Switch, as in ragflow.
    return make_canvas({
        "begin": cpn("Begin", down=["check"]),
        "check": cpn("Switch", {
            "conditions": [{"items": [{"cpn_id": "sys.conversation_turns", "operator": ">", "value": ""}],
                            "to": ["m"]}],
            "end_cpn_ids": ["m"],
        }),
        "m": cpn("Message", {"content": ["unreachable"]}),
    })


def lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


# ---------------------------------------------------------------------------- run: finished
def test_finished_run_streams_the_message_on_one_line(tmp_path: Path) -> None:
    canvas = write(tmp_path, "echo.json", echo_canvas())
    proc = taskcanvas("run", canvas, "--query", "hi there", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = lines(proc.stdout)
    # Streamed in several chunks (see the JSONL test), printed inline as one line of text.
    assert "You said: hi there, thanks" in out
    assert any(line.startswith("✓ m") for line in out)
    assert out[-1].startswith("finished")
    assert proc.stderr == ""


def test_jsonl_prints_every_event_and_nothing_else(tmp_path: Path) -> None:
    canvas = write(tmp_path, "echo.json", echo_canvas())
    proc = taskcanvas("run", canvas, "--query", "hi", "--jsonl", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    names = [e["event"] for e in events]
    assert names[0] == "workflow_started"
    assert names[-1] == "workflow_finished"
    assert events[-1]["data"]["status"] == "finished"
    chunks = [e["data"]["content"] for e in events if e["event"] == "message"]
    assert len(chunks) > 1
    assert "".join(chunks) == "You said: hi, thanks"


# ---------------------------------------------------------------------------- run: waiting and resuming
def test_form_pauses_saves_the_session_and_resumes_with_inputs(tmp_path: Path) -> None:
    canvas = write(tmp_path, "form.json", form_canvas())
    state = tmp_path / "session.json"

    first = taskcanvas("run", canvas, "--state", "session.json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert "Tell me about you" in out
    assert "name" in out and "Your name" in out and "required" in out
    assert "red, blue" in out and "optional" in out
    assert "--state session.json --inputs" in out
    assert lines(out)[-2] == "waiting for input"
    saved = json.loads(state.read_text(encoding="utf-8"))
    assert saved["waiting"]
    assert not list(tmp_path.glob(".session.json.*")), "temporary file left behind"

    second = taskcanvas("run", canvas, "--state", "session.json", "--inputs", '{"name": {"value": "Ada"}}',
                        cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "Hello Ada" in lines(second.stdout)
    assert "answering the form of the session in session.json" in second.stdout
    assert "finished" in second.stdout
    assert json.loads(state.read_text(encoding="utf-8"))["waiting"] is None


def test_bare_input_values_are_wrapped(tmp_path: Path) -> None:
    canvas = write(tmp_path, "form.json", form_canvas())
    assert taskcanvas("run", canvas, "--state", "s.json", cwd=tmp_path).returncode == 0
    proc = taskcanvas("run", canvas, "--state", "s.json", "--inputs", '{"name": "Grace"}', "--jsonl", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = "".join(json.loads(line)["data"].get("content") or "" for line in proc.stdout.splitlines()
                   if json.loads(line)["event"] == "message")
    assert text == "Hello Grace"


def test_waiting_without_state_explains_how_to_keep_the_session(tmp_path: Path) -> None:
    canvas = write(tmp_path, "form.json", form_canvas())
    proc = taskcanvas("run", canvas, cwd=tmp_path)
    assert proc.returncode == 0
    assert "--state FILE" in proc.stdout


def test_begin_inputs(tmp_path: Path) -> None:
    dsl = make_canvas({
        "begin": cpn("Begin", {"inputs": {"topic": {"type": "line", "name": "Topic"}}}, down=["m"]),
        "m": cpn("Message", {"content": ["About {begin@topic}"]}),
    })
    canvas = write(tmp_path, "begin.json", dsl)
    proc = taskcanvas("run", canvas, "--inputs", '{"topic": {"value": "owls"}}', cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "About owls" in lines(proc.stdout)


# ---------------------------------------------------------------------------- run: failures
def test_failing_run_exits_1_with_the_error(tmp_path: Path) -> None:
    canvas = write(tmp_path, "fail.json", failing_canvas())
    proc = taskcanvas("run", canvas, cwd=tmp_path)
    assert proc.returncode == 1
    last = lines(proc.stdout)[-1]
    assert last.startswith("failed in check (Switch)")
    assert "could not convert string to float" in last
    assert any(line.startswith("✗ check") for line in lines(proc.stdout))


def test_failing_run_jsonl_ends_with_the_failure(tmp_path: Path) -> None:
    canvas = write(tmp_path, "fail.json", failing_canvas())
    proc = taskcanvas("run", canvas, "--jsonl", cwd=tmp_path)
    assert proc.returncode == 1
    last = json.loads(proc.stdout.splitlines()[-1])
    assert last["event"] == "workflow_finished"
    assert last["data"]["status"] == "failed"
    assert "could not convert" in last["data"]["error"]


@pytest.mark.parametrize(("dsl", "expected"), [
    (make_canvas({"begin": cpn("Begin", down=["m"]), "m": cpn("NoSuchType")}), ["'m'", "NoSuchType"]),
    (make_canvas({"start": cpn("Begin", down=["m"]), "m": cpn("Message", {"content": ["x"]})}),
     ["no Begin component", "'start'"]),
    (make_canvas({"begin": cpn("Begin", down=["s"]),
                  "s": cpn("Switch", {"conditions": [], "end_cpn_ids": []})}), ["'s'", "ELSE"]),
])
def test_invalid_canvas_exits_2_naming_the_problem(tmp_path: Path, dsl: dict[str, Any], expected: list[str]) -> None:
    canvas = write(tmp_path, "bad.json", dsl)
    proc = taskcanvas("run", canvas, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: invalid canvas bad.json")
    for text in expected:
        assert text in proc.stderr


def test_canvas_that_is_not_json_exits_2(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"components": ', encoding="utf-8")
    proc = taskcanvas("run", "bad.json", cwd=tmp_path)
    assert proc.returncode == 2
    assert "not valid JSON" in proc.stderr


def test_missing_canvas_file_exits_2(tmp_path: Path) -> None:
    proc = taskcanvas("run", "nowhere.json", cwd=tmp_path)
    assert proc.returncode == 2
    assert "nowhere.json" in proc.stderr and "No such file" in proc.stderr


@pytest.mark.parametrize(("inputs", "expected"), [
    ("{name: 1}", "--inputs is not valid JSON"),
    ("[1, 2]", "--inputs must be a JSON object"),
])
def test_bad_inputs_exit_2_with_one_line(tmp_path: Path, inputs: str, expected: str) -> None:
    canvas = write(tmp_path, "echo.json", echo_canvas())
    proc = taskcanvas("run", canvas, "--inputs", inputs, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1
    assert expected in proc.stderr


def test_state_of_another_canvas_exits_2(tmp_path: Path) -> None:
    form = write(tmp_path, "form.json", form_canvas())
    echo = write(tmp_path, "echo.json", echo_canvas())
    assert taskcanvas("run", form, "--state", "s.json", cwd=tmp_path).returncode == 0
    before = (tmp_path / "s.json").read_text(encoding="utf-8")
    proc = taskcanvas("run", echo, "--state", "s.json", cwd=tmp_path)
    assert proc.returncode == 2
    assert "s.json" in proc.stderr and "another canvas" in proc.stderr
    assert (tmp_path / "s.json").read_text(encoding="utf-8") == before, "a refused state must stay untouched"


@pytest.mark.parametrize(("content", "expected"), [
    ("{not json", "not valid JSON"),
    ('{"version": 999}', "not a taskcanvas state"),
])
def test_unusable_state_file_exits_2(tmp_path: Path, content: str, expected: str) -> None:
    canvas = write(tmp_path, "echo.json", echo_canvas())
    (tmp_path / "s.json").write_text(content, encoding="utf-8")
    proc = taskcanvas("run", canvas, "--state", "s.json", cwd=tmp_path)
    assert proc.returncode == 2
    assert expected in proc.stderr


def test_state_in_a_missing_directory_exits_2_before_running(tmp_path: Path) -> None:
    canvas = write(tmp_path, "echo.json", echo_canvas())
    proc = taskcanvas("run", canvas, "--state", "no/such/dir/s.json", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "does not exist" in proc.stderr


def test_next_turn_continues_the_conversation(tmp_path: Path) -> None:
    canvas = write(tmp_path, "echo.json", echo_canvas())
    assert taskcanvas("run", canvas, "-q", "one", "--state", "s.json", cwd=tmp_path).returncode == 0
    proc = taskcanvas("run", canvas, "-q", "two", "--state", "s.json", cwd=tmp_path)
    assert proc.returncode == 0
    assert "You said: two, thanks" in lines(proc.stdout)
    saved = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert saved["globals"]["sys.conversation_turns"] == 2


# ---------------------------------------------------------------------------- warnings, validate, version
def stale_route_canvas() -> dict[str, Any]:
    return make_canvas({
        "begin": cpn("Begin", down=["s"]),
        "s": cpn("Switch", {"conditions": [{"items": [{"cpn_id": "sys.query", "operator": "=", "value": "go"}],
                                            "to": ["ghost"]}], "end_cpn_ids": ["m"]}),
        "m": cpn("Message", {"content": ["ok"]}),
    })


def test_warnings_go_to_stderr_before_the_run(tmp_path: Path) -> None:
    canvas = write(tmp_path, "warn.json", stale_route_canvas())
    proc = taskcanvas("run", canvas, "--jsonl", cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stderr.startswith("warning: component 's'")
    assert "ghost" in proc.stderr
    assert all(json.loads(line) for line in proc.stdout.splitlines())


def test_validate(tmp_path: Path) -> None:
    ok = taskcanvas("validate", write(tmp_path, "echo.json", echo_canvas()), cwd=tmp_path)
    assert ok.returncode == 0
    assert "valid" in ok.stdout

    warn = taskcanvas("validate", write(tmp_path, "warn.json", stale_route_canvas()), cwd=tmp_path)
    assert warn.returncode == 0
    assert lines(warn.stdout)[0].startswith("warning: component 's'")

    dsl = make_canvas({"begin": cpn("Begin", down=["a"]), "a": cpn("Nope"), "b": cpn("AlsoNope")})
    bad = taskcanvas("validate", write(tmp_path, "bad.json", dsl), cwd=tmp_path)
    assert bad.returncode == 2
    problems = [line for line in lines(bad.stdout) if line.startswith("error:")]
    assert len(problems) == 2
    assert "'a'" in problems[0] + problems[1] and "'b'" in problems[0] + problems[1]


def test_version(tmp_path: Path) -> None:
    proc = taskcanvas("--version", cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout.startswith("taskcanvas ")
