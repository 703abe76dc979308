"""WAL checkpoints of the journal's SQLite file, copied on a thread of their own.

A checkpoint copies what the write-ahead log holds into the database file and syncs both files.
Left to SQLite, the commit that takes the log past 1000 pages does it, on the event loop: about
13 ms once every ~150 commits of a run's components on the benchmark machine, a sixth of a run's
time at concurrency 1. Here a thread copies the log every few commits with a PASSIVE checkpoint,
which takes no lock a writer waits for, and ``sqlite3`` lets go of the GIL while it copies and
syncs. When a commit does reach SQLite's limit, little is left to copy (a few ms instead of ~13).
The thread's syncs slow the commits made meanwhile, so what is gained shows where the event loop
has other work to do (docs/durability.md has the figures).

SQLite's own checkpoint at that limit stays on: a log starts again from its beginning only at a
commit that finds it wholly copied, which a thread copying beside a stream of commits rarely
leaves behind, so it is what keeps the log's size bounded. What a commit survives does not
change (``synchronous`` applies to this connection's syncs as to the journal's).
"""

from __future__ import annotations

import logging
import sqlite3
import threading

__all__ = ["WalCheckpointer"]

_log = logging.getLogger(__name__)

_CLOSE_WAIT_SECONDS = 10.0
_EVERY = 10
"""Commits between two copies: every 50 gained nothing at concurrency 16 (docs/durability.md)."""


class WalCheckpointer:
    """Copies the log of the SQLite file at ``path`` after every 10 commits it is told of."""

    def __init__(self, path: str, synchronous: str) -> None:
        self._path = path
        self._synchronous = synchronous
        self._commits = 0
        self._wake = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None

    def committed(self) -> None:
        """A commit was made to the file (called on the event loop's thread)."""
        self._commits += 1
        if self._commits < _EVERY:
            return
        self._commits = 0
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="taskcanvas-wal-checkpoint", daemon=True)
            self._thread.start()
        self._wake.set()

    def close(self) -> None:
        """Stop the thread once the checkpoint it is copying, if any, is done."""
        self._closing = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(_CLOSE_WAIT_SECONDS)
            self._thread = None

    def _work(self) -> None:
        # Housekeeping: whatever fails here, the log is still copied at commits, as without this thread.
        try:
            connection = sqlite3.connect(self._path, isolation_level=None)
            connection.execute(f"PRAGMA synchronous={self._synchronous}")
        except sqlite3.Error as e:
            _log.warning("cannot open %s to copy its write-ahead log: %s", self._path, e)
            return
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._closing:
                    return
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as e:
                    _log.warning("copying the write-ahead log of %s failed: %s", self._path, e)
        finally:
            connection.close()
