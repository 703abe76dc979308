"""ExeSQL through the engine against real databases: SQLite in tmp_path, and the PostgreSQL and MariaDB
servers on 127.0.0.1 (skipped when unreachable outside CI; in CI, ``CI=true``, they must be there)."""

from __future__ import annotations

import os
import socket
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from taskcanvas.dsl.errors import DslError
from taskcanvas.runtime.cancel import CancelToken
from taskcanvas.runtime.component import RunContext
from taskcanvas.tools.exesql import NO_RECORD, READ_ONLY_REFUSED, WRITE_REFUSED, ExeSQL
from tests.support.canvas import build, cpn, make_canvas
from tests.tools.data.support import run_tool, settings

RAGFLOW_SCHEMA = {
    "type": "function",
    "function": {
        "name": "execute_sql",
        "description": "This is a tool that can execute SQL.",
        "parameters": {"type": "object",
                       "properties": {"sql": {"type": "string", "description": "The SQL needs to be executed."}},
                       "required": ["sql"]},
    },
}


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _need(port: int, what: str) -> None:
    if _reachable(port):
        return
    message = f"{what} is not reachable on 127.0.0.1:{port}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; CI must start it")
    pytest.skip(message)


def _table() -> str:
    return f"exesql_{uuid.uuid4().hex[:12]}"


# --------------------------------------------------------------------------- SQLite
@pytest.fixture
def sqlite_db(tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL, stock INTEGER);
        INSERT INTO items VALUES (1, 'apple', 1.5, 10), (2, 'pear', 2.25, NULL), (3, 'fig', 3.0, 7);
    """)
    conn.commit()
    conn.close()
    return path


def _sqlite(path: Path, **extra: Any) -> dict[str, Any]:
    return {"db_type": "sqlite", "database": str(path), **extra}


def _sqlite_settings(path: Path) -> Any:
    return settings(exesql={"sqlite_dirs": [str(path.parent)]})


async def test_sqlite_select_tables_and_json(sqlite_db: Path, http: Any) -> None:
    sql = "```sql\nSELECT id, name, price, stock FROM items ORDER BY id [ID:3];\nSELECT count(*) AS n FROM items\n```"
    turn = await run_tool(ExeSQL, _sqlite(sqlite_db, sql=sql), http=http, config=_sqlite_settings(sqlite_db))
    assert turn.error is None, turn.error
    assert turn.output("tool", "json") == [
        [{"id": 1, "name": "apple", "price": 1.5, "stock": 10},
         {"id": 2, "name": "pear", "price": 2.25, "stock": None},
         {"id": 3, "name": "fig", "price": 3.0, "stock": 7}],
        [{"n": 3}],
    ]
    assert turn.output("tool", "formalized_content") == (
        "|   id | name   |    price |   stock |\n"
        "|-----:|:-------|---------:|--------:|\n"
        "|    1 | apple  | 1.500000 |      10 |\n"
        "|    2 | pear   | 2.250000 |         |\n"
        "|    3 | fig    | 3.000000 |       7 |\n"
        "\n"
        "|   n |\n"
        "|----:|\n"
        "|   3 |")
    assert turn.text == turn.output("tool", "formalized_content")
    assert turn.finished("tool")["inputs"] == {"sql": sql}


async def test_sqlite_sql_from_the_query_and_references(sqlite_db: Path, http: Any) -> None:
    turn = await run_tool(ExeSQL, _sqlite(sqlite_db, sql="SELECT name FROM items WHERE id = {sys.query}"),
                          http=http, config=_sqlite_settings(sqlite_db), query="2")
    assert turn.output("tool", "json") == [[{"name": "pear"}]]
    # The default sql is {sys.query}.
    turn = await run_tool(ExeSQL, _sqlite(sqlite_db), http=http, config=_sqlite_settings(sqlite_db),
                          query="SELECT name FROM items WHERE id = 3")
    assert turn.output("tool", "json") == [[{"name": "fig"}]]


async def test_no_record_stops_and_failures_continue(sqlite_db: Path, http: Any) -> None:
    sql = ("SELECT * FROM missing; SELECT name FROM items WHERE id = 1; SELECT name FROM items WHERE id = 99; "
           "SELECT name FROM items WHERE id = 2")
    turn = await run_tool(ExeSQL, _sqlite(sqlite_db, sql=sql), http=http, config=_sqlite_settings(sqlite_db))
    failed = "SQL Execution Failed: SELECT * FROM missing\nno such table: missing"
    assert turn.output("tool", "json") == [{"content": failed}, [{"name": "apple"}], {"content": NO_RECORD}]
    # As in ragflow, "No record" is in json only, and the statements after it do not run.
    assert turn.output("tool", "formalized_content") == failed + "\n\n| name   |\n|:-------|\n| apple  |"
    assert turn.error is None


async def test_read_only_refusals(sqlite_db: Path, http: Any) -> None:
    sql = ("INSERT INTO items VALUES (9, 'x', 1, 1); update items set stock = 0; DELETE FROM items; "
           "DROP TABLE items; -- sneaky\n delete from items; "
           "WITH gone AS (DELETE FROM items RETURNING id) SELECT * FROM gone; SELECT count(*) AS n FROM items")
    turn = await run_tool(ExeSQL, _sqlite(sqlite_db, sql=sql), http=http, config=_sqlite_settings(sqlite_db))
    json_out = turn.output("tool", "json")
    assert json_out[:5] == [{"content": WRITE_REFUSED}] * 3 + [{"content": READ_ONLY_REFUSED},
                                                                 {"content": WRITE_REFUSED}]
    # A write hidden in a CTE passes the keyword check and is refused by the database itself.
    assert json_out[5]["content"].startswith("SQL Execution Failed: WITH gone AS")
    assert json_out[6] == [{"n": 3}]
    with sqlite3.connect(sqlite_db) as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (3,)


async def test_allow_write_runs_and_commits(sqlite_db: Path, http: Any) -> None:
    sql = ("INSERT INTO items VALUES (4, 'kiwi', 0.5, 3); CREATE TABLE notes (t TEXT); "
           "SELECT name FROM items WHERE id = 4")
    turn = await run_tool(ExeSQL, _sqlite(sqlite_db, sql=sql, allow_write=True), http=http,
                          config=_sqlite_settings(sqlite_db))
    assert turn.output("tool", "json") == [{"content": "Statement executed: 1 row(s) affected."},
                                           {"content": "Statement executed."},
                                           [{"name": "kiwi"}]]
    with sqlite3.connect(sqlite_db) as conn:
        assert conn.execute("SELECT name FROM items WHERE id = 4").fetchone() == ("kiwi",)


async def test_max_records(sqlite_db: Path, http: Any) -> None:
    turn = await run_tool(ExeSQL, _sqlite(sqlite_db, sql="SELECT id FROM items ORDER BY id", max_records=2),
                          http=http, config=_sqlite_settings(sqlite_db))
    assert turn.output("tool", "json") == [[{"id": 1}, {"id": 2}]]


async def test_sqlite_files_must_be_allowed_and_exist(sqlite_db: Path, tmp_path: Path, http: Any) -> None:
    turn = await run_tool(ExeSQL, _sqlite(sqlite_db, sql="SELECT 1"), http=http, config=settings())
    assert turn.error is not None
    assert "is not allowed: no directory is listed in [exesql] sqlite_dirs" in turn.output("tool", "_ERROR")

    other = tmp_path.parent / "elsewhere.db"
    turn = await run_tool(ExeSQL, _sqlite(other, sql="SELECT 1"), http=http, config=_sqlite_settings(sqlite_db))
    assert "is not inside a directory listed in [exesql] sqlite_dirs" in turn.output("tool", "_ERROR")

    missing = tmp_path / "missing.db"
    turn = await run_tool(ExeSQL, _sqlite(missing, sql="SELECT 1"), http=http, config=_sqlite_settings(sqlite_db))
    assert turn.output("tool", "_ERROR") == f"SQLite database '{missing}' does not exist"
    assert not missing.exists()


async def test_empty_sql_is_an_error(sqlite_db: Path, http: Any) -> None:
    turn = await run_tool(ExeSQL, _sqlite(sqlite_db, sql=""), http=http, config=_sqlite_settings(sqlite_db))
    assert turn.output("tool", "_ERROR") == "SQL for `ExeSQL` MUST not be empty."


@pytest.mark.parametrize(("params", "message"), [
    ({"db_type": "mssql", "database": "d", "host": "h", "username": "u"},
     "db_type 'mssql' is not available in taskcanvas"),
    ({"db_type": "oracle", "database": "d", "host": "h", "username": "u"}, "db_type 'oracle' is not supported"),
    ({"db_type": "mysql", "database": "", "host": "h", "username": "u"}, "database must not be empty"),
    ({"db_type": "postgres", "database": "d", "host": "", "username": "u"}, "host must not be empty"),
    ({"db_type": "mysql", "database": "d", "host": "h", "username": ""}, "username must not be empty"),
    ({"db_type": "mysql", "database": "d", "host": "h", "username": "u", "max_records": 0},
     "max_records 0 is not supported"),
])
def test_params_checked_at_load(params: dict[str, Any], message: str) -> None:
    dsl = make_canvas({"begin": cpn("Begin", down=["tool"]), "tool": cpn("ExeSQL", params)})
    from taskcanvas.components import builtin_registry

    registry = builtin_registry()
    registry.register(ExeSQL)
    with pytest.raises(DslError) as err:
        build(dsl, registry)
    assert message in str(err.value)


def test_function_schema_is_ragflows() -> None:
    from taskcanvas.components import builtin_registry

    registry = builtin_registry()
    registry.register(ExeSQL)
    dsl = make_canvas({"begin": cpn("Begin", down=["tool"]),
                       "tool": cpn("ExeSQL", {"db_type": "sqlite", "database": "x.db"})})
    tool = build(dsl, registry).canvas.components["tool"]
    assert isinstance(tool, ExeSQL)
    assert tool.function_schema() == RAGFLOW_SCHEMA


# --------------------------------------------------------------------------- the host guard
async def test_private_host_refused_without_policy(http: Any) -> None:
    from taskcanvas.config import Settings
    from taskcanvas.tools.http import HttpPolicy, create_client

    params = {"db_type": "postgres", "host": "127.0.0.1", "port": 5432, "database": "test", "username": "postgres",
              "sql": "SELECT 1"}
    async with create_client(HttpPolicy()) as strict:
        turn = await run_tool(ExeSQL, params, http=strict, config=Settings())
    assert turn.output("tool", "_ERROR") == ("Database host '127.0.0.1' is not allowed: "
                                             "127.0.0.1 is not a public address")
    turn = await run_tool(ExeSQL, {**params, "host": "169.254.169.254"}, http=http)
    assert "Database host '169.254.169.254' is not allowed" in turn.output("tool", "_ERROR")


# --------------------------------------------------------------------------- PostgreSQL and MariaDB
Sql = Callable[[str], Awaitable[None]]


@pytest.fixture
async def pg() -> AsyncIterator[Sql]:
    _need(5432, "PostgreSQL")
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="test")

    async def run(sql: str) -> None:
        await conn.execute(sql)

    try:
        yield run
    finally:
        await conn.close()


@pytest.fixture
async def maria() -> AsyncIterator[Sql]:
    _need(3306, "MariaDB")
    import aiomysql  # type: ignore[import-untyped]

    conn = await aiomysql.connect(host="127.0.0.1", port=3306, user="root", password="", db="test",
                                  autocommit=True)

    async def run(sql: str) -> None:
        async with conn.cursor() as cur:
            await cur.execute(sql)

    try:
        yield run
    finally:
        conn.close()


_PG = {"db_type": "postgres", "host": "127.0.0.1", "port": 5432, "database": "test", "username": "postgres"}
_MARIA = {"db_type": "mariadb", "host": "127.0.0.1", "port": 3306, "database": "test", "username": "root"}


async def test_postgres_select_types_and_read_only(pg: Sql, http: Any) -> None:
    table = _table()
    await pg(f"CREATE TABLE {table} (id int PRIMARY KEY, name text, amount numeric(8,2), at timestamptz, "
             "day date, meta jsonb, score double precision)")
    try:
        await pg(f"INSERT INTO {table} VALUES (1, 'a', 12.50, '2024-03-01 10:30:00+00', '2024-03-02', "
                 "'{\"k\": [1, 2]}', 0.25), (2, 'b', NULL, NULL, NULL, NULL, 'NaN')")
        sql = (f"SELECT id, name, amount, at, day, meta, score FROM {table} ORDER BY id; "
               f"DELETE FROM {table}; DROP TABLE {table}; "
               f"WITH gone AS (DELETE FROM {table} RETURNING id) SELECT * FROM gone; "
               f"SELECT nextval('nope_seq'); SELECT count(*) AS n FROM {table}")
        turn = await run_tool(ExeSQL, {**_PG, "sql": sql}, http=http)
        assert turn.error is None, turn.error
        out = turn.output("tool", "json")
        assert out[0] == [
            {"id": 1, "name": "a", "amount": 12.5, "at": "2024-03-01", "day": "2024-03-02", "meta": {"k": [1, 2]},
             "score": 0.25},
            {"id": 2, "name": "b", "amount": None, "at": None, "day": None, "meta": None, "score": None},
        ]
        assert out[1] == {"content": WRITE_REFUSED}
        assert out[2] == {"content": READ_ONLY_REFUSED}
        assert out[3]["content"].startswith(f"SQL Execution Failed: WITH gone AS (DELETE FROM {table}")
        assert "read-only transaction" in out[3]["content"]
        assert out[4]["content"].startswith("SQL Execution Failed: SELECT nextval('nope_seq')")
        assert out[5] == [{"n": 2}]  # the failures did not poison the session
        table_md = turn.output("tool", "formalized_content").split("\n\n")[0]
        assert table_md == (
            "|   id | name   |    amount | at         | day        | meta          |    score |\n"
            "|-----:|:-------|----------:|:-----------|:-----------|:--------------|---------:|\n"
            "|    1 | a      | 12.500000 | 2024-03-01 | 2024-03-02 | {'k': [1, 2]} | 0.250000 |\n"
            "|    2 | b      |           |            |            |               |          |")
    finally:
        await pg(f"DROP TABLE IF EXISTS {table}")


async def test_postgres_no_record_and_allow_write(pg: Sql, http: Any) -> None:
    table = _table()
    await pg(f"CREATE TABLE {table} (id int)")
    try:
        turn = await run_tool(ExeSQL, {**_PG, "sql": f"SELECT id FROM {table}; SELECT 1 AS one"}, http=http)
        assert turn.output("tool", "json") == [{"content": NO_RECORD}]
        assert turn.output("tool", "formalized_content") == ""

        sql = (f"INSERT INTO {table} VALUES (1), (2); UPDATE {table} SET id = id + 10; "
               f"SELECT id FROM {table} ORDER BY id")
        turn = await run_tool(ExeSQL, {**_PG, "sql": sql, "allow_write": True}, http=http)
        assert turn.output("tool", "json") == [{"content": "Statement executed: 2 row(s) affected."},
                                               {"content": "Statement executed: 2 row(s) affected."},
                                               [{"id": 11}, {"id": 12}]]
        turn = await run_tool(ExeSQL, {**_PG, "sql": f"SELECT count(*) AS n FROM {table}"}, http=http)
        assert turn.output("tool", "json") == [[{"n": 2}]]  # committed
    finally:
        await pg(f"DROP TABLE IF EXISTS {table}")


async def test_postgres_connection_failure(http: Any) -> None:
    _need(5432, "PostgreSQL")
    turn = await run_tool(ExeSQL, {**_PG, "database": f"nope_{uuid.uuid4().hex[:8]}", "sql": "SELECT 1"}, http=http)
    error = turn.output("tool", "_ERROR")
    assert error.startswith("Database Connection Failed! \n")
    assert "does not exist" in error


async def test_mariadb_select_and_read_only(maria: Sql, http: Any) -> None:
    table = _table()
    await maria(f"CREATE TABLE {table} (id INT PRIMARY KEY, name VARCHAR(20), price DECIMAL(8,2), at DATETIME)")
    try:
        await maria(f"INSERT INTO {table} VALUES (1, 'x', 9.99, '2024-05-06 07:08:09'), (2, 'y', NULL, NULL)")
        sql = (f"SELECT id, name, price, at FROM {table} ORDER BY id; REPLACE INTO {table} VALUES (3, 'z', 1, NULL); "
               f"SELECT * FROM {table} INTO OUTFILE '/tmp/{table}.txt'; "
               f"# comment\nDROP TABLE {table}; SHOW TABLES LIKE '{table}'; SELECT count(*) AS n FROM {table}")
        turn = await run_tool(ExeSQL, {**_MARIA, "sql": sql}, http=http)
        assert turn.error is None, turn.error
        out = turn.output("tool", "json")
        assert out[0] == [{"id": 1, "name": "x", "price": 9.99, "at": "2024-05-06"},
                          {"id": 2, "name": "y", "price": None, "at": None}]
        assert out[1] == {"content": READ_ONLY_REFUSED}
        assert out[2] == {"content": READ_ONLY_REFUSED}
        assert out[3] == {"content": READ_ONLY_REFUSED}
        assert out[4] == [{f"Tables_in_test ({table})": table}]
        assert out[5] == [{"n": 2}]
        assert not Path(f"/tmp/{table}.txt").exists()
        assert turn.output("tool", "formalized_content").startswith(
            "|   id | name   |    price | at         |\n"
            "|-----:|:-------|---------:|:-----------|\n"
            "|    1 | x      | 9.990000 | 2024-05-06 |\n")
    finally:
        await maria(f"DROP TABLE IF EXISTS {table}")


async def test_mariadb_read_only_transaction_blocks_writes(maria: Sql, http: Any) -> None:
    table = _table()
    await maria(f"CREATE TABLE {table} (id INT)")
    try:
        # A function call that writes passes the keyword check; the READ ONLY transaction refuses it.
        fn = f"{table}_fn"
        await maria(f"CREATE FUNCTION {fn}() RETURNS INT MODIFIES SQL DATA BEGIN INSERT INTO {table} VALUES (1); "
                    "RETURN 1; END")
        try:
            turn = await run_tool(ExeSQL, {**_MARIA, "sql": f"SELECT {fn}() AS r"}, http=http)
            content = turn.output("tool", "json")[0]["content"]
            assert content.startswith(f"SQL Execution Failed: SELECT {fn}() AS r\n(1792,")
        finally:
            await maria(f"DROP FUNCTION IF EXISTS {fn}")
        turn = await run_tool(ExeSQL, {**_MARIA, "sql": f"SELECT count(*) AS n FROM {table}"}, http=http)
        assert turn.output("tool", "json") == [[{"n": 0}]]

        sql = f"INSERT INTO {table} VALUES (5); SELECT id FROM {table}"
        turn = await run_tool(ExeSQL, {**_MARIA, "sql": sql, "allow_write": True}, http=http)
        assert turn.output("tool", "json") == [{"content": "Statement executed: 1 row(s) affected."}, [{"id": 5}]]
    finally:
        await maria(f"DROP TABLE IF EXISTS {table}")


async def test_mariadb_as_a_models_tool(maria: Sql, http: Any) -> None:
    """call_for_model: the model is told formalized_content; a failure is the result, as text."""
    table = _table()
    await maria(f"CREATE TABLE {table} (id INT)")
    try:
        await maria(f"INSERT INTO {table} VALUES (7)")
        from taskcanvas.components import builtin_registry

        registry = builtin_registry()
        registry.register(ExeSQL)
        dsl = make_canvas({"begin": cpn("Begin", down=["tool"]), "tool": cpn("ExeSQL", _MARIA)})
        engine = build(dsl, registry, http=http, services={"settings": settings()})
        state = engine.new_session()
        ctx = RunContext(state=state, canvas=engine.canvas, cancel=CancelToken(), http=http,
                         services={"settings": settings()})
        tool = engine.canvas.components["tool"]
        assert isinstance(tool, ExeSQL)
        result = await tool.call_for_model(ctx, {"sql": f"SELECT id FROM {table}"})
        assert result == "|   id |\n|-----:|\n|    7 |"
        result = await tool.call_for_model(ctx, {"sql": ""})
        assert result == "SQL for `ExeSQL` MUST not be empty."
    finally:
        await maria(f"DROP TABLE IF EXISTS {table}")


async def test_mariadb_wrong_password(http: Any) -> None:
    _need(3306, "MariaDB")
    turn = await run_tool(ExeSQL, {**_MARIA, "username": f"nobody_{uuid.uuid4().hex[:6]}", "password": "x",
                                   "sql": "SELECT 1"}, http=http)
    error = turn.output("tool", "_ERROR")
    assert error.startswith("Database Connection Failed! \n(")
    assert "Access denied for user" in error
