"""The journal: where runs' checkpoints and events are written, many runs to one commit.

Every finished component stores an :class:`Entry` — its checkpoint delta (or a snapshot), the
events emitted up to it, the run's new event count — and waits until it is committed before the
next component starts (docs/durability.md); a run's start and end are entries too. Doing that
through the ORM cost ~4 ms a component; the journal cuts it to about one commit:

- one asyncio task drains what is waiting into one transaction (group commit), so runs in flight
  share the disk's flushes; an entry is still all-or-nothing: when a shared transaction fails,
  its entries are retried one by one and only the faulty one fails;
- on SQLite it writes on the event loop's thread with a connection of its own and prepared
  statements, values converted by the models' own column types (so readers through the ORM see
  the same rows). A small commit costs tens of microseconds; handing it to a thread and back
  cost ten times that. It writes in its turn (:class:`WriteTurn`), as every writer of the process;
- on PostgreSQL it writes each batch with SQLAlchemy Core ``executemany``.

``synchronous`` (``TASKCANVAS_SQLITE_SYNCHRONOUS``, SQLite only) is what a commit survives:
``NORMAL`` (the default) a process crash, ``FULL`` a power loss too.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import json
import sqlite3
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from sqlalchemy import JSON, ColumnDefault, Table, Uuid, insert, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from taskcanvas.store._translate import translate_error
from taskcanvas.store._wal import WalCheckpointer
from taskcanvas.store.errors import StoreError
from taskcanvas.store.models.base import Base
from taskcanvas.store.models.types import UTCDateTime

__all__ = ["SYNCHRONOUS_MODES", "Entry", "Journal", "WriteTurn", "open_journal"]

SYNCHRONOUS_MODES = ("NORMAL", "FULL")
_LOCK_WAIT_SECONDS = 5.0
"""As long as the ORM's connections wait for another process's write lock (their busy_timeout)."""


@dataclass
class Entry:
    """Rows stored together or not at all: inserts and updates by primary key, column name → value
    as the models take them (uuids, aware datetimes, JSON-able values)."""

    inserts: list[tuple[Table, dict[str, Any]]] = field(default_factory=list)
    updates: list[tuple[Table, Any, dict[str, Any]]] = field(default_factory=list)

    def insert(self, model: type[Base], **row: Any) -> None:
        self.inserts.append((_table(model), row))

    def add(self, instance: Base) -> None:
        """Insert ``instance``'s row. A column it leaves unset takes the model's default, which is
        set on the instance too, so the instance reads as the stored row would."""
        row: dict[str, Any] = {}
        for key, name, default in _columns(type(instance)):
            value = getattr(instance, key)
            if value is None and default is not None:
                value = default.arg(None) if default.is_callable else default.arg
                setattr(instance, key, value)
            row[name] = value
        self.inserts.append((_table(type(instance)), row))

    def update(self, model: type[Base], key: Any, **values: Any) -> None:
        """``UPDATE ... SET values WHERE id = key`` (after every insert of the entry)."""
        self.updates.append((_table(model), key, values))

    def __bool__(self) -> bool:
        return bool(self.inserts or self.updates)


@functools.cache
def _columns(model: type[Base]) -> tuple[tuple[str, str, ColumnDefault | None], ...]:
    """A model's columns: attribute name, column name and Python-side default (read once per model)."""
    return tuple((attribute.key, attribute.columns[0].name,
                  default if isinstance(default := attribute.columns[0].default, ColumnDefault) else None)
                 for attribute in sa_inspect(model).column_attrs)


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


class Journal(Protocol):
    async def write(self, entry: Entry, *, alone: bool = False) -> None:
        """Store ``entry``; returns once it is committed (raises a :class:`StoreError` if it is not).

        ``alone``: the writer knows of no other writer about to write (the only run in flight),
        so there is no commit to wait for and share.
        """
        ...

    async def close(self) -> None:
        """Write what is waiting, then stop."""
        ...


class WriteTurn:
    """On SQLite, the units of this process that write do so one at a time.

    SQLite has one write lock per file, and a connection waiting for it sleeps 1, 2, 5, 10... ms
    between tries. Writers of this process queue here instead: an ORM unit takes the turn at its
    first INSERT, UPDATE or DELETE and gives it back when it ends; the journal takes it for each
    commit. A task that holds the turn may take it again (a unit inside a unit). Reading never
    waits (WAL).
    """

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None
        self._depth = 0

    async def acquire(self) -> None:
        task = asyncio.current_task()
        if task is not None and self._owner is task:
            self._depth += 1
            return
        await self._lock.acquire()
        self._owner, self._depth = task, 1

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._owner = None
            self._lock.release()


def open_journal(engine: AsyncEngine, url: str, turn: WriteTurn, *, sqlite_path: str | None = None,
                 synchronous: str = "NORMAL") -> Journal:
    if sqlite_path is not None:
        return _SqliteJournal(url, turn, sqlite_path, engine.dialect, synchronous)
    return _CoreJournal(url, engine)


class _Drain:
    """Entries wait in a list; one task commits all that are waiting, then what came meanwhile.

    A writer that says it writes ``alone`` (no other writer is about to) and finds nothing
    waiting or being committed commits its entry itself, in its own task: with nobody to share a
    commit with, handing the entry to another task and back cost about as much as a SQLite
    commit. Writers in flight together share commits, which costs them less than one each.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._pending: list[tuple[Entry, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self._committing = False

    async def write(self, entry: Entry, *, alone: bool = False) -> None:
        if alone and not self._committing and not self._pending:
            await self._commit_alone(entry)
            return
        future = asyncio.get_running_loop().create_future()
        self._pending.append((entry, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="taskcanvas-journal")
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            # The writer is cancelled while its entry is written: it learns the outcome first,
            # so what it reads next is what the store holds.
            await asyncio.wait([future])
            raise

    async def close(self) -> None:
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _commit_alone(self, entry: Entry) -> None:
        # Cancelled here, the writer is cancelled before its transaction began (waiting for its
        # turn) or after it ended: what it reads next is what the store holds.
        self._committing = True
        try:
            await self._transaction([entry])
        except Exception as e:
            error = self._error(e)
            if error is e:
                raise
            raise error from e
        finally:
            self._committing = False
            if self._pending and (self._task is None or self._task.done()):
                self._task = asyncio.create_task(self._drain(), name="taskcanvas-journal")

    async def _drain(self) -> None:
        self._committing = True
        try:
            await self._drain_pending()
        finally:
            self._committing = False

    async def _drain_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self._transaction([entry for entry, _ in batch])
            except Exception as e:
                if len(batch) == 1:
                    _resolve(batch[0][1], self._error(e))
                    continue
                for entry, future in batch:  # find the entry that fails; the others are stored
                    try:
                        await self._transaction([entry])
                    except Exception as alone:
                        _resolve(future, self._error(alone))
                    else:
                        _resolve(future, None)
                continue
            for _, future in batch:
                _resolve(future, None)

    async def _transaction(self, entries: list[Entry]) -> None:
        raise NotImplementedError

    def _error(self, e: BaseException) -> BaseException:
        if isinstance(e, StoreError):
            return e
        if isinstance(e, sqlite3.Error):
            e = DBAPIError.instance("journal write", None, e, sqlite3.Error)
        return translate_error(e, self._url) or StoreError(f"writing to {self._url} failed: {e}")


def _resolve(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


# ---------------------------------------------------------------------------- SQLite
class _Statement:
    """A prepared INSERT or UPDATE with the parameter conversions its columns define."""

    def __init__(self, table: Table, columns: Sequence[str], dialect: Dialect, *, update: bool) -> None:
        self.columns = tuple(columns) + (("id",) if update else ())
        if update:
            assignments = ", ".join(f'"{name}" = ?' for name in columns)
            self.sql = f'UPDATE "{table.name}" SET {assignments} WHERE id = ?'
        else:  # quoted: some column names (a session's "references") are SQL keywords
            names = ", ".join(f'"{name}"' for name in columns)
            self.sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({", ".join("?" * len(columns))})'
        self._convert = [_converter(table.c[name].type, dialect) for name in self.columns]

    def row(self, values: Iterable[Any]) -> list[Any]:
        return [value if fn is None else fn(value) for fn, value in zip(self._convert, values, strict=True)]


def _converter(column_type: Any, dialect: Dialect) -> Any:
    """What turns a column's value into the parameter the ORM would bind, as one call: the ORM's
    own chain (a type decorator, then the dialect's type) for the columns every checkpoint writes
    cost more than the rest of building the row."""
    if isinstance(column_type, JSON):
        return _json_text
    if isinstance(column_type, UTCDateTime):
        to_utc = column_type.process_bind_param
        return lambda value: _sqlite_time(to_utc(value, dialect))
    if isinstance(column_type, Uuid) and column_type.as_uuid and not dialect.supports_native_uuid:
        return _uuid_hex
    return column_type.dialect_impl(dialect).bind_processor(dialect)


def _sqlite_time(value: datetime.datetime | None) -> str | None:
    """A UTC time (as :class:`UTCDateTime` binds it for SQLite) as SQLite keeps it: with microseconds."""
    return None if value is None else value.isoformat(" ", "microseconds")


def _uuid_hex(value: uuid.UUID | None) -> str | None:
    return None if value is None else value.hex


def _json_text(value: Any) -> str | None:
    """A JSON column's text as the ORM would write it (``None`` is SQL NULL), encoded by orjson:
    events and deltas are most of what the journal writes, and ``json.dumps`` was half its time.
    (Unlike ``json.dumps``, a NaN float is stored as ``null``, which is what JSON can say.)"""
    if value is None:
        return None
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # what orjson does not take (an int too big for 64 bits): the standard encoder
        return json.dumps(value)


class _SqliteJournal(_Drain):
    def __init__(self, url: str, turn: WriteTurn, path: str, dialect: Dialect, synchronous: str) -> None:
        super().__init__(url)
        self._turn = turn
        self._path = path
        self._dialect = dialect
        self._synchronous = synchronous
        self._statements: dict[tuple[str, tuple[str, ...], bool], _Statement] = {}
        self._connection: sqlite3.Connection | None = None
        self._checkpointer = WalCheckpointer(path, synchronous)

    async def close(self) -> None:
        await super().close()
        self._checkpointer.close()
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def _transaction(self, entries: list[Entry]) -> None:
        grouped: dict[_Statement, list[list[Any]]] = {}
        for entry in entries:
            for table, row in entry.inserts:
                statement = self._statement(table, tuple(row), update=False)
                grouped.setdefault(statement, []).append(statement.row(row.values()))
        updates = []
        for entry in entries:
            for table, key, values in entry.updates:
                statement = self._statement(table, tuple(values), update=True)
                updates.append((statement, statement.row((*values.values(), key))))
        connection = self._connection or self._connect()
        deadline = time.monotonic() + _LOCK_WAIT_SECONDS
        pause = 0.0005
        while True:
            await self._turn.acquire()
            try:
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
                    self._checkpointer.committed()
                    return
            finally:
                self._turn.release()
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.01)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA foreign_keys=ON")
        connection.execute(f"PRAGMA synchronous={self._synchronous}")
        # No busy handler (it would sleep on the event loop): this process's writers take turns,
        # and another process's write is waited for asynchronously.
        connection.execute("PRAGMA busy_timeout=0")
        self._connection = connection
        return connection

    def _statement(self, table: Table, columns: tuple[str, ...], *, update: bool) -> _Statement:
        key = (table.name, columns, update)
        statement = self._statements.get(key)
        if statement is None:
            statement = self._statements[key] = _Statement(table, columns, self._dialect, update=update)
        return statement


# ---------------------------------------------------------------------------- PostgreSQL
class _CoreJournal(_Drain):
    def __init__(self, url: str, engine: AsyncEngine) -> None:
        super().__init__(url)
        self._engine = engine

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
