"""SQLAlchemy's async engine over Python's ``sqlite3``, run on the event loop's own thread.

aiosqlite gives each connection a thread and sends every statement there and back: on a small
machine that hand-off costs more than the statement (about 1 ms against some 20 µs for a
primary-key read of a local file). A local SQLite file answers in microseconds, so here the
statement runs where it is awaited. The async interface SQLAlchemy needs is kept: each call
is a coroutine that completes without suspending.

What this gives up: a statement that waits for another *process's* write lock waits on the
loop (SQLite's busy handler). Writers in this process never do: they take the database's
asyncio write turn first (``store/db.py``), and the journal retries a locked commit
asynchronously.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterable
from typing import Any, cast

from sqlalchemy import pool, util
from sqlalchemy.connectors.asyncio import (
    AsyncAdapt_dbapi_connection,
    AsyncAdapt_dbapi_cursor,
    AsyncAdapt_dbapi_module,
    AsyncAdapt_dbapi_ss_cursor,
)
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.base import SQLiteExecutionContext
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine.url import URL

DRIVER = "sqlite+taskcanvas"


class _Cursor:
    """A ``sqlite3`` cursor behind the awaitable interface SQLAlchemy's adapter calls."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> _Cursor:
        return self

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, operation: str, parameters: Any = ()) -> _Cursor:
        self._cursor.execute(operation, parameters)
        return self

    async def executemany(self, operation: str, parameters: Iterable[Any]) -> _Cursor:
        self._cursor.executemany(operation, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def setinputsizes(self, *sizes: Any) -> None:
        return None

    async def nextset(self) -> None:
        return None

    async def close(self) -> None:
        self._cursor.close()

    async def __aiter__(self) -> AsyncIterator[Any]:  # streamed results (server-side cursors)
        for row in self._cursor:
            yield row


class _Connection:
    """A ``sqlite3`` connection behind the awaitable interface SQLAlchemy's adapter calls."""

    __slots__ = ("_connection",)

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def cursor(self) -> _Cursor:
        return _Cursor(self._connection.cursor())

    async def commit(self) -> None:
        self._connection.commit()

    async def rollback(self) -> None:
        self._connection.rollback()

    async def close(self) -> None:
        self._connection.close()


class _AdaptedCursor(AsyncAdapt_dbapi_cursor):
    __slots__ = ()


class _AdaptedServerSideCursor(AsyncAdapt_dbapi_ss_cursor):
    __slots__ = ()


class _AdaptedConnection(AsyncAdapt_dbapi_connection):
    __slots__ = ()
    _cursor_cls = _AdaptedCursor
    _ss_cursor_cls = _AdaptedServerSideCursor

    @property
    def isolation_level(self) -> str | None:
        level: str | None = self._connection._connection.isolation_level
        return level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._connection._connection.isolation_level = value

    def create_function(self, *args: Any, **kw: Any) -> None:
        self._connection._connection.create_function(*args, **kw)


class _DBAPI(AsyncAdapt_dbapi_module):
    """The module SQLAlchemy's dialect sees: ``sqlite3``'s names, and a ``connect`` giving adapted connections."""

    def __init__(self) -> None:
        super().__init__(sqlite3, dbapi_module=sqlite3)
        self.paramstyle = "qmark"
        for name in ("DatabaseError", "Error", "IntegrityError", "NotSupportedError", "OperationalError",
                     "ProgrammingError", "InterfaceError", "sqlite_version", "sqlite_version_info",
                     "PARSE_COLNAMES", "PARSE_DECLTYPES", "Binary"):
            setattr(self, name, getattr(sqlite3, name))

    def connect(self, *args: Any, **kw: Any) -> _AdaptedConnection:
        # The pool may close a connection from a finalizer on another thread; sqlite3 itself
        # is serialized, so the same-thread check would only turn that into an error.
        kw["check_same_thread"] = False
        return _AdaptedConnection(self, cast(Any, _Connection(sqlite3.connect(*args, **kw))))


class _ExecutionContext(SQLiteExecutionContext):
    def create_server_side_cursor(self) -> Any:
        return self._dbapi_connection.cursor(server_side=True)


class SQLiteDialect_taskcanvas(SQLiteDialect_pysqlite):
    driver = "taskcanvas"
    supports_statement_cache = True
    is_async = True
    supports_server_side_cursors = True
    execution_ctx_cls = _ExecutionContext

    @classmethod
    def import_dbapi(cls) -> Any:
        return _DBAPI()

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        return pool.AsyncAdaptedQueuePool

    def get_driver_connection(self, connection: Any) -> Any:
        return connection._connection

    def retrieve_dbapi_version(self, dbapi: Any) -> util.VersionInfo:
        return util.parse_version_string(sqlite3.sqlite_version)


registry.register(DRIVER.replace("+", "."), __name__, "SQLiteDialect_taskcanvas")
