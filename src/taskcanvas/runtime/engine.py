"""One run of a canvas: ragflow's wave loop, its events, and the way it ends.

:class:`Engine` holds a built canvas and what the outside world injects (HTTP client,
services, checkpoint sink, limits). :meth:`Engine.run` returns a :class:`Run`: iterate it for
events; afterwards ``run.status`` says how it ended (finished, waiting for input, failed,
cancelled) and ``run.error`` why it failed.

The loop is ragflow's (spec §3.2): every component appended to the path during one
post-processing pass forms the next wave, which runs concurrently (bounded); post-processing
is sequential in path order and emits the events. Where ragflow crashes or ends silently, the
run ends with a ``workflow_finished`` event carrying ``status: "failed"`` and the error.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from taskcanvas.dsl.validate import routes
from taskcanvas.runtime.cancel import CancelToken
from taskcanvas.runtime.canvas import Canvas
from taskcanvas.runtime.checkpoint import CheckpointSink
from taskcanvas.runtime.component import Component, RunContext
from taskcanvas.runtime.errors import RunStatus
from taskcanvas.runtime.events import Event, EventName, make_event
from taskcanvas.runtime.scheduler import FORM_TYPES, LOOP_TYPES, field_satisfied, must_wait, successors
from taskcanvas.runtime.state import RunState, now_text
from taskcanvas.runtime.stream import TextStream

CANCELED = "Task has been canceled"
_WAVES_PER_YIELD = 32
_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"


@dataclass(frozen=True)
class Limits:
    """Concurrency and time limits of a run."""

    concurrency: int = 5
    """Components of one wave running at once (ragflow: 5)."""
    timeouts: Mapping[str, float] = field(default_factory=dict)
    """Seconds per component type, overriding each type's default."""
    timeout: float | None = None
    """Seconds for every component type (like ragflow's COMPONENT_EXEC_TIMEOUT)."""
    enforce_timeouts: bool = True

    def for_component(self, component: Component) -> float | None:
        if not self.enforce_timeouts:
            return None
        if component.component_name in self.timeouts:
            return self.timeouts[component.component_name]
        own = component.time_limit()
        if own is None:
            return None
        return self.timeout if self.timeout is not None else own


class Engine:
    """Runs one canvas, any number of times, with the services injected here."""

    def __init__(self, canvas: Canvas, *, limits: Limits | None = None, http: Any = None,
                 services: Mapping[str, Any] | None = None, checkpoint: CheckpointSink | None = None) -> None:
        self.canvas = canvas
        self.limits = limits or Limits()
        self.http = http
        self.services = dict(services or {})
        self.checkpoint = checkpoint

    def new_session(self) -> RunState:
        """A fresh session from the canvas: its stored values, without history or path."""
        declared = {cid: c.params.outputs for cid, c in self.canvas.components.items()}
        state = RunState.from_dsl(self.canvas.dsl, declared)
        state.history = []
        state.globals["sys.history"] = []
        state.path = []
        return state

    def run(self, state: RunState, *, query: Any = None, inputs: Mapping[str, Any] | None = None,
            files: list[Any] | None = None, user_id: str | None = None, task_id: str | None = None,
            cancel: CancelToken | None = None, message_id: str | None = None) -> Run:
        """One turn: start a conversation turn, or resume a session waiting for input."""
        return Run(self, state, query=query, inputs=dict(inputs or {}), files=files, user_id=user_id,
                   task_id=task_id or uuid.uuid4().hex, cancel=cancel or CancelToken(), message_id=message_id)

    def recover(self, state: RunState, *, task_id: str | None = None, cancel: CancelToken | None = None,
                message_id: str | None = None) -> Run:
        """Go on with a turn that was cut short (the process died) from its last finished component.

        ``state`` is what the checkpoint sink stored: its ``turn`` says how far the turn got.
        Finished components do not run again and their events are not repeated; a state with
        no turn in progress has nothing to go on with and ends the run as failed.
        """
        return Run(self, state, query=None, inputs={}, files=None, user_id=None,
                   task_id=task_id or uuid.uuid4().hex, cancel=cancel or CancelToken(), message_id=message_id,
                   recover=True)


class Run:
    """A run in progress; ``async for event in run`` drives it."""

    def __init__(self, engine: Engine, state: RunState, *, query: Any, inputs: dict[str, Any],
                 files: list[Any] | None, user_id: str | None, task_id: str, cancel: CancelToken,
                 message_id: str | None = None, recover: bool = False) -> None:
        self.engine = engine
        self.canvas = engine.canvas
        self.state = state
        self.query = query
        self.inputs = inputs
        self.files = files
        self.user_id = user_id
        self.task_id = task_id
        self.cancel = cancel
        self.message_id = message_id or uuid.uuid4().hex
        self.recover = recover
        self.created_at = int(time.time())
        self.status: RunStatus | None = None
        self.error: str | None = None
        self.error_component: str | None = None
        self.ctx = RunContext(state=state, canvas=self.canvas, cancel=cancel, inputs=inputs,
                              http=engine.http, services=engine.services, task_id=task_id)
        self._semaphore = asyncio.Semaphore(max(1, engine.limits.concurrency))

    # ------------------------------------------------------------------ driving
    async def __aiter__(self) -> AsyncIterator[Event]:
        task = asyncio.current_task()
        gen = self._events()
        try:
            while True:
                if self.status is None:  # once the ending is decided, nothing is left to interrupt
                    self.cancel.attach(task)
                try:
                    event = await gen.__anext__()
                except StopAsyncIteration:
                    return
                finally:
                    self.cancel.attach(None)
                    if self.cancel.pending(task):
                        await _take_back(self.cancel, task)
                yield event
        finally:
            await gen.aclose()

    async def collect(self) -> list[Event]:
        """Run to the end and return every event."""
        return [e async for e in self]

    def _event(self, name: EventName, data: Any) -> Event:
        return make_event(name, data, message_id=self.message_id, created_at=self.created_at, task_id=self.task_id)

    # ------------------------------------------------------------------ the loop
    async def _events(self) -> AsyncGenerator[Event, None]:
        state, canvas = self.state, self.canvas
        started = time.perf_counter()
        if self.recover:
            turn = state.turn
            if turn is None:
                self._fail("the session has no turn in progress to go on with")
                yield self._finished_event(started)
                await self._snapshot()
                return
            idx, scan, announced = int(turn.get("done", 0)), bool(turn.get("scan", True)), int(turn.get("started", 0))
        else:
            if self.files and not await self._read_files():
                yield self._finished_event(started)
                await self._snapshot()
                return
            resume = self._begin_turn()
            scan = not resume  # ragflow: no waiting for upstreams in a resumed run (spec §3.2)
            idx = announced = 0
            turn = state.turn = {"done": 0, "started": 0, "scan": scan}
            state.touch("turn")
        if self.cancel.cancelled:
            self._fail(self.cancel.reason, status=RunStatus.CANCELLED)
            yield self._finished_event(started)
            await self._snapshot()
            return
        if not self.recover and scan:
            yield self._event("workflow_started", {"inputs": self.inputs or None})

        partials: list[str] = []
        waves = 0
        try:
            while idx < len(state.path):
                if self.cancel.cancelled:
                    raise asyncio.CancelledError
                waves += 1
                if waves % _WAVES_PER_YIELD == 0:
                    # Components that never wait would keep the loop to this run; let others in.
                    await asyncio.sleep(0)
                to = len(state.path)
                for i in range(idx, to):
                    cid = state.path[i]
                    if cid not in canvas.components:
                        self._fail(self._stale_route_message(cid), cid)
                        break
                    if i >= announced:  # a recovered turn does not announce again what it had started
                        yield self._node_started(cid)
                if self.error:
                    break
                await self._run_wave(idx, to, scan)
                to = announced = turn["started"] = len(state.path)
                for i in range(idx, to):
                    async for event in self._post_process(state.path[i], partials):
                        yield event
                    turn["done"] = i + 1
                    state.touch("turn")
                    if self.engine.checkpoint is not None:
                        await self.engine.checkpoint.put_delta(state.take_delta(state.path[i]))
                if self.error:
                    break
                idx = to
                if any(canvas.component_type(c) == "UserFillUp" for c in state.path[idx:]):
                    pause = await self._pause_check(idx)
                    if pause is not None:
                        self.status = RunStatus.WAITING
                        yield pause
                        await self._snapshot()
                        return
        except asyncio.CancelledError:
            if not self.cancel.cancelled:
                raise
            # The token's interruption of this task is taken back in __aiter__ (_take_back).
            self._fail(self.cancel.reason, status=RunStatus.CANCELLED)
        state.path_truncate(idx)
        if self.error is None and state.path:
            last = state.output_values(state.path[-1])
            yield self._finished_event(started, last)
            state.history.append(["assistant", dict(last)])
            state.touch("history")
            state.globals["sys.history"].append(f"assistant: {dict(last)}")
            state.touch_global("sys.history")
            self.status = RunStatus.FINISHED
        else:
            if self.error is None:
                self._fail("the run reached no component")
            yield self._finished_event(started)
        await self._snapshot()

    async def _read_files(self) -> bool:
        """Turn the run's file values into what ``sys.files`` holds (spec §3.1: ragflow's ``get_files``).

        The reader is ``services["file_reader"]`` (images become ``data:`` URLs, documents their
        text); without one the values are kept as given. A file that cannot be read fails the run
        before it starts, naming the file; the session is left as it was.
        """
        reader = self.engine.services.get("file_reader")
        if reader is None:
            return True
        layout = next((getattr(c.params, "layout_recognize", None) for c in self.canvas.components.values()
                       if c.component_name == "Begin"), None)
        try:
            self.files = list(await reader.read(self.files, layout or None))
        except Exception as e:
            self._fail(f"the run's files cannot be read: {e}")
            return False
        return True

    def _begin_turn(self) -> bool:
        """Set the globals for a new turn; return whether it resumes a session waiting for input."""
        state, canvas = self.state, self.canvas
        state.set_global("sys.date", now_text())
        query = self.query
        state.history.append(["user", query])
        state.touch("history")
        rendered = json.dumps(query, ensure_ascii=False) if isinstance(query, dict) else query
        history = state.globals.get("sys.history")
        if not isinstance(history, list):
            history = state.globals["sys.history"] = []
        history.append(f"user: {rendered}")
        state.touch_global("sys.history")
        for cid in set(state.path):
            if cid in canvas.components:
                state.reset_component(cid, only_output=canvas.component_type(cid) == "Begin")
        for name, value in (("query", query), ("user_id", self.user_id), ("files", self.files)):
            if value:
                state.set_global(f"sys.{name}", value)
        state.set_global("sys.conversation_turns", (state.globals.get("sys.conversation_turns") or 0) + 1)
        resume = state.waiting is not None
        if resume:
            state.path_replace([c for c in state.waiting or [] if c in canvas.components])
            state.waiting = None
            state.touch("waiting")
        else:
            # A fresh path each turn: ragflow appends to the old one, so joins run early.
            state.path_replace(["begin"])
        state.retrieval.append({"chunks": {}, "doc_aggs": {}})
        state.touch("retrieval")
        return resume

    # ------------------------------------------------------------------ running a wave
    async def _run_wave(self, idx: int, to: int, scan: bool) -> None:
        state, canvas = self.state, self.canvas
        batch: list[Component] = []
        i = idx
        while i < to:
            cpn = canvas.components[state.path[i]]
            if scan and cpn.upstream_refs and cpn.component_name not in FORM_TYPES and must_wait(
                canvas, cpn.id, set(state.path[:i]), state.path[idx:to]
            ):
                state.path_pop(i)
                to -= 1
                continue
            batch.append(cpn)
            i += 1
        if len(batch) == 1:
            await self._invoke(batch[0])
        elif batch:
            await asyncio.gather(*(self._invoke_bounded(c) for c in batch))

    async def _invoke_bounded(self, cpn: Component) -> None:
        async with self._semaphore:
            await self._invoke(cpn)

    async def _invoke(self, cpn: Component) -> None:
        """Invoke with timeout and retries; an exception becomes the component's ``_ERROR``."""
        state = self.state
        created = time.perf_counter()
        state.set_output(cpn.id, "_created_time", created)
        params = cpn.params
        attempts = params.max_retries + 1
        limit = self.engine.limits.for_component(cpn)
        for attempt in range(attempts):
            try:
                if self.cancel.cancelled:
                    raise asyncio.CancelledError
                if limit is None:
                    await cpn.invoke(self.ctx)
                else:
                    scope = asyncio.timeout(limit)
                    try:
                        async with scope:
                            await cpn.invoke(self.ctx)
                    except TimeoutError:
                        if scope.expired():
                            raise _TimeLimit(limit) from None
                        raise
                break
            except asyncio.CancelledError:
                raise
            except Exception as e:
                if attempt + 1 < attempts:
                    await asyncio.sleep(params.delay_after_error)
                    continue
                message = f"timed out after {e.seconds:g} seconds" if isinstance(e, _TimeLimit) else str(e)
                if (cpn.default_on_error and params.exception_method == "comment"
                        and params.exception_default_value):
                    state.set_output(cpn.id, "result", params.exception_default_value)
                else:
                    state.set_output(cpn.id, "_ERROR", message or type(e).__name__)
        state.set_output(cpn.id, "_elapsed_time", time.perf_counter() - created)

    # ------------------------------------------------------------------ after a component
    async def _post_process(self, cid: str, partials: list[str]) -> AsyncIterator[Event]:
        state, canvas = self.state, self.canvas
        cpn = canvas.components[cid]
        ctype = cpn.component_name
        if ctype == "Message" and (not state.error(cid) or isinstance(state.output(cid, "content"), TextStream)):
            # A Message that failed before saying anything (a reference it cannot resolve) says nothing.
            async for event in self._message_events(cpn):
                yield event
            while partials and not _is_pending(state.output(partials[0], "content")):
                yield self._node_finished(partials.pop(0))

        other_branch = False
        err = state.error(cid)
        if err:
            params = cpn.params
            if params.exception_method and params.exception_goto:
                for target in params.exception_goto:
                    self._append(target)
                other_branch = True
            elif params.exception_method and params.exception_default_value:
                yield self._event("message", {"content": params.exception_default_value})
                yield self._event("message_end", {})
            else:
                self._fail(err, cid)

        if ctype not in LOOP_TYPES:
            if _is_pending(state.output(cid, "content")):
                if self.error:
                    state.set_output(cid, "content", None)
                    yield self._node_finished(cid)
                else:
                    partials.append(cid)
            else:
                yield self._node_finished(cid)

        if other_branch:
            return
        loop_ended = False
        if ctype in ("IterationItem", "LoopItem"):
            try:
                loop_ended = cpn.loop_ended(state)
            except Exception as e:
                self._fail(f"{cid}: {e}", cid)
                return
            if loop_ended and cpn.spec.parent_id:
                yield self._node_finished(cpn.spec.parent_id)
        elif ctype == "ExitLoop" and cpn.spec.parent_id:
            # ragflow leaves the Loop without node_finished; every started Loop gets one here.
            yield self._node_finished(cpn.spec.parent_id)
        next_ids = state.output(cid, "_next") if ctype in ("Switch", "Categorize") else None
        for target in successors(canvas, cid, loop_ended=loop_ended,
                                 next_ids=next_ids if isinstance(next_ids, list) else None):
            self._append(target)

    def _append(self, cid: str) -> None:
        path = self.state.path
        if not path or path[-1] != cid:
            self.state.path_append(cid)

    async def _message_events(self, cpn: Component) -> AsyncIterator[Event]:
        state = self.state
        content = state.output(cpn.id, "content")
        if isinstance(content, TextStream):
            parts: list[str] = []
            try:
                async for chunk in content:
                    if chunk == _THINK_OPEN:
                        yield self._event("message", {"content": "", "start_to_think": True})
                    elif chunk == _THINK_CLOSE:
                        yield self._event("message", {"content": "", "end_to_think": True})
                    elif chunk:
                        parts.append(chunk)
                        yield self._event("message", {"content": chunk})
            except Exception as e:
                # Text that fails while it streams (a reference that cannot be resolved) fails the
                # Message; ragflow raises out of run() here.
                state.set_output(cpn.id, "content", "".join(parts))
                state.set_output(cpn.id, "_ERROR", str(e) or type(e).__name__)
                return
            state.set_output(cpn.id, "content", "".join(parts))
        else:
            yield self._event("message", {"content": content})
        yield self._event("message_end", self._message_end(cpn))

    def _message_end(self, cpn: Component) -> dict[str, Any]:
        state = self.state
        data: dict[str, Any] = {}
        status = getattr(cpn.params, "status", None)
        if status:
            data["status"] = status
        attachment = state.output(cpn.id, "attachment")
        if isinstance(attachment, dict):
            data["attachment"] = attachment
        downloads = state.output(cpn.id, "downloads")
        if isinstance(downloads, list) and downloads:
            data["downloads"] = downloads
        reference = state.retrieval[-1] if state.retrieval else None
        if isinstance(reference, dict) and (reference.get("chunks") or reference.get("doc_aggs")):
            data["reference"] = reference
        return data

    # ------------------------------------------------------------------ pausing for input
    async def _pause_check(self, idx: int) -> Event | None:
        """spec §3.9: invoke the waiting forms without inputs; pause if any field is unanswered."""
        state, canvas = self.state, self.canvas
        rest = [c for c in state.path[idx:] if c in canvas.components]
        forms = [c for c in rest if canvas.component_type(c) == "UserFillUp"]
        new_path = forms + [c for c in rest if canvas.component_type(c) != "UserFillUp"]
        missing: dict[str, Any] = {}
        tips = ""
        saved_inputs = self.ctx.inputs
        self.ctx.inputs = {}
        try:
            for cid in forms:
                form = canvas.components[cid]
                await self._invoke(form)
                missing.update({k: v for k, v in form.form_fields(state).items() if not field_satisfied(v)})
                if getattr(form.params, "enable_tips", False):
                    tips = state.output(cid, "tips")
        finally:
            self.ctx.inputs = saved_inputs
        if not missing:
            return None
        state.path_replace(new_path)
        state.waiting = list(new_path)
        state.touch("waiting")
        return self._event("user_inputs", {"inputs": missing, "tips": tips})

    # ------------------------------------------------------------------ events and endings
    def _node_started(self, cid: str) -> Event:
        cpn = self.canvas.components[cid]
        try:
            thoughts = cpn.thoughts(self.state)
        except Exception:
            thoughts = ""
        return self._event("node_started", {
            "inputs": None,
            "created_at": int(time.time()),
            "component_id": cid,
            "component_name": cpn.spec.name,
            "component_type": cpn.component_name,
            "thoughts": thoughts,
        })

    def _node_finished(self, cid: str) -> Event:
        state = self.state
        cpn = self.canvas.components[cid]
        outputs = state.output_values(cid)
        created = outputs.get("_created_time")
        created_f = created if isinstance(created, float) else time.perf_counter()
        return self._event("node_finished", {
            "inputs": dict(state.inputs[cid]),
            "outputs": outputs,
            "component_id": cid,
            "component_name": cpn.spec.name,
            "component_type": cpn.component_name,
            "error": state.error(cid),
            "elapsed_time": time.perf_counter() - created_f,
            "created_at": created_f,
        })

    def _finished_event(self, started: float, outputs: Any = None) -> Event:
        data: dict[str, Any] = {
            "inputs": self.inputs or None,
            "outputs": outputs,
            "elapsed_time": time.perf_counter() - started,
            "created_at": started,
            "usage": dict(self.ctx.usage),
        }
        if self.status is RunStatus.CANCELLED:
            data["outputs"] = CANCELED
        if self.error is not None:
            data["status"] = (self.status or RunStatus.FAILED).value
            data["error"] = self.error
            if self.error_component:
                data["component_id"] = self.error_component
        else:
            data["status"] = RunStatus.FINISHED.value
        return self._event("workflow_finished", data)

    def _fail(self, message: str, cid: str | None = None, *, status: RunStatus = RunStatus.FAILED) -> None:
        if self.error is None:
            self.error = message
            self.error_component = cid
            self.status = status

    def _stale_route_message(self, cid: str) -> str:
        sources = [c.id for c in self.canvas.components.values()
                   if cid in c.spec.downstream or any(t == cid for _, t in routes(c.spec))]
        via = f" (routed there by {', '.join(sources)})" if sources else ""
        return f"the run reached {cid!r}, which is not a component of this canvas{via}"

    async def _snapshot(self) -> None:
        self.state.turn = None
        self.state.touch("turn")
        sink = self.engine.checkpoint
        if sink is not None:
            # The run's own changes at its end (history, waiting) form a last delta.
            await sink.put_end(self.state.take_delta(""), self.state.to_json(),
                               (self.status or RunStatus.FAILED).value)


class _TimeLimit(Exception):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"timed out after {seconds:g} seconds")


async def _take_back(token: CancelToken, task: asyncio.Task[Any] | None) -> None:
    """Undo the token's interruption of ``task``, delivered or not, before the consumer runs on.

    A cancellation the engine did not await through (it was cancelled before the run, or between
    two awaits) is still pending on the task; it is let through here and swallowed. A
    cancellation requested by someone else meanwhile is passed on.
    """
    try:
        await asyncio.sleep(0)
    except asyncio.CancelledError:
        token.acknowledge(task)
        if task is not None and task.cancelling() > 0:
            raise
        return
    token.acknowledge(task)


def _is_pending(value: Any) -> bool:
    return isinstance(value, TextStream) and not value.done
