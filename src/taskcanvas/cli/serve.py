"""``taskcanvas serve``: the HTTP server (coder's Tasks API, ragflow's agent API) under uvicorn.

Before anything is served the command opens the services itself — the schema is upgraded,
runs a previous process left in flight are picked up — so a database it cannot reach or a
configuration it cannot use is one line on stderr and an exit status, never a traceback. The
app (``create_app(settings, services=...)``) then runs under uvicorn on a socket bound here.

Logs are JSON lines on stderr (``--log-format text`` for people): time, level, logger,
message, and per request the method, path, status and duration; uvicorn's own records go
through the same handler. What a person needs on start (where it listens, where the data
is, how to make the first owner) is printed on stdout.

SIGTERM and SIGINT stop it gracefully: no new connections, open requests get
:data:`GRACEFUL_SECONDS` to finish, then the services close — runs still executing pause
after their current component and resume on the next start. Exit status: 0 stopped; 1 the
database failed or the address cannot be used; 2 the configuration cannot be used.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import os
import shlex
import signal
import socket
import sys
import time
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer
import uvicorn

from taskcanvas import __version__
from taskcanvas.cli.db import EXIT_CONFIG, EXIT_DATABASE, DataDirOption
from taskcanvas.cli.render import print_error
from taskcanvas.config import ConfigError, Settings
from taskcanvas.errors import TaskcanvasError
from taskcanvas.store import Database, StoreError, UnsupportedDatabase
from taskcanvas.store.repositories import UserRepository

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from taskcanvas.service.services import Services

__all__ = ["JsonFormatter", "TextFormatter", "configure_logging", "serve", "serve_command"]

LOG_FORMATS = ("json", "text")
GRACEFUL_SECONDS = 10
"""How long open requests (event streams included) may take to finish once a stop is asked for."""
STOP_HINT = "Stop with Ctrl-C or SIGTERM: runs in flight pause and resume on the next start."
"""The start message's last line."""
OWNER_POLL_SECONDS = 2.0
"""How often a server started without users looks for the first owner (to import the examples)."""

_log = logging.getLogger("taskcanvas.serve")
_access = logging.getLogger("taskcanvas.access")


def serve(
    host: Annotated[str, typer.Option("--host", help="The address to listen on (0.0.0.0: every interface).")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="The port to listen on (0: any free one).")]
    = 8080,
    data_dir: DataDirOption = None,
    concurrency: Annotated[int | None, typer.Option(
        "--concurrency", min=1, metavar="N", show_default=False,
        help="Runs executing at once in this process (default: TASKCANVAS_RUN_CONCURRENCY, else 64).")] = None,
    log_format: Annotated[str, typer.Option("--log-format", metavar="json|text",
                                            help="JSON lines for log collectors, or text for people.")] = "json",
) -> None:
    """Serve coder's Tasks API (/api/v2) and ragflow's agent API (/api/v1) until SIGTERM or Ctrl-C.

    The database schema is upgraded on start. Exit status: 0 stopped; 1 the database failed or
    the address cannot be used (one line says why); 2 the configuration cannot be used.
    """
    raise typer.Exit(serve_command(host=host, port=port, data_dir=data_dir, concurrency=concurrency,
                                   log_format=log_format))


def serve_command(*, host: str = "127.0.0.1", port: int = 8080, data_dir: Path | None = None,
                  concurrency: int | None = None, log_format: str = "json",
                  environ: Mapping[str, str] | None = None) -> int:
    """Serve until stopped; the exit status."""
    if log_format not in LOG_FORMATS:
        print_error(f"--log-format must be json or text, not {log_format!r}")
        return EXIT_CONFIG
    env = dict(os.environ if environ is None else environ)
    if data_dir is not None:
        env["TASKCANVAS_DATA_DIR"] = str(data_dir)
    try:
        settings = Settings.load(env)
        database = Database.from_settings(settings)
    except (ConfigError, UnsupportedDatabase) as e:
        print_error(str(e))
        return EXIT_CONFIG
    try:
        listener = _bind(host, port)
    except OSError as e:
        reason = os.strerror(e.errno) if e.errno else str(e)
        print_error(f"cannot listen on {_hostport(host, port)}: {reason}")
        return EXIT_DATABASE
    configure_logging(log_format)
    # Until uvicorn takes the signals over (and after it gives them back), SIGTERM stops like Ctrl-C.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return asyncio.run(_serve(settings, database, listener, concurrency=concurrency))
    except KeyboardInterrupt:  # stopped before serving, or a second signal while the services close
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        listener.close()


# ---------------------------------------------------------------------------- serving
class _Server(uvicorn.Server):
    """uvicorn's server, telling us once it listens, and leaving the signals it caught handled.

    uvicorn re-raises a caught SIGTERM/SIGINT after its shutdown, which would kill the process
    before our services close (and end it with a signal instead of status 0).
    """

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_started()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


async def _serve(settings: Settings, database: Database, listener: socket.socket, *,
                 concurrency: int | None) -> int:
    # The server's layers load here, not with the CLI: every other command starts faster.
    from taskcanvas.api import create_app
    from taskcanvas.service.services import open_services, settle_start_up

    try:
        services = await open_services(settings, database=database, concurrency=concurrency)
    except StoreError as e:
        await database.dispose()
        print_error(str(e))
        return EXIT_DATABASE
    except TaskcanvasError as e:
        await database.dispose()
        print_error(str(e))
        return EXIT_CONFIG
    watcher: asyncio.Task[None] | None = None
    try:
        has_users = await _has_users(services)
        url = _url(listener)
        app = AccessLog(create_app(settings, services=services))
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on",
                                timeout_graceful_shutdown=GRACEFUL_SECONDS, server_header=False)
        server = _Server(config, lambda: _announce(settings, services, url, has_users))
        settle_start_up()
        _log.info("serving on %s", url, extra={"url": url, "data_dir": str(settings.data_dir.resolve()),
                                              "database": services.database.display_url})
        if not has_users:
            watcher = asyncio.create_task(_import_examples_for_first_owner(services))
        try:
            await server.serve(sockets=[listener])
        except SystemExit as e:  # uvicorn gives up when the app's startup fails (it logged why)
            return e.code if isinstance(e.code, int) and e.code else EXIT_DATABASE
        return 0
    finally:
        if watcher is not None:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        await services.close()
        _log.info("stopped; runs that were executing are paused and resume on the next start")


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Made with proto=IPPROTO_TCP (socket.create_server leaves it 0): asyncio turns Nagle off
    # only on connections whose socket says TCP, and with Nagle on, every response after a
    # connection's first waited ~40 ms for the client's delayed ACK.
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(2048)
    except BaseException:
        listener.close()
        raise
    listener.set_inheritable(False)
    return listener


def _url(listener: socket.socket) -> str:
    host, port = listener.getsockname()[:2]
    return f"http://{_hostport(host, port)}"


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _has_users(services: Services) -> bool:
    async with services.database.session() as s:
        return bool(await UserRepository(s).find(limit=1))


async def _owner_exists(services: Services) -> bool:
    from taskcanvas.service.rbac import SiteRole

    async with services.database.session() as s:
        return any(u.site_role == SiteRole.OWNER.value for u in await UserRepository(s).find(limit=1000))


async def _import_examples_for_first_owner(services: Services) -> None:
    """A first start has no owner to give the example agents to: import them once one exists."""
    from taskcanvas.service.services import import_examples

    while True:
        await asyncio.sleep(OWNER_POLL_SECONDS)
        try:
            if not await _owner_exists(services):
                continue
            agents = await import_examples(services)
        except (StoreError, TaskcanvasError) as e:
            _log.warning("could not import the example agents: %s", e)
            return
        if agents:
            _log.info("imported the example agents for the first owner: %s", ", ".join(a.title for a in agents))
        return


def _announce(settings: Settings, services: Services, url: str, has_users: bool) -> None:
    """What a person needs on start, on stdout (the logs are on stderr)."""
    data_dir = settings.data_dir.resolve()
    lines = [
        f"taskcanvas {__version__} is serving on {url}",
        f"  coder Tasks API {url}/api/v2, ragflow agent API {url}/api/v1, health {url}/healthz, docs {url}/docs",
        f"  data: {data_dir} (database {services.database.display_url})",
    ]
    if not has_users:
        where = shlex.quote(str(data_dir))
        lines += [
            "No user yet. Make the first owner and an API token (in another terminal, with the same environment):",
            f"  taskcanvas users create --data-dir {where} --username admin --email admin@example.com "
            "--role owner --password-stdin",
            f"  taskcanvas tokens create --data-dir {where} --username admin",
            "Then use the token with the task commands (the example agents Echo and \"Quickstart: topics\" "
            "appear once the owner exists):",
            f"  export TASKCANVAS_URL={url} TASKCANVAS_TOKEN=<the token>",
            '  taskcanvas task create "hello" --template Echo',
        ]
    lines.append(STOP_HINT)
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------------------- access log
class AccessLog:
    """ASGI middleware: one ``taskcanvas.access`` record per HTTP request, when its answer is sent.

    For an event stream the duration is the stream's whole life.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            method, path = scope.get("method", ""), scope.get("path", "")
            client = scope.get("client")
            _access.info("%s %s %d %.2fms", method, path, status, duration_ms,
                         extra={"method": method, "path": path, "status": status, "duration_ms": duration_ms,
                                "client": client[0] if client else None})


# ---------------------------------------------------------------------------- log format
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime",
                                                                                     "color_message", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, then the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")


def configure_logging(log_format: str, stream: TextIO | None = None) -> None:
    """Every record (taskcanvas's, uvicorn's, the libraries') to one handler on stderr, INFO and up."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
