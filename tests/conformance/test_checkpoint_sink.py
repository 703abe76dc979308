"""One suite for every CheckpointSink: what the engine hands the sink must rebuild the run's state.

Implementations: the runtime's ``MemoryCheckpointSink`` and the store's ``SqlCheckpointSink``
on SQLite and on PostgreSQL. Each is driven by the real engine running a Loop canvas; the
state rebuilt from what the sink kept is compared with the state the run ended with (or, for
a run cut short, the state after its last finished component — where a restart resumes).
Periodic snapshots and retention exist only in the SQL sink; the memory sink skips those tests.
"""

from __future__ import annotations

import copy
import datetime
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest

from taskcanvas.runtime.cancel import CancelToken
from taskcanvas.runtime.checkpoint import CheckpointSink, MemoryCheckpointSink
from taskcanvas.runtime.engine import Engine
from taskcanvas.runtime.errors import RunStatus
from taskcanvas.runtime.state import Delta, RunState
from taskcanvas.store import CheckpointPolicy, Database, SqlCheckpointSink
from taskcanvas.store.checkpoints import replay, restore
from taskcanvas.store.migrations import upgrade
from taskcanvas.store.repositories import CheckpointRepository, RunRepository
from tests.store.databases import open_database
from tests.store.factories import make_world
from tests.support.canvas import build, cpn, make_canvas

# ---------------------------------------------------------------------------- implementations


@dataclass
class Loaded:
    state: dict[str, Any]
    replayed: int
    """Deltas applied on top of the stored base to rebuild the state."""


class SinkUnderTest(Protocol):
    sink: CheckpointSink
    keeps_snapshots: bool

    async def begin(self, state: dict[str, Any]) -> None: ...

    async def load(self) -> Loaded: ...

    async def next_run(self) -> SinkUnderTest: ...

    async def stored(self) -> tuple[int, int]: ...


class _Memory:
    """The in-memory sink; its base is the state the run started from, kept beside it."""

    keeps_snapshots = False

    def __init__(self, base: dict[str, Any] | None = None) -> None:
        self.sink = MemoryCheckpointSink()
        self._base = base

    async def begin(self, state: dict[str, Any]) -> None:
        self._base = copy.deepcopy(state)

    async def load(self) -> Loaded:
        assert self._base is not None
        return Loaded(replay(self._base, _roundtrip(self.sink.deltas)), len(self.sink.deltas))

    async def next_run(self) -> _Memory:
        return _Memory((await self.load()).state)

    async def stored(self) -> tuple[int, int]:
        return len(self.sink.deltas), int(self.sink.snapshot is not None)


class _Sql:
    keeps_snapshots = True

    def __init__(self, database: Database, session_id: Any, run_id: Any, policy: CheckpointPolicy) -> None:
        self.database, self.session_id, self.policy = database, session_id, policy
        self.sink = SqlCheckpointSink(database, session_id, run_id=run_id, policy=policy)

    async def begin(self, state: dict[str, Any]) -> None:
        await self.sink.begin(state)

    async def load(self) -> Loaded:
        restored = await restore(self.database, self.session_id)
        assert restored is not None
        return Loaded(restored.state, restored.replayed)

    async def next_run(self) -> _Sql:
        """A new sink for the session's next run: what another process would open."""
        async with self.database.session() as s:
            run = await RunRepository(s).create(self.session_id)
        return _Sql(self.database, self.session_id, run.id, self.policy)

    async def stored(self) -> tuple[int, int]:
        async with self.database.session() as s:
            return await CheckpointRepository(s).count(self.session_id)


MakeSink = Callable[..., Awaitable[SinkUnderTest]]


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def make_sink(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MakeSink]:
    """``await make_sink(snapshot_every=..., retention=...)``: a sink for a new session."""
    if request.param == "memory":
        async def memory(**_: Any) -> SinkUnderTest:
            return _Memory()

        yield memory
        return
    async for database in open_database(request.param, request, tmp_path):
        await upgrade(database)
        yield _sql_sinks(database)


def _sql_sinks(database: Database) -> MakeSink:
    async def sql(snapshot_every: int = 50, retention: datetime.timedelta | None = None) -> SinkUnderTest:
        world = await make_world(database)
        policy = CheckpointPolicy(snapshot_every=snapshot_every, retention=retention)
        return _Sql(database, world.session_id, world.run_id, policy)

    return sql


# ---------------------------------------------------------------------------- the canvas and a recorder


def _loop_canvas(passes: int) -> dict[str, Any]:
    return make_canvas({
        "begin": cpn("Begin", down=["loop"]),
        "loop": cpn("Loop", {"loop_variables": [], "loop_termination_condition": [], "logical_operator": "or",
                             "maximum_loop_count": passes}, down=["after"]),
        "item": cpn("LoopItem", {}, down=["body"], parent="loop"),
        "body": cpn("Message", {"content": ["pass {sys.query}"], "stream": False}, parent="loop"),
        "after": cpn("Message", {"content": ["done"]}),
    })


@dataclass
class _Recorder:
    """Wraps a sink; after each delta it keeps the live state — what a restart should get back."""

    inner: CheckpointSink
    state: RunState
    after_each_delta: list[dict[str, Any]] = field(default_factory=list)
    snapshots: int = 0

    async def put_delta(self, delta: Delta) -> None:
        await self.inner.put_delta(delta)
        self.after_each_delta.append(json.loads(json.dumps(self.state.to_json())))

    async def put_end(self, delta: Delta, state: dict[str, Any], status: str) -> None:
        self.snapshots += 1
        await self.inner.put_end(delta, state, status)
        self.after_each_delta.append(json.loads(json.dumps(self.state.to_json())))


@dataclass
class _Started:
    engine: Engine
    state: RunState
    recorder: _Recorder


async def _start(under_test: SinkUnderTest, passes: int, state_json: dict[str, Any] | None = None) -> _Started:
    dsl = _loop_canvas(passes)
    probe = build(dsl)
    state = (probe.new_session() if state_json is None
             else RunState.from_json(state_json, probe.canvas.components))
    recorder = _Recorder(under_test.sink, state)
    engine = build(dsl, checkpoint=recorder)
    await under_test.begin(json.loads(json.dumps(state.to_json())))
    return _Started(engine, state, recorder)


def _roundtrip(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _final(state: RunState) -> dict[str, Any]:
    return _roundtrip(state.to_json())


# ---------------------------------------------------------------------------- the suite


async def test_the_stored_checkpoints_rebuild_the_final_state(make_sink: MakeSink) -> None:
    under_test = await make_sink(snapshot_every=4)
    started = await _start(under_test, passes=3)
    run = started.engine.run(started.state, query="q")
    await run.collect()
    assert run.status is RunStatus.FINISHED

    loaded = await under_test.load()
    assert loaded.state == _final(started.state)
    assert len(started.recorder.after_each_delta) >= 10, "one delta per finished component, and one at the end"
    assert started.recorder.snapshots == 1


async def test_a_cancelled_run_rebuilds_to_its_last_finished_component(make_sink: MakeSink) -> None:
    under_test = await make_sink(snapshot_every=3)
    started = await _start(under_test, passes=50)
    token = CancelToken()
    run = started.engine.run(started.state, query="q", cancel=token)
    bodies = 0
    async for event in run:
        if event["event"] == "node_finished" and event["data"]["component_id"] == "body":
            bodies += 1
            if bodies == 4:
                token.cancel()
    assert run.status is RunStatus.CANCELLED
    assert bodies < 50

    loaded = await under_test.load()
    assert loaded.state == started.recorder.after_each_delta[-1]
    assert loaded.state == _final(started.state)
    assert loaded.state["counters"], "the loop had made progress"


async def test_a_run_that_dies_resumes_from_its_last_finished_component(make_sink: MakeSink) -> None:
    """The process running it stops mid-loop: no end snapshot, only what was checkpointed so far."""
    under_test = await make_sink(snapshot_every=7)
    started = await _start(under_test, passes=50)
    run = started.engine.run(started.state, query="q")
    events = run.__aiter__()
    bodies = 0
    async for event in events:
        if event["event"] == "node_finished" and event["data"]["component_id"] == "body":
            bodies += 1
            if bodies == 10:
                break
    await events.aclose()
    assert run.status is None, "the run never ended"
    assert started.recorder.snapshots == 0

    loaded = await under_test.load()
    last_finished = started.recorder.after_each_delta[-1]
    assert loaded.state == last_finished
    assert loaded.state["path"][-1] == "body"
    assert loaded.state != started.recorder.after_each_delta[0]


async def test_snapshots_bound_the_deltas_replayed(make_sink: MakeSink) -> None:
    under_test = await make_sink(snapshot_every=5)
    if not under_test.keeps_snapshots:
        pytest.skip("the in-memory sink keeps no periodic snapshots")
    started = await _start(under_test, passes=40)
    run = started.engine.run(started.state, query="q")
    events = run.__aiter__()
    async for event in events:
        if event["event"] == "node_finished" and len(started.recorder.after_each_delta) > 60:
            break
    await events.aclose()

    deltas = len(started.recorder.after_each_delta)
    last = started.recorder.after_each_delta[-1]
    # A snapshot every 5 deltas, or every as many deltas as the state has filled outputs (and
    # history entries) when that is more: snapshots then cost about what the deltas they cover do.
    every = max(5, sum(1 for outputs in last["outputs"].values() if outputs) + len(last["history"]))
    loaded = await under_test.load()
    assert loaded.state == last
    assert loaded.replayed < every < deltas
    stored_deltas, stored_snapshots = await under_test.stored()
    assert stored_deltas == deltas
    assert 1 + deltas // every <= stored_snapshots <= 1 + deltas // 5, "the starting state, then one every 5+"


async def test_a_finished_run_replays_nothing(make_sink: MakeSink) -> None:
    under_test = await make_sink(snapshot_every=1000)
    if not under_test.keeps_snapshots:
        pytest.skip("the in-memory sink rebuilds from its deltas only")
    started = await _start(under_test, passes=5)
    await started.engine.run(started.state, query="q").collect()
    loaded = await under_test.load()
    assert loaded.replayed == 0
    assert loaded.state == _final(started.state)


async def test_retention_deletes_covered_deltas_and_load_still_works(make_sink: MakeSink) -> None:
    under_test = await make_sink(snapshot_every=4, retention=datetime.timedelta(0))
    if not under_test.keeps_snapshots:
        pytest.skip("the in-memory sink has no retention")
    started = await _start(under_test, passes=6)
    await started.engine.run(started.state, query="q").collect()

    assert await under_test.stored() == (0, 1), "only the end snapshot is left"
    assert (await under_test.load()).state == _final(started.state)


async def test_retention_keeps_what_is_younger_than_it(make_sink: MakeSink) -> None:
    under_test = await make_sink(snapshot_every=4, retention=datetime.timedelta(days=1))
    if not under_test.keeps_snapshots:
        pytest.skip("the in-memory sink has no retention")
    started = await _start(under_test, passes=6)
    await started.engine.run(started.state, query="q").collect()

    deltas, snapshots = await under_test.stored()
    # One per finished component; the run's last (its end) is in the end snapshot, stored with it.
    assert deltas == len(started.recorder.after_each_delta) - 1
    assert snapshots > 2
    assert (await under_test.load()).state == _final(started.state)


async def test_the_next_turn_continues_from_the_stored_state(make_sink: MakeSink) -> None:
    first = await make_sink(snapshot_every=3)
    started = await _start(first, passes=2)
    await started.engine.run(started.state, query="one").collect()

    second = await first.next_run()
    resumed = await _start(second, passes=2, state_json=(await first.load()).state)
    run = resumed.engine.run(resumed.state, query="two")
    await run.collect()
    assert run.status is RunStatus.FINISHED

    loaded = await second.load()
    assert loaded.state == _final(resumed.state)
    assert loaded.state["globals"]["sys.conversation_turns"] == 2
    assert [turn[0] for turn in loaded.state["history"]] == ["user", "assistant", "user", "assistant"]


async def test_a_recovered_run_goes_on_without_repeating_what_was_stored(make_sink: MakeSink) -> None:
    """Cut a run short, then ``Engine.recover`` from what the sink stored: the events stored with the
    checkpoints plus the recovered run's events are one run's events, each component finished once."""
    passes = 12
    under_test = await make_sink(snapshot_every=5)
    started = await _start(under_test, passes=passes)
    seen: list[dict[str, Any]] = []
    stored_upto: list[int] = []

    class _Counting:
        async def put_delta(self, delta: Delta) -> None:
            await started.recorder.put_delta(delta)
            stored_upto.append(len(seen))

        async def put_end(self, delta: Delta, state: dict[str, Any], status: str) -> None:
            await started.recorder.put_end(delta, state, status)

    started.engine.checkpoint = _Counting()
    events = started.engine.run(started.state, query="q").__aiter__()
    async for event in events:
        seen.append(event)
        if len(stored_upto) == 17:
            break
    await events.aclose()

    second = await under_test.next_run() if under_test.keeps_snapshots else under_test
    resumed = await _start(second, passes=passes, state_json=(await under_test.load()).state)
    assert resumed.state.turn is not None, "the stored state knows the turn was in progress"
    recovered = resumed.engine.recover(resumed.state)
    rest = await recovered.collect()
    assert recovered.status is RunStatus.FINISHED

    stream = seen[: stored_upto[-1]] + rest
    names = [e["event"] for e in stream]
    assert names.count("workflow_started") == 1 and names.count("workflow_finished") == 1
    finished = [e["data"]["component_id"] for e in stream if e["event"] == "node_finished"]
    assert finished.count("body") == passes
    assert finished.count("after") == 1 and finished.count("begin") == 1
    started_ids = [e["data"]["component_id"] for e in stream if e["event"] == "node_started"]
    assert started_ids.count("body") == passes, "nothing announced twice"
    assert resumed.state.turn is None
    assert resumed.state.output_values("after")["content"] == "done"
