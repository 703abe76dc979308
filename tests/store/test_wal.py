"""The journal's write-ahead log is copied into the SQLite file by a thread, beside the commits."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

from taskcanvas.store import Database
from taskcanvas.store.journal import Entry
from taskcanvas.store.migrations import upgrade
from taskcanvas.store.models import User

_THREAD = "taskcanvas-wal-checkpoint"


def _in_database_file(path: Path) -> set[str]:
    """The usernames the database file itself holds, not counting what is still only in the log."""
    connection = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return {name for (name,) in connection.execute("SELECT username FROM users")}
    except sqlite3.DatabaseError:  # no table yet, or read mid-copy (immutable means without locks)
        return set()
    finally:
        connection.close()


async def _write_users(database: Database, names: list[str]) -> None:
    for name in names:
        entry = Entry()
        entry.add(User(username=name))
        await database.journal.write(entry, alone=True)


async def test_committed_rows_reach_the_database_file_while_the_log_is_far_from_full(tmp_path: Path) -> None:
    path = tmp_path / "tc.db"
    names = [f"user{i}" for i in range(30)]
    async with Database(f"sqlite:///{path}") as database:
        await upgrade(database)
        # 30 small commits: a few dozen pages, far below the 1000 at which a commit copies the log itself
        await _write_users(database, names)
        deadline = time.monotonic() + 10
        while not set(names) <= _in_database_file(path) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert set(names) <= _in_database_file(path), "the thread copies the log after every 10 commits"


async def test_closing_the_database_stops_the_thread(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    database = Database(f"sqlite:///{tmp_path / 'tc.db'}")
    await upgrade(database)
    await _write_users(database, [f"user{i}" for i in range(10)])
    started = [t for t in set(threading.enumerate()) - before if t.name == _THREAD]
    assert len(started) == 1
    await database.dispose()
    assert not started[0].is_alive()
