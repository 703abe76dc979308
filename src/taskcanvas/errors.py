"""The root of every error taskcanvas raises on purpose.

    TaskcanvasError
    ├── dsl.errors.DslError            a canvas that cannot be loaded or run (one issue per problem)
    ├── store.errors.StoreError        the database is unreachable, not migrated, or refused a write
    ├── service.errors.ServiceError    a request the service refuses (not found, forbidden, invalid, ...)
    └── runtime.errors.RunError        a run that could not go on
        ├── ComponentFailed            a component ended with an error nobody handled
        ├── ComponentTimedOut          a component ran past its time limit
        └── RunCancelled               someone asked the run to stop

Each carries a message written for the person who will read it; faces (CLI, HTTP) print
``str(error)`` and never a traceback.
"""

from __future__ import annotations


class TaskcanvasError(Exception):
    """Base class; ``str(err)`` is a complete, user-facing message."""
