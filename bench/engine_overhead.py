"""Engine overhead per component execution: taskcanvas vs LangGraph, same process, same graph shapes.

    .venv/bin/python bench/engine_overhead.py            # full run (~1-2 min)
    .venv/bin/python bench/engine_overhead.py --quick    # smoke run (< 15 s)
    .venv/bin/python bench/engine_overhead.py --profile  # + cProfile of the taskcanvas side per shape

Every node does nothing (taskcanvas: a bench-only ``Noop`` component writing one output;
LangGraph: an ``async def`` node returning a one-key update), so the wall time of a run is
engine overhead. Per-node overhead = wall time of one run / node executions in that run,
best of N timed runs after warm-up (``time.perf_counter``). Peak memory is measured in
separate runs under ``tracemalloc`` (which slows Python down, so never while timing).

What one timed run contains:

- taskcanvas: ``engine.new_session()`` + ``engine.run(state)`` + ``async for`` over every event
  (workflow_started, node_started/node_finished per component, workflow_finished). The canvas
  is built once, outside the timing (as a compiled graph is for LangGraph).
- LangGraph: ``graph.astream(input, stream_mode="updates")`` drained (one chunk per node
  execution, the counterpart of taskcanvas's per-node events), compiled without checkpointer.
  ``graph.ainvoke(input)`` is timed too and shown; the ratio uses the astream figure.

See docs/benchmarks.md for results and method.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime
import gc
import io
import itertools
import operator
import os
import platform
import pstats
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.metadata import version
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph

from taskcanvas.components import builtin_registry
from taskcanvas.dsl.load import load_canvas
from taskcanvas.runtime.canvas import Canvas
from taskcanvas.runtime.component import Component, RunContext
from taskcanvas.runtime.engine import Engine, Limits

TARGET_RATIO = 0.2  # the issue: taskcanvas per-node overhead at most a fifth of LangGraph's
LOOP_COUNT = 1000
FAN_WIDTH = 50


# ============================================================================ taskcanvas side
class Noop(Component):
    """The trivial component: one output, no I/O."""

    component_name = "Noop"

    async def invoke(self, ctx: RunContext) -> None:
        ctx.state.set_output(self.id, "result", 1)


def _registry() -> Any:
    registry = builtin_registry(plugins=False)
    registry.register(Noop)
    return registry


def _cpn(ctype: str, params: dict[str, Any] | None = None, *, down: list[str] | None = None,
         parent: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"obj": {"component_name": ctype, "params": params or {}},
                             "downstream": list(down or []), "upstream": []}
    if parent:
        entry["parent_id"] = parent
    return entry


def _dsl(components: dict[str, Any]) -> dict[str, Any]:
    for cid, entry in components.items():
        for target in entry["downstream"]:
            components[target]["upstream"].append(cid)
    glob = {"sys.query": "", "sys.user_id": "", "sys.conversation_turns": 0, "sys.files": [], "sys.history": []}
    return {"components": components, "globals": glob, "variables": {}, "history": [], "path": [], "retrieval": []}


def tc_chain(n: int) -> dict[str, Any]:
    """begin → n0 → n1 → … → n{n-1} (the run ends on the last Noop)."""
    comps = {"begin": _cpn("Begin", down=["n0"])}
    for i in range(n):
        comps[f"n{i}"] = _cpn("Noop", down=[f"n{i + 1}"] if i + 1 < n else [])
    return _dsl(comps)


def tc_fanout(width: int) -> dict[str, Any]:
    """begin → fan → b0..b{width-1} (one wave) → join. ``join`` references nothing: it runs once."""
    branches = [f"b{i}" for i in range(width)]
    comps = {"begin": _cpn("Begin", down=["fan"]), "fan": _cpn("Noop", down=branches)}
    for b in branches:
        comps[b] = _cpn("Noop", down=["join"])
    comps["join"] = _cpn("Noop")
    return _dsl(comps)


def tc_loop(count: int) -> dict[str, Any]:
    """begin → loop; inside: item (LoopItem) → body (Noop) → back to item, ``count`` passes."""
    loop_params = {"loop_variables": [], "loop_termination_condition": [], "logical_operator": "or",
                   "maximum_loop_count": count}
    return _dsl({
        "begin": _cpn("Begin", down=["loop"]),
        "loop": _cpn("Loop", loop_params),
        "item": _cpn("LoopItem", down=["body"], parent="loop"),
        "body": _cpn("Noop", parent="loop"),
    })


def tc_engine(dsl: dict[str, Any]) -> Engine:
    return Engine(Canvas.build(load_canvas(dsl), _registry()), limits=Limits())


async def tc_run(engine: Engine) -> None:
    """One timed taskcanvas run: fresh session, every event consumed."""
    run = engine.run(engine.new_session(), query="")
    async for _ in run:
        pass


async def tc_check(engine: Engine) -> int:
    """Untimed: the run finishes; returns its component executions (``node_started`` events)."""
    run = engine.run(engine.new_session(), query="")
    events = [e async for e in run]
    if run.status is None or run.status.value != "finished" or run.error:
        raise RuntimeError(f"taskcanvas run did not finish: {run.status} {run.error}")
    return sum(1 for e in events if e["event"] == "node_started")


# ============================================================================ LangGraph side
class ChainState(TypedDict):
    value: int


class FanState(TypedDict):
    value: int
    results: Annotated[list[int], operator.add]


class LoopState(TypedDict):
    count: int


async def _noop(state: Any) -> dict[str, Any]:
    return {"value": 1}


async def _branch(state: Any) -> dict[str, Any]:
    return {"results": [1]}


async def _join(state: Any) -> dict[str, Any]:
    return {"value": len(state["results"])}


async def _step(state: Any) -> dict[str, Any]:
    return {"count": state["count"] + 1}


def _again(state: Any) -> str:
    return "step" if state["count"] < LOOP_COUNT else END


def lg_chain(n: int) -> Any:
    """begin → n0 → … → n{n-1}: the same node count as the taskcanvas canvas (its Begin included)."""
    g = StateGraph(ChainState)
    names = ["begin"] + [f"n{i}" for i in range(n)]
    for name in names:
        g.add_node(name, _noop)
    g.add_edge(START, "begin")
    for a, b in itertools.pairwise(names):
        g.add_edge(a, b)
    g.add_edge(names[-1], END)
    return g.compile()


def lg_fanout(width: int) -> Any:
    """begin → fan → b0..b{width-1} (one superstep) → join (runs once; results via an operator.add reducer)."""
    g = StateGraph(FanState)
    g.add_node("begin", _noop)
    g.add_node("fan", _noop)
    g.add_node("join", _join)
    g.add_edge(START, "begin")
    g.add_edge("begin", "fan")
    for i in range(width):
        g.add_node(f"b{i}", _branch)
        g.add_edge("fan", f"b{i}")
        g.add_edge(f"b{i}", "join")
    g.add_edge("join", END)
    return g.compile()


def lg_loop() -> Any:
    """begin → step, with a conditional edge from step back to itself until count reaches LOOP_COUNT."""
    g = StateGraph(LoopState)
    g.add_node("begin", _noop)
    g.add_node("step", _step)
    g.add_edge(START, "begin")
    g.add_edge("begin", "step")
    g.add_conditional_edges("step", _again, ["step", END])
    return g.compile()


LG_CONFIG = {"recursion_limit": 10 * LOOP_COUNT}


def lg_input(shape: str) -> dict[str, Any]:
    if shape.startswith("fan"):
        return {"value": 0, "results": []}
    if shape.startswith("loop"):
        return {"count": 0}
    return {"value": 0}


async def lg_stream(graph: Any, inp: dict[str, Any]) -> None:
    async for _ in graph.astream(inp, LG_CONFIG, stream_mode="updates"):
        pass


async def lg_invoke(graph: Any, inp: dict[str, Any]) -> None:
    await graph.ainvoke(inp, LG_CONFIG)


async def lg_check(graph: Any, inp: dict[str, Any]) -> int:
    """Untimed: node executions (one ``updates`` chunk per node execution)."""
    n = 0
    async for chunk in graph.astream(inp, LG_CONFIG, stream_mode="updates"):
        n += len(chunk)
    return n


# ============================================================================ measuring
@dataclass
class Measure:
    best: float  # seconds per run, best of N
    median: float
    nodes: int
    peak: int  # bytes, tracemalloc peak during one run

    @property
    def per_node_us(self) -> float:
        return self.best / self.nodes * 1e6


async def measure(fn: Callable[[], Awaitable[None]], nodes: int, warmup: int, reps: int,
                  memory: bool = True) -> Measure:
    for _ in range(warmup):
        await fn()
    times = []
    for _ in range(reps):
        gc.collect()
        t0 = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    if not memory:
        return Measure(times[0], times[len(times) // 2], nodes, 0)
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    await fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return Measure(times[0], times[len(times) // 2], nodes, peak)


@dataclass
class Shape:
    name: str
    label: str
    tc_dsl: dict[str, Any]
    lg_graph: Any
    reps: int
    tc_expected: int  # component executions: Begin + the shape (loop: Loop + 1001 LoopItem + 1000 body)
    lg_expected: int  # node executions: "begin" + the shape (loop: 1000 steps)


def shapes(quick: bool) -> list[Shape]:
    scale = 0.12 if quick else 1.0

    def r(n: int) -> int:
        return max(3, int(n * scale))

    return [
        Shape("chain20", "chain of 20", tc_chain(20), lg_chain(20), r(500), 21, 21),
        Shape("chain200", "chain of 200", tc_chain(200), lg_chain(200), r(60), 201, 201),
        Shape("fanout50", f"fan-out of {FAN_WIDTH}", tc_fanout(FAN_WIDTH), lg_fanout(FAN_WIDTH), r(250),
              FAN_WIDTH + 3, FAN_WIDTH + 3),
        Shape("loop1000", f"loop of {LOOP_COUNT}", tc_loop(LOOP_COUNT), lg_loop(), r(20),
              2 * LOOP_COUNT + 3, LOOP_COUNT + 1),
    ]


def machine_info() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()} ({platform.python_implementation()}); "
            f"langgraph {version('langgraph')}, langchain-core {version('langchain-core')}; "
            f"{datetime.date.today().isoformat()}")


Row = tuple[Shape, Measure, Measure, Measure, Measure]  # shape, tc, lg astream, lg ainvoke, tc no time limits


async def bench(quick: bool) -> list[Row]:
    rows = []
    built = shapes(quick)
    # Everything imported and built so far is long-lived: keep the collector from re-walking it on
    # every gc.collect() between repetitions (it would cost ~35 ms each with langgraph loaded).
    gc.collect()
    gc.freeze()
    for shape in built:
        t0 = time.perf_counter()
        engine = tc_engine(shape.tc_dsl)
        inp = lg_input(shape.name)
        tc_nodes = await tc_check(engine)
        lg_nodes = await lg_check(shape.lg_graph, inp)
        if (tc_nodes, lg_nodes) != (shape.tc_expected, shape.lg_expected):
            # Per-node figures use the counted executions; a change here means the engine's semantics moved.
            print(f"  WARNING {shape.label}: executions tc {tc_nodes} (expected {shape.tc_expected}), "
                  f"lg {lg_nodes} (expected {shape.lg_expected})", file=sys.stderr)
        warmup = 1 if quick else max(2, shape.reps // 10)
        tc_reps = 3 * shape.reps  # a taskcanvas run is ~10x shorter: more repetitions for the same stability
        tc = await measure(lambda e=engine: tc_run(e), tc_nodes, warmup, tc_reps)
        lg = await measure(lambda g=shape.lg_graph, i=inp: lg_stream(g, i), lg_nodes, warmup, shape.reps)
        lgi = await measure(lambda g=shape.lg_graph, i=inp: lg_invoke(g, i), lg_nodes, warmup, shape.reps,
                            memory=False)
        # Diagnostic: the same canvas without the per-component asyncio.timeout (see docs/benchmarks.md).
        bare = Engine(engine.canvas, limits=Limits(enforce_timeouts=False))
        tcb = await measure(lambda e=bare: tc_run(e), tc_nodes, warmup, tc_reps, memory=False)
        rows.append((shape, tc, lg, lgi, tcb))
        print(f"  {shape.label}: done ({time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)
    return rows


def table(rows: list[Row]) -> str:
    head = ("| shape | node execs tc / lg | taskcanvas µs/node | LangGraph astream µs/node | "
            "LangGraph ainvoke µs/node | ratio tc/lg (astream) | ratio tc/lg (ainvoke) | target ≤ 0.20 | "
            "run ms tc / lg | whole-run ratio | peak KiB tc / lg | tc µs/node without time limits |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for shape, tc, lg, lgi, tcb in rows:
        ratio = tc.per_node_us / lg.per_node_us
        ratio_i = tc.per_node_us / lgi.per_node_us
        lines.append(
            f"| {shape.label} | {tc.nodes} / {lg.nodes} | {tc.per_node_us:.1f} | {lg.per_node_us:.1f} | "
            f"{lgi.per_node_us:.1f} | {ratio:.2f} | {ratio_i:.2f} | {'met' if ratio <= TARGET_RATIO else 'missed'} | "
            f"{tc.best * 1e3:.2f} / {lg.best * 1e3:.2f} | {tc.best / lg.best:.2f} | "
            f"{tc.peak / 1024:.0f} / {lg.peak / 1024:.0f} | {tcb.per_node_us:.1f} |")
    return "\n".join(lines)


def profile(quick: bool, top: int) -> str:
    """Profile of the taskcanvas side, per shape: pyinstrument's call tree if installed, else cProfile."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        Profiler = None
    out = io.StringIO()
    for shape in shapes(quick):
        engine = tc_engine(shape.tc_dsl)
        reps = shape.reps

        async def many(e: Engine = engine, n: int = reps) -> None:
            for _ in range(n):
                await tc_run(e)

        asyncio.run(many(n=3))  # warm-up
        out.write(f"\n### taskcanvas, {shape.label} ({reps} runs)\n\n```\n")
        if Profiler is not None:
            prof = Profiler(interval=0.0001, async_mode="disabled")
            prof.start()
            asyncio.run(many())
            prof.stop()
            out.write(prof.output_text(unicode=False, color=False))
        else:
            cprof = cProfile.Profile()
            cprof.enable()
            asyncio.run(many())
            cprof.disable()
            pstats.Stats(cprof, stream=out).sort_stats("tottime").print_stats(top)
        out.write("```\n")
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run, < 15 s)")
    parser.add_argument("--profile", action="store_true", help="also cProfile the taskcanvas side per shape")
    parser.add_argument("--top", type=int, default=25, help="functions shown per profile")
    args = parser.parse_args()

    started = time.perf_counter()
    rows = asyncio.run(bench(args.quick))
    sys.stderr.flush()
    print(f"Machine: {machine_info()}\n")
    print(f"Per-node overhead = best-of-N wall time of one run / node executions in it "
          f"({'quick' if args.quick else 'full'} run; reps per shape, LangGraph: "
          f"{', '.join(f'{s.label} {s.reps}' for s, *_ in rows)}; taskcanvas 3x as many).\n")
    print(table(rows))
    met = all(tc.per_node_us / lg.per_node_us <= TARGET_RATIO for _, tc, lg, *_ in rows)
    print(f"\nTarget (taskcanvas ≤ {TARGET_RATIO:.2f} × LangGraph per node, every shape): "
          f"{'MET' if met else 'NOT MET'}")
    if args.profile:
        print(profile(args.quick, args.top))
    print(f"\n(bench took {time.perf_counter() - started:.1f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
