"""The journal: where runs' checkpoints and events are written, many runs to one commit.

Every finished component stores an :class:`Entry` — its checkpoint delta (or a snapshot), the
events emitted up to it, the run's new event count — and waits until it is committed before the
next component starts (docs/durability.md); a run's start and end are entries too. Doing that
through the ORM cost ~5 ms a component; the journal cuts it to about one commit:

- entries waiting when a commit starts go into the same transaction (group commit), so many
  runs in flight share the disk's flushes; an entry is still all-or-nothing: when a shared
  transaction fails, its entries are retried one by one and only the faulty one fails;
- on SQLite one thread owns a connection of its own and writes with prepared statements, values
  converted by the models' own column types, so readers through the ORM see the same rows; one
  hand-off to that thread and one back per commit, not one per statement;
- on PostgreSQL an asyncio task writes each batch with SQLAlchemy Core ``executemany``.

``synchronous`` (``TASKCANVAS_SQLITE_SYNCHRONOUS``, SQLite only) is what a commit survives:
``NORMAL`` (the default) a process crash, ``FULL`` a power loss too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Table, insert, update
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from taskcanvas.store._translate import translate_error
from taskcanvas.store.errors import StoreError
from taskcanvas.store.models.base import Base

__all__ = ["SYNCHRONOUS_MODES", "Entry", "Journal", "open_journal"]

_log = logging.getLogger(__name__)

SYNCHRONOUS_MODES = ("NORMAL", "FULL")
_LOCK_WAIT_SECONDS = 5.0
"""As long as the ORM's connections wait for the write lock (their busy_timeout)."""


@dataclass
class Entry:
    """Rows stored together or not at all: inserts and updates by primary key, column name → value
    as the models take them (uuids, aware datetimes, JSON-able values)."""

    inserts: list[tuple[Table, dict[str, Any]]] = field(default_factory=list)
    updates: list[tuple[Table, Any, dict[str, Any]]] = field(default_factory=list)

    def insert(self, model: type[Base], **row: Any) -> None:
        self.inserts.append((_table(model), row))

    def update(self, model: type[Base], key: Any, **values: Any) -> None:
        """``UPDATE ... SET values WHERE id = key`` (after every insert of the entry)."""
        self.updates.append((_table(model), key, values))

    def __bool__(self) -> bool:
        return bool(self.inserts or self.updates)


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


class Journal(Protocol):
    async def write(self, entry: Entry) -> None:
        """Store ``entry``; returns once it is committed (raises a :class:`StoreError` if it is not)."""
        ...

    async def close(self) -> None:
        """Write what is queued, then stop."""
        ...


def open_journal(engine: AsyncEngine, url: str, *, sqlite_path: str | None = None, synchronous: str = "NORMAL",
                 mutex: threading.Lock | None = None) -> Journal:
    """``mutex``: held by the SQLite writer for each commit, and by the process's other writers."""
    if sqlite_path is not None:
        return _SqliteJournal(sqlite_path, engine.dialect, url, synchronous, mutex or threading.Lock())
    return _CoreJournal(engine, url)


# ---------------------------------------------------------------------------- SQLite
class _Statement:
    """A prepared INSERT or UPDATE with the parameter conversions its columns define."""

    def __init__(self, table: Table, columns: Sequence[str], dialect: Dialect, *, update: bool) -> None:
        self.columns = tuple(columns) + (("id",) if update else ())
        if update:
            assignments = ", ".join(f"{name} = ?" for name in columns)
            self.sql = f"UPDATE {table.name} SET {assignments} WHERE id = ?"
        else:
            self.sql = (f"INSERT INTO {table.name} ({', '.join(columns)}) "
                        f"VALUES ({', '.join('?' * len(columns))})")
        self._convert = [table.c[name].type.bind_processor(dialect) for name in self.columns]

    def row(self, values: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(value if fn is None else fn(value) for fn, value in zip(self._convert, values, strict=True))


@dataclass
class _Job:
    entry: Entry
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]


class _SqliteJournal:
    def __init__(self, path: str, dialect: Dialect, url: str, synchronous: str, mutex: threading.Lock) -> None:
        self._path = path
        self._mutex = mutex
        self._url = url
        self._synchronous = synchronous
        self._dialect = dialect
        self._statements: dict[tuple[str, tuple[str, ...], bool], _Statement] = {}
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def write(self, entry: Entry) -> None:
        loop = asyncio.get_running_loop()
        job = _Job(entry, loop, loop.create_future())
        self._ensure_thread()
        self._queue.put(job)
        await _outcome(job.future)

    async def close(self) -> None:
        thread = self._thread
        if thread is None:
            return
        self._queue.put(None)
        await asyncio.to_thread(thread.join)
        self._thread = None

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._serve, name="taskcanvas-journal", daemon=True)
                    self._thread.start()

    # -------------------------------------------------------------- the writer thread
    def _serve(self) -> None:
        connection: sqlite3.Connection | None = None
        while True:
            job = self._queue.get()
            if job is None:
                break
            batch = [job]
            stop = False
            while True:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            try:
                if connection is None:
                    connection = self._connect()
                self._commit(connection, batch)
            except BaseException as e:  # the connection itself failed: every waiter learns why
                for waiting in batch:
                    _settle(waiting, self._error(e))
                if connection is not None:
                    connection.close()
                    connection = None
            if stop:
                break
        if connection is not None:
            connection.close()

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA foreign_keys=ON")
        connection.execute(f"PRAGMA synchronous={self._synchronous}")
        # No busy handler (it sleeps 1, 2, 5, 10... ms): the writers of this process take turns
        # (the mutex), and another process's write is waited for in steps of 0.1 to 2 ms.
        connection.execute("PRAGMA busy_timeout=0")
        return connection

    def _commit(self, connection: sqlite3.Connection, batch: list[_Job]) -> None:
        try:
            self._transaction(connection, [job.entry for job in batch])
        except sqlite3.Error as e:
            if len(batch) == 1:
                _settle(batch[0], self._error(e))
                return
            for job in batch:  # find the entry that fails; the others are stored
                try:
                    self._transaction(connection, [job.entry])
                except sqlite3.Error as alone:
                    _settle(job, self._error(alone))
                else:
                    _settle(job, None)
            return
        for job in batch:
            _settle(job, None)

    def _transaction(self, connection: sqlite3.Connection, entries: list[Entry]) -> None:
        # Parameters are converted (JSON encoded) before the write turn is taken: it is held
        # for the statements and the commit only.
        grouped: dict[_Statement, list[tuple[Any, ...]]] = {}
        for entry in entries:
            for table, row in entry.inserts:
                statement = self._statement(table, tuple(row), update=False)
                grouped.setdefault(statement, []).append(statement.row(tuple(row.values())))
        updates = []
        for entry in entries:
            for table, key, values in entry.updates:
                statement = self._statement(table, tuple(values), update=True)
                updates.append((statement, statement.row((*values.values(), key))))
        deadline = time.monotonic() + _LOCK_WAIT_SECONDS
        pause = 0.0001
        while True:
            with self._mutex:
                try:
                    connection.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as e:
                    # Another process writes: wait outside the turn, so this one's writers go on.
                    if "locked" not in str(e) or time.monotonic() > deadline:
                        raise
                else:
                    try:
                        for statement, rows in grouped.items():
                            connection.executemany(statement.sql, rows)
                        for statement, values_and_key in updates:
                            connection.execute(statement.sql, values_and_key)
                        connection.execute("COMMIT")
                    except BaseException:
                        connection.execute("ROLLBACK")
                        raise
                    return
            time.sleep(pause)
            pause = min(pause * 1.5, 0.002)

    def _statement(self, table: Table, columns: tuple[str, ...], *, update: bool) -> _Statement:
        key = (table.name, columns, update)
        statement = self._statements.get(key)
        if statement is None:
            statement = self._statements[key] = _Statement(table, columns, self._dialect, update=update)
        return statement

    def _error(self, e: BaseException) -> BaseException:
        if isinstance(e, sqlite3.Error):
            wrapped = DBAPIError.instance("journal write", None, e, sqlite3.Error)
            translated = translate_error(wrapped, self._url)
            return translated or StoreError(f"writing checkpoints to {self._url} failed: {e}")
        return e


async def _outcome(future: asyncio.Future[None]) -> None:
    """Wait for a write; a writer cancelled meanwhile still waits for it to land (or not), so what
    it reads next is what the store holds, then is cancelled."""
    try:
        await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        raise


def _settle(job: _Job, error: BaseException | None) -> None:
    def settle() -> None:
        if job.future.done():  # the writer was cancelled: the entry is stored (or not) all the same
            return
        if error is None:
            job.future.set_result(None)
        else:
            job.future.set_exception(error)

    with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
        job.loop.call_soon_threadsafe(settle)


# ---------------------------------------------------------------------------- PostgreSQL
class _CoreJournal:
    """Batches written by one asyncio task with SQLAlchemy Core (asyncpg's executemany)."""

    def __init__(self, engine: AsyncEngine, url: str) -> None:
        self._engine = engine
        self._url = url
        self._pending: list[tuple[Entry, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def write(self, entry: Entry) -> None:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((entry, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="taskcanvas-journal")
        await _outcome(future)

    async def close(self) -> None:
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _drain(self) -> None:
        # What arrives while a batch commits waits for the next one: one transaction for all of it.
        while self._pending:
            batch, self._pending = self._pending, []
            await self._commit(batch)

    async def _commit(self, batch: list[tuple[Entry, asyncio.Future[None]]]) -> None:
        try:
            await self._transaction([entry for entry, _ in batch])
        except Exception as e:
            if len(batch) == 1:
                _resolve(batch[0][1], self._error(e))
                return
            for entry, future in batch:
                try:
                    await self._transaction([entry])
                except Exception as alone:
                    _resolve(future, self._error(alone))
                else:
                    _resolve(future, None)
            return
        for _, future in batch:
            _resolve(future, None)

    async def _transaction(self, entries: list[Entry]) -> None:
        grouped: dict[tuple[Table, tuple[str, ...]], list[dict[str, Any]]] = {}
        for entry in entries:
            for table, row in entry.inserts:
                grouped.setdefault((table, tuple(row)), []).append(row)
        async with self._engine.begin() as connection:
            for (table, _), rows in grouped.items():
                await connection.execute(insert(table), rows)
            for entry in entries:
                for table, key, values in entry.updates:
                    await connection.execute(update(table).where(table.c.id == key).values(**values))

    def _error(self, e: BaseException) -> BaseException:
        return translate_error(e, self._url) or StoreError(f"writing checkpoints to {self._url} failed: {e}")


def _resolve(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)

