"""The embedded executor: runs execute in this process, a bounded number at a time.

A run is a row first (``queued``); :meth:`Executor.submit` starts it when a slot is free. The
engine's checkpoint sink is the store's, and each checkpoint's transaction also stores the
events emitted up to that component, so what is stored is always a consistent prefix: after a
crash, :meth:`Executor.start` picks up runs left ``running`` and the engine goes on from the
last finished component (``Engine.recover``) — nothing finished runs again, no stored event is
lost or repeated. The run's ending (its status, the conversation, the task's state) is stored in
the same commit as its last checkpoint.

Pausing is graceful: the run stops right after its current component's checkpoint, and
resuming it is the same recovery. A session waiting for input holds no slot and no asyncio
task: it is only rows until the next input creates the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from taskcanvas.assembly import http_client, limits
from taskcanvas.components import builtin_registry
from taskcanvas.config import Settings
from taskcanvas.dsl.load import load_canvas
from taskcanvas.errors import TaskcanvasError
from taskcanvas.execution.hub import EventHub
from taskcanvas.llm.config import ModelRegistry
from taskcanvas.runtime.cancel import CancelToken
from taskcanvas.runtime.canvas import Canvas
from taskcanvas.runtime.engine import Engine
from taskcanvas.runtime.errors import RunStatus
from taskcanvas.runtime.registry import Registry
from taskcanvas.runtime.state import Delta, RunState
from taskcanvas.store import CheckpointPolicy, Database, SqlCheckpointSink, StoreError
from taskcanvas.store.checkpoints import RestoredState, prune_expired, restore_in
from taskcanvas.store.journal import Entry
from taskcanvas.store.models import AgentVersion, Run, RunEvent, Session, TaskStateEntry
from taskcanvas.store.models.types import new_id, utcnow
from taskcanvas.store.repositories import (
    AgentRepository,
    EventRepository,
    RunRepository,
    SessionRepository,
    TaskRepository,
)
from taskcanvas.store.repositories.settings import SettingRepository, default_models_key

_log = logging.getLogger(__name__)

QUEUED, RUNNING, PAUSED = "queued", "running", "paused"
"""Run statuses besides the engine's endings (finished, waiting, failed, cancelled)."""
ACTIVE_STATUSES = frozenset({QUEUED, RUNNING})
_HOUSEKEEPING_SECONDS = 3600
STATE_MESSAGE_LIMIT = 160
"""coder's limit on a task state's message."""


class _Paused(Exception):
    """Raised from the checkpoint sink to stop a run right after a stored component."""


@dataclass(frozen=True)
class FirstRun:
    """A new session's first run as its creator just stored it: nothing to read back or restore."""

    run: Run
    session: Session
    chosen_models: Any
    """The session user's default models setting (``None`` when they chose none)."""


@dataclass
class _Execution:
    run_id: uuid.UUID
    token: CancelToken = field(default_factory=CancelToken)
    pause_requested: bool = False
    task: asyncio.Task[None] | None = None
    first: FirstRun | None = None


class _RunSink(SqlCheckpointSink):
    """The store's sink, telling the hub what is stored and stopping the run when paused."""

    def __init__(self, *args: Any, after_write: Callable[[], None], execution: _Execution, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._after_write = after_write
        self._execution = execution

    async def put_delta(self, delta: Delta) -> None:
        await super().put_delta(delta)
        self._after_write()
        if self._execution.pause_requested and delta.component_id:
            raise _Paused

    async def put_end(self, delta: Delta, state: dict[str, Any], status: str) -> None:
        await super().put_end(delta, state, status)
        self._after_write()


@dataclass(frozen=True)
class TurnOutcome:
    """What the service needs from a finished run to update the session and the task."""

    status: str
    answer: str
    state: str
    message: str


class Executor:
    """Runs queued runs in this process; one instance per server."""

    def __init__(self, database: Database, settings: Settings, services: dict[str, Any], *,
                 hub: EventHub | None = None, registry: Registry | None = None, concurrency: int | None = None,
                 policy: CheckpointPolicy | None = None) -> None:
        self.database = database
        self.settings = settings
        self.services = services
        self.hub = hub or EventHub()
        self.registry = registry or builtin_registry()
        size = concurrency or int(settings.env.get("TASKCANVAS_RUN_CONCURRENCY") or 64)
        self._slots = asyncio.Semaphore(max(1, size))
        self._policy = policy or CheckpointPolicy.from_settings(settings)
        self._limits = limits(settings)
        self._http = http_client(settings)
        self._canvases: dict[uuid.UUID, Canvas] = {}
        self._executions: dict[uuid.UUID, _Execution] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._closing = False

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> int:
        """Pick up the runs a previous process left queued or running; how many."""
        async with self.database.session() as s:
            runs = RunRepository(s)
            pending = [*await runs.with_status(RUNNING, limit=100_000), *await runs.with_status(QUEUED, limit=100_000)]
        for run in pending:
            self.submit(run.id)
        self.background(self._housekeeping())
        return len(pending)

    async def _housekeeping(self) -> None:
        """Prune what the checkpoint retention lets go, now and every hour."""
        while True:
            try:
                pruned = await prune_expired(self.database, self._policy)
                if pruned:
                    _log.info("pruned %d checkpoint deltas past the retention", pruned)
            except StoreError as e:
                _log.warning("pruning checkpoints failed: %s", e)
            await asyncio.sleep(_HOUSEKEEPING_SECONDS)

    async def close(self, grace: float = 5.0) -> None:
        """Stop: pause what runs (it resumes on the next start), cancel what does not stop in time."""
        self._closing = True
        for execution in self._executions.values():
            execution.pause_requested = True
        tasks = [e.task for e in self._executions.values() if e.task is not None]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self._http.aclose()

    def background(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run housekeeping (a deleted task's removal) without anyone awaiting it."""
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ------------------------------------------------------------------ runs
    def submit(self, run_id: uuid.UUID, *, first: FirstRun | None = None) -> None:
        """Execute the run when a slot is free (it must be stored, ``queued`` or ``running``).

        ``first``: what the creator of a new session's first run just stored and read; the run
        starts from it instead of reading it back, unless it waits for a slot.
        """
        if self._closing or run_id in self._executions:
            return
        execution = self._executions[run_id] = _Execution(run_id, first=first)
        execution.task = asyncio.create_task(self._execute(execution), name=f"run {run_id}")

    async def start_first(self, entry: Entry, first: FirstRun) -> None:
        """Store a new session's first run with ``entry`` (its session, its audit entry...) in one
        commit, then execute it from what was stored, without reading it back."""
        # With no run executing here, there is no commit to share.
        await self.database.journal.write(entry, alone=not self._executions)
        self.submit(first.run.id, first=first)

    @property
    def executing(self) -> int:
        """How many runs execute (or wait for a slot) in this process."""
        return len(self._executions)

    def is_executing(self, run_id: uuid.UUID) -> bool:
        return run_id in self._executions

    def cancel(self, run_id: uuid.UUID, reason: str = "Task has been canceled") -> bool:
        """Ask a run to stop (it ends ``cancelled``); whether it was executing here."""
        execution = self._executions.get(run_id)
        if execution is None:
            return False
        execution.token.cancel(reason)
        return True

    def pause(self, run_id: uuid.UUID) -> bool:
        """Stop a run after its current component; it ends ``paused`` and :meth:`submit` goes on with it."""
        execution = self._executions.get(run_id)
        if execution is None:
            return False
        execution.pause_requested = True
        return True

    async def wait(self, run_id: uuid.UUID) -> None:
        """Until the run stops executing in this process."""
        execution = self._executions.get(run_id)
        if execution is not None and execution.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(execution.task)

    # ------------------------------------------------------------------ one run
    async def _execute(self, execution: _Execution) -> None:
        try:
            if self._slots.locked():
                execution.first = None  # what waits for a slot may have changed meanwhile: read it
            async with self._slots:
                if not execution.pause_requested:
                    await self._run(execution)
                elif not self._closing:
                    await self._set_status(execution.run_id, PAUSED)
        except asyncio.CancelledError:
            # Shutting down: the run stays "running" and the next start goes on with it.
            pass
        except Exception:
            _log.exception("run %s failed inside the executor", execution.run_id)
            await self._fail_quietly(execution.run_id, "the run stopped on an internal error; see the server log")
        finally:
            self._executions.pop(execution.run_id, None)

    async def _start_of(self, execution: _Execution) -> _Start | None:
        """What the run starts from; ``None`` when it is no longer to be run."""
        first = execution.first
        version_id = first.session.agent_version_id if first is not None else None
        canvas = self._canvases.get(version_id) if version_id is not None else None
        if first is not None and canvas is not None:
            # A new session's first run of a canvas built before: everything is at hand.
            return _Start(first.run, first.session, canvas, None, None, None, first.chosen_models, 0)
        # Everything the start needs, read at once: one snapshot of the store, no write.
        session: Session | None
        async with self.database.reading() as s:
            if first is not None:
                run, session = first.run, first.session
            else:
                found = await RunRepository(s).get(execution.run_id)
                if found is None or (found.status not in ACTIVE_STATUSES and found.status != PAUSED):
                    return None
                run, session = found, await SessionRepository(s).get(found.session_id)
            # The run's events stored so far (a run cut short by a crash or a pause).
            stored = await EventRepository(s).last_seq(run.id) if run.started_at is not None else 0
            if session is None or session.agent_version_id is None:
                return _Start(run, session, None, None, None, None, None, stored)
            # A version never changes: once its canvas is built, its row is not read again.
            canvas = self._canvases.get(session.agent_version_id)
            version = await AgentRepository(s).get_version(session.agent_version_id) if canvas is None else None
            latest = await TaskRepository(s).latest_state(session.task_id) \
                if first is None and session.task_id is not None else None
            if canvas is None and version is None:
                return _Start(run, session, None, None, latest.state if latest else None, None, None, stored)
            restored = await restore_in(s, session.id) if first is None else None
            chosen = first.chosen_models if first is not None else \
                await SettingRepository(s).get(default_models_key(session.user_id)) \
                if session.user_id is not None else None
        return _Start(run, session, canvas, version, latest.state if latest else None, restored, chosen, stored)

    async def _run(self, execution: _Execution) -> None:
        start_of = await self._start_of(execution)
        if start_of is None:
            return
        run, session, canvas, version = start_of.run, start_of.session, start_of.canvas, start_of.version
        restored, chosen = start_of.restored, start_of.chosen_models
        ending = _Ending(run, session, run.message_id or uuid.uuid4().hex, start_of.task_state, start_of.stored)
        if session is None or (canvas is None and version is None):
            await self._finish_without_engine(ending, "the agent version this run needs is gone")
            return
        try:
            if canvas is None:
                assert version is not None
                canvas = self._canvas(version.id, version.dsl)
            canvas.check_services(self.services)
        except TaskcanvasError as e:
            await self._finish_without_engine(ending, str(e))
            return

        pending: list[dict[str, Any]] = []
        seq = stored = start_of.stored
        observer = _Observer()

        def take_pending(entry: Entry) -> None:
            """The events emitted since the last checkpoint go into the checkpoint's entry."""
            if not pending:
                return
            now = utcnow()
            for event in pending:
                ending.events += 1
                entry.insert(RunEvent, run_id=run.id, seq=ending.events, name=str(event.get("event", "")),
                             payload=event, created_at=now)
            pending.clear()

        def end(entry: Entry, status: str) -> None:
            """The run's ending, stored with its last checkpoint."""
            ending.end(entry, status, observer.outcome(status, engine_run.error), error=engine_run.error,
                       error_component=engine_run.error_component)

        def after_write() -> None:
            self.hub.stored(run.id, ending.events)

        sink = _RunSink(self.database, session.id, run_id=run.id, policy=self._policy, companion=take_pending,
                        ending=end, alone=lambda: len(self._executions) == 1, after_write=after_write,
                        execution=execution)
        sink.adopt(restored)
        engine = Engine(canvas, limits=self._limits, http=self._http, services=self._services_for(chosen),
                        checkpoint=sink)
        state = engine.new_session() if restored is None else RunState.from_json(restored.state, canvas.components)
        message_id = ending.message_id
        if run.started_at is not None and state.turn is None and stored and await self._end_as_stored(ending):
            return
        recovering = run.started_at is not None and state.turn is not None
        start = ending.start(first=not recovering)
        if recovering:
            engine_run = engine.recover(state, task_id=session.id.hex, cancel=execution.token, message_id=message_id)
            await self.database.journal.write(start)
        else:
            await sink.begin(state.to_json(), extra=start)
            engine_run = engine.run(state, query=run.query, inputs=run.inputs, user_id=_user_ref(session),
                                    task_id=session.id.hex, cancel=execution.token, message_id=message_id)

        self.hub.open(run.id, session.id, stored_upto=stored)
        if recovering:
            # The answer so far is in the events already stored (before a pause or a crash).
            async with self.database.reading() as s:
                for row in await EventRepository(s).after(run.id, 0, limit=stored or 1):
                    observer.see(row.payload)
        try:
            async for event in engine_run:
                seq += 1
                data = dict(event)
                data["session_id"] = session.id.hex
                pending.append(data)
                observer.see(data)
                self.hub.publish(run.id, seq, data)
        except _Paused:
            # Paused by its user it stays paused; stopped by a shutdown it stays "running" for the next start.
            entry = Entry()
            take_pending(entry)
            entry.update(Run, run.id, status=RUNNING if self._closing else PAUSED, last_seq=ending.events)
            await self.database.journal.write(entry)
        finally:
            # After the ending is stored (with the run's last checkpoint): a reader woken by the
            # close finds the run ended.
            self.hub.close(run.id, session.id)

    async def _end_as_stored(self, ending: _Ending) -> bool:
        """A run stopped after its turn's last checkpoint but before its ending was stored (a store
        written before the two shared a commit can hold one): it is not run again; its stored events
        say how it ended. False when they do not end the turn."""
        run = ending.run
        async with self.database.reading() as s:
            payloads = [row.payload for row in await EventRepository(s).after(run.id, 0, limit=ending.events)]
        last: dict[str, Any] = payloads[-1] if payloads else {}
        data: dict[str, Any] = last["data"] if isinstance(last.get("data"), dict) else {}
        if last.get("event") == "workflow_finished":
            status, error = str(data.get("status") or RunStatus.FAILED.value), data.get("error")
        elif last.get("event") == "user_inputs":
            status, error = RunStatus.WAITING.value, None
        else:
            return False
        observer = _Observer()
        for payload in payloads:
            observer.see(payload)
        entry = Entry()
        ending.end(entry, status, observer.outcome(status, error), error=error,
                   error_component=data.get("component_id") if error else None)
        await self._write_ending(ending, entry)
        return True

    async def _finish_without_engine(self, ending: _Ending, message: str) -> None:
        """A run that cannot start (its canvas no longer builds): failed, with the reason as its events say."""
        run, session = ending.run, ending.session
        event = {"event": "workflow_finished", "message_id": ending.message_id,
                 "created_at": int(utcnow().timestamp()), "task_id": session.id.hex if session else "",
                 "data": {"inputs": {}, "outputs": {}, "status": "failed", "error": message}}
        entry = Entry()
        ending.events += 1
        entry.insert(RunEvent, run_id=run.id, seq=ending.events, name="workflow_finished", payload=event,
                     created_at=utcnow())
        ending.fail(entry, message)
        await self._write_ending(ending, entry)

    async def _write_ending(self, ending: _Ending, entry: Entry) -> None:
        """Store an ending written without the engine; readers of the run are woken once it is stored."""
        run, session = ending.run, ending.session
        if session is not None:
            self.hub.open(run.id, session.id, stored_upto=ending.events)
        try:
            await self.database.journal.write(entry)
        finally:
            if session is not None:
                self.hub.close(run.id, session.id)

    async def _fail_quietly(self, run_id: uuid.UUID, message: str) -> None:
        with contextlib.suppress(Exception):
            async with self.database.session() as s:
                await RunRepository(s).mark_finished(run_id, RunStatus.FAILED.value, error=message)

    async def _set_status(self, run_id: uuid.UUID, status: str) -> None:
        async with self.database.session() as s:
            await RunRepository(s).set_status(run_id, status)

    def _services_for(self, chosen: Any) -> dict[str, Any]:
        """The engine's services, with the session user's own default chat model if they chose one."""
        registry = self.services.get("models")
        chat = chosen.get("chat") if isinstance(chosen, dict) else None
        if not isinstance(registry, ModelRegistry) or not isinstance(chat, str) or not chat:
            return self.services
        return {**self.services, "models": registry.with_default(chat)}

    def _canvas(self, version_id: uuid.UUID, dsl: dict[str, Any]) -> Canvas:
        canvas = self._canvases.get(version_id)
        if canvas is None:
            # A version never changes, so its canvas is built once per process.
            canvas = self._canvases[version_id] = Canvas.build(load_canvas(dsl), self.registry,
                                                               source=f"agent version {version_id}")
        return canvas


@dataclass(frozen=True)
class _Start:
    """What a run starts from: its rows, its canvas (or the version to build it from), the task's
    latest state, the session's stored state, the user's default models, its stored events' count."""

    run: Run
    session: Session | None
    canvas: Canvas | None
    version: AgentVersion | None
    task_state: str | None
    restored: RestoredState | None
    chosen_models: Any
    stored: int


@dataclass
class _Ending:
    """The rows a run's start and end change besides its checkpoints: the run, the conversation,
    the task's state (recorded on a change only, as coder records transitions)."""

    run: Run
    session: Session | None
    message_id: str
    task_state: str | None
    events: int
    """How many of the run's events are stored (or, while a checkpoint is written, will be)."""

    def start(self, *, first: bool) -> Entry:
        entry = Entry()
        if first:
            entry.update(Run, self.run.id, status=RUNNING, started_at=utcnow(), message_id=self.message_id)
        else:
            entry.update(Run, self.run.id, status=RUNNING)
        self._state(entry, "working", "Running")
        return entry

    def end(self, entry: Entry, status: str, outcome: TurnOutcome, *, error: str | None,
            error_component: str | None) -> None:
        now = utcnow()
        entry.update(Run, self.run.id, status=status, error=error, error_component=error_component, finished_at=now,
                     last_seq=self.events)
        assert self.session is not None
        messages = list(self.session.messages)
        if self.run.query not in (None, ""):
            messages.append({"role": "user", "content": self.run.query, "id": self.message_id,
                             "created_at": self.run.created_at.timestamp()})
        messages.append({"role": "assistant", "content": outcome.answer, "created_at": now.timestamp(),
                         "id": self.message_id})
        entry.update(Session, self.session.id, messages=messages, updated_at=now)
        self._state(entry, outcome.state, outcome.message)

    def fail(self, entry: Entry, message: str) -> None:
        """Ended before the engine ran: failed, with ``message`` as the reason."""
        entry.update(Run, self.run.id, status=RunStatus.FAILED.value, error=message, finished_at=utcnow(),
                     last_seq=self.events)
        self._state(entry, "failed", _clip(message))

    def _state(self, entry: Entry, state: str, message: str) -> None:
        if self.session is None or self.session.task_id is None or self.task_state == state:
            return
        entry.insert(TaskStateEntry, id=new_id(), task_id=self.session.task_id, run_id=self.run.id, state=state,
                     message=message, uri=None, created_at=utcnow())
        self.task_state = state


class _Observer:
    """Follows a run's events for what the conversation and the task state need."""

    def __init__(self) -> None:
        self._pieces: list[str] = []
        self._tips: str | None = None

    def see(self, event: dict[str, Any]) -> None:
        name, data = event.get("event"), event.get("data")
        if not isinstance(data, dict):
            return
        if name == "message" and isinstance(data.get("content"), str):
            self._pieces.append(data["content"])
        elif name == "user_inputs":
            tips = data.get("tips")
            self._tips = tips if isinstance(tips, str) and tips else "Waiting for input"

    def outcome(self, status: str, error: str | None) -> TurnOutcome:
        answer = "".join(self._pieces)
        if status == RunStatus.FINISHED.value:
            return TurnOutcome(status, answer, "complete", _clip(answer) or "Done")
        if status == RunStatus.WAITING.value:
            tips = self._tips or "Waiting for input"
            return TurnOutcome(status, answer or tips, "idle", _clip(tips))
        if status == RunStatus.CANCELLED.value:
            return TurnOutcome(status, answer, "failed", _clip(error or "Cancelled"))
        return TurnOutcome(status, answer, "failed", _clip(error or "The run failed"))


def _user_ref(session: Session) -> str | None:
    if session.external_user:
        return session.external_user
    return session.user_id.hex if session.user_id is not None else None


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= STATE_MESSAGE_LIMIT else text[: STATE_MESSAGE_LIMIT - 1] + "…"

