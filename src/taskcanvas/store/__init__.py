"""Persistence: the database, its models and queries, migrations and the SQL checkpoint sink.

Layer rules: the store imports ``runtime``, ``dsl``, ``config`` and ``errors``, never the
components, services or faces above it. Queries live in :mod:`~taskcanvas.store.repositories`
only; models are in :mod:`~taskcanvas.store.models`; relationships are ``lazy="raise"``, so
every query says what it loads.
"""

from taskcanvas.store.checkpoints import CheckpointPolicy, SqlCheckpointSink, load_state
from taskcanvas.store.db import Database
from taskcanvas.store.errors import (
    CheckpointError,
    DatabaseUnreachable,
    MigrationFailed,
    RecordNotFound,
    SchemaNotReady,
    StoreConflict,
    StoreError,
    UnsupportedDatabase,
)

__all__ = [
    "CheckpointError",
    "CheckpointPolicy",
    "Database",
    "DatabaseUnreachable",
    "MigrationFailed",
    "RecordNotFound",
    "SchemaNotReady",
    "SqlCheckpointSink",
    "StoreConflict",
    "StoreError",
    "UnsupportedDatabase",
    "load_state",
]
