"""What only the SQL sink does: its policy, its base snapshot, and refusing what cannot be rebuilt.

Rebuilding states from real runs is the conformance suite's job (tests/conformance/).
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest

from taskcanvas.config import ConfigError, Settings
from taskcanvas.runtime.state import Delta, RunState
from taskcanvas.store import CheckpointError, CheckpointPolicy, Database, SqlCheckpointSink, StoreConflict, load_state
from taskcanvas.store.checkpoints import replay
from taskcanvas.store.repositories import CheckpointRepository
from tests.store.factories import make_world


def _state(**outputs: Any) -> dict[str, Any]:
    # A fixed date: two states built a second apart must still be equal.
    state = RunState(components={"begin": {}, "m": dict(outputs)})
    state.globals["sys.date"] = "2026-01-01 00:00:00"
    return state.to_json()


def test_the_policy_comes_from_the_file_then_the_environment(tmp_path: Path) -> None:
    assert CheckpointPolicy.from_settings(Settings.load({"TASKCANVAS_DATA_DIR": str(tmp_path)})) == \
        CheckpointPolicy(snapshot_every=50, retention=datetime.timedelta(days=7))
    (tmp_path / "config.toml").write_text("[checkpoints]\nsnapshot_every = 10\nretention_days = 0.5\n")
    env = {"TASKCANVAS_DATA_DIR": str(tmp_path)}
    assert CheckpointPolicy.from_settings(Settings.load(env)) == \
        CheckpointPolicy(snapshot_every=10, retention=datetime.timedelta(hours=12))
    env["TASKCANVAS_CHECKPOINT_SNAPSHOT_EVERY"] = "3"
    env["TASKCANVAS_CHECKPOINT_RETENTION_DAYS"] = "0"
    assert CheckpointPolicy.from_settings(Settings.load(env)) == \
        CheckpointPolicy(snapshot_every=3, retention=datetime.timedelta(0))


@pytest.mark.parametrize(("every", "days", "needle"), [
    ("often", "1", "must be a whole number"),
    ("0", "1", "at least 1"),
    ("5", "-1", "must not be negative"),
])
def test_a_bad_policy_is_a_config_error(tmp_path: Path, every: str, days: str, needle: str) -> None:
    env = {"TASKCANVAS_DATA_DIR": str(tmp_path), "TASKCANVAS_CHECKPOINT_SNAPSHOT_EVERY": every,
           "TASKCANVAS_CHECKPOINT_RETENTION_DAYS": days}
    with pytest.raises(ConfigError, match=needle):
        CheckpointPolicy.from_settings(Settings.load(env))


def test_replay_applies_deltas_in_order() -> None:
    first = Delta("m", outputs={"m": {"content": "one"}}, path_from=0, path_tail=["begin", "m"])
    second = Delta("m", outputs={"m": {"content": "two"}})
    rebuilt = replay(_state(), [first.to_json(), second.to_json()])
    assert rebuilt["outputs"]["m"] == {"content": "two"}
    assert rebuilt["path"] == ["begin", "m"]


async def test_a_new_session_has_no_state(database: Database) -> None:
    world = await make_world(database)
    assert await load_state(database, world.session_id) is None
    assert await SqlCheckpointSink(database, world.session_id).load() is None


async def test_a_delta_needs_a_state_to_apply_to(database: Database) -> None:
    world = await make_world(database)
    sink = SqlCheckpointSink(database, world.session_id)
    with pytest.raises(CheckpointError, match=r"no stored state to apply the delta of 'm' to: call begin\(\)"):
        await sink.put_delta(Delta("m"))


async def test_begin_writes_a_snapshot_only_for_a_state_not_stored(database: Database) -> None:
    world = await make_world(database)
    sink = SqlCheckpointSink(database, world.session_id, run_id=world.run_id)
    await sink.begin(_state())
    await sink.begin(_state())
    await SqlCheckpointSink(database, world.session_id).begin(_state())
    async with database.session() as s:
        assert await CheckpointRepository(s).count(world.session_id) == (0, 1)
    await SqlCheckpointSink(database, world.session_id).begin(_state(content="edited"))
    async with database.session() as s:
        assert await CheckpointRepository(s).count(world.session_id) == (0, 2)
    assert await load_state(database, world.session_id) == _state(content="edited")


async def test_two_writers_of_one_session_conflict(database: Database) -> None:
    world = await make_world(database)
    first = SqlCheckpointSink(database, world.session_id)
    await first.begin(_state())
    second = SqlCheckpointSink(database, world.session_id)
    await second.load()
    await first.put_delta(Delta("m", outputs={"m": {"content": "first"}}))
    with pytest.raises(StoreConflict):
        await second.put_delta(Delta("m", outputs={"m": {"content": "second"}}))
    # The loser starts again from what the store holds.
    await second.put_delta(Delta("m", outputs={"m": {"content": "second, after"}}))
    assert (await load_state(database, world.session_id) or {})["outputs"]["m"] == {"content": "second, after"}


async def test_deltas_without_a_snapshot_cannot_be_rebuilt(database: Database) -> None:
    world = await make_world(database)
    async with database.session() as s:
        await CheckpointRepository(s).add_delta(world.session_id, 1, {"component_id": "m"})
    with pytest.raises(CheckpointError, match="1 checkpoint deltas but no snapshot"):
        await load_state(database, world.session_id)


async def test_a_damaged_snapshot_is_a_checkpoint_error(database: Database) -> None:
    world = await make_world(database)
    async with database.session() as s:
        await CheckpointRepository(s).add_snapshot(world.session_id, 1, {"version": 99})
    with pytest.raises(CheckpointError, match=f"session {world.session_id}'s stored checkpoint cannot be read"):
        await load_state(database, world.session_id)
