"""A real taskcanvas server on 127.0.0.1 for HTTP tests, with users and tokens ready.

``LiveServer`` runs the ASGI app under uvicorn in a thread of its own (its own event loop), on
SQLite in the test's directory or on a PostgreSQL database made for the test. Tests talk to it
over HTTP only, as any client would. The ``server`` fixture (tests/api/conftest.py) gives one
per backend with four users: ``admin`` (owner), ``alice`` and ``bob`` (members), ``audrey``
(auditor), each with an API token, and the example agents imported.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy.engine import make_url

from taskcanvas.api import create_app
from taskcanvas.config import Settings
from taskcanvas.service.auth import PasswordHasher
from taskcanvas.service.services import import_examples, open_services
from taskcanvas.store.repositories import UserRepository
from tests.store.databases import POSTGRES_URL, admin, run_blocking

USERS = {"admin": "owner", "alice": "member", "bob": "member", "audrey": "auditor"}
PASSWORD = "correct horse battery"


@dataclass
class LiveServer:
    url: str
    data_dir: Path
    env: dict[str, str]
    tokens: dict[str, str] = field(default_factory=dict)
    user_ids: dict[str, str] = field(default_factory=dict)
    agents: dict[str, Any] = field(default_factory=dict)
    """Example agents by title: ``{"id": ..., "version_id": ...}``."""

    def client(self, user: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = dict(kwargs.pop("headers", {}))
        if user is not None:
            headers["Coder-Session-Token"] = self.tokens[user]
        return httpx.Client(base_url=self.url, headers=headers, timeout=kwargs.pop("timeout", 30), **kwargs)

    def wait_for_task(self, user: str, task_id: str, *, until: Any, timeout: float = 20.0) -> dict[str, Any]:
        """Poll ``GET /api/v2/tasks/me/<id>`` until ``until(task_json)`` holds."""
        deadline = time.monotonic() + timeout
        with self.client(user) as c:
            while True:
                task = c.get(f"/api/v2/tasks/me/{task_id}").json()
                if until(task) or time.monotonic() > deadline:
                    return dict(task)
                time.sleep(0.05)


class _Thread:
    """uvicorn serving ``app`` on a free port in a background thread."""

    def __init__(self, app: Any) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                                    lifespan="on", ws="none"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def settings_for(data_dir: Path, extra_env: Mapping[str, str] | None = None) -> Settings:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKCANVAS_", "OPENAI_", "ANTHROPIC_"))}
    env.update({"TASKCANVAS_DATA_DIR": str(data_dir), **(extra_env or {})})
    return Settings.load(env)


@functools.cache
def _password_hash() -> str:
    """argon2 is slow on purpose (~0.2 s a hash here): hash the shared test password once per process."""
    return PasswordHasher().hash(PASSWORD)


async def _prepare(settings: Settings, server: LiveServer) -> None:
    services = await open_services(settings, start=False)
    try:
        for name, role in USERS.items():
            user = await services.accounts.create_user(name, email=f"{name}@example.com", role=role)
            async with services.database.session() as s:
                await UserRepository(s).set_password_hash(user.id, _password_hash())
            _, token = await services.accounts.create_token(user.id, "tests")
            server.tokens[name], server.user_ids[name] = token, str(user.id)
        for agent in await import_examples(services):
            owner = await services.accounts.principal_for(agent.owner_id)
            latest = await services.agents.latest(owner, agent.id)
            server.agents[agent.title] = {"id": str(agent.id), "version_id": str(latest.version.id)}
    finally:
        await services.close()


@pytest.fixture
def postgres_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A PostgreSQL database of its own for one server test (dropped afterwards)."""
    base = make_url(POSTGRES_URL)
    name = f"taskcanvas_srv_{uuid.uuid4().hex[:12]}"
    try:
        run_blocking(admin(base, f'CREATE DATABASE "{name}"'))
    except Exception as e:
        message = f"PostgreSQL is not usable at {base.render_as_string(hide_password=True)} ({e})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI must run the server tests on PostgreSQL", pytrace=False)
        pytest.skip(message)
    try:
        yield base.set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)
    finally:
        run_blocking(admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def start_server(tmp_path: Path, backend: str, request: pytest.FixtureRequest,
                 extra_env: Mapping[str, str] | None = None) -> Iterator[LiveServer]:
    env = dict(extra_env or {})
    if backend == "postgresql":
        env["TASKCANVAS_DATABASE_URL"] = request.getfixturevalue("postgres_database_url")
    data_dir = tmp_path / "data"
    settings = settings_for(data_dir, env)
    live = LiveServer(url="", data_dir=data_dir, env=dict(settings.env))
    asyncio.run(_prepare(settings, live))
    thread = _Thread(create_app(settings))
    live.url = thread.start()
    try:
        yield live
    finally:
        thread.stop()
