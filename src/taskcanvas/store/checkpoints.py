"""The SQL checkpoint sink: a delta per finished component, a snapshot every N, pruning by age.

DESIGN.md, "Checkpoints": the engine hands the sink a delta after each component; storing
deltas plus periodic snapshots means a restart replays no finished component and storage
grows with the work done, not its square. A session's state is its newest snapshot plus the
deltas after it (:func:`restore`); periodic snapshots keep that tail shorter than
``snapshot_every``.

Writes go through the database's journal (:mod:`taskcanvas.store.journal`): one entry per
component, committed before the next component starts, many runs sharing a commit. A snapshot
is taken once ``snapshot_every`` deltas *and* as many deltas as the state has filled outputs
have passed since the last one, so snapshots of a growing state cost about as many bytes as the
deltas they cover: stored bytes per component stay flat however long the run.

The sink mirrors the session's state in memory (the last snapshot with every delta since
applied, by :meth:`RunState.apply_delta`, the runtime's own replay), so a periodic snapshot
costs one serialisation, not a read. One run writes a session at a time; a second writer
collides on ``(session_id, seq)`` and gets a :class:`StoreConflict`.

    sink = SqlCheckpointSink(database, session_id, run_id=run_id, policy=CheckpointPolicy.from_settings(s))
    state_json = await sink.load()            # None for a new session
    state = engine.new_session() if state_json is None else RunState.from_json(state_json, components)
    await sink.begin(state.to_json())         # the state this run starts from
    await engine.run(state, ..., ).collect()  # with Engine(..., checkpoint=sink)
"""

from __future__ import annotations

import datetime
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from taskcanvas.config import ConfigError, Settings
from taskcanvas.runtime.errors import StateError
from taskcanvas.runtime.state import Delta, RunState
from taskcanvas.store.db import Database
from taskcanvas.store.errors import CheckpointError, StoreError
from taskcanvas.store.journal import Entry
from taskcanvas.store.models import CheckpointDelta, CheckpointSnapshot
from taskcanvas.store.models.types import utcnow
from taskcanvas.store.repositories.checkpoints import CheckpointRepository

_SECONDS_PER_DAY = 86_400
_log = logging.getLogger(__name__)


Companion = Callable[[Entry], None]
"""Adds to a checkpoint's entry what must be stored with it (the run's events up to it)."""
Ending = Callable[[Entry, str], None]
"""Adds to the run's last checkpoint's entry what its ending (with this status) changes."""


@dataclass(frozen=True)
class CheckpointPolicy:
    """How often to snapshot and how long to keep what a snapshot covers.

    Configuration: ``[checkpoints] snapshot_every = 50`` and ``retention_days = 7`` (0: prune
    as soon as a snapshot covers a delta); environment ``TASKCANVAS_CHECKPOINT_SNAPSHOT_EVERY``,
    ``TASKCANVAS_CHECKPOINT_RETENTION_DAYS``.
    """

    snapshot_every: int = 50
    retention: datetime.timedelta | None = datetime.timedelta(days=7)
    """``None`` keeps every delta and snapshot."""

    def __post_init__(self) -> None:
        if self.snapshot_every < 1:
            raise ConfigError(f"checkpoints: snapshot_every must be at least 1, not {self.snapshot_every}")
        if self.retention is not None and self.retention < datetime.timedelta(0):
            raise ConfigError("checkpoints: the retention must not be negative")

    @classmethod
    def from_settings(cls, settings: Settings) -> CheckpointPolicy:
        table = settings.section("checkpoints")
        every: Any = settings.env.get("TASKCANVAS_CHECKPOINT_SNAPSHOT_EVERY") or table.get("snapshot_every", 50)
        days: Any = settings.env.get("TASKCANVAS_CHECKPOINT_RETENTION_DAYS") or table.get("retention_days", 7)
        try:
            return cls(snapshot_every=int(every),
                       retention=datetime.timedelta(seconds=float(days) * _SECONDS_PER_DAY))
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"checkpoints: snapshot_every must be a whole number and retention_days a number "
                              f"(got {every!r} and {days!r})") from None


@dataclass(frozen=True)
class RestoredState:
    """A session's state as rebuilt from the store, and what it took."""

    state: dict[str, Any]
    seq: int
    """The last sequence number the session used."""
    snapshot_seq: int
    replayed: int
    """How many deltas were applied on top of the snapshot."""


def replay(base: Mapping[str, Any], deltas: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """``base`` (a :meth:`RunState.to_json`) with ``deltas`` (:meth:`Delta.to_json`) applied in order."""
    state = _as_state(base)
    for delta in deltas:
        state.apply_delta(delta)
    return state.to_json()


async def restore(database: Database, session_id: uuid.UUID) -> RestoredState | None:
    """The session's latest state (newest snapshot + the deltas after it); ``None`` if it has none."""
    async with database.reading() as s:
        return await restore_in(s, session_id)


async def restore_in(s: AsyncSession, session_id: uuid.UUID) -> RestoredState | None:
    """:func:`restore` inside a unit of work the caller holds (to read more with it)."""
    repo = CheckpointRepository(s)
    snapshot = await repo.latest_snapshot(session_id)
    deltas = await repo.deltas_after(session_id, snapshot.seq if snapshot is not None else 0)
    if snapshot is None:
        if deltas:
            raise CheckpointError(f"session {session_id} has {len(deltas)} checkpoint deltas but no snapshot "
                                  "to apply them to; its state cannot be rebuilt")
        return None
    state = _as_state(snapshot.state, session_id)
    for row in deltas:
        state.apply_delta(row.delta)
    return RestoredState(state=state.to_json(), seq=deltas[-1].seq if deltas else snapshot.seq,
                         snapshot_seq=snapshot.seq, replayed=len(deltas))


async def load_state(database: Database, session_id: uuid.UUID) -> dict[str, Any] | None:
    """The session's latest state as JSON, or ``None`` when nothing was stored for it."""
    restored = await restore(database, session_id)
    return None if restored is None else restored.state


async def prune_expired(database: Database, policy: CheckpointPolicy) -> int:
    """Remove, in every session, what a snapshot older than the retention covers; how many deltas went."""
    if policy.retention is None:
        return 0
    async with database.session() as s:
        return await CheckpointRepository(s).prune(utcnow() - policy.retention)


class SqlCheckpointSink:
    """A :class:`~taskcanvas.runtime.checkpoint.CheckpointSink` writing one session's checkpoints."""

    def __init__(self, database: Database, session_id: uuid.UUID, *, run_id: uuid.UUID | None = None,
                 policy: CheckpointPolicy | None = None, companion: Companion | None = None,
                 ending: Ending | None = None, alone: Callable[[], bool] | None = None) -> None:
        self.database = database
        self.session_id = session_id
        self.run_id = run_id
        self.policy = policy or CheckpointPolicy()
        self.companion = companion
        """Called inside every checkpoint's transaction: what must be stored with it, or not at all
        (a run's events up to this component, so a restart neither loses nor repeats them)."""
        self.ending = ending
        """Called inside the run's last checkpoint's transaction with the run's status, after the
        companion: what the run's ending changes besides its state (the run's row, the conversation)."""
        self.alone = alone
        """Whether this run is the only writer now (its checkpoints need not wait to share a commit)."""
        self._mirror: RunState | None = None
        self._seq = 0
        self._since_snapshot = 0
        self._next_snapshot = self.policy.snapshot_every
        self._known = False
        """Whether ``_seq`` is what the store holds (a load or an adopt happened)."""

    async def load(self) -> dict[str, Any] | None:
        """The session's latest state (``None`` for a session with no checkpoint yet)."""
        restored = await restore(self.database, self.session_id)
        self.adopt(restored)
        return None if restored is None else restored.state

    def adopt(self, restored: RestoredState | None) -> None:
        """Go on from ``restored`` (what :func:`restore_in` read for this session) instead of :meth:`load`."""
        self._known = True
        if restored is None:
            self._mirror, self._seq, self._since_snapshot = None, 0, 0
            self._next_snapshot = self.policy.snapshot_every
            return
        self._mirror = _as_state(restored.state)
        self._seq = restored.seq
        self._snapshot_taken(self._mirror)
        self._since_snapshot = restored.replayed

    async def begin(self, state: Mapping[str, Any], status: str = "started", *, extra: Entry | None = None) -> None:
        """Record the state this run starts from; a snapshot is written unless it is the stored state.

        ``extra``: more rows to store in the same commit (the run's start), written even when no
        snapshot is.
        """
        await self._catch_up()
        if self._mirror is not None and self._mirror.to_json() == dict(state):
            if extra:
                await self.database.journal.write(extra, alone=self._alone())
            return
        await self._write_snapshot(dict(state), status, extra=extra)

    async def put_delta(self, delta: Delta) -> None:
        mirror = await self._ensure_mirror(delta.component_id)
        data = delta.to_json()
        mirror.apply_delta(data)
        now = utcnow()
        entry = Entry()
        entry.insert(CheckpointDelta, session_id=self.session_id, seq=self._seq + 1, run_id=self.run_id,
                     component_id=delta.component_id, delta=data, created_at=now)
        snapshot = self._since_snapshot + 1 >= self._next_snapshot
        if snapshot:
            entry.insert(CheckpointSnapshot, session_id=self.session_id, seq=self._seq + 2, run_id=self.run_id,
                         status="running", state=mirror.to_json(convert=False), created_at=now)
        if self.companion is not None:
            self.companion(entry)
        try:
            await self.database.journal.write(entry, alone=self._alone())
        except BaseException:
            self._mirror, self._known = None, False  # the next write starts again from what the store holds
            raise
        self._seq += 2 if snapshot else 1
        if snapshot:
            self._snapshot_taken(mirror)
        else:
            self._since_snapshot += 1

    async def put_end(self, delta: Delta, state: dict[str, Any], status: str) -> None:
        """The run ended: its whole state as a snapshot, which covers ``delta`` (not stored apart),
        committed with the run's ending; with no retention, prune what older snapshots cover at once
        (otherwise :func:`prune_expired` does, now and then, for every session)."""
        await self._write_snapshot(state, status, ending=True)
        if self.policy.retention == datetime.timedelta(0):
            try:
                async with self.database.session() as s:
                    await CheckpointRepository(s).prune(utcnow(), session_id=self.session_id)
            except StoreError as e:
                # Housekeeping: the run's state is saved; the next run's end prunes again.
                _log.warning("pruning the checkpoints of session %s failed: %s", self.session_id, e)

    # ------------------------------------------------------------------ internals
    async def _write_snapshot(self, state: dict[str, Any], status: str, *, extra: Entry | None = None,
                              ending: bool = False) -> None:
        mirror = None if ending else _as_state(state)
        try:
            await self._catch_up()
            entry = extra or Entry()
            entry.insert(CheckpointSnapshot, session_id=self.session_id, seq=self._seq + 1, run_id=self.run_id,
                         status=status, state=state, created_at=utcnow())
            if self.companion is not None:
                self.companion(entry)
            if ending and self.ending is not None:
                self.ending(entry, status)
            await self.database.journal.write(entry, alone=self._alone())
        except BaseException:
            self._mirror, self._known = None, False
            raise
        if mirror is None:
            # The run is over: a later write by this sink starts again from what the store holds.
            self._mirror, self._known = None, False
            return
        self._seq += 1
        self._mirror, self._known = mirror, True
        self._snapshot_taken(mirror)

    def _alone(self) -> bool:
        return self.alone is not None and self.alone()

    def _snapshot_taken(self, state: RunState) -> None:
        self._since_snapshot = 0
        filled = sum(1 for outputs in state.outputs.values() if outputs) + len(state.history)
        self._next_snapshot = max(self.policy.snapshot_every, filled)

    async def _catch_up(self) -> None:
        """After a failed write (or before any read) go on from what the store holds."""
        if not self._known:
            self.adopt(await restore(self.database, self.session_id))

    async def _ensure_mirror(self, component_id: str) -> RunState:
        await self._catch_up()
        if self._mirror is None:
            raise CheckpointError(
                f"session {self.session_id} has no stored state to apply the delta of '{component_id}' to: "
                "call begin() with the state the run starts from")
        return self._mirror


def _as_state(data: Mapping[str, Any], session_id: uuid.UUID | None = None) -> RunState:
    """A state to replay onto; its components are whatever it has outputs for."""
    outputs = data.get("outputs")
    try:
        return RunState.from_json(data, list(outputs) if isinstance(outputs, Mapping) else [])
    except StateError as e:
        where = f"session {session_id}'s stored checkpoint" if session_id else "a checkpoint"
        raise CheckpointError(f"{where} cannot be read: {e}") from None
