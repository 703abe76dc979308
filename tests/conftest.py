from collections.abc import Iterator

import pytest

from tests.support.canvas import FIXTURES
from tests.support.replay import ReplayServer


def pytest_report_header(config: pytest.Config) -> str:
    return f"ragflow fixtures: {FIXTURES} ({'found' if FIXTURES.exists() else 'MISSING'})"


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    """A running :class:`~tests.support.replay.ReplayServer` on 127.0.0.1 (no routes yet), stopped afterwards."""
    with ReplayServer() as server:
        yield server
