"""An embedded taskcanvas server for benchmarks: its own data directory, an owner with a token,
agents imported, ``taskcanvas serve`` in a child process on a free loopback port.

The child is a real server process (the README's run command), so the benchmark's client and
the server each have a core, as a user's client and server would.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from taskcanvas.config import Settings
from taskcanvas.service.services import open_services

_NO_DELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
"""httpx writes a request in more than one send; with Nagle on, the second waits ~40 ms for
the server's delayed ACK, which would swamp every figure here."""


@dataclass
class BenchServer:
    url: str
    data_dir: Path
    token: str
    versions: dict[str, str] = field(default_factory=dict)
    """Agent title → the version id tasks are created from."""
    agents: dict[str, str] = field(default_factory=dict)
    """Agent title → its id (ragflow's ``agent_id``)."""
    process: subprocess.Popen[bytes] | None = None

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Coder-Session-Token": self.token}, timeout=120,
                            transport=httpx.HTTPTransport(socket_options=_NO_DELAY))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(data_dir: Path, extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASKCANVAS_", "OPENAI_", "ANTHROPIC_"))}
    env.update({"TASKCANVAS_DATA_DIR": str(data_dir), **extra})
    return env


async def _prepare(settings: Settings, canvases: Mapping[str, dict[str, Any]],
                   ) -> tuple[str, dict[str, str], dict[str, str]]:
    services = await open_services(settings, start=False)
    try:
        user = await services.accounts.create_user("bench", email="bench@example.com", role="owner")
        _, token = await services.accounts.create_token(user.id, "bench")
        principal = await services.accounts.principal_for(user.id)
        versions, agents = {}, {}
        for title, dsl in canvases.items():
            created = await services.agents.create(principal, title, dsl)
            versions[title], agents[title] = str(created.version.id), str(created.agent.id)
        return token, versions, agents
    finally:
        await services.close()


def start(data_dir: Path, canvases: Mapping[str, dict[str, Any]], *, extra_env: Mapping[str, str] | None = None,
          concurrency: int | None = None) -> BenchServer:
    """A server on a fresh data directory with ``canvases`` stored as agents (by title)."""
    env = server_env(data_dir, extra_env or {})
    token, versions, agents = asyncio.run(_prepare(Settings.load(env), canvases))
    port = free_port()
    command = [sys.executable, "-m", "taskcanvas", "serve", "--port", str(port), "--data-dir", str(data_dir)]
    if concurrency is not None:
        command += ["--concurrency", str(concurrency)]
    log = open(data_dir / "server.log", "ab")  # noqa: SIM115 - the child writes it until it stops
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = BenchServer(f"http://127.0.0.1:{port}", data_dir, token, versions, agents, process)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"the server did not start; see {data_dir / 'server.log'}")
        time.sleep(0.05)


def chain_canvas(n: int) -> dict[str, Any]:
    """``begin`` → ``n`` VariableAssigner ``set`` (each writes its index into ``env.counter``) → Message."""
    components: dict[str, Any] = {}

    def add(cid: str, name: str, params: dict[str, Any], down: list[str], up: list[str]) -> None:
        components[cid] = {"obj": {"component_name": name, "params": params}, "downstream": down, "upstream": up}

    ids = [f"VariableAssigner:{i}" for i in range(n)]
    add("begin", "Begin", {}, [ids[0]], [])
    for i, cid in enumerate(ids):
        add(cid, "VariableAssigner",
            {"variables": [{"variable": "env.counter", "operator": "set", "parameter": i + 1}]},
            [ids[i + 1] if i + 1 < n else "Message:done"], ["begin" if i == 0 else ids[i - 1]])
    add("Message:done", "Message", {"content": ["{env.counter}"], "stream": False}, [], [ids[-1]])
    return {"components": components, "globals": {"sys.query": "", "sys.user_id": "", "sys.conversation_turns": 0,
                                                   "sys.files": [], "sys.history": [], "env.counter": 0},
            "variables": {"counter": {"name": "counter", "type": "number", "value": 0}},
            "history": [], "path": [], "retrieval": []}


def postgres_database() -> str:
    url = os.environ.get("TASKCANVAS_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/taskcanvas_bench")
    base, _, name = url.rpartition("/")

    async def recreate() -> None:
        connection = await asyncpg.connect(f"{base}/postgres")
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    asyncio.run(recreate())
    return url
