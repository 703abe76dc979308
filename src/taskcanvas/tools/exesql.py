"""ExeSQL: run the SQL a canvas or a model wrote against a database (ragflow ``agent/tools/exesql.py``,
spec §5.2).

As in ragflow: ``{references}`` in the SQL are replaced by their values (JSON for what is not
text); the SQL is split on ``;``; each statement loses Markdown fences (`````) and ``[ID:n]``
citations; a statement starting with INSERT, UPDATE or DELETE is answered "For security
reasons, INSERT, UPDATE, and DELETE statements are not supported."; a statement that fails is
reported as ``"SQL Execution Failed: <sql>\\n<error>"`` and the next one still runs; the first
statement that returns no row records "No record in the database!" and ends the run of
statements. ``json`` holds one entry per statement (its rows as objects, at most
``max_records``), ``formalized_content`` the results as Markdown tables (``pandas.to_markdown``'s
``pipe`` format, floats with 6 decimals, datetimes as dates) joined by blank lines; the model is
told ``formalized_content``.

What taskcanvas does differently, for safety:

- **Read-only by default.** Only statements that read — starting with SELECT, WITH, SHOW,
  EXPLAIN, DESCRIBE/DESC, VALUES or TABLE (and PRAGMA on SQLite) — run, each inside a read-only
  transaction (PostgreSQL ``BEGIN READ ONLY``, MySQL/MariaDB ``START TRANSACTION READ ONLY``,
  SQLite opened ``mode=ro`` with ``query_only``), so a write hidden in a CTE or a function fails
  in the database. Other statements (DDL, GRANT, SET, CALL, ...) are answered "For security
  reasons, only read-only statements (SELECT, WITH, SHOW, EXPLAIN, DESCRIBE) are supported."
  (ragflow runs them, and never commits). The node param ``allow_write: true`` lifts all of
  this, INSERT/UPDATE/DELETE included: every statement runs and is committed. The database
  user's own privileges stay the real boundary — give the canvas a read-only user.
- **The host goes through the SSRF guard** (:func:`taskcanvas.tools.http.check_host`, the HTTP
  policy's rules: private and loopback hosts only when the settings allow them) and the
  connection goes to the checked address, as ragflow's ``assert_host_is_safe`` does.
- **SQLite** (``db_type: sqlite``, not in ragflow): ``database`` is the path of an existing
  file inside a directory listed in the settings (``[exesql] sqlite_dirs = ["/srv/data"]``);
  without that list no SQLite file is opened, so a canvas cannot read taskcanvas's own store.
- Drivers: asyncpg for ``postgres``, aiomysql for ``mysql``/``mariadb``/``oceanbase``, the
  standard library for ``sqlite``. ``mssql``, ``IBM DB2`` and ``trino`` are refused when the
  canvas is loaded. A password may be empty (ragflow requires one).
- A statement that returns no result set (possible only with ``allow_write``) is reported as
  "Statement executed: N row(s) affected." instead of ragflow's "No record in the database!" (MySQL)
  or "no results to fetch" failure (PostgreSQL).
- A fence's language tag (```` ```sql ````) goes with the fence; ragflow leaves ``sql`` in front of
  the statement, which then fails.
- Values: integer columns with NULLs stay integers (pandas turns them into floats); dates, times,
  UUIDs, addresses and bytes become text in ``json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import decimal
import json
import logging
import math
import re
import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import Field, ValidationInfo, field_validator
from tabulate import tabulate

from taskcanvas.runtime.component import RunContext
from taskcanvas.runtime.state import RunState
from taskcanvas.runtime.stream import TextStream
from taskcanvas.tools.base import Tool, ToolMeta, ToolParams
from taskcanvas.tools.http import SsrfBlocked, check_host, run_policy

__all__ = ["ExeSQL", "ExeSQLParams"]

_log = logging.getLogger(__name__)

_META: ToolMeta = {
    "name": "execute_sql",
    "description": "This is a tool that can execute SQL.",
    "parameters": {"sql": {"type": "string", "description": "The SQL needs to be executed.",
                           "default": "{sys.query}", "required": True}},
}

_MYSQL_FAMILY = ("mysql", "mariadb", "oceanbase")
_RUNS = (*_MYSQL_FAMILY, "postgres", "sqlite")
_RAGFLOW_ONLY = ("mssql", "IBM DB2", "trino")

NO_RECORD = "No record in the database!"
WRITE_REFUSED = "For security reasons, INSERT, UPDATE, and DELETE statements are not supported."
READ_ONLY_REFUSED = ("For security reasons, only read-only statements (SELECT, WITH, SHOW, EXPLAIN, DESCRIBE) "
                     "are supported.")
_CONNECT_TIMEOUT = 10.0

_WRITE_START = re.compile(r"^(insert|update|delete)\b", re.IGNORECASE)
_READ_KEYWORDS = frozenset({"select", "with", "show", "explain", "describe", "desc", "values", "table"})
_LEADING_NOISE = re.compile(r"(?:\s+|\(|--[^\n]*(?:\n|$)|/\*(?![!+])[\s\S]*?\*/)*")
_MYSQL_NOISE = re.compile(r"(?:\s+|\(|#[^\n]*(?:\n|$)|--[^\n]*(?:\n|$)|/\*(?![!+])[\s\S]*?\*/)*")
_FIRST_WORD = re.compile(r"[A-Za-z]+")
_FENCE_TAG = re.compile(r"```[\w+-]+[ \t]*(?=\r?\n|$)")
"""A Markdown fence's language tag (```` ```sql ````), which ragflow leaves in the statement."""
_INTO_FILE = re.compile(r"\binto\s+(?:outfile|dumpfile)\b", re.IGNORECASE)


def _positive(value: Any, name: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} {value!r} is not supported: it is a positive whole number")
    return value


class ExeSQLParams(ToolParams):
    sql: Any = "{sys.query}"
    db_type: str = "mysql"
    database: str = Field(default="", validate_default=True)
    username: str = Field(default="", validate_default=True)
    host: str = Field(default="", validate_default=True)
    port: int = 3306
    password: str | None = ""
    max_records: int = 1024
    allow_write: bool = False
    """taskcanvas: run every statement (writes and DDL too) and commit; read-only when false."""

    @field_validator("db_type", mode="before")
    @classmethod
    def _known_db(cls, v: Any) -> Any:
        if v in _RAGFLOW_ONLY:
            raise ValueError(f"db_type {v!r} is not available in taskcanvas: use one of {', '.join(_RUNS)}")
        if v not in _RUNS:
            raise ValueError(f"db_type {v!r} is not supported: use one of {', '.join(_RUNS)}")
        return v

    @field_validator("database", mode="before")
    @classmethod
    def _database(cls, v: Any, info: ValidationInfo) -> Any:
        if not v:
            what = "the path of the SQLite file" if info.data.get("db_type") == "sqlite" else "the database name"
            raise ValueError(f"database must not be empty: it is {what}")
        return v

    @field_validator("host", "username", mode="before")
    @classmethod
    def _needed_unless_sqlite(cls, v: Any, info: ValidationInfo) -> Any:
        if not v and info.data.get("db_type", "sqlite") != "sqlite":
            what = "the database server's address" if info.field_name == "host" else "the user to connect as"
            raise ValueError(f"{info.field_name} must not be empty: it is {what}")
        return v or ""

    @field_validator("port", "max_records", mode="before")
    @classmethod
    def _positive_int(cls, v: Any, info: ValidationInfo) -> Any:
        if isinstance(v, str) and v.strip().isdigit():
            v = int(v)
        return _positive(v, str(info.field_name))

    @field_validator("allow_write", mode="before")
    @classmethod
    def _strict_bool(cls, v: Any) -> Any:
        if type(v) is not bool:
            raise ValueError(f"allow_write {v!r} is not supported: use true or false")
        return v


# --------------------------------------------------------------------------- the tool
class ExeSQL(Tool):
    component_name = "ExeSQL"
    Params = ExeSQLParams
    meta: ClassVar[ToolMeta] = _META
    timeout = 60.0

    def thoughts(self, state: RunState) -> str:
        return "Query sent—waiting for the data."

    async def call(self, ctx: RunContext, **args: Any) -> Any:
        params = self.params
        assert isinstance(params, ExeSQLParams)
        state = ctx.state
        sql = args.get("sql")
        if isinstance(sql, TextStream):
            sql = await sql.read()
        if not sql:
            raise ValueError("SQL for `ExeSQL` MUST not be empty.")
        sql = self._with_references(state, str(sql))

        session = await self._connect(ctx, params)
        results: list[Any] = []
        tables: list[str] = []
        try:
            for single_sql in sql.split(";"):
                single_sql = _FENCE_TAG.sub("", single_sql).replace("```", "").strip()
                if not single_sql:
                    continue
                single_sql = re.sub(r"\[ID:[0-9]+\]", "", single_sql)
                refusal = None if params.allow_write else _refusal(single_sql, params.db_type)
                if refusal:
                    results.append({"content": refusal})
                    tables.append(refusal)
                    continue
                try:
                    result = await session.execute(single_sql, params.max_records, write=params.allow_write)
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    # A failing statement does not end the node: earlier results stay, later ones run.
                    with contextlib.suppress(Exception):
                        await session.rollback()
                    msg = f"SQL Execution Failed: {single_sql}\n{_error_text(e)}"
                    results.append({"content": msg})
                    tables.append(msg)
                    continue
                if result.columns is None:
                    done = ("Statement executed." if result.rowcount < 0
                            else f"Statement executed: {result.rowcount} row(s) affected.")
                    results.append({"content": done})
                    tables.append(done)
                    continue
                if not result.rows:
                    results.append({"content": NO_RECORD})
                    break
                rows = [[_frame_value(v) for v in row] for row in result.rows]
                results.append([{name: _json_value(v) for name, v in zip(result.columns, row, strict=False)}
                                for row in rows])
                tables.append(_markdown(result.columns, rows))
        finally:
            await session.close()

        state.set_output(self.id, "json", results)
        state.set_output(self.id, "formalized_content", "\n\n".join(tables))
        return state.output(self.id, "formalized_content")

    # ------------------------------------------------------------------ helpers
    def _with_references(self, state: RunState, sql: str) -> str:
        """``{references}`` left in the SQL (a model's, or a node's nested ones) replaced by their values."""
        refs = self.text_refs_of(sql)
        for name, target in refs.items():
            value = state.get_variable_value(target)
            if isinstance(value, TextStream):
                value = value.text
            if not isinstance(value, str):
                try:
                    value = json.dumps(value, ensure_ascii=False)
                except (TypeError, ValueError):
                    value = str(value)
            state.set_input(self.id, name, value)
            sql = sql.replace("{" + name + "}", value)
        return sql

    async def _connect(self, ctx: RunContext, params: ExeSQLParams) -> _Session:
        if params.db_type == "sqlite":
            path = _sqlite_file(ctx, params.database)
            try:
                return await _SqliteSession.open(path, write=params.allow_write)
            except sqlite3.Error as e:
                raise ConnectionError(f"Database Connection Failed! \n{e}") from None
        host = params.host.strip()
        try:
            addresses = await check_host(host, run_policy(ctx), params.port)
        except SsrfBlocked as e:
            raise PermissionError(f"Database host '{host}' is not allowed: {e.reason}") from None
        failure: BaseException | None = None
        for address in addresses:
            try:
                if params.db_type == "postgres":
                    return await _PostgresSession.open(address, params)
                return await _MysqlSession.open(address, params)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                failure = e
        raise ConnectionError(f"Database Connection Failed! \n{_error_text(failure)}")



def _sqlite_file(ctx: RunContext, database: str) -> Path:
    settings = ctx.services.get("settings")
    section: Mapping[str, Any] = settings.section("exesql") if settings is not None else {}
    dirs = section.get("sqlite_dirs") or []
    if isinstance(dirs, str):
        dirs = [dirs]
    if not dirs:
        raise PermissionError(f"SQLite database '{database}' is not allowed: no directory is listed in "
                              "[exesql] sqlite_dirs of the taskcanvas settings")
    if database.startswith("file:"):
        raise ValueError(f"SQLite database '{database}' must be a file path, not a URI")
    path = Path(database).resolve()
    allowed = [Path(str(d)).resolve() for d in dirs]
    if not any(path.is_relative_to(d) for d in allowed):
        raise PermissionError(f"SQLite database '{database}' is not allowed: it is not inside a directory listed "
                              "in [exesql] sqlite_dirs")
    if not path.is_file():
        raise FileNotFoundError(f"SQLite database '{database}' does not exist")
    return path


def _refusal(sql: str, db_type: str) -> str | None:
    """Why a statement may not run on a read-only node, or ``None``."""
    if _WRITE_START.match(sql):
        return WRITE_REFUSED
    mysql = db_type in _MYSQL_FAMILY
    noise = (_MYSQL_NOISE if mysql else _LEADING_NOISE).match(sql)
    word = _FIRST_WORD.match(sql, noise.end() if noise else 0)
    keyword = word.group(0).lower() if word else ""
    if keyword in ("insert", "update", "delete"):
        return WRITE_REFUSED
    if keyword in _READ_KEYWORDS or (keyword == "pragma" and db_type == "sqlite"):
        if mysql and _INTO_FILE.search(sql):
            return READ_ONLY_REFUSED
        return None
    return READ_ONLY_REFUSED


def _error_text(e: BaseException | None) -> str:
    if e is None:
        return "no address to connect to"
    return str(e) or type(e).__name__


# --------------------------------------------------------------------------- values
def _frame_value(value: Any) -> Any:
    """A value as ragflow's DataFrame holds it: datetimes as dates (``%Y-%m-%d``), NaN as NULL."""
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _json_value(value: Any) -> Any:
    """A value ``json`` can hold (ragflow's ``convert_decimals``, and text for the rest)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, decimal.Decimal):
        return None if not value.is_finite() else float(value)
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.hex()
    if isinstance(value, (datetime.timedelta, uuid.UUID)):
        return str(value)
    return str(value)


def _markdown(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """``DataFrame.to_markdown(index=False, floatfmt=".6f")``."""
    return tabulate([[_cell(v) for v in row] for row in rows], headers=list(columns), tablefmt="pipe",
                    floatfmt=".6f", showindex=False)


def _cell(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return str(bytes(value))
    return value


# --------------------------------------------------------------------------- drivers
@dataclass
class _Result:
    columns: list[str] | None
    """The result set's column names; ``None`` when the statement returns no result set."""
    rows: list[Sequence[Any]]
    rowcount: int = -1


class _Session(Protocol):
    async def execute(self, sql: str, max_records: int, *, write: bool) -> _Result: ...

    async def rollback(self) -> None: ...

    async def close(self) -> None: ...


class _SqliteSession:
    """The standard library's sqlite3 in a worker thread; read-only: ``mode=ro`` and ``query_only``."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @classmethod
    async def open(cls, path: Path, *, write: bool) -> _SqliteSession:
        uri = f"{path.as_uri()}?mode={'rw' if write else 'ro'}"

        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(uri, uri=True, timeout=_CONNECT_TIMEOUT, check_same_thread=False,
                                   isolation_level=None)
            if not write:
                conn.execute("PRAGMA query_only = ON")
            return conn

        return cls(await asyncio.to_thread(connect))

    async def execute(self, sql: str, max_records: int, *, write: bool) -> _Result:
        def run() -> _Result:
            cursor = self._conn.execute(sql)
            try:
                if cursor.description is None:
                    return _Result(None, [], cursor.rowcount)
                return _Result([d[0] for d in cursor.description], cursor.fetchmany(max_records))
            finally:
                cursor.close()

        try:
            return await asyncio.to_thread(run)
        except asyncio.CancelledError:
            self._conn.interrupt()
            raise

    async def rollback(self) -> None:
        if self._conn.in_transaction:
            await asyncio.to_thread(self._conn.rollback)

    async def close(self) -> None:
        self._conn.interrupt()
        await asyncio.to_thread(self._conn.close)


class _PostgresSession:
    """asyncpg; each statement in its own transaction, ``READ ONLY`` unless writes are allowed."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    @classmethod
    async def open(cls, address: str, params: ExeSQLParams) -> _PostgresSession:
        import asyncpg  # type: ignore[import-untyped]

        conn = await asyncpg.connect(host=address, port=params.port, user=params.username,
                                     password=params.password or None, database=params.database,
                                     timeout=_CONNECT_TIMEOUT, server_settings={"application_name": "taskcanvas"})
        try:
            for name in ("json", "jsonb"):  # decoded like psycopg2 does
                await conn.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
        except BaseException:
            conn.terminate()
            raise
        return cls(conn)

    async def execute(self, sql: str, max_records: int, *, write: bool) -> _Result:
        conn = self._conn
        transaction = conn.transaction(readonly=not write)
        await transaction.start()
        try:
            statement = await conn.prepare(sql)
            attributes = statement.get_attributes()
            if not attributes:
                await statement.fetch()
                result = _Result(None, [], _status_count(statement.get_statusmsg()))
            else:
                cursor = await statement.cursor()
                records = await cursor.fetch(max_records)
                result = _Result([a.name for a in attributes], [tuple(r) for r in records])
        except BaseException:
            with contextlib.suppress(Exception):
                await transaction.rollback()
            raise
        if write:
            await transaction.commit()
        else:
            await transaction.rollback()
        return result

    async def rollback(self) -> None:
        return None  # every statement's transaction is already over

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self._conn.close(), timeout=5)
        except asyncio.CancelledError:
            self._conn.terminate()
            raise
        except Exception:
            self._conn.terminate()


class _MysqlSession:
    """aiomysql with an unbuffered cursor (only ``max_records`` rows are kept); each statement in a
    ``READ ONLY`` transaction unless writes are allowed (then autocommit)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    @classmethod
    async def open(cls, address: str, params: ExeSQLParams) -> _MysqlSession:
        import aiomysql  # type: ignore[import-untyped]

        conn = await aiomysql.connect(host=address, port=params.port, user=params.username,
                                      password=params.password or "", db=params.database, charset="utf8mb4",
                                      connect_timeout=_CONNECT_TIMEOUT, autocommit=params.allow_write)
        return cls(conn)

    async def execute(self, sql: str, max_records: int, *, write: bool) -> _Result:
        import aiomysql

        conn = self._conn
        async with conn.cursor(aiomysql.SSCursor) as cursor:
            if not write:
                await cursor.execute("START TRANSACTION READ ONLY")
            try:
                await cursor.execute(sql)
                if cursor.description is None:
                    result = _Result(None, [], cursor.rowcount)
                else:
                    rows = await cursor.fetchmany(max_records)
                    result = _Result([d[0] for d in cursor.description], list(rows))
            finally:
                if not write:
                    with contextlib.suppress(Exception):
                        await cursor.close()  # reads what is left of the result
                    await conn.rollback()
        return result

    async def rollback(self) -> None:
        await self._conn.rollback()

    async def close(self) -> None:
        self._conn.close()


def _status_count(status: str | None) -> int:
    """Rows affected, from a PostgreSQL command tag (``UPDATE 3``, ``INSERT 0 1``)."""
    last = (status or "").rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else -1
