"""Fixtures of the data tools' tests: a replay HTTP server on 127.0.0.1 and the guarded client."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator

import pytest

from taskcanvas.tools.http import GuardedClient, create_client
from tests.tools.data.support import LOOPBACK, ReplayServer


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    srv = ReplayServer()
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
async def http() -> AsyncIterator[GuardedClient]:
    async with create_client(LOOPBACK) as client:
        yield client
