"""Kill the server mid-run (SIGKILL), start it again: the run finishes where it stopped.

A real ``taskcanvas serve`` process runs a task whose canvas is a chain of LLM steps answered
slowly by a scripted model server. The process is killed while a step waits for its answer;
a new process picks the run up. The test then reads what was stored: every step finished
once, the event sequence has no gap and no repeat, and only the step that was in flight when
the process died asked the model twice.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from taskcanvas.service.services import open_services
from taskcanvas.store.repositories import EventRepository, RunRepository, SessionRepository
from taskcanvas.testing.model_server import Reply, Rule, ScriptedModelServer
from tests.support.canvas import cpn, make_canvas
from tests.support.server import settings_for

STEPS = 5


def _chain(steps: int = STEPS, cheap: int = 0) -> dict[str, Any]:
    """LLM steps, each followed by ``cheap`` VariableAssigners (checkpoints that cost no model call)."""
    components: dict[str, Any] = {"begin": cpn("Begin", down=["step1"])}
    for n in range(1, steps + 1):
        after = [f"step{n}.{k}" for k in range(1, cheap + 1)]
        chain = [f"step{n}", *after, f"step{n + 1}" if n < steps else "answer"]
        components[f"step{n}"] = cpn("LLM", {"llm_id": "slow@OpenAI", "sys_prompt": "Answer briefly.",
                                           "prompts": [{"role": "user", "content": f"step {n}: {{sys.query}}"}]},
                                     down=[chain[1]])
        for i, cid in enumerate(after, start=1):
            components[cid] = cpn("VariableAssigner", {"variables": [
                {"variable": "env.mark", "operator": "set", "parameter": cid}]}, down=[chain[i + 1]])
    answer = f"{{step{steps}@content}}" + (" {env.mark}" if cheap else "")
    components["answer"] = cpn("Message", {"content": [answer]})
    return make_canvas(components, globals={"env.mark": ""})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Serve:
    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "taskcanvas", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--data-dir", str(self.data_dir)],
            env=self.env, stdout=subprocess.DEVNULL, stderr=open(self.data_dir / "serve.log", "ab"))  # noqa: SIM115
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (self.data_dir / "serve.log").read_text()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("the server did not start: " + (self.data_dir / "serve.log").read_text())

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer([Rule(Reply(text="ok", delay=0.5))]) as server:
        yield server


async def _prepare(settings: Any, canvas: dict[str, Any] | None = None) -> tuple[str, str]:
    services = await open_services(settings, start=False)
    try:
        user = await services.accounts.create_user("admin", email="admin@example.com", role="owner")
        _, token = await services.accounts.create_token(user.id, "tests")
        owner = await services.accounts.principal_for(user.id)
        created = await services.agents.create(owner, "Slow chain", canvas or _chain())
        return token, str(created.version.id)
    finally:
        await services.close()


async def _stored(settings: Any, task_id: str) -> tuple[list[dict[str, Any]], list[int]]:
    services = await open_services(settings, start=False)
    try:
        async with services.database.session() as s:
            session = await SessionRepository(s).for_task(uuid.UUID(task_id))
            assert session is not None
            runs = await RunRepository(s).for_session(session.id)
            rows = await EventRepository(s).after(runs[0].id, 0, limit=100_000)
        return [r.payload for r in rows], [r.seq for r in rows]
    finally:
        await services.close()


def test_a_killed_server_finishes_the_run_after_a_restart(tmp_path: Path, model: ScriptedModelServer) -> None:
    data_dir = tmp_path / "data"
    settings = settings_for(data_dir, {"OPENAI_BASE_URL": model.base_url, "OPENAI_API_KEY": "test"})
    token, version_id = asyncio.run(_prepare(settings))
    env = {**os.environ, **settings.env}
    serve = _Serve(data_dir, env)
    headers = {"Coder-Session-Token": token}
    try:
        serve.start()
        created = httpx.post(f"{serve.url}/api/v2/tasks/me", headers=headers,
                             json={"template_version_id": version_id, "input": "go"})
        assert created.status_code == 201, created.text
        task_id = created.json()["id"]
        deadline = time.monotonic() + 30
        while len(model.requests) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(model.requests) >= 3, "the run never reached its third step"
        serve.kill()
        asked_before = len(model.requests)

        serve.start()
        deadline = time.monotonic() + 60
        task: dict[str, Any] = {}
        while time.monotonic() < deadline:
            task = httpx.get(f"{serve.url}/api/v2/tasks/me/{task_id}", headers=headers).json()
            if (task.get("current_state") or {}).get("state") in ("complete", "failed"):
                break
            time.sleep(0.1)
        assert task["current_state"]["state"] == "complete", task
        assert task["current_state"]["message"] == "ok"
    finally:
        serve.stop()

    events, seqs = asyncio.run(_stored(settings, task_id))
    assert seqs == list(range(1, len(seqs) + 1)), "no gap, no repeat"
    names = [e["event"] for e in events]
    assert names.count("workflow_started") == 1 and names.count("workflow_finished") == 1
    finished = [e["data"]["component_id"] for e in events if e["event"] == "node_finished"]
    for n in range(1, STEPS + 1):
        assert finished.count(f"step{n}") == 1, finished
    started = [e["data"]["component_id"] for e in events if e["event"] == "node_started"]
    assert len(started) == len(set(started)), "no component announced twice"
    prompts = [m["content"] for r in model.requests for m in r["messages"] if m["role"] == "user"]
    repeated = {p for p in prompts if prompts.count(p) > 1}
    assert len(repeated) <= 1, f"only the step in flight at the kill asks again: {repeated}"
    assert len(model.requests) <= STEPS + 1
    assert asked_before >= 3


RUNS = 50


def test_fifty_runs_in_flight_survive_a_kill(tmp_path: Path) -> None:
    """The checkpoint promise under load: runs sharing commits, the process killed among them."""
    steps, cheap = 3, 4
    with ScriptedModelServer([Rule(Reply(text="ok", delay=0.3))]) as model:
        data_dir = tmp_path / "data"
        settings = settings_for(data_dir, {"OPENAI_BASE_URL": model.base_url, "OPENAI_API_KEY": "test"})
        token, version_id = asyncio.run(_prepare(settings, _chain(steps, cheap)))
        serve = _Serve(data_dir, {**os.environ, **settings.env})
        headers = {"Coder-Session-Token": token}
        try:
            serve.start()
            with httpx.Client(base_url=serve.url, headers=headers, timeout=30) as c:
                task_ids = []
                for i in range(RUNS):
                    created = c.post("/api/v2/tasks/me", json={"template_version_id": version_id, "input": f"run {i}"})
                    assert created.status_code == 201, created.text
                    task_ids.append(created.json()["id"])
            deadline = time.monotonic() + 60
            while len(model.requests) < RUNS + 10 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert len(model.requests) >= RUNS + 10, "the runs never got going"
            serve.kill()

            serve.start()
            deadline = time.monotonic() + 120
            states: dict[str, dict[str, Any]] = {}
            with httpx.Client(base_url=serve.url, headers=headers, timeout=30) as c:
                while time.monotonic() < deadline:
                    states = {t["id"]: t.get("current_state") or {} for t in c.get("/api/v2/tasks").json()["tasks"]}
                    if all(states.get(t, {}).get("state") in ("complete", "failed") for t in task_ids):
                        break
                    time.sleep(0.2)
        finally:
            serve.stop()

        last = f"step{steps}.{cheap}"
        for i, task_id in enumerate(task_ids):
            assert states[task_id].get("state") == "complete", (i, states[task_id])
            assert states[task_id]["message"] == f"ok {last}"
            events, seqs = asyncio.run(_stored(settings, task_id))
            assert seqs == list(range(1, len(seqs) + 1)), f"run {i}: no gap, no repeat"
            names = [e["event"] for e in events]
            assert names.count("workflow_started") == 1 and names.count("workflow_finished") == 1, i
            finished = [e["data"]["component_id"] for e in events if e["event"] == "node_finished"]
            assert len(finished) == len(set(finished)) == 1 + steps * (1 + cheap) + 1, (i, finished)
            started = [e["data"]["component_id"] for e in events if e["event"] == "node_started"]
            assert len(started) == len(set(started)), f"run {i}: no component announced twice"
            prompts = [m["content"] for r in model.requests for m in r["messages"]
                       if m["role"] == "user" and m["content"].endswith(f": run {i}")]
            repeated = {p for p in prompts if prompts.count(p) > 1}
            assert len(repeated) <= 1, f"run {i}: only the step in flight at the kill asks again: {repeated}"
            assert len(prompts) <= steps + 1
