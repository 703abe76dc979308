"""The remote sandbox against a fake ragflow sandbox executor on 127.0.0.1."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from taskcanvas.config import ConfigError, Settings
from taskcanvas.tools.sandbox import (
    RESULT_MARKER,
    ArtifactStore,
    LocalSandbox,
    RemoteSandbox,
    SandboxError,
    from_settings,
    sandbox_services,
)
from tests.support.replay import Recorded, ReplayServer, Reply


def _b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def _run(request: Recorded) -> Reply:
    """What ragflow's executor_manager answers to ``/run`` when the code ran."""
    return Reply(body={
        "status": "success",
        "stdout": "log line\n",
        "stderr": "",
        "exit_code": 0,
        "time_used_ms": 12.5,
        "artifacts": [{"name": "chart.png", "mime_type": "image/png", "size": 4, "content_b64": _b64(b"\x89PNG")}],
        "result": {"present": True, "value": {"echo": request.json()["arguments"]}, "type": "json"},
    })


@pytest.fixture
def executor(replay: ReplayServer) -> ReplayServer:
    """A fake ragflow sandbox executor: answers ``POST /run`` (tests route other answers)."""
    replay.route("POST", "/run", _run)
    return replay


@pytest.fixture
async def remote(executor: ReplayServer) -> AsyncIterator[RemoteSandbox]:
    sb = RemoteSandbox(executor.base + "/", timeout=5)
    yield sb
    await sb.aclose()


async def test_request_and_answer_follow_the_executor_api(executor: ReplayServer, remote: RemoteSandbox) -> None:
    res = await remote.run("function main(args) { return args }", "javascript", {"n": 1, "s": "x"})
    [req] = executor.requests
    sent = req.json()
    assert req.path == "/run"
    assert base64.b64decode(sent["code_b64"]).decode() == "function main(args) { return args }"
    assert sent["language"] == "nodejs"
    assert sent["arguments"] == {"n": 1, "s": "x"}
    assert res.stdout == "log line\n" and res.stderr == "" and res.exit_code == 0
    assert res.result.present and res.result.value == {"echo": {"n": 1, "s": "x"}}
    [art] = res.artifacts
    assert (art.name, art.content, art.mime_type, art.size) == ("chart.png", b"\x89PNG", "image/png", 4)
    assert res.metadata["provider"] == "remote" and res.metadata["status"] == "success"
    assert res.metadata["elapsed"] == pytest.approx(0.0125)


async def test_python_aliases(executor: ReplayServer, remote: RemoteSandbox) -> None:
    await remote.run("def main(): return 1", "python3", None)
    await remote.run("def main(): return 1", "Python", {})
    assert [r.json()["language"] for r in executor.requests] == ["python", "python"]
    assert executor.requests[0].json()["arguments"] == {}
    with pytest.raises(SandboxError, match="unsupported language"):
        await remote.run("x", "go", {})


async def test_a_failed_execution_is_a_result(executor: ReplayServer, remote: RemoteSandbox) -> None:
    executor.route("POST", "/run", Reply(200, {
        "status": "program_error", "stdout": "", "stderr": "Traceback ...\nValueError: boom", "exit_code": 1,
        "runtime_error_type": "nonzero_exit", "artifacts": []}))
    res = await remote.run("def main(): raise ValueError('boom')", "python", {})
    assert res.exit_code == 1 and "ValueError: boom" in res.stderr
    assert not res.result.present and res.artifacts == []


async def test_an_older_executor_leaves_the_result_line_in_stdout(executor: ReplayServer,
                                                                   remote: RemoteSandbox) -> None:
    payload = _b64(json.dumps({"present": True, "value": [1, 2], "type": "json"}))
    executor.route("POST", "/run", Reply(200, {"stdout": f"hello\n{RESULT_MARKER}{payload}\n", "stderr": ""}))
    res = await remote.run("def main(): return [1, 2]", "python", {})
    assert res.stdout == "hello\n"
    assert res.result.present and res.result.value == [1, 2]


async def test_http_errors_and_bad_answers_are_sandbox_errors(executor: ReplayServer, remote: RemoteSandbox) -> None:
    executor.route("POST", "/run", Reply(422, {"detail": [{"loc": ["body", "language"], "msg": "bad language"}]}))
    with pytest.raises(SandboxError, match=r"HTTP 422.*bad language"):
        await remote.run("x", "python", {})
    executor.route("POST", "/run", Reply(200, b"<html>gateway</html>"))
    with pytest.raises(SandboxError, match="not JSON"):
        await remote.run("x", "python", {})
    executor.route("POST", "/run", Reply(200, {}))
    with pytest.raises(SandboxError, match="There is no response from sandbox"):
        await remote.run("x", "python", {})


async def test_a_slow_executor_times_out(executor: ReplayServer) -> None:
    executor.route("POST", "/run", lambda request: replace(_run(request), delay=1.0))
    sb = RemoteSandbox(executor.base, timeout=0.3)
    try:
        with pytest.raises(SandboxError, match=r"did not answer within 0.3 seconds"):
            await sb.run("x", "python", {})
    finally:
        await sb.aclose()


async def test_an_unreachable_executor() -> None:
    sb = RemoteSandbox("http://127.0.0.1:9", timeout=2)
    try:
        with pytest.raises(SandboxError, match="cannot be reached"):
            await sb.run("x", "python", {})
    finally:
        await sb.aclose()


# --------------------------------------------------------------------------- configuration
def _settings(tmp_path: Path, table: dict[str, Any] | None) -> Settings:
    return Settings(data_dir=tmp_path, raw={"sandbox": table} if table is not None else {})


async def test_from_settings(tmp_path: Path, executor: ReplayServer) -> None:
    local = from_settings(_settings(tmp_path, None))
    assert isinstance(local, LocalSandbox) and local.timeout == 30 and local.memory_mb == 512
    tuned = from_settings(_settings(tmp_path, {"provider": "local", "timeout": 5, "memory_mb": 256}))
    assert isinstance(tuned, LocalSandbox) and tuned.timeout == 5 and tuned.memory_mb == 256
    remote = from_settings(_settings(tmp_path, {"provider": "remote", "base_url": executor.base, "timeout": 7}))
    try:
        assert isinstance(remote, RemoteSandbox) and remote.timeout == 7
        # The executor's host comes from the configuration, so the guard lets it through (loopback here).
        assert (await remote.run("def main(): return 1", "python", {})).result.present
    finally:
        await remote.aclose()
    services = sandbox_services(_settings(tmp_path, None))
    assert isinstance(services["artifacts"], ArtifactStore)
    assert services["artifacts"].root == tmp_path / "artifacts"


@pytest.mark.parametrize(("table", "message"), [
    ({"provider": "docker"}, "provider 'docker' is not supported"),
    ({"provider": "remote"}, "needs base_url"),
    ({"provider": "remote", "base_url": "ftp://x"}, "not an http"),
    ({"timeout": 0}, "timeout must be a number greater than 0"),
    ({"memory_mb": "lots"}, "memory_mb must be a number"),
    ({"isolate_network": "yes"}, "isolate_network must be true or false"),
    ({"provider": "remote", "base_url": "http://x:9385", "python": "/usr/bin/python3"}, "does not use: python"),
    ({"timeuot": 5}, "does not use: timeuot"),
])
def test_bad_sandbox_settings(tmp_path: Path, table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        from_settings(_settings(tmp_path, table))
