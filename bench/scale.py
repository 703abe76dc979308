"""Scale in one process: runs in flight at once, and sessions idle waiting for input.

    .venv/bin/python bench/scale.py                         # 1,000 in flight, 10,000 idle
    .venv/bin/python bench/scale.py --in-flight 200 --idle 1000

The service layer runs in this process (SQLite in a fresh data directory); the scripted model
server runs in a child process, so its threads are not counted.

- **In flight**: ``--in-flight`` tasks whose canvas is ``begin`` → LLM → Message; the model answers
  after 60 s, so every run is waiting on it. Once each run's model request is out (counted by the
  model server), the process's resident memory is read: per run = (RSS then − RSS before) / runs.
  The runs are then cancelled.
- **Idle**: ``--idle`` tasks whose canvas is ``begin`` → UserFillUp; each run pauses for input and
  ends ``waiting``. Then: resident memory per idle session, the executor's executions (must be 0:
  an idle session holds no worker) and the asyncio tasks alive (must not grow with the sessions).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _server import free_port, server_env
from taskcanvas.config import Settings
from taskcanvas.service.services import open_services

_MODEL_SERVER = textwrap.dedent("""
    import sys, threading
    from taskcanvas.testing.model_server import Reply, Rule, ScriptedModelServer
    lock = threading.Lock()
    def late(request):
        with lock:
            print("asked", flush=True)  # one line per request: the bench counts them
        return Reply(text="late", delay=60)
    with ScriptedModelServer([Rule(late)], port=int(sys.argv[1])) as server:
        print(server.base_url, flush=True)
        threading.Event().wait()
""")


class _Asked:
    """Counts the child model server's requests from its output."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.count = 0
        assert process.stdout is not None
        self.url = process.stdout.readline().strip()
        threading.Thread(target=self._read, args=(process,), daemon=True).start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for _ in process.stdout:
            self.count += 1


def rss() -> int:
    """Resident memory of this process, bytes (after a full collection)."""
    gc.collect()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _canvas(middle: dict[str, Any], say: str = "done") -> dict[str, Any]:
    components = {"begin": {"obj": {"component_name": "Begin", "params": {}}, "downstream": ["middle"],
                            "upstream": []},
                  "middle": {"obj": middle, "downstream": ["say"], "upstream": ["begin"]},
                  "say": {"obj": {"component_name": "Message", "params": {"content": [say], "stream": False}},
                          "downstream": [], "upstream": ["middle"]}}
    return {"components": components, "globals": {"sys.query": "", "sys.user_id": "", "sys.conversation_turns": 0,
                                                   "sys.files": [], "sys.history": []},
            "variables": {}, "history": [], "path": [], "retrieval": []}


LLM = {"component_name": "LLM", "params": {"llm_id": "slow@OpenAI", "sys_prompt": "Answer.",
                                            "prompts": [{"role": "user", "content": "{sys.query}"}]}}
FORM = {"component_name": "UserFillUp", "params": {"enable_tips": True, "tips": "Your name?",
                                                   "inputs": {"name": {"type": "line", "name": "Name"}}}}


async def in_flight(data_dir: Path, model: _Asked, count: int) -> dict[str, float]:
    settings = Settings.load(server_env(data_dir, {"OPENAI_BASE_URL": model.url, "OPENAI_API_KEY": "bench"}))
    services = await open_services(settings, concurrency=count + 10)
    try:
        user = await services.accounts.create_user("flight", role="owner")
        owner = await services.accounts.principal_for(user.id)
        # The Message says the LLM's answer: an answer nobody reads is never asked for.
        agent = await services.agents.create(owner, "in flight", _canvas(LLM, "{middle@content}"))
        before = rss()
        tasks_before = len(asyncio.all_tasks())
        runs = []
        for i in range(count):
            view = await services.tasks.create(owner, "me", agent.version.id, prompt=f"q{i}", name=f"f{i}")
            runs.append(view.latest_run.id)
        deadline = time.monotonic() + 300
        # Every run waits on the model: its request is out, or queued for one of the model
        # client's connections (it keeps a bounded pool).
        while model.count < min(count, 100) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(2)
        asked, executing = model.count, services.executor.executing
        during = rss()
        tasks_during = len(asyncio.all_tasks())
        for run_id in runs:
            services.executor.cancel(run_id)
        for run_id in runs:
            await services.executor.wait(run_id)
        return {"runs": count, "executing": executing, "asked": asked, "rss_per_run": (during - before) / count,
                "asyncio_tasks": tasks_during - tasks_before}
    finally:
        await services.close()


async def idle(data_dir: Path, count: int) -> dict[str, float]:
    services = await open_services(Settings.load(server_env(data_dir, {})), concurrency=64)
    try:
        user = await services.accounts.create_user("idle", role="owner")
        owner = await services.accounts.principal_for(user.id)
        agent = await services.agents.create(owner, "idle", _canvas(FORM))
        view = await services.tasks.create(owner, "me", agent.version.id, prompt="warm", name="warm")
        await services.executor.wait(view.latest_run.id)
        before = rss()
        tasks_before = len(asyncio.all_tasks())
        gate = asyncio.Semaphore(32)

        async def create(i: int) -> None:
            async with gate:
                view = await services.tasks.create(owner, "me", agent.version.id, prompt=f"q{i}", name=f"i{i}")
                await services.executor.wait(view.latest_run.id)

        begin = time.perf_counter()
        await asyncio.gather(*(create(i) for i in range(count)))
        elapsed = time.perf_counter() - begin
        waiting = await services.tasks.find(owner)
        idle_count = sum(1 for v in waiting if v.latest_run is not None and v.latest_run.status == "waiting")
        after = rss()
        return {"sessions": count, "waiting": idle_count - 1, "executing": services.executor.executing,
                "asyncio_tasks": len(asyncio.all_tasks()) - tasks_before, "rss_per_session": (after - before) / count,
                "seconds": elapsed}
    finally:
        await services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--in-flight", type=int, default=1000)
    parser.add_argument("--idle", type=int, default=10_000)
    args = parser.parse_args()
    port = free_port()
    model = subprocess.Popen([sys.executable, "-c", _MODEL_SERVER, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        asked = _Asked(model)
        with tempfile.TemporaryDirectory(prefix="tc-bench-") as tmp:
            (Path(tmp) / "a").mkdir()
            (Path(tmp) / "b").mkdir()
            print(f"{args.in_flight} runs in flight ...", file=sys.stderr)
            flight = asyncio.run(in_flight(Path(tmp) / "a", asked, args.in_flight))
            print(f"{args.idle} idle sessions ...", file=sys.stderr)
            waiting = asyncio.run(idle(Path(tmp) / "b", args.idle))
    finally:
        model.terminate()
        model.wait(timeout=10)
    print(f"# Scale in one process ({datetime.date.today()})\n")
    print(f"- {platform.machine()}, {os.cpu_count()} cores; Python {platform.python_version()}; "
          f"taskcanvas {version('taskcanvas')}; SQLite\n")
    print("| measure | value |")
    print("|---|---|")
    print(f"| runs in flight (executing at the reading; model requests open) | {flight['runs']} "
          f"({flight['executing']}; {flight['asked']}) |")
    print(f"| resident memory per in-flight run | {flight['rss_per_run'] / 1024:.0f} KiB |")
    print(f"| asyncio tasks per in-flight run | {flight['asyncio_tasks'] / flight['runs']:.2f} |")
    print(f"| sessions idle waiting for input | {waiting['sessions']} ({waiting['waiting']} read back waiting; "
          f"made in {waiting['seconds']:.0f} s) |")
    print(f"| resident memory per idle session | {waiting['rss_per_session'] / 1024:.1f} KiB |")
    print(f"| executions held by idle sessions | {waiting['executing']} |")
    print(f"| asyncio tasks added by {waiting['sessions']} idle sessions | {waiting['asyncio_tasks']} |")


if __name__ == "__main__":
    main()
