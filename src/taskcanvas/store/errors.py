"""What the store raises on purpose; every message names the database without its password.

    TaskcanvasError
    └── StoreError                    the database could not do what was asked
        ├── UnsupportedDatabase       a URL taskcanvas cannot run on (driver, scheme)
        ├── DatabaseUnreachable       cannot connect: refused, unknown host, no such database, auth
        ├── SchemaNotReady            tables missing or older than this taskcanvas: run `taskcanvas db upgrade`
        ├── MigrationFailed           an upgrade stopped; the database stays at the revision it reached
        ├── RecordNotFound            a row a write refers to does not exist (a run to append events to)
        ├── StoreConflict             a unique rule broken (a name taken) or two writers racing
        └── CheckpointError           stored checkpoints that cannot be turned back into a state
"""

from __future__ import annotations

from taskcanvas.errors import TaskcanvasError


class StoreError(TaskcanvasError):
    """Base of the store's errors; ``str()`` is the complete message."""


class UnsupportedDatabase(StoreError):
    """The database URL names a backend or driver taskcanvas does not run on."""


class DatabaseUnreachable(StoreError):
    """No connection could be made (or kept) to the database."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"cannot reach the database {url}: {reason}")


class SchemaNotReady(StoreError):
    """The database lacks the tables this taskcanvas expects."""

    def __init__(self, url: str, detail: str) -> None:
        self.url = url
        super().__init__(f"the database {url} does not have taskcanvas's schema ({detail}); "
                         "run `taskcanvas db upgrade`")


class MigrationFailed(StoreError):
    """An Alembic upgrade raised; nothing past the failing revision was applied."""


class RecordNotFound(StoreError):
    """A write referred to a row that does not exist."""


class StoreConflict(StoreError):
    """A write broke a unique rule, or raced another writer of the same rows."""


class CheckpointError(StoreError):
    """A session's checkpoints cannot be rebuilt into a state."""
