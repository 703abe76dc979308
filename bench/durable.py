"""Durable cost per component: taskcanvas's embedded server vs DBOS steps vs LangGraph + SqliteSaver.

    .venv/bin/python bench/durable.py            # N = 50 and 1000, best of 3 (~1-2 min)
    .venv/bin/python bench/durable.py --quick    # N = 20 and 200, best of 2
    .venv/bin/python bench/durable.py --postgres # taskcanvas on PostgreSQL too

Each side runs a chain of N cheap durable steps and is timed from start to its end:

- taskcanvas: a task created through ``POST /api/v2/tasks/me`` on ``taskcanvas serve`` (SQLite
  in a fresh data directory, a child process), whose canvas is ``begin`` → N VariableAssigner
  ``set`` → Message; timed from the task's ``created_at`` to the ``complete`` state's timestamp
  (the server's clock; ``GET /api/v2/tasks/me/<id>`` polled every 100 ms). Every component is
  checkpointed with its events before the next starts.
- DBOS: a workflow of N ``@DBOS.step()`` calls, SQLite system database.
- LangGraph: N nodes in a line, ``SqliteSaver``, ``invoke(..., durability="sync")``.

Marginal µs per component = (T(N_big) − T(N_small)) / (N_big − N_small), so per-run costs (HTTP,
task creation, workflow start) cancel out. Stored bytes per component come from the databases.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import functools
import os
import platform
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any, TypedDict

sys.path.insert(0, str(Path(__file__).parent))

from _server import BenchServer, chain_canvas, postgres_database, start

POLL_SECONDS = 0.1


# ============================================================================ taskcanvas
def taskcanvas_run(server: BenchServer, n: int) -> float:
    """Seconds from the task's creation to its ``complete`` state, by the server's own clock.

    The task is polled every 100 ms for its state, and the time is read from what the task says
    (``created_at`` to ``current_state.timestamp``): polling more often would load the server
    with requests in proportion to the run's length and bend the per-component figure.
    """
    with server.client() as c:
        created = c.post("/api/v2/tasks/me", json={"template_version_id": server.versions[f"chain {n}"],
                                                   "input": "go"})
        created.raise_for_status()
        task_id = created.json()["id"]
        while True:
            task = c.get(f"/api/v2/tasks/me/{task_id}").json()
            state = task.get("current_state") or {}
            if state.get("state") in ("complete", "failed"):
                break
            time.sleep(POLL_SECONDS)
    if state["state"] != "complete" or state.get("message") != str(n):
        raise RuntimeError(f"chain {n} ended {state}")
    return (_instant(state["timestamp"]) - _instant(task["created_at"])).total_seconds()


def _instant(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def taskcanvas_bytes(server: BenchServer, database_url: str | None) -> dict[int, dict[str, float]]:
    """Stored bytes of the last run of each chain: checkpoint deltas, snapshots, events."""
    if database_url is not None:
        return {}
    db = sqlite3.connect(server.data_dir / "taskcanvas.db")
    out: dict[int, dict[str, float]] = {}
    try:
        for title, version_id in server.versions.items():
            n = int(title.split()[1])
            session = db.execute(
                "SELECT s.id FROM sessions s JOIN tasks t ON t.id = s.task_id "
                "WHERE replace(t.agent_version_id, '-', '') = ? ORDER BY t.created_at DESC LIMIT 1",
                (version_id.replace("-", ""),)).fetchone()[0]
            deltas = db.execute("SELECT count(*), coalesce(sum(length(delta)), 0) FROM checkpoint_deltas "
                                "WHERE session_id = ?", (session,)).fetchone()
            snaps = db.execute("SELECT count(*), coalesce(sum(length(state)), 0) FROM checkpoint_snapshots "
                               "WHERE session_id = ?", (session,)).fetchone()
            events = db.execute("SELECT count(*), coalesce(sum(length(e.payload)), 0) FROM run_events e "
                                "JOIN runs r ON r.id = e.run_id WHERE r.session_id = ?", (session,)).fetchone()
            out[n] = {"deltas": deltas[1] / n, "snapshots": snaps[1] / n, "events": events[1] / n,
                      "snapshot_rows": snaps[0], "delta_rows": deltas[0]}
    finally:
        db.close()
    return out


# ============================================================================ DBOS
def dbos_side(workdir: Path) -> tuple[Callable[[int], float], Callable[[], None], Callable[[], int]]:
    from dbos import DBOS

    path = workdir / "dbos.sqlite"
    DBOS(config={"name": "taskcanvas-bench", "system_database_url": f"sqlite:///{path}",
                 "run_admin_server": False})

    @DBOS.step()
    async def step(i: int) -> int:
        return i + 1

    @DBOS.workflow()
    async def chain(n: int) -> int:
        value = 0
        for i in range(n):
            value = await step(i)
        return value

    DBOS.launch()

    def run(n: int) -> float:
        begin = time.perf_counter()
        result = asyncio.run(chain(n))
        elapsed = time.perf_counter() - begin
        if result != n:
            raise RuntimeError(f"DBOS chain {n} returned {result}")
        return elapsed

    def size() -> int:
        return os.path.getsize(path) + (os.path.getsize(f"{path}-wal") if os.path.exists(f"{path}-wal") else 0)

    return run, DBOS.destroy, size


# ============================================================================ LangGraph
class _State(TypedDict):
    counter: int


def langgraph_side(workdir: Path) -> tuple[Callable[[int], float], Callable[[], None], Callable[[], int]]:
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, START, StateGraph

    path = workdir / "langgraph.sqlite"
    connection = sqlite3.connect(path, check_same_thread=False)
    saver = SqliteSaver(connection)
    graphs: dict[int, Any] = {}

    def graph(n: int) -> Any:
        if n not in graphs:
            builder = StateGraph(_State)
            for i in range(n):
                builder.add_node(f"n{i}", lambda s, i=i: {"counter": i + 1})
            builder.add_edge(START, "n0")
            for i in range(n - 1):
                builder.add_edge(f"n{i}", f"n{i + 1}")
            builder.add_edge(f"n{n - 1}", END)
            graphs[n] = builder.compile(checkpointer=saver)
        return graphs[n]

    runs = 0

    def run(n: int) -> float:
        nonlocal runs
        compiled = graph(n)
        runs += 1
        config = {"configurable": {"thread_id": f"t{runs}"}, "recursion_limit": n + 10}
        begin = time.perf_counter()
        result = compiled.invoke({"counter": 0}, config, durability="sync")
        elapsed = time.perf_counter() - begin
        if result["counter"] != n:
            raise RuntimeError(f"LangGraph chain {n} returned {result}")
        return elapsed

    def size() -> int:
        connection.commit()
        return os.path.getsize(path) + (os.path.getsize(f"{path}-wal") if os.path.exists(f"{path}-wal") else 0)

    return run, connection.close, size


# ============================================================================ driver
def best(run: Callable[[int], float], n: int, reps: int) -> float:
    run(n)  # warm-up: the first run pays for imports, caches and table creation
    return min(run(n) for _ in range(reps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="N = 20 and 200, best of 2")
    parser.add_argument("--postgres", action="store_true", help="also taskcanvas on PostgreSQL (TASKCANVAS_BENCH_PG, "
                        "default postgresql://postgres@127.0.0.1:5432/taskcanvas_bench, created if missing)")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--only", choices=["taskcanvas", "dbos", "langgraph"], action="append")
    args = parser.parse_args()
    small, big = (20, 200) if args.quick else (50, 1000)
    reps = args.reps or (2 if args.quick else 3)
    sides = args.only or ["taskcanvas", "dbos", "langgraph"]

    results: dict[str, tuple[float, float]] = {}
    sizes: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="tc-bench-") as tmp:
        workdir = Path(tmp)
        backends: list[tuple[str, str | None]] = [("sqlite", None)]
        if args.postgres:
            backends.append(("postgresql", postgres_database()))
        if "taskcanvas" in sides:
            for backend, url in backends:
                data_dir = workdir / f"tc-{backend}"
                data_dir.mkdir()
                extra = {"TASKCANVAS_DATABASE_URL": url} if url else {}
                server = start(data_dir, {f"chain {n}": chain_canvas(n) for n in (small, big)}, extra_env=extra)
                try:
                    print(f"taskcanvas ({backend}) ...", file=sys.stderr)
                    run = functools.partial(taskcanvas_run, server)
                    results[f"taskcanvas ({backend})"] = (best(run, small, reps), best(run, big, reps))
                    sizes[f"taskcanvas ({backend})"] = taskcanvas_bytes(server, url)
                finally:
                    server.stop()
        for name, side in (("dbos", dbos_side), ("langgraph", langgraph_side)):
            if name not in sides:
                continue
            print(f"{name} ...", file=sys.stderr)
            run, close, size = side(workdir)
            try:
                before = size()
                results[name] = (best(run, small, reps), best(run, big, reps))
                # Stored per step over every run of this side (1 + reps runs of each size).
                steps = (1 + reps) * (small + big)
                sizes[name] = (size() - before) / steps
            finally:
                close()
    _report(results, sizes, small, big, reps)


def _report(results: dict[str, tuple[float, float]], sizes: dict[str, Any], small: int, big: int,
            reps: int) -> None:
    def marginal(name: str) -> float:
        t_small, t_big = results[name]
        return (t_big - t_small) / (big - small) * 1e6

    peers = [marginal(p) for p in ("dbos", "langgraph") if p in results]
    cheaper = min(peers) if peers else None
    print(f"# Durable cost per component ({datetime.date.today()})\n")
    print(f"- {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()} "
          f"{platform.release()}; Python {platform.python_version()}")
    print(f"- taskcanvas {version('taskcanvas')}, dbos {version('dbos')}, langgraph {version('langgraph')}, "
          f"langgraph-checkpoint-sqlite {version('langgraph-checkpoint-sqlite')}, SQLite {sqlite3.sqlite_version}")
    print(f"- best of {reps} after a warm-up; N = {small} and {big}\n")
    print(f"| side | T({small}) ms | T({big}) ms | marginal µs/component | ratio to the cheaper peer |")
    print("|---|---|---|---|---|")
    for name, (t_small, t_big) in results.items():
        ratio = f"{marginal(name) / cheaper:.3f}" if cheaper else "—"
        print(f"| {name} | {t_small * 1e3:.1f} | {t_big * 1e3:.1f} | {marginal(name):.0f} | {ratio} |")
    print("\n| side | stored bytes per component |")
    print("|---|---|")
    for name, measured in sizes.items():
        if isinstance(measured, dict):
            for n, parts in sorted(measured.items()):
                total = parts["deltas"] + parts["snapshots"] + parts["events"]
                print(f"| {name}, one run of N={n} | {total:.0f} (deltas {parts['deltas']:.0f}, snapshots "
                      f"{parts['snapshots']:.0f} in {parts['snapshot_rows']} rows, events {parts['events']:.0f}) |")
        else:
            print(f"| {name} (database file growth over all runs) | {measured:.0f} |")


if __name__ == "__main__":
    main()
