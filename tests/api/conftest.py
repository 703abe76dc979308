from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.store.databases import BACKENDS
from tests.support.server import LiveServer, postgres_database_url, start_server

__all__ = ["postgres_database_url"]


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    """A running server on each backend, with users admin/alice/bob/audrey and the example agents."""
    yield from start_server(tmp_path, request.param, request)


@pytest.fixture
def sqlite_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    """The same on SQLite only: for tests whose subject is not the database."""
    yield from start_server(tmp_path, "sqlite", request)
