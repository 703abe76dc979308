"""Alembic's environment for taskcanvas: run only through :mod:`taskcanvas.store.migrations`.

``upgrade()`` hands over an open connection (``config.attributes["connection"]``), so no
``alembic.ini`` and no URL are read here, and the migration runs in the caller's transaction.
``render_as_batch`` lets later revisions alter tables on SQLite, which has almost no ALTER.
"""

from __future__ import annotations

from alembic import context

from taskcanvas.store.models import Base

_connection = context.config.attributes.get("connection")
if _connection is None:
    raise RuntimeError("taskcanvas migrations run through taskcanvas.store.migrations.upgrade(), "
                       "or `taskcanvas db upgrade`; not through the alembic command")

context.configure(connection=_connection, target_metadata=Base.metadata, render_as_batch=True, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
