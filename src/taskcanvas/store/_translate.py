"""Driver exceptions → :mod:`taskcanvas.store.errors`, in one place for SQLite and PostgreSQL.

Only what the store can explain is translated (cannot connect, schema missing, a unique rule
broken); anything else is a bug and keeps its traceback for the log.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, IntegrityError

from taskcanvas.store.errors import DatabaseUnreachable, SchemaNotReady, StoreConflict, StoreError

# SQLSTATE classes: 08 connection exception, 28 invalid authorization; 3D000 no such database,
# 57P01-57P03 the server shutting down or not accepting connections yet.
_UNREACHABLE_STATES = ("08", "28", "3D000", "57P01", "57P02", "57P03")
_UNDEFINED_TABLE = "42P01"
_SQLITE_UNREACHABLE = ("unable to open database file", "disk i/o error", "database is locked")


def translate_error(exc: BaseException, url: str) -> StoreError | None:
    """The store error ``exc`` means for the database at ``url``; ``None`` when it is not one."""
    if isinstance(exc, StoreError):
        return None
    if isinstance(exc, IntegrityError):
        return StoreConflict(f"the change conflicts with what is stored: {_first_line(exc.orig)}")
    if isinstance(exc, (OSError, TimeoutError)):
        return DatabaseUnreachable(url, _os_reason(exc))
    if not isinstance(exc, DBAPIError):
        return None
    reason = _first_line(exc.orig)
    state = str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or "")
    if state.startswith(_UNREACHABLE_STATES) or reason.lower().startswith(_SQLITE_UNREACHABLE):
        return DatabaseUnreachable(url, reason)
    if exc.connection_invalidated:
        return DatabaseUnreachable(url, f"the connection was lost ({reason})")
    if state == _UNDEFINED_TABLE or reason.startswith("no such table"):
        return SchemaNotReady(url, reason)
    return None


def _first_line(exc: BaseException | None) -> str:
    text = str(exc or "").strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out while connecting"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return str(exc) or type(exc).__name__
