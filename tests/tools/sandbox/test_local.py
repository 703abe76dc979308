"""The local sandbox with real child processes: python3 and, when installed, node."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from taskcanvas.tools.sandbox import RESULT_MARKER, LocalSandbox, SandboxError, StructuredResult, extract_result
from taskcanvas.tools.sandbox.local import SAFE_PATH, _Capture

NODE = shutil.which("node", path=SAFE_PATH) or shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed: JavaScript runs need Node.js")


@pytest.fixture
def work() -> Iterator[Path]:
    """A work_dir the per-run user of a root server can reach (pytest's tmp_path is private)."""
    path = Path(tempfile.mkdtemp(prefix="taskcanvas-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def sandbox(work: Path) -> AsyncIterator[LocalSandbox]:
    sb = LocalSandbox(timeout=20, work_dir=work)
    yield sb
    await sb.aclose()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            return not any(line.startswith("State:") and line.split()[1] in ("Z", "X") for line in f)
    except FileNotFoundError:
        return False


async def _gone(pid: int, seconds: float = 3.0) -> bool:
    for _ in range(int(seconds / 0.05)):
        if not _alive(pid):
            return True
        await asyncio.sleep(0.05)
    return not _alive(pid)


# --------------------------------------------------------------------------- results
async def test_python_main_gets_arguments_and_its_return_value_comes_back(sandbox: LocalSandbox) -> None:
    code = ("def main(a, b, flag, missing):\n"
            "    print('working on it')\n"
            "    return {'sum': a + b, 'flag': flag, 'missing': missing, 'pair': (1, 2)}\n")
    res = await sandbox.run(code, "python", {"a": 1, "b": 2.5, "flag": True, "missing": None})
    assert res.exit_code == 0, res.stderr
    assert res.result.present
    assert res.result.value == {"sum": 3.5, "flag": True, "missing": None, "pair": [1, 2]}
    assert res.stdout == "working on it\n"  # the result line is taken out
    assert res.stderr == ""
    assert res.metadata["provider"] == "local" and res.metadata["language"] == "python"


async def test_text_printed_without_a_newline_does_not_hide_the_result(sandbox: LocalSandbox) -> None:
    code = "def main():\n    print('no newline', end='')\n    return 'ok'\n"
    res = await sandbox.run(code, "python3", {})
    assert res.result.value == "ok"
    assert res.stdout == "no newline\n"


async def test_a_forged_marker_line_stays_output(sandbox: LocalSandbox) -> None:
    code = "def main():\n    print('__RAGFLOW_RESULT__:not-base64!')\n    return None\n"
    res = await sandbox.run(code, "python", {})
    assert res.result.present and res.result.value is None
    assert res.stdout == "__RAGFLOW_RESULT__:not-base64!\n"


async def test_an_async_python_main_is_awaited(sandbox: LocalSandbox) -> None:
    res = await sandbox.run("async def main(x):\n    return [x, x]\n", "python", {"x": "y"})
    assert res.result.value == ["y", "y"]


async def test_a_failing_script_reports_its_traceback(sandbox: LocalSandbox) -> None:
    res = await sandbox.run("def main():\n    print('before')\n    raise ValueError('boom')\n", "python", {})
    assert res.exit_code == 1
    assert not res.result.present
    assert "ValueError: boom" in res.stderr
    assert res.artifacts == []


async def test_a_script_without_main_says_so(sandbox: LocalSandbox) -> None:
    res = await sandbox.run("x = 1\n", "python", {})
    assert res.exit_code == 1
    assert "main() must be defined" in res.stderr


@needs_node
@pytest.mark.parametrize("code", [
    "async function main(args) { console.log('log line'); return {double: args.n * 2}; }\n"
    "module.exports = { main };",
    "function main(args) { console.log('log line'); return {double: args.n * 2}; }",  # not exported
    "const main = async (args) => { console.log('log line'); return {double: args.n * 2}; };",
    "export async function main(args) { console.log('log line'); return {double: args.n * 2}; }",  # ES module
    "export default async function (args) { console.log('log line'); return {double: args.n * 2}; }",
])
async def test_javascript_main_defined_exported_or_async(sandbox: LocalSandbox, code: str) -> None:
    res = await sandbox.run(code, "javascript", {"n": 21})
    assert res.exit_code == 0, res.stderr
    assert res.result.present and res.result.value == {"double": 42}
    assert res.stdout == "log line\n"
    assert res.metadata["language"] == "nodejs"


@needs_node
async def test_javascript_main_must_return_a_value(sandbox: LocalSandbox) -> None:
    res = await sandbox.run("function main(args) { console.log('x'); }", "nodejs", {})
    assert res.exit_code == 1
    assert "main() must return a value" in res.stderr


async def test_unknown_language_and_missing_interpreter_are_errors(work: Path) -> None:
    sb = LocalSandbox(node=str(work / "no-such-node"), work_dir=work)
    with pytest.raises(SandboxError, match="unsupported language 'ruby'"):
        await sb.run("def main(): pass", "ruby", {})
    with pytest.raises(SandboxError, match=r"Node.js \(node\) is not installed here"):
        await sb.run("function main() { return 1 }", "javascript", {})


# --------------------------------------------------------------------------- limits
async def test_the_wall_clock_limit_kills_the_script_and_its_children(sandbox: LocalSandbox) -> None:
    iso = await sandbox.isolation()
    # Without a per-run user only the process group can be killed, so the child stays in it.
    new_session = "True" if iso.separate_user else "False"
    code = ("import subprocess, sys, time\n"
            "def main():\n"
            f"    p = subprocess.Popen(['sleep', '60'], start_new_session={new_session})\n"
            "    print(p.pid, flush=True)\n"
            "    time.sleep(60)\n")
    started = asyncio.get_running_loop().time()
    res = await sandbox.run(code, "python", {}, timeout=1.5)
    assert asyncio.get_running_loop().time() - started < 10
    assert res.exit_code < 0
    assert res.metadata["timed_out"] is True and res.metadata["resource_limit"] == "time"
    assert res.stderr.endswith("Execution timed out after 1.5 seconds")
    assert not res.result.present
    child = int(res.stdout.split()[0])
    assert await _gone(child), f"the script's child {child} outlived the run"


async def test_the_sandbox_limit_caps_the_requested_timeout(work: Path) -> None:
    sb = LocalSandbox(timeout=1, work_dir=work)
    res = await sb.run("import time\ndef main():\n    time.sleep(30)\n", "python", {}, timeout=600)
    assert res.metadata["timeout"] == 1 and res.metadata["timed_out"]


async def test_a_cancelled_run_kills_the_script(work: Path) -> None:
    sb = LocalSandbox(timeout=30, work_dir=work / "runs")
    shared = work / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # the script may run as another user
    code = ("import os, time\n"
            "def main(path):\n"
            "    with open(path, 'w') as f:\n"
            "        f.write(str(os.getpid()))\n"
            "    time.sleep(60)\n")
    task = asyncio.create_task(sb.run(code, "python", {"path": str(shared / "pid")}))
    for _ in range(200):
        if (shared / "pid").exists() and (shared / "pid").read_text():
            break
        await asyncio.sleep(0.05)
    pid = int((shared / "pid").read_text())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _gone(pid)
    assert list((work / "runs").iterdir()) == []  # its directory is gone too


async def test_memory_limit(work: Path) -> None:
    sb = LocalSandbox(memory_mb=128, work_dir=work)
    res = await sb.run("def main():\n    block = bytearray(512 * 1024 * 1024)\n    return len(block)\n", "python", {})
    assert res.exit_code != 0
    assert "MemoryError" in res.stderr
    assert res.metadata["resource_limit"] == "memory"
    small = await sb.run("def main():\n    return len(bytearray(32 * 1024 * 1024))\n", "python", {})
    assert small.result.value == 32 * 1024 * 1024


@needs_node
async def test_memory_limit_javascript(work: Path) -> None:
    sb = LocalSandbox(memory_mb=128, work_dir=work)
    code = "function main() { const a = []; for (;;) { a.push(new Array(1e6).fill(1)); } }"
    res = await sb.run(code, "javascript", {})
    assert res.exit_code != 0
    assert res.metadata["resource_limit"] == "memory", res.stderr[-500:]


async def test_output_is_capped_but_the_result_survives(work: Path) -> None:
    sb = LocalSandbox(max_output_bytes=10_000, work_dir=work)
    code = ("import sys\n"
            "def main():\n"
            "    sys.stdout.write('x' * 100_000 + '\\n')\n"
            "    sys.stderr.write('e' * 50_000)\n"
            "    return {'big': 'y' * 200_000}\n")
    res = await sb.run(code, "python", {})
    assert res.exit_code == 0
    assert res.result.value == {"big": "y" * 200_000}  # the result line is not output
    assert res.stdout.startswith("x" * 10_000 + "\n[output truncated: 90001 more bytes not shown")
    assert res.stderr.startswith("e" * 10_000 + "\n[output truncated: 40000 more bytes")
    assert res.metadata["truncated"] == {"stdout": 90_001, "stderr": 40_000}


async def test_a_script_flooding_its_output_is_stopped(work: Path) -> None:
    sb = LocalSandbox(max_output_bytes=1000, timeout=20, work_dir=work)
    res = await sb.run("def main():\n    while True:\n        print('spam' * 100)\n", "python", {})
    assert res.exit_code < 0
    assert res.metadata["resource_limit"] == "output"
    assert "wrote more than 16000 bytes of output" in res.stderr
    assert len(res.stdout) < 1200


async def test_written_files_are_limited_in_size(work: Path) -> None:
    sb = LocalSandbox(max_file_bytes=1024 * 1024, work_dir=work)
    code = ("def main():\n"
            "    try:\n"
            "        with open('big.bin', 'wb') as f:\n"
            "            f.write(b'0' * (2 * 1024 * 1024))\n"
            "    except OSError as e:\n"
            "        return e.errno\n"
            "    return 'written'\n")
    res = await sb.run(code, "python", {})
    assert res.result.value == 27  # EFBIG (Python ignores SIGXFSZ)


async def test_threads_and_processes_are_limited(work: Path) -> None:
    sb = LocalSandbox(max_processes=32, work_dir=work)
    iso = await sb.isolation()
    if not iso.separate_user:
        pytest.skip("without a user per run RLIMIT_NPROC counts the server's own tasks too; "
                    f"not checked exactly here ({iso.user_note})")
    code = ("import threading, time\n"
            "def main():\n"
            "    started = 0\n"
            "    try:\n"
            "        for _ in range(200):\n"
            "            threading.Thread(target=time.sleep, args=(5,), daemon=True).start()\n"
            "            started += 1\n"
            "    except RuntimeError:\n"
            "        pass\n"
            "    return started\n")
    res = await sb.run(code, "python", {})
    assert res.exit_code == 0, res.stderr
    assert res.result.value < 32


# --------------------------------------------------------------------------- the run's directory
async def test_each_run_has_a_fresh_directory_that_is_removed(sandbox: LocalSandbox) -> None:
    code = ("import os\n"
            "def main():\n"
            "    seen = os.path.exists('left-behind.txt')\n"
            "    open('left-behind.txt', 'w').write('x')\n"
            "    return {'cwd': os.getcwd(), 'seen': seen, 'home': os.environ['HOME'], 'tmp': os.environ['TMPDIR'],\n"
            "            'files': sorted(os.listdir('.'))}\n")
    first = await sandbox.run(code, "python", {})
    second = await sandbox.run(code, "python", {})
    a, b = first.result.value, second.result.value
    assert a["cwd"] != b["cwd"]
    assert not a["seen"] and not b["seen"]
    assert a["home"] == a["cwd"] == a["tmp"]
    assert "artifacts" in a["files"]
    assert not os.path.exists(a["cwd"]) and not os.path.exists(b["cwd"])


async def test_the_environment_is_stripped(sandbox: LocalSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKCANVAS_TEST_SECRET", "s3cret")
    res = await sandbox.run("import os\ndef main():\n    return dict(os.environ)\n", "python", {})
    env = res.result.value
    assert "TASKCANVAS_TEST_SECRET" not in env
    assert "s3cret" not in str(env)
    assert env["PATH"] == SAFE_PATH


async def test_files_in_artifacts_are_collected(sandbox: LocalSandbox) -> None:
    png = b"\x89PNG\r\n\x1a\nfake"
    code = ("import os\n"
            "def main():\n"
            f"    open('artifacts/chart.png', 'wb').write({png!r})\n"
            "    open('artifacts/data.csv', 'w').write('a,b\\n1,2\\n')\n"
            "    open('artifacts/notes.txt', 'w').write('not collected')\n"
            "    open('artifacts/empty.json', 'w').close()\n"
            "    os.symlink('/etc/passwd', 'artifacts/passwd.csv')\n"
            "    os.mkdir('artifacts/sub')\n"
            "    open('artifacts/sub/deep.csv', 'w').write('x')\n"
            "    return 'done'\n")
    res = await sandbox.run(code, "python", {})
    assert res.exit_code == 0, res.stderr
    got = {a.name: a for a in res.artifacts}
    assert sorted(got) == ["chart.png", "data.csv"]
    assert got["chart.png"].content == png and got["chart.png"].mime_type == "image/png"
    assert got["chart.png"].size == len(png)
    assert got["data.csv"].content == b"a,b\n1,2\n" and got["data.csv"].mime_type == "text/csv"
    skipped = " ".join(res.metadata["artifacts_skipped"])
    assert "notes.txt" in skipped and "passwd.csv" in skipped


async def test_a_failed_run_collects_no_artifacts(sandbox: LocalSandbox) -> None:
    code = "def main():\n    open('artifacts/a.csv', 'w').write('x')\n    raise SystemExit(3)\n"
    res = await sandbox.run(code, "python", {})
    assert res.exit_code == 3
    assert res.artifacts == []


# --------------------------------------------------------------------------- network
@pytest.fixture
def listener() -> Iterator[int]:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    try:
        yield int(srv.getsockname()[1])
    finally:
        srv.close()


_CONNECT = ("import socket\n"
            "def main(port):\n"
            "    s = socket.socket()\n"
            "    s.settimeout(3)\n"
            "    try:\n"
            "        s.connect(('127.0.0.1', port))\n"
            "        return 'connected'\n"
            "    except OSError as e:\n"
            "        return 'refused: ' + str(e)\n")


async def test_network_isolation_is_what_the_metadata_says(sandbox: LocalSandbox, listener: int) -> None:
    iso = await sandbox.isolation()
    res = await sandbox.run(_CONNECT, "python", {"port": listener})
    assert res.metadata["network_isolated"] is iso.network
    assert res.metadata["network_note"] == iso.network_note
    if iso.network:
        assert res.result.value.startswith("refused"), res.result.value
    else:
        assert res.result.value == "connected"


async def test_without_isolation_the_metadata_says_so(work: Path, listener: int) -> None:
    sb = LocalSandbox(isolate_network=False, work_dir=work)
    res = await sb.run(_CONNECT, "python", {"port": listener})
    assert res.metadata["network_isolated"] is False
    assert "turned off" in res.metadata["network_note"]
    assert res.result.value == "connected"
    strict = LocalSandbox(isolate_network=False, require_network_isolation=True, work_dir=work)
    with pytest.raises(SandboxError, match="requires network isolation"):
        await strict.run("def main():\n    return 1\n", "python", {})


@needs_node
async def test_network_isolation_javascript(sandbox: LocalSandbox, listener: int) -> None:
    iso = await sandbox.isolation()
    code = ("const net = require('net');\n"
            "function main(args) { return new Promise((resolve) => {\n"
            "  const s = net.connect(args.port, '127.0.0.1', () => { s.destroy(); resolve('connected'); });\n"
            "  s.on('error', (e) => resolve('refused: ' + e.code)); }); }\n")
    res = await sandbox.run(code, "javascript", {"port": listener})
    assert res.metadata["network_isolated"] is iso.network
    assert res.result.value == ("refused: ENETUNREACH" if iso.network else "connected")


# --------------------------------------------------------------------------- reading the output
def _marker_line(value: object) -> bytes:
    payload = base64.b64encode(json.dumps({"present": True, "value": value, "type": "json"}).encode())
    return RESULT_MARKER.encode() + payload + b"\n"


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_result_lines_are_found_across_any_chunking(chunk: int) -> None:
    stream = b"first\n" + _marker_line(1) + b"middle " + _marker_line({"last": True}) + b"tail"
    capture = _Capture(1000, results=True)
    for i in range(0, len(stream), chunk):
        capture.feed(stream[i:i + chunk])
    capture.close()
    assert capture.result is not None and capture.result.value == {"last": True}
    assert capture.text() == "first\nmiddle \ntail"


def test_extract_result_matches_the_streaming_reader() -> None:
    text = "first\n" + _marker_line(1).decode() + "middle " + _marker_line([2]).decode() + "tail"
    stdout, result = extract_result(text)
    assert result.present and result.value == [2]
    assert stdout == "first\nmiddle \ntail"
    assert extract_result("plain\n") == ("plain\n", StructuredResult())
