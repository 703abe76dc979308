"""Latency on the embedded server: task create → first SSE event, and cancel → terminal event.

    .venv/bin/python bench/latency.py              # 200 creates, 50 cancels
    .venv/bin/python bench/latency.py --quick      # 50 and 15

Both are measured as a client sees them, against ``taskcanvas serve`` (SQLite, a child process):

- **create → first event**: ``POST /api/v2/tasks/me`` (a 20-component canvas), then
  ``GET /api/v2/tasks/me/<id>/events`` (SSE); from sending the create to reading the first
  ``event:`` of the stream. One task at a time.
- **cancel → terminal event**: a task whose LLM streams its answer slowly from a scripted model
  server (a word every 200 ms), run through ragflow's ``POST /api/v1/agents/chat/completions``
  (streamed); once the first words have arrived, ``POST /api/v1/tasks/<session>/cancel``; from
  sending the cancel to reading ``workflow_finished`` (status ``cancelled``) on that stream.

Targets (issue 7): create → first event p99 ≤ 50 ms; cancel → terminal p99 ≤ 500 ms.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _server import BenchServer, chain_canvas, start
from taskcanvas.testing.model_server import Reply, Rule, ScriptedModelServer

SLOW_ANSWER = " ".join(f"word{i}" for i in range(200))


def slow_canvas() -> dict[str, Any]:
    canvas = chain_canvas(1)
    components = canvas["components"]
    components["begin"]["downstream"] = ["LLM:slow"]
    components["LLM:slow"] = {"obj": {"component_name": "LLM", "params": {
        "llm_id": "slow@OpenAI", "sys_prompt": "Answer.", "prompts": [{"role": "user", "content": "{sys.query}"}]}},
        "downstream": ["Message:say"], "upstream": ["begin"]}
    components["Message:say"] = {"obj": {"component_name": "Message", "params": {"content": ["{LLM:slow@content}"]}},
                                 "downstream": [], "upstream": ["LLM:slow"]}
    for cid in [c for c in components if c.startswith(("VariableAssigner", "Message:done"))]:
        del components[cid]
    return canvas


def _events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    name = ""
    for line in lines:
        if line.startswith("event:"):
            name = line[len("event:"):].strip()
        elif line.startswith("data:"):
            yield name, json.loads(line[len("data:"):])


def create_to_first_event(server: BenchServer, n: int) -> list[float]:
    out = []
    with server.client() as c:
        for i in range(n):
            begin = time.perf_counter()
            created = c.post("/api/v2/tasks/me", json={"template_version_id": server.versions["chain"],
                                                       "input": f"latency {i}"})
            created.raise_for_status()
            task_id = created.json()["id"]
            with c.stream("GET", f"/api/v2/tasks/me/{task_id}/events") as stream:
                for _ in _events(stream.iter_lines()):
                    out.append(time.perf_counter() - begin)
                    break
    return out


def cancel_to_terminal(server: BenchServer, n: int) -> list[float]:
    out = []
    with server.client() as c:
        c.headers["Authorization"] = f"Bearer {server.token}"
        for i in range(n):
            sent = 0.0
            body = {"agent_id": server.agents["slow"], "query": f"cancel {i}", "stream": True}
            with c.stream("POST", "/api/v1/agents/chat/completions", json=body) as stream:
                for line in stream.iter_lines():
                    if not line.startswith("data:") or line == "data:[DONE]":
                        continue
                    event = json.loads(line[len("data:"):])
                    if event.get("event") == "message" and not sent:
                        sent = time.perf_counter()
                        cancelled = c.post(f"/api/v1/tasks/{event['session_id']}/cancel")
                        if cancelled.json().get("code") != 0:
                            raise RuntimeError(f"cancel refused: {cancelled.text}")
                    elif event.get("event") == "workflow_finished":
                        status = event["data"].get("status")
                        if status != "cancelled":
                            raise RuntimeError(f"the run ended {status}, not cancelled")
                        out.append(time.perf_counter() - sent)
                        break
    return out


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    creates, cancels = (50, 15) if args.quick else (200, 50)
    with tempfile.TemporaryDirectory(prefix="tc-bench-") as tmp, \
            ScriptedModelServer([Rule(Reply(text=SLOW_ANSWER, chunk_delay=0.2))]) as model:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        server = start(data_dir, {"chain": chain_canvas(18), "slow": slow_canvas()},
                       extra_env={"OPENAI_BASE_URL": model.base_url, "OPENAI_API_KEY": "bench"})
        try:
            create_to_first_event(server, 5)  # warm-up
            first = create_to_first_event(server, creates)
            cancel = cancel_to_terminal(server, cancels)
        finally:
            server.stop()
    print(f"# Latency on the embedded server ({datetime.date.today()})\n")
    print(f"- {platform.machine()}, {os.cpu_count()} cores; Python {platform.python_version()}; "
          f"taskcanvas {version('taskcanvas')}; SQLite in a fresh data directory\n")
    print("| measure | samples | p50 ms | p99 ms | max ms | target | |")
    print("|---|---|---|---|---|---|---|")
    for label, values, target in (("create → first SSE event", first, 0.050),
                                  ("cancel → terminal event", cancel, 0.500)):
        p99 = _percentile(values, 0.99)
        print(f"| {label} | {len(values)} | {statistics.median(values) * 1e3:.1f} | {p99 * 1e3:.1f} | "
              f"{max(values) * 1e3:.1f} | p99 ≤ {target * 1e3:.0f} ms | {'met' if p99 <= target else 'not met'} |")


if __name__ == "__main__":
    main()
