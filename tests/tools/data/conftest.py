"""Fixtures of the data tools' tests: the guarded client, allowed to reach the ``replay`` server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from taskcanvas.tools.http import GuardedClient, create_client
from tests.tools.data.support import LOOPBACK


@pytest.fixture
async def http() -> AsyncIterator[GuardedClient]:
    async with create_client(LOOPBACK) as client:
        yield client
