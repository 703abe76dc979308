"""The database a process talks to: one async engine and the sessions made from it.

SQLite in the data directory is the default (nothing to install); ``TASKCANVAS_DATABASE_URL``
(or ``[database] url`` in the configuration file) points at PostgreSQL for a scale-out
deployment. The schema is the same on both; only the connection set-up differs here.

A unit of work is ``async with database.session() as s:`` — committed when the block ends,
rolled back when it raises. ``database.reading()`` is a unit that only reads, all of it from
one snapshot, so a view built from several rows never mixes before and after a commit.

Driver errors leave this module as :class:`StoreError`\\ s that name
the database without its password, so no face ever prints a DSN secret or a traceback.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.util import await_

from taskcanvas.config import ConfigError, Settings
from taskcanvas.store._sqlite_driver import DRIVER as SQLITE_DRIVER
from taskcanvas.store._translate import translate_error
from taskcanvas.store.errors import UnsupportedDatabase
from taskcanvas.store.journal import SYNCHRONOUS_MODES, Journal, WriteTurn, open_journal

SQLITE_FILE = "taskcanvas.db"
URL_VARIABLE = "TASKCANVAS_DATABASE_URL"
SYNCHRONOUS_VARIABLE = "TASKCANVAS_SQLITE_SYNCHRONOUS"
_UNIT = "taskcanvas_unit"
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
_EXAMPLES = "postgresql://user:password@host:5432/name or sqlite:///path/to/file.db"
# sqlite+aiosqlite is what earlier versions wrote; the driver is now SQLite on the loop's thread.
_ASYNC_DRIVERS = {
    "sqlite": SQLITE_DRIVER,
    "sqlite+aiosqlite": SQLITE_DRIVER,
    SQLITE_DRIVER: SQLITE_DRIVER,
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}
_PG_CONNECT_TIMEOUT = 10.0


def normalize_url(raw: str | URL) -> URL:
    """``raw`` with its async driver (``postgresql://`` → ``postgresql+asyncpg://``), or a clear refusal."""
    try:
        url = make_url(raw)
    except ArgumentError:
        # Not echoed: an unparsable URL may still hold a password.
        raise UnsupportedDatabase(
            f"the database URL is not a URL taskcanvas understands; expected {_EXAMPLES}") from None
    driver = _ASYNC_DRIVERS.get(url.drivername)
    if driver is None:
        raise UnsupportedDatabase(f"taskcanvas cannot use the database driver '{url.drivername}'; "
                                  f"expected {_EXAMPLES}")
    url = url.set(drivername=driver)
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        raise UnsupportedDatabase("an in-memory SQLite database does not outlive one connection; "
                                  "give a file: sqlite:///path/to/file.db")
    return url


def sqlite_url(path: Path) -> URL:
    return URL.create(SQLITE_DRIVER, database=str(path.expanduser().resolve()))


def database_url(settings: Settings) -> URL:
    """The URL ``settings`` point at: the variable, then ``[database] url``, then the data directory's file."""
    raw = settings.env.get(URL_VARIABLE) or settings.section("database").get("url")
    if raw:
        return normalize_url(str(raw))
    return sqlite_url(settings.data_dir / SQLITE_FILE)


class Database:
    """An async engine and its session factory for one database URL."""

    def __init__(self, url: str | URL, *, engine_options: Mapping[str, Any] | None = None,
                 synchronous: str = "NORMAL") -> None:
        self.url = normalize_url(url)
        synchronous = synchronous.upper()
        if synchronous not in SYNCHRONOUS_MODES:
            raise ConfigError(f"{SYNCHRONOUS_VARIABLE} must be one of {', '.join(SYNCHRONOUS_MODES)}, "
                              f"not {synchronous!r}")
        self.synchronous = synchronous
        """What an SQLite commit survives: NORMAL a process crash, FULL a power loss too."""
        self.display_url = self.url.render_as_string(hide_password=True)
        """The URL with its password masked: the only form that appears in messages."""
        options: dict[str, Any] = {}
        if self.backend == "postgresql":
            # A server restart or failover drops pooled connections; check before handing one out.
            options.update(pool_pre_ping=True, connect_args={"timeout": _PG_CONNECT_TIMEOUT})
        options.update(engine_options or {})
        self.engine: AsyncEngine = create_async_engine(self.url, **options)
        self._turn = WriteTurn()
        if self.backend == "sqlite":
            _set_up_sqlite(self.engine, Path(str(self.url.database)), synchronous)
            _take_turns_to_write(self.engine, self._turn)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self._journal: Journal | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        synchronous = settings.env.get(SYNCHRONOUS_VARIABLE) or settings.section("database").get("sqlite_synchronous")
        return cls(database_url(settings), synchronous=str(synchronous or "NORMAL"))

    @property
    def journal(self) -> Journal:
        """Where runs' checkpoints and events are written, grouped into shared commits."""
        if self._journal is None:
            path = str(self.url.database) if self.backend == "sqlite" else None
            self._journal = open_journal(self.engine, self.display_url, self._turn, sqlite_path=path,
                                         synchronous=self.synchronous)
        return self._journal

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.url.get_backend_name()

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A unit of work: committed when the block ends, rolled back if it raises.

        Store errors (a :class:`StoreConflict` for a name taken, ...) surface when the block
        exits: catch them around the ``async with``, since the transaction is lost anyway.
        """
        with self.translated():
            unit = _Unit()
            try:
                async with self.sessionmaker() as session, session.begin():
                    if self.backend != "sqlite":
                        yield session
                        return
                    info = (await session.connection()).info
                    info[_UNIT] = unit
                    try:
                        yield session
                        await session.flush()  # what the commit would flush is written in the unit's turn
                    finally:
                        info.pop(_UNIT, None)
            finally:
                if unit.writes:
                    self._turn.release()

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A unit of work that only reads, every statement from the same snapshot of the database.

        Both backends otherwise give each statement its own view (PostgreSQL's READ COMMITTED,
        and Python's sqlite3 opens no transaction before a SELECT), so a session read before a
        run's ending commits and its run read after it would disagree.
        """
        with self.translated():
            async with self.sessionmaker() as session, session.begin():
                if self.backend == "sqlite":
                    await (await session.connection()).exec_driver_sql("BEGIN")
                else:
                    await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
                yield session

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction (committed at the end): for schema work."""
        with self.translated():
            async with self.engine.begin() as connection:
                yield connection

    async def ping(self) -> None:
        """Connect and run a trivial query; raises :class:`DatabaseUnreachable` with the reason."""
        async with self.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        if self._journal is not None:
            await self._journal.close()
            self._journal = None
        await self.engine.dispose()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.dispose()

    @contextlib.contextmanager
    def translated(self) -> Iterator[None]:
        """Turn driver errors raised in the block into store errors naming this database."""
        try:
            yield
        except Exception as e:
            store_error = translate_error(e, self.display_url)
            if store_error is None:
                raise
            raise store_error from e

    def __repr__(self) -> str:
        return f"Database({self.display_url!r})"


def _set_up_sqlite(engine: AsyncEngine, path: Path, synchronous: str) -> None:
    """Create the file's directory on first connect; WAL, foreign keys and a busy timeout on every connection.

    WAL lets readers (SSE replay, listings) proceed while a run writes; foreign keys are off
    in SQLite unless each connection turns them on; ``synchronous=NORMAL`` is durable across
    application crashes in WAL mode and avoids an fsync per checkpoint (``FULL`` survives power loss).
    """

    @event.listens_for(engine.sync_engine, "do_connect")
    def _make_directory(*_: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA busy_timeout=5000")
        finally:
            cursor.close()


class _Unit:
    """One ``session()`` unit of work: whether it has written (and so holds the write turn)."""

    writes = False


def _take_turns_to_write(engine: AsyncEngine, turn: WriteTurn) -> None:
    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _first_write(connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        unit = connection.info.get(_UNIT)
        if unit is None or unit.writes or not statement.lstrip()[:7].upper().startswith(_WRITES):
            return
        await_(turn.acquire())  # runs in SQLAlchemy's greenlet, on the event loop's thread
        unit.writes = True
