"""Run events and checkpoint deltas as WITHOUT ROWID tables on SQLite.

Both are written once per finished component and read by their primary key. As rowid tables
each insert touched two B-trees (the rows by rowid, the primary key's index); clustered on the
primary key it touches one, and each component's commit writes fewer pages to the WAL
(docs/benchmarks.md). PostgreSQL has no rowid: nothing changes there.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 02:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("run_events", "checkpoint_deltas")


def upgrade() -> None:
    _rebuild(with_rowid=False)


def downgrade() -> None:
    _rebuild(with_rowid=True)


def _rebuild(*, with_rowid: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in _TABLES:
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_with_rowid": with_rowid}):
            pass
