"""``taskcanvas task logs --follow``: a task's run events, live, until its latest run ends.

The server's stream (``GET /api/v2/tasks/{user}/{task}/events``) carries every event of every
run, ids ``<run>.<seq>``, and stays open for runs to come; the end is decided here. The run
followed is the task's latest when the command starts: it has ended at its ``workflow_finished``
(finished, failed or cancelled) or its ``user_inputs`` (waiting for an answer); a run that
stops without either (paused, or gone) is noticed at the server's keep-alive pings, and what
the store holds of it is read once more before stopping. A dropped connection is resumed with
``Last-Event-ID``, so no event is shown twice or lost.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol

from rich.console import Console
from rich.text import Text

from taskcanvas.cli.client.http import PING, Connection, Unreachable, decode
from taskcanvas.cli.client.output import console
from taskcanvas.cli.render import LiveView, field_description, format_seconds

__all__ = ["ENDINGS", "RECONNECTS", "follow_events"]

ENDINGS = frozenset({"workflow_finished", "user_inputs"})
"""The events a run ends with."""
RECONNECTS = 10
"""Attempts in a row to reach the server again before giving up."""

Task = Mapping[str, Any]
Outcome = Literal["ended", "settled", "closed"]


def follow_events(connection: Connection, task: Task, *, path: str, display: str, output: str,
                  refresh: Callable[[], Task], settled: Callable[[Task, int], bool]) -> int:
    """Print the task's events until its latest run ends; the exit status."""
    view: _View = _JsonView() if output == "json" else _PeopleView(console(), display)
    return _Follower(connection, path, int(task.get("workspace_build_number") or 0), view, refresh,
                     settled).run(live=not settled(task, int(task.get("workspace_build_number") or 0)))


class _View(Protocol):
    def show(self, run: int | None, event: dict[str, Any]) -> None: ...

    def stopped(self, task: Task | None) -> None:
        """The run stopped without an ending event (``task``: the task as it is now)."""


class _JsonView:
    """ragflow's events, one JSON object a line."""

    def show(self, run: int | None, event: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(event, ensure_ascii=False, default=str) + "\n")
        sys.stdout.flush()

    def stopped(self, task: Task | None) -> None:
        return None


class _PeopleView(LiveView):
    """The run view of ``taskcanvas run``, with a line per run and forms answered by ``task send``."""

    def __init__(self, out: Console, display: str) -> None:
        super().__init__(out, canvas_file="", state_file=None)
        self._display = display
        self._run: int | None = None

    def show(self, run: int | None, event: dict[str, Any]) -> None:
        if run is not None and run != self._run:
            self._run = run
            self._print(Text(f"run {run}", style="bold dim"))
        if event.get("event") == "workflow_finished":
            data = event.get("data")
            self._finished(data if isinstance(data, Mapping) else {})
        else:
            self.event(event)

    def stopped(self, task: Task | None) -> None:
        status = task.get("status") if task is not None else None
        self._print(Text(f"the run stopped: the task is {status}" if status else "the run stopped", style="yellow"))

    def _finished(self, data: Mapping[str, Any]) -> None:
        elapsed = data.get("elapsed_time")
        took = f" in {format_seconds(elapsed)}" if isinstance(elapsed, (int, float)) else ""
        status = data.get("status") or "finished"
        if data.get("error"):
            self._print(Text(f"{status}{took}: {data['error']}", style="bold red"))
        else:
            self._print(Text(f"{status}{took}", style="bold green" if status == "finished" else "bold yellow"))

    def _form(self, data: Mapping[str, Any]) -> None:
        """The form the run waits on, and how to answer it with ``taskcanvas task send``."""
        tips = data.get("tips")
        fields = data.get("inputs")
        fields = fields if isinstance(fields, Mapping) else {}
        self._print(Text("waiting for input" + (f": {tips}" if tips else ""), style="bold yellow"))
        width = max((len(str(k)) for k in fields), default=0)
        for key, spec in fields.items():
            self._print(Text("  ").append(str(key).ljust(width), style="bold").append(f"  {field_description(spec)}"))
        answer = "ANSWER" if len(fields) <= 1 else json.dumps({str(k): "..." for k in fields}, ensure_ascii=False)
        self._print(Text(f"answer with: taskcanvas task send {shlex.quote(self._display)} {shlex.quote(answer)}",
                         style="dim"))


class _Follower:
    def __init__(self, connection: Connection, path: str, target: int, view: _View, refresh: Callable[[], Task],
                 settled: Callable[[Task, int], bool]) -> None:
        self.connection = connection
        self.path = path
        self.target = target
        self.view = view
        self.refresh = refresh
        self.settled = settled
        self.last_id: str | None = None
        self.failures = 0

    def run(self, *, live: bool) -> int:
        while True:
            try:
                outcome = self._read(live)
                if outcome == "ended":
                    return 0
                if outcome == "closed" and live and not self.settled(self.refresh(), self.target):
                    continue  # the server closed the stream, the run goes on: pick it up again
                if not live:  # everything stored has been read
                    self.view.stopped(self.refresh())
                    return 0
                live = False  # the run stopped: read what the store holds of it, then end
            except Unreachable as e:
                self.failures += 1
                if self.failures > RECONNECTS:
                    raise
                if self.failures == 1:
                    sys.stderr.write(f"{e}; reconnecting\n")
                time.sleep(min(self.failures, 5))

    def _read(self, live: bool) -> Outcome:
        params = None if live else {"follow": "false"}
        for sse in self.connection.events(self.path, last_event_id=self.last_id, params=params):
            self.failures = 0
            if sse is PING:
                if live and self.settled(self.refresh(), self.target):
                    return "settled"
                continue
            run = _run_number(sse.id)
            if run is not None and self.target and run > self.target:
                return "ended"  # a later run: the one followed is over
            if sse.id:
                self.last_id = sse.id
            event = decode(sse)
            self.view.show(run, event)
            if (run is None or run >= self.target) and event.get("event") in ENDINGS:
                return "ended"
        return "closed"


def _run_number(event_id: str | None) -> int | None:
    run, _, _ = (event_id or "").partition(".")
    return int(run) if run.isdigit() else None
