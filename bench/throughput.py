"""Throughput: runs per second of a 20-component canvas in one process, checkpoints durable.

    .venv/bin/python bench/throughput.py               # concurrency 1, 16, 256 on SQLite
    .venv/bin/python bench/throughput.py --postgres    # PostgreSQL too
    .venv/bin/python bench/throughput.py --runs 200    # runs per concurrency level (default 400)

The service layer in this process (what the HTTP routes call, without HTTP): ``runs`` tasks
are created with ``Tasks.create`` by ``concurrency`` creators at once, and the executor runs
them (its own limit set to the same concurrency) to ``complete``. Runs per second = runs /
(time from the first create to the last completion). Every run is checked afterwards: the
right answer, and a stored event stream numbered 1..n with no gap or repeat, in order.

The machine's speed drifts (by up to 2-3× between days here), so the same run also measures
the peers of ``durable.py`` on the same 20-step chain, one run after another: DBOS steps
(SQLite system database) and LangGraph + ``SqliteSaver`` (``durability="sync"``). Their runs/s
set the absolute figures beside what users would otherwise run on this machine today.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import sqlite3
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _server import chain_canvas, postgres_database, server_env
from durable import dbos_side, langgraph_side
from taskcanvas.config import Settings
from taskcanvas.service.services import Services, open_services, settle_start_up
from taskcanvas.store.models import Run, RunEvent

COMPONENTS = 20


async def measure(data_dir: Path, url: str | None, concurrency: int, runs: int) -> dict[str, Any]:
    env = server_env(data_dir, {"TASKCANVAS_DATABASE_URL": url} if url else {})
    services = await open_services(Settings.load(env), concurrency=concurrency)
    try:
        user = await services.accounts.create_user(f"bench{concurrency}", role="owner")
        owner = await services.accounts.principal_for(user.id)
        # begin + 18 VariableAssigners + Message = 20 components
        agent = await services.agents.create(owner, f"chain {concurrency}", chain_canvas(COMPONENTS - 2))
        version_id = agent.version.id
        await _one(services, owner, version_id, "warm-up")
        settle_start_up()  # as `taskcanvas serve` does once it is ready
        gate = asyncio.Semaphore(concurrency)

        async def create(i: int) -> Any:
            async with gate:
                view = await services.tasks.create(owner, "me", version_id, prompt=f"run {i}",
                                                   name=f"c{concurrency}-{i}")
                run_id = view.latest_run.id
                await services.executor.wait(run_id)
                return run_id

        begin = time.perf_counter()
        run_ids = await asyncio.gather(*(create(i) for i in range(runs)))
        elapsed = time.perf_counter() - begin
        await _check(services, run_ids)
        return {"runs": runs, "seconds": elapsed, "per_second": runs / elapsed}
    finally:
        await services.close()


async def _one(services: Services, owner: Any, version_id: Any, prompt: str) -> None:
    view = await services.tasks.create(owner, "me", version_id, prompt=prompt)
    await services.executor.wait(view.latest_run.id)


async def _check(services: Services, run_ids: list[Any]) -> None:
    from sqlalchemy import select

    async with services.database.reading() as s:
        runs = {r.id: r for r in await s.scalars(select(Run).where(Run.id.in_(run_ids)))}
        events: dict[Any, list[int]] = {}
        for row in await s.execute(select(RunEvent.run_id, RunEvent.seq).where(RunEvent.run_id.in_(run_ids))
                                   .order_by(RunEvent.run_id, RunEvent.seq)):
            events.setdefault(row.run_id, []).append(row.seq)
    for run_id in run_ids:
        run = runs[run_id]
        if run.status != "finished":
            raise RuntimeError(f"run {run_id} ended {run.status}: {run.error}")
        seqs = events.get(run_id, [])
        if seqs != list(range(1, len(seqs) + 1)) or len(seqs) != run.last_seq:
            raise RuntimeError(f"run {run_id}: its stored events are not numbered 1..{run.last_seq} in order")
    async with services.database.reading() as s:
        from taskcanvas.store.models import Session
        answers = {r.id: r.messages[-1]["content"] for r in await s.scalars(
            select(Session).where(Session.id.in_({runs[i].session_id for i in run_ids})))}
    wrong = [a for a in answers.values() if a != str(COMPONENTS - 2)]
    if wrong:
        raise RuntimeError(f"{len(wrong)} runs answered something else, e.g. {wrong[0]!r}")


def peer_throughput(workdir: Path, runs: int) -> dict[str, float]:
    """Runs/s of the same chain as DBOS steps and as LangGraph nodes, one run after another."""
    out = {}
    for name, side in (("dbos", dbos_side), ("langgraph + SqliteSaver", langgraph_side)):
        print(f"{name}, concurrency 1 ...", file=sys.stderr)
        run, close, _ = side(workdir)
        try:
            run(COMPONENTS)  # warm-up, as for taskcanvas
            out[name] = runs / sum(run(COMPONENTS) for _ in range(runs))
        finally:
            close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--concurrency", type=int, action="append")
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--peer-runs", type=int, default=30, help="runs of each peer (0: no peers)")
    args = parser.parse_args()
    levels = args.concurrency or [1, 16, 256]
    rows = []
    with tempfile.TemporaryDirectory(prefix="tc-bench-") as tmp:
        backends: list[tuple[str, str | None]] = [("sqlite", None)]
        if args.postgres:
            backends.append(("postgresql", postgres_database()))
        for backend, url in backends:
            data_dir = Path(tmp) / backend
            data_dir.mkdir()
            for concurrency in levels:
                print(f"{backend}, concurrency {concurrency} ...", file=sys.stderr)
                result = asyncio.run(measure(data_dir, url, concurrency, args.runs))
                rows.append((backend, concurrency, result))
        peers = peer_throughput(Path(tmp), args.peer_runs) if args.peer_runs else {}
    print(f"# Throughput: runs/s of a {COMPONENTS}-component canvas, one process ({datetime.date.today()})\n")
    print(f"- {platform.machine()}, {os.cpu_count()} cores; Python {platform.python_version()}; "
          f"taskcanvas {version('taskcanvas')}; SQLite {sqlite3.sqlite_version}"
          + "".join(f"; {p} {version(p)}" for p in ("dbos", "langgraph") if peers) + "\n")
    fastest = max(peers.values(), default=None)
    print("| database | concurrency | runs | seconds | runs/s | target ≥ 200 | × the faster peer (one run at a time) |")
    print("|---|---|---|---|---|---|---|")
    for backend, concurrency, r in rows:
        met = "met" if r["per_second"] >= 200 else "not met"
        times = f"{r['per_second'] / fastest:.1f}" if fastest else "—"
        print(f"| {backend} | {concurrency} | {r['runs']} | {r['seconds']:.2f} | {r['per_second']:.0f} | {met} "
              f"| {times} |")
    if peers:
        print(f"\nPeers, the same {COMPONENTS}-step chain, {args.peer_runs} runs one after another (SQLite):\n")
        print("| peer | runs/s |")
        print("|---|---|")
        for name, per_second in peers.items():
            print(f"| {name} | {per_second:.1f} |")


if __name__ == "__main__":
    main()
