"""What the CLI shows: the live view of a run, its JSON-lines twin, and error messages.

Everything a person reads comes from here, so the wording stays consistent and no other
module formats output. :func:`describe_error` is the one place that turns an exception into
the single message the CLI prints (never a traceback): taskcanvas errors already carry a
complete message, OS and JSON errors get told what they were about.

The live view prints plain rich :class:`~rich.text.Text` (never markup): component names,
errors and model text are user data and must not be interpreted as styling.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Mapping
from typing import Any, Literal, Protocol, TextIO

from rich.console import Console
from rich.text import Text

from taskcanvas.dsl.errors import DslIssue
from taskcanvas.errors import TaskcanvasError
from taskcanvas.runtime.errors import RunStatus, StateError
from taskcanvas.runtime.events import Event

Session = Literal["new", "continued", "resumed"]
"""A fresh session, the next turn of a saved one, or a saved one waiting for input."""


class CliError(Exception):
    """A problem with what the user asked for; ``str()`` is the complete message."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        self.exit_code = exit_code
        super().__init__(message)


def describe_error(exc: BaseException, subject: str | None = None) -> str:
    """One message for ``exc``; ``subject`` names what it was about (``"--inputs"``, a file)."""
    if isinstance(exc, json.JSONDecodeError):
        what = subject or "the input"
        return f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
    if isinstance(exc, StateError):
        return f"{subject}: {exc}" if subject else str(exc)
    if isinstance(exc, (TaskcanvasError, CliError)):
        return str(exc)
    if isinstance(exc, UnicodeDecodeError):
        return f"{subject or 'the file'} is not UTF-8 text"
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc) or type(exc).__name__
        where = subject or exc.filename
        return f"{where}: {reason}" if where else reason
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def print_error(message: str, stream: TextIO | None = None) -> None:
    """``error: message`` on stderr, plain text (also when stderr is a terminal)."""
    out = stream or sys.stderr
    out.write(f"error: {message}\n")
    out.flush()


def issue_line(issue: DslIssue) -> str:
    """``error: …`` / ``warning: …`` for one validation issue."""
    return f"{issue.severity}: {issue}"


def print_warnings(issues: list[DslIssue], stream: TextIO | None = None) -> None:
    out = stream or sys.stderr
    for issue in issues:
        if issue.severity == "warning":
            out.write(issue_line(issue) + "\n")
    out.flush()


def format_seconds(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes:.0f} min {rest:.0f} s"


# ---------------------------------------------------------------------------- views
class View(Protocol):
    """Receives a run's events and how it ended."""

    def start(self, session: Session) -> None: ...

    def event(self, event: Event) -> None: ...

    def interrupted(self) -> None: ...

    def summary(self, status: RunStatus | None, error: str | None, component_id: str | None,
                elapsed: float) -> None: ...

    def saved(self, path: str) -> None: ...


class JsonlView:
    """Every event as one JSON line on stdout, and nothing else: for programs, not people."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._out = stream or sys.stdout
        self._closed = False

    def start(self, session: Session) -> None:
        return None

    def event(self, event: Event) -> None:
        if self._closed:
            return
        try:
            self._out.write(json.dumps(event, ensure_ascii=False, default=str) + "\n")
            self._out.flush()
        except BrokenPipeError:
            # The reader went away (``| head``): keep the run going so the state is still saved.
            self._closed = True
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._out.fileno())

    def interrupted(self) -> None:
        return None

    def summary(self, status: RunStatus | None, error: str | None, component_id: str | None,
                elapsed: float) -> None:
        return None

    def saved(self, path: str) -> None:
        return None


class LiveView:
    """A person's view: components as they start and finish, message text as it streams."""

    def __init__(self, console: Console, *, canvas_file: str, state_file: str | None) -> None:
        self.console = console
        self.canvas_file = canvas_file
        self.state_file = state_file
        self._labels: dict[str, tuple[str, str]] = {}
        self._line_open = False
        self._thinking = False

    # ------------------------------------------------------------------ output helpers
    def _print(self, text: Text) -> None:
        self._end_line()
        self.console.print(text, soft_wrap=True)

    def _end_line(self) -> None:
        if self._line_open:
            self.console.print()
            self._line_open = False

    def _stream(self, chunk: str) -> None:
        if not chunk:
            return
        style = "dim italic" if self._thinking else ""
        self.console.print(Text(chunk, style=style), end="", soft_wrap=True)
        self._line_open = not chunk.endswith("\n")

    def _label(self, data: Mapping[str, Any]) -> str:
        cid = str(data.get("component_id") or "")
        name = data.get("component_name") or ""
        return f"{name} [{cid}]" if name and name != cid else cid

    # ------------------------------------------------------------------ View
    def start(self, session: Session) -> None:
        if session == "resumed":
            self._print(Text(f"answering the form of the session in {self.state_file}", style="dim"))
        elif session == "continued":
            self._print(Text(f"next turn of the session in {self.state_file}", style="dim"))

    def event(self, event: Event) -> None:
        name = event.get("event")
        data = event.get("data")
        if not isinstance(data, Mapping):
            data = {}
        if name == "node_started":
            label, ctype = self._label(data), str(data.get("component_type") or "")
            self._labels[str(data.get("component_id"))] = (label, ctype)
            self._print(Text.assemble(("→ ", "cyan"), label, (f" ({ctype})", "dim")))
        elif name == "node_finished":
            self._node_finished(data)
        elif name == "message":
            self._message(data)
        elif name == "message_end":
            self._thinking = False
            self._end_line()
        elif name == "user_inputs":
            self._form(data)

    def _node_finished(self, data: Mapping[str, Any]) -> None:
        label = self._label(data)
        elapsed = data.get("elapsed_time")
        took = f" {format_seconds(elapsed)}" if isinstance(elapsed, (int, float)) else ""
        error = data.get("error")
        if error:
            self._print(Text.assemble(("✗ ", "bold red"), label, (took, "dim"), (f": {error}", "red")))
        else:
            self._print(Text.assemble(("✓ ", "green"), label, (took, "dim")))

    def _message(self, data: Mapping[str, Any]) -> None:
        if data.get("start_to_think"):
            self._end_line()
            self._thinking = True
            self._stream("(thinking) ")
            return
        if data.get("end_to_think"):
            self._end_line()
            self._thinking = False
            return
        content = data.get("content")
        if content is None:
            return
        self._stream(content if isinstance(content, str) else json.dumps(content, ensure_ascii=False, default=str))

    def _form(self, data: Mapping[str, Any]) -> None:
        tips = data.get("tips")
        fields = data.get("inputs")
        fields = fields if isinstance(fields, Mapping) else {}
        self._print(Text("input needed" + (f": {tips}" if tips else ""), style="bold yellow"))
        width = max((len(str(k)) for k in fields), default=0)
        for key, spec in fields.items():
            self._print(Text("  ").append(str(key).ljust(width), style="bold").append(f"  {field_description(spec)}"))
        example = json.dumps(example_inputs(fields), ensure_ascii=False)
        if self.state_file:
            command = (f"taskcanvas run {shlex.quote(self.canvas_file)} --state {shlex.quote(self.state_file)} "
                       f"--inputs {shlex.quote(example)}")
            self._print(Text("answer with:", style="dim"))
            self._print(Text(f"  {command}"))
        else:
            self._print(Text("this session is not saved, so it cannot be answered: run again with "
                             "--state FILE, then answer with --state FILE --inputs "
                             f"{shlex.quote(example)}", style="dim"))

    def interrupted(self) -> None:
        self._print(Text("cancelling… (Ctrl-C again to abort at once)", style="yellow"))

    def summary(self, status: RunStatus | None, error: str | None, component_id: str | None,
                elapsed: float) -> None:
        took = format_seconds(elapsed)
        if status is RunStatus.FINISHED:
            self._print(Text(f"finished in {took}", style="bold green"))
        elif status is RunStatus.WAITING:
            self._print(Text("waiting for input", style="bold yellow"))
        elif status is RunStatus.CANCELLED:
            self._print(Text(f"cancelled after {took}", style="bold yellow"))
        else:
            where = ""
            if component_id and component_id in self._labels:  # not for a stale route's target
                label, ctype = self._labels[component_id]
                where = f" in {label}" + (f" ({ctype})" if ctype else "")
            self._print(Text(f"failed{where}: {error or 'unknown error'}", style="bold red"))

    def saved(self, path: str) -> None:
        self._print(Text(f"session saved to {path}", style="dim"))


def field_description(spec: Any) -> str:
    """``Name · options: a, b · optional`` for one form field of a ``user_inputs`` event."""
    if not isinstance(spec, Mapping):
        return f"= {spec!r}"
    parts: list[str] = []
    name = spec.get("name")
    if name:
        parts.append(str(name))
    ftype = str(spec.get("type") or "text")
    options = spec.get("options")
    if isinstance(options, list) and options:
        parts.append(f"{ftype}: " + ", ".join(str(o) for o in options))
    else:
        parts.append(ftype)
    parts.append("optional" if spec.get("optional") else "required")
    return " · ".join(parts)


def example_inputs(fields: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """An ``--inputs`` value answering the form: its required fields (or its first one)."""
    required = [k for k, v in fields.items() if not (isinstance(v, Mapping) and v.get("optional"))]
    keys = required or list(fields)[:1]
    out: dict[str, dict[str, Any]] = {}
    for key in keys:
        spec = fields[key]
        options = spec.get("options") if isinstance(spec, Mapping) else None
        out[str(key)] = {"value": options[0] if isinstance(options, list) and options else "..."}
    return out
