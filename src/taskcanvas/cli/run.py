"""``taskcanvas run``: one turn of a canvas from the command line.

The command is a thin face over the engine: load and build the canvas, load or start the
session, run one turn while a view shows the events, save the session. Everything that can
be wrong with the arguments (canvas, ``--inputs``, ``--state``, ``--file``) is checked before the
run starts, so a mistake costs nothing and never leaves a half-written state file.

``--file PATH`` (repeatable) stores each file in the file store and gives the run their file
values (``sys.files``); the files the run makes (``downloads`` and ``attachment`` of its
``message_end`` events, components' ``attachment`` and ``downloaded_files`` outputs) are written
to ``--out DIR`` under their own names.

Exit status (also in ``--help``): 0 the run finished or waits for input, 1 the run failed,
2 invalid canvas or arguments, 130 interrupted with Ctrl-C (the run is cancelled cleanly
and the session saved; a second Ctrl-C aborts at once without saving).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import stat
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from taskcanvas.assembly import close_services, engine_services, http_client, limits
from taskcanvas.cli.render import (
    CliError,
    JsonlView,
    LiveView,
    Session,
    View,
    describe_error,
    print_error,
    print_warnings,
)
from taskcanvas.components import builtin_registry
from taskcanvas.config import Settings
from taskcanvas.dsl.load import load_canvas_file
from taskcanvas.files import BlobNotFound, BlobStore, FileError, FileStoreError, FileValue, store_file
from taskcanvas.runtime.cancel import CancelToken
from taskcanvas.runtime.canvas import Canvas
from taskcanvas.runtime.engine import Engine, Run
from taskcanvas.runtime.errors import RunStatus, StateError
from taskcanvas.runtime.state import RunState

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_INTERRUPTED = 130



@dataclass
class Prepared:
    """Everything checked before a run: the built canvas, the session and the inputs."""

    canvas: Canvas
    state: RunState
    inputs: dict[str, Any]
    session: Session
    files: list[FileValue] = field(default_factory=list)
    out_dir: Path = Path(".")


def parse_inputs(text: str | None) -> dict[str, Any]:
    """``--inputs`` in ragflow's form ``{"name": {"value": ...}}``; bare values get wrapped."""
    if text is None or not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise CliError(describe_error(e, "--inputs")) from None
    if not isinstance(data, dict):
        raise CliError('--inputs must be a JSON object: {"field": {"value": ...}}')
    return {str(k): v if isinstance(v, dict) and "value" in v else {"value": v} for k, v in data.items()}


def load_state(path: Path, canvas: Canvas) -> RunState | None:
    """The saved session in ``path``, or ``None`` when there is none yet."""
    subject = f"state file {path}"
    if not path.exists():
        parent = path.parent
        if not parent.is_dir():
            raise CliError(f"{subject}: the directory {parent} does not exist")
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CliError(describe_error(e, subject)) from None
    try:
        return RunState.from_json(data, canvas.components)
    except StateError as e:
        raise CliError(describe_error(e, subject)) from None
    except (TypeError, ValueError, AttributeError) as e:  # the right version, but mangled
        raise CliError(f"{subject} is not a valid session state ({describe_error(e)})") from None


def save_state(path: Path, state: RunState) -> None:
    """Write the session atomically: a reader (or a crash) never sees half a file.

    The temporary file is created like any new file (the umask applies, not ``mkstemp``'s 0600)
    and takes the mode of the file it replaces.
    """
    text = json.dumps(state.to_json(), ensure_ascii=False, indent=1)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def prepare(canvas_file: str, inputs_text: str | None, state_file: str | None, *,
            files: Sequence[str] = (), out_dir: str | None = None) -> tuple[Prepared, Engine]:
    """Load and check everything; raise :class:`CliError` or a taskcanvas error on any problem."""
    inputs = parse_inputs(inputs_text)
    out = Path(out_dir) if out_dir else Path(".")
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {out}: not a directory")
    dsl = load_canvas_file(canvas_file)
    canvas = Canvas.build(dsl, builtin_registry(), source=canvas_file)
    settings = Settings.load()
    services = engine_services(settings)
    canvas.check_services(services, source=canvas_file)
    engine = Engine(canvas, limits=limits(settings), services=services)
    state = load_state(Path(state_file), canvas) if state_file else None
    session: Session
    if state is None:
        state, session = engine.new_session(), "new"
    else:
        session = "resumed" if state.waiting is not None else "continued"
    stored = asyncio.run(store_files(services["files"], files, max_bytes=settings.files_max_bytes)) if files else []
    return Prepared(canvas, state, inputs, session, stored, out), engine


async def store_files(store: BlobStore, paths: Sequence[str], *, max_bytes: int) -> list[FileValue]:
    """Each ``--file`` in the file store, as the run's file values; a :class:`CliError` names a bad one."""
    values: list[FileValue] = []
    for path in paths:
        try:
            values.append(await store_file(store, path, max_bytes=max_bytes))
        except FileError as e:
            raise CliError(f"--file {e}") from None
        except FileStoreError as e:
            raise CliError(f"--file {path}: {e}") from None
    return values


def downloads_of(events: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """``(doc_id, file name)`` of every file the run made for its user: what its messages offer
    (``downloads``, ``attachment`` of ``message_end``) and what components hand back as files
    (an ``attachment`` output, as ExcelProcessor's, and a Browser's ``downloaded_files``)."""
    found: dict[str, str] = {}
    for event in events:
        data = event.get("data")
        if not isinstance(data, Mapping):
            continue
        if event.get("event") == "message_end":
            items = [*(data.get("downloads") or []), data.get("attachment")]
        else:
            outputs = data.get("outputs")
            if not isinstance(outputs, Mapping):
                continue
            downloaded = outputs.get("downloaded_files")
            items = [outputs.get("attachment"), *(downloaded if isinstance(downloaded, list) else [])]
        for item in items:
            if not isinstance(item, Mapping):
                continue
            doc_id = item.get("doc_id") or item.get("file_id")
            if isinstance(doc_id, str) and doc_id not in found:
                found[doc_id] = str(item.get("filename") or item.get("file_name") or item.get("name") or "")
    return list(found.items())


async def write_downloads(store: BlobStore, offered: Sequence[tuple[str, str]], out_dir: Path) -> list[Path]:
    """Write each offered file to ``out_dir`` under its name; an existing file is never overwritten
    (``name (1).ext`` instead). Raises :class:`CliError` for a file that cannot be fetched or written."""
    written: list[Path] = []
    for doc_id, name in offered:
        try:
            content = await store.get(doc_id)
            if not name:
                name = (await store.info(doc_id)).filename
        except BlobNotFound:
            raise CliError(f"the run offered the file {name or doc_id!r}, but the file store has no '{doc_id}'",
                           EXIT_FAILED) from None
        except FileStoreError as e:
            raise CliError(f"could not fetch {name or doc_id!r}: {e}", EXIT_FAILED) from None
        try:
            written.append(await asyncio.to_thread(_write_new, out_dir, _safe_name(name, doc_id), content))
        except OSError as e:
            raise CliError(f"could not write {name!r} to {out_dir}: {describe_error(e)}", EXIT_FAILED) from None
    return written


def _safe_name(name: str, fallback: str) -> str:
    base = Path(name.replace("\\", "/")).name.strip()
    return base if base and base not in (".", "..") else fallback


def _write_new(out_dir: Path, name: str, content: bytes) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem, suffix = os.path.splitext(name)
    for n in range(1000):
        target = out_dir / (name if n == 0 else f"{stem} ({n}){suffix}")
        try:
            with open(target, "xb") as f:
                f.write(content)
            return target
        except FileExistsError:
            continue
    raise FileExistsError(f"too many files named like {name} in {out_dir}")


class _CtrlC:
    """First Ctrl-C cancels the run through its token; later ones abort (Python's default).

    The handler lives only while the run does; Python's previous handler comes back after.
    An ignored SIGINT (a background job) stays ignored.
    """

    def __init__(self, token: CancelToken, view: View) -> None:
        self.token = token
        self.view = view
        self.loop: asyncio.AbstractEventLoop | None = None
        self.previous: Any = None

    def __enter__(self) -> _CtrlC:
        previous = signal.getsignal(signal.SIGINT)
        if previous is signal.SIG_IGN:
            return self
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGINT, self._first)
        except (NotImplementedError, RuntimeError, ValueError):
            return self  # no signal support here (Windows, not the main thread): Ctrl-C aborts
        self.loop, self.previous = loop, previous
        return self

    def _first(self) -> None:
        self.token.cancel("cancelled by the user (Ctrl-C)")
        self.view.interrupted()
        self._restore()

    def _restore(self) -> None:
        loop, self.loop = self.loop, None
        if loop is None:
            return
        loop.remove_signal_handler(signal.SIGINT)
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)

    def __exit__(self, *exc: object) -> None:
        self._restore()


async def _consume(run: Run, view: View, ends: list[Mapping[str, Any]]) -> None:
    async for event in run:
        if event.get("event") in ("message_end", "node_finished"):
            ends.append(event)
        view.event(event)


async def drive(engine: Engine, prepared: Prepared, *, query: str, view: View,
                written: list[Path] | None = None) -> tuple[RunStatus | None, float]:
    """Run one turn, feeding ``view``; return the status and the elapsed seconds.

    The files the run's messages offer are written to ``prepared.out_dir`` (their paths appended
    to ``written``).

    The events are consumed in a task of their own: Ctrl-C cancels whichever task iterates the
    run (through the token), and a cancellation left pending by the engine must not interrupt
    what follows here (closing the HTTP client, saving the session). Kept inside a task that
    ends with the run, it cannot.
    """
    token = CancelToken()
    started = time.perf_counter()
    client = http_client(engine.services["settings"])
    engine.http = client
    run = engine.run(prepared.state, query=query, inputs=prepared.inputs, files=list(prepared.files) or None,
                     cancel=token)
    ends: list[Mapping[str, Any]] = []
    view.start(prepared.session)
    try:
        with _CtrlC(token, view):
            try:
                await asyncio.create_task(_consume(run, view, ends))
            except asyncio.CancelledError:
                if not token.cancelled:
                    raise
                run.status = run.status or RunStatus.CANCELLED
                run.error = run.error or token.reason
    finally:
        await client.aclose()
        await close_services(engine.services)
    elapsed = time.perf_counter() - started
    view.summary(run.status, run.error, run.error_component, elapsed)
    offered = downloads_of(ends)
    if offered:  # the file store holds nothing open: it outlives close_services
        paths = await write_downloads(engine.services["files"], offered, prepared.out_dir)
        if written is not None:
            written.extend(paths)
    return run.status, elapsed


def exit_code(status: RunStatus | None) -> int:
    if status in (RunStatus.FINISHED, RunStatus.WAITING):
        return EXIT_OK
    if status is RunStatus.CANCELLED:
        return EXIT_INTERRUPTED
    return EXIT_FAILED


def run_command(canvas_file: str, *, query: str, inputs: str | None, state_file: str | None,
                jsonl: bool, files: Sequence[str] = (), out_dir: str | None = None) -> int:
    """The whole ``run`` command; returns the exit status (never raises for expected problems)."""
    try:
        prepared, engine = prepare(canvas_file, inputs, state_file, files=files, out_dir=out_dir)
    except CliError as e:
        return _fail(describe_error(e), e.exit_code)
    except Exception as e:  # DslError and anything the loaders raise: a message, never a traceback
        return _fail(describe_error(e), EXIT_INVALID)
    print_warnings(prepared.canvas.warnings)

    view: View
    if jsonl:
        view = JsonlView()
    else:
        view = LiveView(Console(highlight=False, soft_wrap=True), canvas_file=canvas_file, state_file=state_file)
    written: list[Path] = []
    try:
        status, _ = asyncio.run(drive(engine, prepared, query=query, view=view, written=written))
    except CliError as e:  # an offered file that could not be written; the session is still saved
        print_error(describe_error(e))
        status = RunStatus.FAILED
    except KeyboardInterrupt:
        return _fail("aborted; the session was not saved", EXIT_INTERRUPTED)
    except Exception as e:  # a bug below the engine's own error handling
        if os.environ.get("TASKCANVAS_DEBUG"):
            raise
        return _fail(f"the run crashed: {describe_error(e)}", EXIT_FAILED)
    # Paths for people on stdout; with --jsonl stdout carries events only, so they go to stderr.
    listing = sys.stderr if jsonl else sys.stdout
    for path in written:
        listing.write(f"wrote {path}\n")
    listing.flush()

    if state_file:
        try:
            save_state(Path(state_file), prepared.state)
        except OSError as e:
            return _fail(f"could not save the session: {describe_error(e, state_file)}", EXIT_FAILED)
        view.saved(state_file)
    return exit_code(status)


def _fail(message: str, code: int) -> int:
    print_error(message)
    return code
