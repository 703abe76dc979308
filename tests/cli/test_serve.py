"""``taskcanvas serve`` as an operator runs it: the real command in a subprocess, stopped by a signal."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from taskcanvas.cli.serve import STOP_HINT
from taskcanvas.store import Database
from taskcanvas.store.repositories import AgentRepository

STARTUP_LIMIT = 120.0
"""Seconds a server may take to print where it listens (a safety net against a hang, not a measure)."""
SERVING = re.compile(r"is serving on (http://\S+)")


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKCANVAS_", "OPENAI_", "ANTHROPIC_"))}
    env.update(extra)
    return env


def taskcanvas(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "taskcanvas.cli.app", *args], input=stdin, env=env, text=True,
                          capture_output=True, timeout=120)


class Server:
    """``taskcanvas serve`` in a subprocess; stdout is read line by line as it comes."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "taskcanvas.cli.app", "serve", *args], env=env,
                                        text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.stdout: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def wait_until_serving(self) -> str:
        """The URL from the start message, once the whole message is read."""
        deadline = time.monotonic() + STARTUP_LIMIT
        url = None
        while True:
            try:
                line = self._lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"the server did not start: {self.stdout}") from None
            if line is None:
                raise AssertionError(f"the server ended: {self.stdout} {self.stop()[1]}")
            self.stdout.append(line)
            if match := SERVING.search(line):
                url = match.group(1)
            if line.strip() == STOP_HINT:
                assert url is not None, self.stdout
                return url

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        _, stderr = self.process.communicate(timeout=120)
        return self.process.returncode, stderr

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate(timeout=30)


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.kill()


def start(servers: list[Server], *args: str, env: dict[str, str]) -> Server:
    server = Server(*args, env=env)
    servers.append(server)
    return server


def json_lines(stderr: str) -> list[dict[str, object]]:
    records = [json.loads(line) for line in stderr.splitlines()]
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys(), record
    return records


async def agent_titles(data_dir: Path) -> list[str]:
    database = Database(f"sqlite:///{data_dir / 'taskcanvas.db'}")
    try:
        async with database.session() as s:
            return sorted(a.title for a in await AgentRepository(s).find(limit=100))
    finally:
        await database.dispose()


def test_a_first_start_says_how_to_make_the_owner_and_logs_json(tmp_path: Path, servers: list[Server]) -> None:
    data = tmp_path / "data"
    env = environment()
    server = start(servers, "--port", "0", "--data-dir", str(data), env=env)
    url = server.wait_until_serving()
    text = "".join(server.stdout)
    assert f"data: {data}" in text
    assert "No user yet" in text

    # The commands it prints work as printed.
    commands = [shlex.split(line.strip()) for line in server.stdout
                if line.strip().startswith(("taskcanvas users create", "taskcanvas tokens create"))]
    assert [c[:3] for c in commands] == [["taskcanvas", "users", "create"], ["taskcanvas", "tokens", "create"]]
    assert all(c[c.index("--data-dir") + 1] == str(data) for c in commands)
    assert "--role" in commands[0] and commands[0][commands[0].index("--role") + 1] == "owner"
    made = taskcanvas(*commands[0][1:], env=env, stdin="correct horse battery\n")
    assert made.returncode == 0, made.stderr
    token = taskcanvas(*commands[1][1:], env=env)
    assert token.returncode == 0, token.stderr
    assert re.fullmatch(r"tc_\S+\n", token.stdout)
    assert f"export TASKCANVAS_URL={url} TASKCANVAS_TOKEN=<the token>" in text

    # Once the owner exists, the running server imports the example agents for them.
    deadline = time.monotonic() + STARTUP_LIMIT
    while not (titles := asyncio.run(agent_titles(data))) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert titles == ["Echo", "Quickstart: topics"]

    with httpx.Client(base_url=url, timeout=30) as client:
        health = client.get("/healthz")
    assert health.json()["status"] == "ok"

    status, stderr = server.stop(signal.SIGTERM)
    assert status == 0, stderr
    assert "Traceback" not in stderr
    records = json_lines(stderr)
    access = [r for r in records if r["logger"] == "taskcanvas.access" and r.get("path") == "/healthz"]
    assert access and access[-1]["method"] == "GET" and access[-1]["status"] == 200
    assert isinstance(access[-1]["duration_ms"], float)
    loggers = {r["logger"] for r in records}
    assert {"uvicorn.error", "taskcanvas.serve"} <= loggers, loggers
    assert any(r["message"] == f"serving on {url}" for r in records)
    assert any(r["message"].startswith("imported the example agents") for r in records)  # type: ignore[union-attr]


def test_a_later_start_keeps_quiet_about_owners_and_logs_text(tmp_path: Path, servers: list[Server]) -> None:
    data = tmp_path / "data"
    env = environment()
    made = taskcanvas("users", "create", "--data-dir", str(data), "--username", "ops", "--email", "ops@example.com",
                      "--role", "owner", env=env)
    assert made.returncode == 0, made.stderr

    server = start(servers, "--port", "0", "--data-dir", str(data), "--log-format", "text", env=env)
    url = server.wait_until_serving()
    assert "No user yet" not in "".join(server.stdout)
    with httpx.Client(base_url=url, timeout=30) as client:
        assert client.get("/no/such/route").status_code == 404

    status, stderr = server.stop(signal.SIGINT)
    assert status == 0, stderr
    assert "Traceback" not in stderr
    assert not stderr.lstrip().startswith("{")
    assert re.search(r" INFO +taskcanvas\.access: GET /no/such/route 404 [0-9.]+ms$", stderr, re.MULTILINE), stderr
    assert asyncio.run(agent_titles(data)) == ["Echo", "Quickstart: topics"], "a start with an owner imports them"


def test_the_environment_names_the_data_dir(tmp_path: Path, servers: list[Server]) -> None:
    data = tmp_path / "from-env"
    server = start(servers, "--port", "0", env=environment(TASKCANVAS_DATA_DIR=str(data)))
    server.wait_until_serving()
    assert f"data: {data}" in "".join(server.stdout)
    assert (data / "taskcanvas.db").exists()
    assert server.stop()[0] == 0


def only_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_an_unreachable_database_is_one_line_and_status_1(tmp_path: Path) -> None:
    done = taskcanvas("serve", "--port", "0", "--data-dir", str(tmp_path),
                      env=environment(TASKCANVAS_DATABASE_URL="postgresql://tc:s3cret@127.0.0.1:1/tc"))
    assert done.returncode == 1
    line = only_error_line(done)
    assert line.startswith("error: cannot reach the database postgresql+asyncpg://tc:***@127.0.0.1:1/tc")
    assert "s3cret" not in done.stderr and done.stdout == ""


def test_an_unusable_configuration_is_status_2(tmp_path: Path) -> None:
    done = taskcanvas("serve", "--port", "0", "--data-dir", str(tmp_path),
                      env=environment(TASKCANVAS_DATABASE_URL="mysql://root@db/tc"))
    assert done.returncode == 2
    assert "cannot use the database driver 'mysql'" in only_error_line(done)

    (tmp_path / "config.toml").write_text("[limits\n", encoding="utf-8")
    done = taskcanvas("serve", "--port", "0", "--data-dir", str(tmp_path), env=environment())
    assert done.returncode == 2
    assert "is not valid TOML" in only_error_line(done)


def test_an_address_in_use_is_one_line_and_status_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = taskcanvas("serve", "--port", str(port), "--data-dir", str(tmp_path), env=environment())
    assert done.returncode == 1
    assert only_error_line(done) == f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
