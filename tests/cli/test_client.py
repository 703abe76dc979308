"""``taskcanvas task ...`` and ``taskcanvas agent ...`` as a person runs them: the real command in a
subprocess, against a real server on loopback (users admin/alice/bob/audrey, the example agents).

Echo answers at once; Quickstart waits for input (the task goes idle) and completes after a
``send``; a scripted model that answers only when the test lets it keeps a run busy, so the
live part of ``logs --follow`` and ``status --watch`` is seen while the run executes.
"""

from __future__ import annotations

import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from taskcanvas.cli.client.events import follow_events
from taskcanvas.cli.client.http import PING, ServerSentEvent, Unreachable
from taskcanvas.testing.model_server import Reply, Rule, ScriptedModelServer
from tests.support.canvas import cpn, make_canvas
from tests.support.server import LiveServer, start_server

ECHO_FILE = Path(__file__).resolve().parents[2] / "src" / "taskcanvas" / "examples" / "echo.json"
CREATED = re.compile(r"^The task (\S+) has been created at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC!$")
NOT_FOUND = "Resource not found or you do not have access to this resource"
WAIT_LIMIT = 120.0
"""Seconds a subprocess may take to print what the test waits for (a safety net, not a measure)."""


class Taskcanvas:
    """The ``taskcanvas`` command as one user of a server: TASKCANVAS_URL and TASKCANVAS_TOKEN set."""

    def __init__(self, server: LiveServer, user: str | None, tmp_path: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TASKCANVAS_")}
        self.env.update({"TASKCANVAS_URL": server.url, "COLUMNS": "200"})
        if user is not None:
            self.env["TASKCANVAS_TOKEN"] = server.tokens[user]
        self.cwd = tmp_path

    def __call__(self, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "taskcanvas.cli.app", *args], input=stdin,
                              env={**self.env, **env}, text=True, capture_output=True, timeout=180, cwd=self.cwd)
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def ok(self, *args: str, stdin: str = "") -> str:
        done = self(*args, stdin=stdin)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    def popen(self, *args: str) -> Running:
        return Running(subprocess.Popen([sys.executable, "-m", "taskcanvas.cli.app", *args], env=self.env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=self.cwd))


class Running:
    """A command still running; its stdout is read line by line as it comes."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        self._readers = [threading.Thread(target=self._read, daemon=True),
                         threading.Thread(target=self._read_stderr, daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        self._stderr.append(self.process.stderr.read())

    def wait_for_line(self, pattern: str) -> str:
        deadline = time.monotonic() + WAIT_LIMIT
        while True:
            try:
                line = self._queue.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r}: {self.lines}") from None
            if line is None:
                raise AssertionError(f"ended without a line matching {pattern!r}: {self.lines}")
            self.lines.append(line)
            if re.search(pattern, line):
                return line

    def finish(self) -> tuple[int, list[str], str]:
        """Wait for the end: the status, every stdout line, stderr."""
        status = self.process.wait(timeout=WAIT_LIMIT)
        for reader in self._readers:
            reader.join(timeout=WAIT_LIMIT)
        while (line := self._queue.get(timeout=WAIT_LIMIT)) is not None:
            self.lines.append(line)
        return status, self.lines, "".join(self._stderr)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


@pytest.fixture
def alice(sqlite_server: LiveServer, tmp_path: Path) -> Taskcanvas:
    return Taskcanvas(sqlite_server, "alice", tmp_path)


def as_user(server: LiveServer, user: str | None, tmp_path: Path) -> Taskcanvas:
    return Taskcanvas(server, user, tmp_path)


def created_name(stdout: str) -> str:
    match = CREATED.match(stdout.strip())
    assert match, stdout
    return match.group(1)


def task_json(server: LiveServer, user: str, ident: str) -> dict[str, Any]:
    with server.client(user) as c:
        answer = c.get(f"/api/v2/tasks/me/{ident}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def state_of(task: dict[str, Any]) -> str | None:
    return (task.get("current_state") or {}).get("state")


def json_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def only_error(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


# ---------------------------------------------------------------------------- create, status, logs


def test_a_task_from_echo_completes(sqlite_server: LiveServer, alice: Taskcanvas) -> None:
    name = created_name(alice.ok("task", "create", "hello there", "--template", "Echo"))

    watched = json_lines(alice.ok("task", "status", name, "--watch", "--watch-interval", "0.1", "-o", "json"))
    last = watched[-1]
    assert last["name"] == name and last["owner_name"] == "alice"
    assert last["status"] == "active" and state_of(last) == "complete"
    assert last["current_state"]["message"] == "You said: hello there"

    table = alice.ok("task", "status", f"alice/{name}").splitlines()
    assert table[0].split() == ["STATE", "CHANGED", "STATUS", "STATE", "MESSAGE", "RUN", "ID"]
    assert re.match(r"^\d+s ago +active +complete +You said: hello there +" + last["workspace_build_id"] + "$",
                    table[1]), table
    assert json.loads(alice.ok("task", "status", last["id"], "-o", "json"))["id"] == last["id"]

    logs = alice.ok("task", "logs", name).splitlines()
    assert [line.split(None, 1) for line in logs] == [["TYPE", "CONTENT"], ["input", "hello there"],
                                                      ["output", "You said: hello there"]]
    entries = json.loads(alice.ok("task", "logs", name, "-o", "json"))
    assert [(e["type"], e["content"]) for e in entries] == [("input", "hello there"),
                                                            ("output", "You said: hello there")]

    followed = alice.ok("task", "logs", name, "--follow")
    assert followed.splitlines()[0] == "run 1"
    assert "You said: hello there" in followed
    assert re.search(r"^finished in [0-9.]+ m?s$", followed, re.MULTILINE), followed
    events = json_lines(alice.ok("task", "logs", name, "--follow", "-o", "json"))
    assert events[0]["event"] == "workflow_started" and events[-1]["event"] == "workflow_finished"


def test_quickstart_waits_for_input_then_completes_after_send(sqlite_server: LiveServer, alice: Taskcanvas) -> None:
    task_id = alice.ok("task", "create", "hello", "--template", "Quickstart: topics", "--name", "topics",
                       "-q").strip()
    assert uuid.UUID(task_id)

    waiting = json_lines(alice.ok("task", "status", "topics", "--watch", "--watch-interval", "0.1", "-o", "json"))
    assert waiting[-1]["id"] == task_id and state_of(waiting[-1]) == "idle"

    form = alice.ok("task", "logs", "topics", "--follow")
    assert "waiting for input: " in form and "topics  Topics · line · required" in form
    assert "answer with: taskcanvas task send alice/topics ANSWER" in form

    sent = alice("task", "send", "topics", "apples, pears")
    assert sent.returncode == 0 and sent.stdout == "", sent.stderr
    done = json_lines(alice.ok("task", "status", "topics", "--watch", "--watch-interval", "0.1", "-o", "json"))
    assert state_of(done[-1]) == "complete"
    assert "0: apples" in done[-1]["current_state"]["message"] and "1: pears" in done[-1]["current_state"]["message"]

    followed = alice.ok("task", "logs", "topics", "--follow")
    assert followed.index("run 1") < followed.index("waiting for input") < followed.index("run 2")
    assert "0: apples\n1: pears" in followed and "finished in" in followed
    inputs = [e["content"] for e in json.loads(alice.ok("task", "logs", "topics", "-o", "json"))
              if e["type"] == "input"]
    assert inputs == ["hello", "apples, pears"]


def test_create_needs_an_input_and_a_template(sqlite_server: LiveServer, alice: Taskcanvas) -> None:
    done = alice("task", "create", "--template", "Echo")
    assert done.returncode == 1 and only_error(done) == "error: expected an input for task"
    done = alice("task", "create", "--stdin", "--template", "Echo", stdin="")
    assert done.returncode == 1 and only_error(done) == "error: a task cannot be started with an empty input"
    done = alice("task", "create", "hi")
    assert done.returncode == 1
    assert only_error(done) == "error: template name not provided, available templates: echo, quickstart-topics"
    done = alice("task", "create", "hi", "--template", "nope")
    assert done.returncode == 1
    assert only_error(done) == 'error: template "nope" not found; available templates: echo, quickstart-topics'

    echo = sqlite_server.agents["Echo"]
    by_id = alice.ok("task", "create", "by id", "--template", echo["id"], "--name", "by-id")
    assert created_name(by_id) == "by-id"
    from_stdin = alice.ok("task", "create", "--stdin", "--template", "echo", "--template-version", "v1", "-q",
                          stdin="piped words\n")
    assert task_json(sqlite_server, "alice", from_stdin.strip())["initial_prompt"] == "piped words"
    version = alice.ok("task", "create", "by version", "--template-version", echo["version_id"], "-q")
    assert task_json(sqlite_server, "alice", version.strip())["template_version_id"] == echo["version_id"]
    done = alice("task", "create", "x", "--template", "Echo", "--template-version", "v9")
    assert done.returncode == 1 and only_error(done) == 'error: template "echo" has no version "v9"; its versions: v1'


# ---------------------------------------------------------------------------- list


def test_list_shows_your_tasks_as_a_table_json_or_ids(sqlite_server: LiveServer, tmp_path: Path,
                                                     alice: Taskcanvas) -> None:
    audrey = as_user(sqlite_server, "audrey", tmp_path)
    empty = audrey("task", "list")
    assert empty.returncode == 0 and empty.stdout == "" and empty.stderr == "No tasks found.\n"
    assert json.loads(audrey.ok("task", "list", "-o", "json")) == []

    first = alice.ok("task", "create", "first one", "--template", "Echo", "--name", "first", "-q").strip()
    second = alice.ok("task", "create", "second one", "--template", "Quickstart: topics", "--name", "second",
                      "-q").strip()
    bob = as_user(sqlite_server, "bob", tmp_path)
    bobs = bob.ok("task", "create", "bob's", "--template", "Echo", "--name", "bobs", "-q").strip()
    for user, ident in (("alice", first), ("alice", second), ("bob", bobs)):
        sqlite_server.wait_for_task(user, ident, until=lambda t: state_of(t) in ("complete", "idle"))

    listed = json.loads(alice.ok("task", "list", "-o", "json"))
    assert sorted(t["id"] for t in listed) == sorted([first, second])
    assert sorted(alice.ok("task", "list", "-q").split()) == sorted([first, second])

    table = alice.ok("task", "list").splitlines()
    assert table[0].split() == ["NAME", "STATUS", "STATE", "STATE", "CHANGED", "MESSAGE"]
    rows = {line.split()[0]: line for line in table[1:]}
    assert set(rows) == {"first", "second"}
    assert re.match(r"^first +active +complete +\d+s ago +You said: first one$", rows["first"]), rows
    assert re.match(r"^second +active +idle +\d+s ago +You said \"second one\"\. Which topics", rows["second"])

    columns = alice.ok("task", "ls", "-c", "name,run", "-c", "template display name").splitlines()
    assert columns[0].split() == ["NAME", "RUN", "TEMPLATE", "DISPLAY", "NAME"]
    assert sorted(line.split(None, 2) for line in columns[1:]) == [["first", "1", "Echo"],
                                                                   ["second", "1", "Quickstart: topics"]]
    done = alice("task", "list", "-c", "colour")
    assert done.returncode == 2 and only_error(done).startswith("error: unknown column 'colour'; available columns: id")

    admin = as_user(sqlite_server, "admin", tmp_path)
    assert sorted(admin.ok("task", "list", "--all", "-q").split()) == sorted([first, second, bobs])
    assert admin.ok("task", "list", "--user", "bob", "-q").split() == [bobs]
    assert admin("task", "list", "-q").stdout == ""

    alice.ok("task", "pause", "second", "-y")
    assert alice.ok("task", "list", "--status", "paused", "-q").split() == [second]
    done = alice("task", "list", "--status", "sleeping")
    assert done.returncode == 2 and "--status must be one of pending, initializing, active, paused" in done.stderr


# ---------------------------------------------------------------------------- pause, resume, send, delete


def test_pause_and_resume_ask_first_and_send_resumes_a_paused_task(sqlite_server: LiveServer,
                                                                   alice: Taskcanvas) -> None:
    task_id = alice.ok("task", "create", "hi", "--template", "Quickstart: topics", "--name", "qs", "-q").strip()
    sqlite_server.wait_for_task("alice", task_id, until=lambda t: state_of(t) == "idle")

    declined = alice("task", "pause", "qs", stdin="n\n")
    assert declined.returncode == 1 and declined.stdout.startswith("Pause task alice/qs? [y/N]:")
    assert only_error(declined) == "error: canceled"
    assert task_json(sqlite_server, "alice", task_id)["status"] == "active"

    paused = alice.ok("task", "pause", "qs", stdin="y\n")
    assert re.search(r"The qs task has been paused at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC!$", paused.strip())
    assert task_json(sqlite_server, "alice", task_id)["status"] == "paused"
    again = alice("task", "pause", "qs", "-y")
    assert again.returncode == 1
    assert only_error(again) == "error: Task is already paused: Resume the task before pausing it again."
    stopped = alice.ok("task", "logs", "qs", "--follow")
    assert "waiting for input" in stopped

    resumed = alice.ok("task", "resume", "qs", stdin="yes\n")
    assert resumed.endswith("The alice/qs task has been resumed.\n")
    assert task_json(sqlite_server, "alice", task_id)["status"] == "active"
    refused = alice("task", "resume", "qs", "-y")
    assert refused.returncode == 1
    assert only_error(refused) == 'error: task "alice/qs" cannot be resumed (current status: active)'

    alice.ok("task", "pause", "qs", "-y")
    alice.ok("task", "send", "qs", "--stdin", stdin="apples, pears\n")
    done = sqlite_server.wait_for_task("alice", task_id, until=lambda t: state_of(t) == "complete")
    assert done["status"] == "active" and "1: pears" in done["current_state"]["message"]


def test_delete_asks_then_deletes_every_task_named(sqlite_server: LiveServer, alice: Taskcanvas) -> None:
    ids = [alice.ok("task", "create", text, "--template", "Echo", "--name", name, "-q").strip()
           for text, name in (("one", "one"), ("two", "two"))]

    declined = alice("task", "delete", "one", "alice/two", stdin="\n")
    assert declined.stdout.startswith("Delete these tasks: alice/one, alice/two? [y/N]:")
    assert declined.returncode == 1 and only_error(declined) == "error: canceled"
    assert sorted(alice.ok("task", "list", "-q").split()) == sorted(ids)

    unknown = alice("task", "delete", "one", "three", "-y")
    assert unknown.returncode == 1 and only_error(unknown) == f'error: resolve task "three": {NOT_FOUND}'
    assert sorted(alice.ok("task", "list", "-q").split()) == sorted(ids), "nothing is deleted when one is unknown"

    deleted = alice.ok("task", "rm", "one", ids[1], "-y").splitlines()
    assert [re.sub(r" at .*", "", line) for line in deleted] == ["Deleted task alice/one", "Deleted task alice/two"]
    assert all(re.search(r" at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$", line) for line in deleted)
    assert alice.ok("task", "list", "-q") == ""


# ---------------------------------------------------------------------------- a busy run, live


@pytest.fixture
def held(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[LiveServer, threading.Event]]:
    """A server whose model answers only once the event is set (for agents naming ``held@OpenAI``)."""
    release = threading.Event()

    def answer(_: dict[str, Any]) -> Reply:
        release.wait(WAIT_LIMIT)
        return Reply(text="the model answered")

    with ScriptedModelServer([Rule(answer)]) as model:
        servers = start_server(tmp_path, "sqlite", request,
                               extra_env={"OPENAI_BASE_URL": model.base_url, "OPENAI_API_KEY": "test-key"})
        server = next(servers)
        try:
            yield server, release
        finally:
            release.set()
            next(servers, None)


def test_follow_and_watch_show_a_run_live_until_it_ends(held: tuple[LiveServer, threading.Event],
                                                        tmp_path: Path) -> None:
    server, release = held
    canvas = tmp_path / "held.json"
    canvas.write_text(json.dumps(make_canvas({
        "begin": cpn("Begin", down=["ask"]),
        "ask": cpn("LLM", {"llm_id": "held@OpenAI", "sys_prompt": "Answer.",
                           "prompts": [{"role": "user", "content": "{sys.query}"}]}, down=["say"]),
        "say": cpn("Message", {"content": ["{ask@content}"]}),
    })), encoding="utf-8")
    admin = as_user(server, "admin", tmp_path)
    admin.ok("agent", "import", str(canvas), "--title", "Held")
    admin.ok("task", "create", "a question", "--template", "Held", "--name", "busy")

    follow = admin.popen("task", "logs", "busy", "--follow")
    watch = admin.popen("task", "status", "busy", "--watch", "--watch-interval", "0.1", "-o", "json")
    try:
        follow.wait_for_line(r"^→ ask \(LLM\)$")  # streamed while the model holds the run
        first = json.loads(watch.wait_for_line(r"^\{"))
        assert state_of(first) == "working" or first["status"] in ("pending", "initializing")
        release.set()
        status, lines, stderr = follow.finish()
        assert status == 0, stderr
        assert lines[:2] == ["run 1", "→ begin (Begin)"] and lines[2].startswith("✓ begin "), lines
        assert lines[3] == "→ ask (LLM)", lines
        assert lines[4:6] == ["→ say (Message)", "the model answered"], lines
        assert re.match(r"^finished in ", lines[-1]), lines
        status, rows, stderr = watch.finish()
        assert status == 0, stderr
        assert state_of(json.loads(rows[-1])) == "complete"
        assert json.loads(rows[-1])["current_state"]["message"] == "the model answered"
    finally:
        follow.kill()
        watch.kill()


def test_follow_reconnects_with_the_last_event_id(capsys: pytest.CaptureFixture[str]) -> None:
    """A connection that drops mid-stream is resumed after the last event shown: none lost, none twice."""
    stream = [ServerSentEvent(f"1.{n}", name, json.dumps({"event": name, "n": n}))
              for n, name in enumerate(["workflow_started", "node_started", "message", "node_finished",
                                        "workflow_finished"], start=1)]

    class Dropping:
        def __init__(self) -> None:
            self.calls: list[str | None] = []

        def events(self, path: str, *, last_event_id: str | None = None,
                   params: dict[str, str] | None = None) -> Iterator[ServerSentEvent]:
            self.calls.append(last_event_id)
            after = 0 if last_event_id is None else int(last_event_id.split(".")[1])
            for n, event in enumerate(stream[after:], start=after + 1):
                if len(self.calls) == 1 and n == 3:
                    raise Unreachable("lost the connection")
                yield event
                if n == 1:
                    yield PING

    task = {"workspace_build_number": 1, "status": "active", "current_state": {"state": "working"}}
    connection = Dropping()
    status = follow_events(connection, task, path="/tasks/a/b/events", display="a/b",  # type: ignore[arg-type]
                           output="json", refresh=lambda: task, settled=lambda t, run: False)
    assert status == 0
    assert connection.calls == [None, "1.2"]
    out, err = capsys.readouterr()
    assert [e["n"] for e in json_lines(out)] == [1, 2, 3, 4, 5]
    assert err == "lost the connection; reconnecting\n"


# ---------------------------------------------------------------------------- agents


def test_agents_import_list_export_round_trip(sqlite_server: LiveServer, alice: Taskcanvas, tmp_path: Path) -> None:
    agent_id = alice.ok("agent", "import", str(ECHO_FILE), "--title", "My echo", "--description", "mine").strip()
    assert re.fullmatch(r"[0-9a-f]{32}", agent_id)

    listed = json.loads(alice.ok("agent", "list", "-o", "json"))
    mine = [a for a in listed if a["id"] == agent_id]
    assert mine and mine[0]["title"] == "My echo" and mine[0]["description"] == "mine"
    assert {"Echo", "Quickstart: topics"} <= {a["title"] for a in listed}
    table = alice.ok("agent", "list").splitlines()
    assert table[0].split() == ["ID", "TITLE", "PERMISSION", "OWNER", "UPDATED", "DESCRIPTION"]
    assert any(line.startswith(f"{agent_id}  My echo") and line.endswith("mine") for line in table[1:]), table

    exported = tmp_path / "exported.json"
    alice.ok("agent", "export", agent_id, "-o", str(exported))
    original = json.loads(ECHO_FILE.read_text(encoding="utf-8"))
    assert json.loads(exported.read_text(encoding="utf-8")) == original
    assert json.loads(alice.ok("agent", "export", agent_id)) == original

    again = alice.ok("agent", "import", str(exported), "--title", "Echo again").strip()
    assert again != agent_id
    name = created_name(alice.ok("task", "create", "round trip", "--template", "Echo again"))
    settled = json_lines(alice.ok("task", "status", name, "--watch", "--watch-interval", "0.1", "-o", "json"))[-1]
    assert settled["template_display_name"] == "Echo again"
    assert settled["current_state"]["message"] == "You said: round trip"

    taken = alice("agent", "import", str(ECHO_FILE), "--title", "My echo")
    assert taken.returncode == 1 and only_error(taken) == "error: My echo already exists."
    unknown = alice("agent", "export", "0" * 32)
    assert unknown.returncode == 1 and only_error(unknown) == f"error: agent {'0' * 32}: canvas not found."
    missing = alice("agent", "import", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "nope.json: No such file or directory" in only_error(missing)


# ---------------------------------------------------------------------------- errors


def test_errors_are_one_line(sqlite_server: LiveServer, alice: Taskcanvas, tmp_path: Path) -> None:
    unknown = alice("task", "status", "nope")
    assert unknown.returncode == 1 and only_error(unknown) == f'error: resolve task "nope": {NOT_FOUND}'
    invalid = alice("task", "logs", "a/b/c")
    assert invalid.returncode == 1 and only_error(invalid) == 'error: invalid task identifier: "a/b/c"'

    name = created_name(alice.ok("task", "create", "private", "--template", "Echo"))
    bob = as_user(sqlite_server, "bob", tmp_path)
    hidden = bob("task", "status", f"alice/{name}")
    assert hidden.returncode == 1 and only_error(hidden) == f'error: resolve task "alice/{name}": {NOT_FOUND}'

    for args in (("task", "list"), ("agent", "list")):
        refused = alice(*args, TASKCANVAS_TOKEN="tc_notatoken_x")
        assert refused.returncode == 1, refused.stderr
        assert only_error(refused).endswith("(the server refused the token: check TASKCANVAS_TOKEN or --token)")
    nobody = as_user(sqlite_server, None, tmp_path)("task", "list")
    assert nobody.returncode == 2 and only_error(nobody).startswith("error: no API token: set TASKCANVAS_TOKEN")

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    down = alice("task", "list", "--url", f"http://127.0.0.1:{port}")
    assert down.returncode == 1
    assert only_error(down).startswith(f"error: cannot reach the taskcanvas server at http://127.0.0.1:{port}: "
                                       "connection refused")
    bad_output = alice("task", "list", "-o", "yaml")
    assert bad_output.returncode == 2 and only_error(bad_output) == "error: --output must be table or json, not 'yaml'"
