"""The database from a URL or the settings; driver errors become store errors without secrets."""

from __future__ import annotations

import asyncio
import datetime
import re
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import URL

from taskcanvas.config import Settings
from taskcanvas.store import (
    Database,
    DatabaseUnreachable,
    SchemaNotReady,
    StoreConflict,
    StoreError,
    UnsupportedDatabase,
)
from taskcanvas.store.db import database_url, normalize_url
from taskcanvas.store.journal import Entry
from taskcanvas.store.models import RunEvent, User
from taskcanvas.store.repositories import UserRepository
from tests.store.factories import make_world


@pytest.mark.parametrize(("given", "driver"), [
    ("postgresql://u:p@db.example/tc", "postgresql+asyncpg"),
    ("postgres://u@db.example/tc", "postgresql+asyncpg"),
    ("postgresql+asyncpg://u@db.example/tc", "postgresql+asyncpg"),
    ("sqlite:///var/tc.db", "sqlite+taskcanvas"),
    ("sqlite+aiosqlite:////abs/tc.db", "sqlite+taskcanvas"),
])
def test_urls_get_their_async_driver(given: str, driver: str) -> None:
    assert normalize_url(given).drivername == driver


@pytest.mark.parametrize(("given", "needle"), [
    ("mysql://root:pw@db/tc", "cannot use the database driver 'mysql'"),
    ("postgresql+psycopg2://u@db/tc", "cannot use the database driver 'postgresql+psycopg2'"),
    ("sqlite://", "in-memory SQLite"),
    ("sqlite:///:memory:", "in-memory SQLite"),
])
def test_unusable_urls_are_refused_clearly(given: str, needle: str) -> None:
    with pytest.raises(UnsupportedDatabase, match=re.escape(needle)) as caught:
        normalize_url(given)
    assert "pw" not in str(caught.value)


def test_an_unparsable_url_is_not_echoed() -> None:
    with pytest.raises(UnsupportedDatabase, match="expected postgresql") as caught:
        normalize_url("no way:s3cret")
    assert "s3cret" not in str(caught.value)


def test_the_default_is_a_file_in_the_data_directory(tmp_path: Path) -> None:
    url = database_url(Settings.load({"TASKCANVAS_DATA_DIR": str(tmp_path / "data")}))
    assert url.drivername == "sqlite+taskcanvas"
    assert url.database == str((tmp_path / "data" / "taskcanvas.db").resolve())


def test_the_variable_then_the_file_choose_another_database(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[database]\nurl = "postgresql://from-file@db/tc"\n')
    env = {"TASKCANVAS_DATA_DIR": str(tmp_path)}
    assert database_url(Settings.load(env)).username == "from-file"
    env["TASKCANVAS_DATABASE_URL"] = "postgresql://from-env@db/tc"
    url = database_url(Settings.load(env))
    assert (url.drivername, url.username) == ("postgresql+asyncpg", "from-env")
    assert Database.from_settings(Settings.load(env)).backend == "postgresql"


async def test_an_unreachable_server_is_named_without_its_password() -> None:
    database = Database("postgresql://tc:s3cret@127.0.0.1:1/tc")
    with pytest.raises(DatabaseUnreachable) as caught:
        await database.ping()
    message = str(caught.value)
    assert message.startswith("cannot reach the database postgresql+asyncpg://tc:***@127.0.0.1:1/tc: ")
    assert "s3cret" not in message
    assert "s3cret" not in repr(database)


async def test_a_missing_postgres_database_is_unreachable_with_the_reason(postgres_url: URL) -> None:
    name = f"missing_{uuid.uuid4().hex[:8]}"
    async with Database(postgres_url.set(database=name)) as database:
        with pytest.raises(DatabaseUnreachable, match=f'database "{name}" does not exist'):
            await database.ping()


async def test_sqlite_makes_its_directory_and_runs_in_wal_with_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "tc.db"
    async with Database(f"sqlite:///{path}") as database:
        for _ in range(2):  # every pooled connection, not just the first
            async with database.connect() as connection:
                assert (await connection.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
                assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar() == 1
    assert path.exists()


async def test_sqlite_answers_on_the_loop_thread_without_a_thread_per_connection(tmp_path: Path) -> None:
    import threading

    before = threading.active_count()
    async with Database(f"sqlite:///{tmp_path / 'tc.db'}") as database:
        async with database.session() as s:
            await s.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
            await s.execute(text("INSERT INTO t VALUES (1, 'one')"))
        readers = [database.reading() for _ in range(3)]
        units = [await r.__aenter__() for r in readers]  # three pooled connections at once
        assert [(await s.execute(text("SELECT v FROM t"))).scalar() for s in units] == ["one"] * 3
        for r in reversed(readers):
            await r.__aexit__(None, None, None)
        async with database.connect() as connection:  # a streamed result reads the same rows
            assert [row.v async for row in await connection.stream(text("SELECT v FROM t"))] == ["one"]
        assert threading.active_count() == before

async def test_a_database_without_the_schema_says_to_upgrade(empty_database: Database) -> None:
    with pytest.raises(SchemaNotReady, match=r"run `taskcanvas db upgrade`"):
        async with empty_database.session() as s:
            await UserRepository(s).by_username("nobody")


async def test_a_unit_of_work_commits_or_rolls_back(database: Database) -> None:
    async with database.session() as s:
        await UserRepository(s).create("kept")
    with pytest.raises(LookupError):
        async with database.session() as s:
            await UserRepository(s).create("dropped")
            raise LookupError("the caller's own error passes through unchanged")
    async with database.session() as s:
        names = (await s.scalars(select(User.username))).all()
    assert names == ["kept"]


async def test_a_reading_unit_sees_one_snapshot(database: Database) -> None:
    async with database.session() as s:
        await UserRepository(s).create("first")
    async with database.reading() as r:
        before = (await r.scalars(select(User.username))).all()
        async with database.session() as s:
            await UserRepository(s).create("second")
        # A commit made while the unit reads stays out of it: its rows agree with each other.
        during = (await r.scalars(select(User.username))).all()
    async with database.reading() as r:
        after = sorted((await r.scalars(select(User.username))).all())
    assert before == during == ["first"]
    assert after == ["first", "second"]


async def test_a_unique_rule_broken_is_a_conflict(database: Database) -> None:
    async with database.session() as s:
        await UserRepository(s).create("ada")
    with pytest.raises(StoreConflict, match="conflicts with what is stored"):
        async with database.session() as s:
            await UserRepository(s).create("ada")


async def _writing_unit(database: Database, user_id: uuid.UUID, writing: asyncio.Event,
                        finish: asyncio.Event) -> None:
    """An ORM unit that has written, so holds the write turn (the row's lock on PostgreSQL), until ``finish``."""
    async with database.session() as s:
        row = await s.get(User, user_id)
        assert row is not None
        row.name = "unit"
        await s.flush()
        writing.set()
        await finish.wait()


@pytest.mark.parametrize("alone", [False, True], ids=["shared commit", "alone"])
async def test_a_journal_write_waits_for_a_unit_that_is_writing(database: Database, alone: bool) -> None:
    """Writers of one process (an ORM unit, the journal) take turns: neither fails, the later one lands last."""
    async with database.session() as s:
        user = await UserRepository(s).create("turns")
    order: list[str] = []
    writing, finish = asyncio.Event(), asyncio.Event()

    async def unit() -> None:
        await _writing_unit(database, user.id, writing, finish)
        order.append("unit")

    async def journal() -> None:
        await writing.wait()
        entry = Entry()
        entry.update(User, user.id, name="journal")
        await database.journal.write(entry, alone=alone)
        order.append("journal")

    tasks = [asyncio.create_task(unit()), asyncio.create_task(journal())]
    await asyncio.sleep(0.2)
    assert order == [], "the journal's commit waits while the unit is writing"
    finish.set()
    await asyncio.gather(*tasks)
    assert order == ["unit", "journal"]
    async with database.reading() as s:
        stored = await s.get(User, user.id)
    assert stored is not None and stored.name == "journal"


async def test_a_write_alone_that_fails_loses_nothing_else(database: Database) -> None:
    """A writer alone commits its entry itself; its failure is its own, and writers that came
    meanwhile are committed after it."""
    async with database.session() as s:
        user = await UserRepository(s).create("alone")
        taken = await UserRepository(s).create("taken")
    clash, rename = Entry(), Entry()
    clash.update(User, user.id, username=taken.username)
    rename.update(User, taken.id, name="renamed")
    results = await asyncio.gather(database.journal.write(clash, alone=True), database.journal.write(rename),
                                   return_exceptions=True)
    assert isinstance(results[0], StoreConflict) and results[1] is None
    async with database.reading() as s:
        assert (await s.get(User, user.id)).username == "alone"  # type: ignore[union-attr]
        assert (await s.get(User, taken.id)).name == "renamed"  # type: ignore[union-attr]


async def test_a_writer_alone_cancelled_before_its_turn_stores_nothing(database: Database) -> None:
    async with database.session() as s:
        user = await UserRepository(s).create("patient")
    holding, release = asyncio.Event(), asyncio.Event()

    holder = asyncio.create_task(_writing_unit(database, user.id, holding, release))
    await holding.wait()
    entry = Entry()
    entry.update(User, user.id, name="journal")
    writer = asyncio.create_task(database.journal.write(entry, alone=True))
    await asyncio.sleep(0.05)
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writer
    release.set()
    await holder
    async with database.reading() as s:
        assert (await s.get(User, user.id)).name == "unit"  # type: ignore[union-attr]


async def test_the_journal_stores_a_row_as_the_orm_does(database: Database) -> None:
    """Readers through the ORM, and SQL comparing stored values, see the same row whoever wrote it."""
    world = await make_world(database)
    on_the_second = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    for seq, when in enumerate((on_the_second, on_the_second.replace(microsecond=123)), start=1):
        async with database.session() as s:
            s.add(RunEvent(run_id=world.run_id, seq=2 * seq - 1, name="orm", payload={"n": 1}, created_at=when))
        entry = Entry()
        entry.insert(RunEvent, run_id=world.run_id, seq=2 * seq, name="journal", payload={"n": 1}, created_at=when)
        await database.journal.write(entry)
    async with database.reading() as s:
        stored = (await s.execute(text("SELECT run_id, created_at FROM run_events ORDER BY seq"))).all()
        rows = (await s.scalars(select(RunEvent).order_by(RunEvent.seq))).all()
    assert stored[0] == stored[1] and stored[2] == stored[3]
    assert [row.created_at for row in rows] == [on_the_second] * 2 + [on_the_second.replace(microsecond=123)] * 2
    naive = Entry()
    naive.insert(RunEvent, run_id=world.run_id, seq=9, name="naive", payload={},
                 created_at=datetime.datetime(2026, 1, 2))
    with pytest.raises(StoreError, match="naive datetime"):
        await database.journal.write(naive)
