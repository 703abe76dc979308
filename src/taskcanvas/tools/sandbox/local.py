"""Run scripts as local child processes, with what isolation this machine allows.

Every run gets:

- **a fresh directory** (``<work_dir>/taskcanvas-sbx-*/work``) as working directory, ``HOME`` and
  ``TMPDIR``, with an empty ``artifacts/``; it is deleted afterwards;
- **a stripped environment**: a fixed ``PATH``, ``HOME``, ``TMPDIR``, ``LANG``, thread counts for
  numeric libraries — nothing of the server's environment (no keys, no tokens);
- **limits** (``setrlimit`` in the child before it starts the interpreter): address space
  (``memory_mb``; Node.js gets ``--max-old-space-size=memory_mb`` and 1 GiB more address space,
  which V8 reserves up front), CPU seconds, processes/threads, size of a written file, open
  files, no core dumps;
- **a wall-clock limit**: past it the whole process group is killed;
- **an output cap**: stdout and stderr each keep their first ``max_output_bytes`` and say how
  much was cut; a script that writes 16 times more is killed. The result line is read apart
  from the output, so a long log never costs the return value;
- **no network where the OS allows it**: the child enters a new network namespace (Linux
  ``unshare(CLONE_NEWNET)``; as a non-root user inside a new user namespace), where it has only
  a loopback interface that is down — no route anywhere, not even to the host's 127.0.0.1.
  Whether that works is measured once (a probe process must come up in a network namespace
  other than the server's) and every result's ``metadata["network_isolated"]`` says what
  happened; nothing is claimed that was not checked;
- **its own user, when the server runs as root**: each run gets a fresh unprivileged uid (no
  access to the server's files beyond what any user may read, no signalling other runs), the
  no-new-privileges flag is set, and after the run every process of that uid is killed, so
  nothing the script started outlives it.

This is process isolation, not a VM or gVisor boundary like ragflow's executor: a script can
still read world-readable files and use the CPU up to its limits. Use the remote provider
(ragflow's sandbox executor) where scripts are not trusted.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import json
import logging
import math
import os
import random
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskcanvas.tools.sandbox.protocol import (
    ARTIFACT_TYPES,
    RESULT_MARKER,
    Artifact,
    ExecutionResult,
    SandboxError,
    StructuredResult,
    decode_result,
    normalize_language,
)

__all__ = ["Isolation", "LocalSandbox"]

_log = logging.getLogger(__name__)

SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_PR_SET_NO_NEW_PRIVS = 38
_NODE_ADDRESS_RESERVE_MB = 1024
"""V8 reserves address space it never touches; Node.js does not start under ~800 MB of RLIMIT_AS."""
_KILL_FACTOR = 16
"""A stream that writes this many times the output cap gets the process killed."""
_MAX_RESULT_BYTES = 16 * 1024 * 1024
_READ_CHUNK = 65536
_PIPE_GRACE = 2.0
"""Seconds to wait for the pipes to close once the process is gone."""
_SEPARATE_UIDS = (2_000_000_000, 1 << 24)
"""First uid and number of uids from which a root server picks one per run."""
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
_ESM = re.compile(r"^\s*(?:export\s|import\s*[{*'\"]|import\s+\w)", re.MULTILINE)
"""An ES module (``export function main``, ``import x from 'y'``) rather than CommonJS."""

_PY_RUNNER = r'''import asyncio
import base64
import importlib.util
import inspect
import json
import os
import sys

MARKER = %(marker)r


def _main():
    here = os.getcwd()
    with open(os.path.join(here, "args.json"), encoding="utf-8") as f:
        args = json.load(f)
    spec = importlib.util.spec_from_file_location("main", os.path.join(here, "main.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["main"] = module
    spec.loader.exec_module(module)
    main = getattr(module, "main", None)
    if not callable(main):
        sys.stderr.write("Error: main() must be defined.\n")
        sys.exit(1)
    result = main(**args)
    if inspect.iscoroutine(result):
        result = asyncio.run(result)
    payload = json.dumps({"present": True, "value": result, "type": "json"}, ensure_ascii=False,
                         separators=(",", ":"))
    sys.stdout.flush()
    sys.stdout.write(MARKER + base64.b64encode(payload.encode("utf-8")).decode("ascii") + "\n")
    sys.stdout.flush()


_main()
'''

_JS_RUNNER = r'''const fs = require('fs');
const path = require('path');
const url = require('url');
const MARKER = %(marker)s;

(async () => {
  const here = process.cwd();
  const args = JSON.parse(fs.readFileSync(path.join(here, 'args.json'), 'utf8'));
  let main;
  if (fs.existsSync(path.join(here, 'main.mjs'))) {
    const mod = await import(url.pathToFileURL(path.join(here, 'main.mjs')).href);
    const dflt = mod.default;
    main = typeof mod.main === 'function' ? mod.main
      : typeof dflt === 'function' ? dflt : dflt && dflt.main;
  } else {
    const mod = require(path.join(here, 'main.js'));
    main = typeof mod === 'function' ? mod : mod && mod.main;
  }
  if (typeof main !== 'function') {
    throw new Error('main() must be defined or exported.');
  }
  const output = await main(args);
  if (typeof output === 'undefined') {
    throw new Error('main() must return a value. Use null for an empty result.');
  }
  const payload = JSON.stringify({ present: true, value: output, type: 'json' });
  if (typeof payload === 'undefined') {
    throw new Error('main() returned a non-JSON-serializable value.');
  }
  process.stdout.write(MARKER + Buffer.from(payload, 'utf8').toString('base64') + '\n');
})().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exitCode = 1;
});
'''

_JS_EXPORT_MAIN = """
;try { if (typeof main === 'function' && !(module.exports && typeof module.exports.main === 'function')) {
  module.exports.main = main; } } catch (__e) {}
"""


@dataclass(frozen=True)
class Isolation:
    """What this machine lets the sandbox do, measured once by probe processes."""

    network: bool
    """Scripts run in their own network namespace (no interfaces but a loopback that is down)."""
    network_method: str
    """``netns`` (root), ``userns+netns`` (an unprivileged user), or ``none``."""
    network_note: str
    """How it was checked, or why there is no network isolation."""
    separate_user: bool
    """Each run has a fresh uid (the server runs as root)."""
    user_note: str


@dataclass(frozen=True)
class _Plan:
    """What the child does between fork and exec."""

    unshare_flags: int = 0
    map_ids: tuple[int, int] | None = None
    """Unprivileged user namespace: map our uid and gid to themselves."""
    rlimits: tuple[tuple[int, int, int], ...] = ()
    run_as: tuple[int, int] | None = None
    no_new_privs: bool = False


class _ChildSetup:
    """``preexec_fn``: runs in the forked child; any exception fails the start (never silently)."""

    def __init__(self, plan: _Plan, libc: Any) -> None:
        self.plan = plan
        self.libc = libc

    def __call__(self) -> None:
        plan = self.plan
        if plan.unshare_flags:
            if self.libc is None or self.libc.unshare(plan.unshare_flags) != 0:
                raise OSError(ctypes.get_errno(), "unshare failed")
            if plan.map_ids is not None:
                uid, gid = plan.map_ids
                _write_proc("/proc/self/setgroups", "deny")
                _write_proc("/proc/self/uid_map", f"{uid} {uid} 1")
                _write_proc("/proc/self/gid_map", f"{gid} {gid} 1")
        for kind, soft, hard in plan.rlimits:
            _, current_hard = resource.getrlimit(kind)
            if current_hard != resource.RLIM_INFINITY:
                soft, hard = min(soft, current_hard), min(hard, current_hard)
            resource.setrlimit(kind, (soft, hard))
        if plan.no_new_privs and self.libc is not None:
            self.libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        if plan.run_as is not None:
            uid, gid = plan.run_as
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)


def _write_proc(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


class LocalSandbox:
    """Python (``python3``) and JavaScript (``node``) scripts in local child processes."""

    provider = "local"

    def __init__(self, *, timeout: float = 30.0, memory_mb: int = 512, python: str | None = None,
                 node: str | None = None, max_output_bytes: int = 1024 * 1024, max_processes: int = 64,
                 max_file_bytes: int = 10 * 1024 * 1024, max_artifacts: int = 10,
                 isolate_network: bool = True, require_network_isolation: bool = False,
                 separate_user: bool = True, work_dir: str | Path | None = None) -> None:
        for name, value in (("timeout", timeout), ("memory_mb", memory_mb), ("max_output_bytes", max_output_bytes),
                            ("max_processes", max_processes), ("max_file_bytes", max_file_bytes)):
            if not value or value <= 0:
                raise ValueError(f"{name} must be greater than 0, got {value!r}")
        if max_artifacts < 0:
            raise ValueError(f"max_artifacts must be 0 or more, got {max_artifacts!r}")
        self.timeout = float(timeout)
        self.memory_mb = int(memory_mb)
        self.python = python or shutil.which("python3", path=SAFE_PATH) or sys.executable
        self.node = node or shutil.which("node", path=SAFE_PATH) or shutil.which("node")
        self.max_output_bytes = int(max_output_bytes)
        self.max_processes = int(max_processes)
        self.max_file_bytes = int(max_file_bytes)
        self.max_artifacts = int(max_artifacts)
        self.isolate_network = isolate_network
        self.require_network_isolation = require_network_isolation
        self.separate_user = separate_user
        self.work_dir = Path(work_dir) if work_dir else Path(tempfile.gettempdir())
        self._libc = _load_libc()
        self._isolation: Isolation | None = None
        self._probe_lock = asyncio.Lock()

    async def aclose(self) -> None:
        return None

    # ------------------------------------------------------------------ isolation
    async def isolation(self) -> Isolation:
        """What isolation runs get here (probed on first use, then remembered)."""
        if self._isolation is None:
            async with self._probe_lock:
                if self._isolation is None:
                    self._isolation = await self._probe()
                    _log.info("local sandbox isolation: %s", self._isolation)
        return self._isolation

    async def _probe(self) -> Isolation:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        true_bin = shutil.which("true", path=SAFE_PATH)
        separate, user_note = False, "the server does not run as root: scripts run as its user"
        if os.geteuid() == 0:
            if not self.separate_user:
                user_note = "scripts run as root (separate_user is off)"
            elif (ids := _pick_ids()) is None:
                user_note = "no unprivileged uid is mapped in this user namespace: scripts run as root"
            elif true_bin is None:
                user_note = "cannot check switching users (no 'true' program): scripts run as root"
            else:
                ok, why = await self._try([true_bin], _Plan(run_as=ids, no_new_privs=True))
                separate = ok
                user_note = ("each run gets a fresh unprivileged uid" if ok
                             else f"switching to an unprivileged uid failed ({why}): scripts run as root")
        network, method, note = await self._probe_network(separate)
        return Isolation(network=network, network_method=method, network_note=note, separate_user=separate,
                         user_note=user_note)

    async def _probe_network(self, separate: bool) -> tuple[bool, str, str]:
        if not self.isolate_network:
            return False, "none", "network isolation is turned off (isolate_network = false)"
        if not sys.platform.startswith("linux"):
            return False, "none", f"network namespaces need Linux (this is {sys.platform})"
        if self._libc is None:
            return False, "none", "the C library cannot be called (ctypes): no unshare()"
        readlink = shutil.which("readlink", path=SAFE_PATH)
        if readlink is None:
            return False, "none", "cannot check network namespaces (no 'readlink' program)"
        try:
            ours = os.readlink("/proc/self/ns/net")
        except OSError as e:
            return False, "none", f"cannot read this process's network namespace: {e.strerror}"
        root = os.geteuid() == 0
        method = "netns" if root else "userns+netns"
        plan = self._network_plan(root)
        ids = _pick_ids() if separate else None
        if ids is not None:
            plan = dataclasses.replace(plan, run_as=ids, no_new_privs=True)
        ok, out = await self._try([readlink, "/proc/self/ns/net"], plan)
        if not ok:
            how = "unshare(CLONE_NEWNET)" if root else "unshare(CLONE_NEWUSER|CLONE_NEWNET)"
            return False, "none", f"{how} is not permitted here ({out}): scripts can reach the network"
        if not out or out == ours:
            return False, "none", f"the probe process stayed in the server's network namespace ({out or 'no answer'})"
        return True, method, f"probe ran in {out}, the server is in {ours}"

    def _network_plan(self, root: bool) -> _Plan:
        if root:
            return _Plan(unshare_flags=_CLONE_NEWNET)
        return _Plan(unshare_flags=_CLONE_NEWUSER | _CLONE_NEWNET, map_ids=(os.getuid(), os.getgid()))

    async def _try(self, argv: list[str], plan: _Plan) -> tuple[bool, str]:
        """Run a probe; (worked, its stdout or why it did not)."""
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                cwd=str(self.work_dir), env={"PATH": SAFE_PATH}, preexec_fn=_ChildSetup(plan, self._libc),
                start_new_session=True)
        except (OSError, subprocess.SubprocessError) as e:
            return False, str(e) or type(e).__name__
        try:
            async with asyncio.timeout(10):
                out, err = await proc.communicate()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            return False, "the probe did not finish"
        if proc.returncode != 0:
            return False, (err.decode(errors="replace").strip() or f"exit code {proc.returncode}")
        return True, out.decode(errors="replace").strip()

    # ------------------------------------------------------------------ running
    async def run(self, code: str, language: str, arguments: Mapping[str, Any] | None = None,
                  timeout: float | None = None) -> ExecutionResult:
        lang = normalize_language(language)
        iso = await self.isolation()
        if self.require_network_isolation and not iso.network:
            raise SandboxError(f"the sandbox requires network isolation and this machine has none: {iso.network_note}")
        binary = self.python if lang == "python" else self.node
        if not binary or not (os.path.isfile(binary) or shutil.which(binary)):
            what = "Python (python3)" if lang == "python" else "Node.js (node)"
            key = "python" if lang == "python" else "node"
            raise SandboxError(f"cannot run {'JavaScript' if lang == 'nodejs' else 'Python'}: {what} is not "
                               f"installed here (set [sandbox] {key} to its path)")
        limit = self.timeout if timeout is None else min(float(timeout), self.timeout)
        if limit <= 0:
            raise SandboxError(f"the execution timeout must be greater than 0 seconds, got {limit:g}")
        try:
            args_json = json.dumps(dict(arguments or {}), ensure_ascii=False, default=str)
        except (TypeError, ValueError) as e:
            raise SandboxError(f"the arguments cannot be passed to main(): {e}") from None
        run_as = _pick_ids() if iso.separate_user else None
        base, work = await asyncio.to_thread(self._prepare, lang, code, args_json, run_as)
        try:
            return await self._execute(lang, binary, work, limit, iso, run_as)
        finally:
            await asyncio.to_thread(shutil.rmtree, base, True)

    def _prepare(self, lang: str, code: str, args_json: str, run_as: tuple[int, int] | None) -> tuple[Path, Path]:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if run_as is not None:
            closed = _closed_ancestor(self.work_dir)
            if closed is not None:
                raise SandboxError(f"the sandbox work_dir {self.work_dir} cannot be reached by the unprivileged user "
                                   f"scripts run as: {closed} is not open to others (chmod o+x it, or set "
                                   "[sandbox] work_dir to a directory like /tmp)")
        base = Path(tempfile.mkdtemp(prefix="taskcanvas-sbx-", dir=self.work_dir))
        try:
            os.chmod(base, 0o711)
            work = base / "work"
            work.mkdir(mode=0o700)
            (work / "artifacts").mkdir(mode=0o700)
            if lang == "python":
                files = {"main.py": code, "runner.py": _PY_RUNNER % {"marker": RESULT_MARKER}}
            elif _ESM.search(code):
                files = {"main.mjs": code, "runner.js": _JS_RUNNER % {"marker": json.dumps(RESULT_MARKER)}}
            else:
                files = {"main.js": code + _JS_EXPORT_MAIN,
                         "runner.js": _JS_RUNNER % {"marker": json.dumps(RESULT_MARKER)}}
            files["args.json"] = args_json
            for name, text in files.items():
                path = work / name
                path.write_text(text, encoding="utf-8")
                os.chmod(path, 0o644)
            if run_as is not None:
                os.chown(work, *run_as)
                os.chown(work / "artifacts", *run_as)
        except BaseException:
            shutil.rmtree(base, ignore_errors=True)
            raise
        return base, work

    def _command(self, lang: str, binary: str) -> list[str]:
        if lang == "python":
            return [binary, "-I", "-B", "-u", "-X", "utf8", "runner.py"]
        return [binary, f"--max-old-space-size={self.memory_mb}", "--v8-pool-size=2", "runner.js"]

    def _env(self, work: Path) -> dict[str, str]:
        threads = str(max(1, min(4, os.cpu_count() or 1)))
        env = {
            "PATH": SAFE_PATH,
            "HOME": str(work),
            "TMPDIR": str(work),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "USER": "sandbox",
            "LOGNAME": "sandbox",
            "MPLBACKEND": "Agg",
            "UV_THREADPOOL_SIZE": threads,
        }
        for name in _THREAD_VARS:
            env[name] = threads
        return env

    def _rlimits(self, lang: str, limit: float, run_as: tuple[int, int] | None) -> tuple[tuple[int, int, int], ...]:
        mb = 1024 * 1024
        memory = self.memory_mb * mb if lang == "python" else (self.memory_mb + _NODE_ADDRESS_RESERVE_MB) * mb
        cpu = math.ceil(limit) + 1
        limits = [
            (resource.RLIMIT_AS, memory, memory),
            (resource.RLIMIT_CPU, cpu, cpu + 1),
            (resource.RLIMIT_FSIZE, self.max_file_bytes, self.max_file_bytes),
            (resource.RLIMIT_NOFILE, 256, 256),
            (resource.RLIMIT_CORE, 0, 0),
        ]
        nproc = self.max_processes
        if run_as is None and os.geteuid() != 0:
            # RLIMIT_NPROC counts every task of the user, the server's own threads included.
            running = _tasks_of(os.getuid())
            nproc = nproc + running if running is not None else 0
        if nproc:
            limits.append((resource.RLIMIT_NPROC, nproc, nproc))
        return tuple(limits)

    async def _execute(self, lang: str, binary: str, work: Path, limit: float, iso: Isolation,
                       run_as: tuple[int, int] | None) -> ExecutionResult:
        plan = _Plan(rlimits=self._rlimits(lang, limit, run_as), run_as=run_as,
                     no_new_privs=self._libc is not None)
        if iso.network:
            net = self._network_plan(os.geteuid() == 0)
            plan = dataclasses.replace(plan, unshare_flags=net.unshare_flags, map_ids=net.map_ids)
        started = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_exec(
                *self._command(lang, binary), cwd=str(work), env=self._env(work), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_ChildSetup(plan, self._libc),
                start_new_session=True)
        except subprocess.SubprocessError as e:
            raise SandboxError(f"could not set up the sandboxed process for {binary}: {e}") from None
        except OSError as e:
            hint = " (scripts run as an unprivileged user, who must be able to read and run it)" if run_as else ""
            raise SandboxError(f"could not start {binary}: {e.strerror or e}{hint}") from None

        out = _Capture(self.max_output_bytes, results=True)
        err = _Capture(self.max_output_bytes, results=False)
        killed_for: list[str] = []

        def kill(reason: str) -> None:
            if not killed_for:
                killed_for.append(reason)
            _kill_group(proc.pid)

        hard = self.max_output_bytes * _KILL_FACTOR
        assert proc.stdout is not None and proc.stderr is not None
        pumps = asyncio.gather(_pump(proc.stdout, out, hard, kill), _pump(proc.stderr, err, hard, kill))
        try:
            try:
                async with asyncio.timeout(limit):
                    await _exited(proc)
            except TimeoutError:
                kill("time")
                await _exited(proc)
        finally:
            # Whatever the script started goes with it (also when this run is cancelled).
            _kill_group(proc.pid)
            if run_as is not None:
                await self._kill_all_of(run_as)
            try:
                async with asyncio.timeout(_PIPE_GRACE):
                    await asyncio.shield(pumps)
            except TimeoutError:
                pumps.cancel()
                transport = getattr(proc, "_transport", None)
                if transport is not None:
                    transport.close()
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await _exited(proc)
        elapsed = time.monotonic() - started
        exit_code = proc.returncode if proc.returncode is not None else -1
        stderr = err.text()
        notes: list[str] = []
        resource_limit: str | None = None
        reason = killed_for[0] if killed_for else None
        if reason == "time":
            resource_limit = "time"
            notes.append(f"Execution timed out after {limit:g} seconds")
        elif reason == "output":
            resource_limit = "output"
            notes.append(f"Execution stopped: the script wrote more than {hard} bytes of output")
        elif exit_code < 0:
            sig = _signal_name(-exit_code)
            if -exit_code == signal.SIGXCPU:
                resource_limit = "cpu"
                notes.append(f"Killed by {sig}: CPU time limit of {math.ceil(limit) + 1} seconds exceeded")
            elif -exit_code == signal.SIGXFSZ:
                resource_limit = "file_size"
                notes.append(f"Killed by {sig}: a file grew past {self.max_file_bytes} bytes")
            else:
                notes.append(f"Killed by {sig}")
        if resource_limit is None and _out_of_memory(stderr):
            resource_limit = "memory"
        if out.result_too_large:
            notes.append(f"The value main() returned is larger than {_MAX_RESULT_BYTES} bytes and was dropped")
        if notes:
            stderr = (stderr.rstrip("\n") + "\n" if stderr.strip() else "") + "\n".join(notes)
        artifacts: list[Artifact] = []
        skipped: list[str] = []
        if exit_code == 0 and reason is None:
            owner = run_as[0] if run_as is not None else (os.getuid() if os.geteuid() != 0 else None)
            artifacts, skipped = await asyncio.to_thread(self._collect, work / "artifacts", owner)
        return ExecutionResult(
            stdout=out.text(),
            stderr=stderr,
            exit_code=exit_code,
            artifacts=artifacts,
            result=out.result or StructuredResult(),
            metadata={
                "provider": self.provider,
                "language": lang,
                "elapsed": elapsed,
                "timeout": limit,
                "memory_mb": self.memory_mb,
                "timed_out": reason == "time",
                "resource_limit": resource_limit,
                "truncated": {"stdout": out.dropped, "stderr": err.dropped},
                "network_isolated": iso.network,
                "network_isolation": iso.network_method,
                "network_note": iso.network_note,
                "separate_user": run_as is not None,
                "artifacts_skipped": skipped,
            },
        )

    async def _kill_all_of(self, ids: tuple[int, int]) -> None:
        """Kill every process of a run's own uid (``kill(-1)`` from a process of that uid)."""
        true_bin = shutil.which("true", path=SAFE_PATH)
        if true_bin is None:
            return
        try:
            proc = await asyncio.create_subprocess_exec(
                true_bin, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                cwd="/", env={}, preexec_fn=_Sweep(ids))
            await proc.wait()
        except (OSError, subprocess.SubprocessError) as e:
            _log.warning("could not clean up the processes of uid %s: %s", ids[0], e)

    def _collect(self, directory: Path, owner: int | None) -> tuple[list[Artifact], list[str]]:
        """Regular files directly in ``artifacts/`` with a collected extension (no links, no tricks)."""
        found: list[Artifact] = []
        skipped: list[str] = []
        try:
            dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            return found, ["artifacts/ is missing or not a directory"]
        try:
            for name in sorted(os.listdir(dfd)):
                if name.startswith("."):
                    continue
                mime = ARTIFACT_TYPES.get(os.path.splitext(name)[1].lower())
                if mime is None:
                    skipped.append(f"{name}: not a collected file type")
                    continue
                if len(found) >= self.max_artifacts:
                    skipped.append(f"{name}: more than {self.max_artifacts} artifacts")
                    continue
                data, why = self._read_artifact(dfd, name, owner)
                if data is None:
                    skipped.append(f"{name}: {why}")
                    continue
                if data:
                    found.append(Artifact(name=name, content=data, mime_type=mime, size=len(data)))
        finally:
            os.close(dfd)
        return found, skipped

    def _read_artifact(self, dfd: int, name: str, owner: int | None) -> tuple[bytes | None, str]:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dfd)
        except OSError as e:
            return None, e.strerror or "cannot be opened"
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return None, "not a regular file"
            if st.st_nlink != 1 or (owner is not None and st.st_uid != owner):
                return None, "not a file the script created"
            if st.st_size > self.max_file_bytes:
                return None, f"larger than {self.max_file_bytes} bytes"
            chunks: list[bytes] = []
            size = 0
            while chunk := os.read(fd, _READ_CHUNK):
                size += len(chunk)
                if size > self.max_file_bytes:
                    return None, f"larger than {self.max_file_bytes} bytes"
                chunks.append(chunk)
            return b"".join(chunks), ""
        finally:
            os.close(fd)


class _Sweep:
    """``preexec_fn`` of the clean-up process: become the run's uid and kill everything it owns."""

    def __init__(self, ids: tuple[int, int]) -> None:
        self.ids = ids

    def __call__(self) -> None:
        uid, gid = self.ids
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(-1, signal.SIGKILL)


# --------------------------------------------------------------------------- output
class _Capture:
    """One output stream: the first ``limit`` bytes kept; result lines taken out whatever the size."""

    _TEXT, _PAYLOAD, _SKIP = 0, 1, 2

    def __init__(self, limit: int, *, results: bool) -> None:
        self.limit = limit
        self.dropped = 0
        self.result: StructuredResult | None = None
        self.result_too_large = False
        self._results = results
        self._kept = bytearray()
        self._carry = b""
        self._payload = bytearray()
        self._state = self._TEXT
        self._line_open = False
        self._marker = RESULT_MARKER.encode()

    def feed(self, data: bytes) -> None:
        if not self._results:
            self._emit(data)
            return
        buf = self._carry + data
        self._carry = b""
        while buf:
            if self._state == self._SKIP:
                nl = buf.find(b"\n")
                if nl < 0:
                    return
                buf = buf[nl + 1:]
                self._state = self._TEXT
            elif self._state == self._PAYLOAD:
                nl = buf.find(b"\n")
                part, buf = (buf, b"") if nl < 0 else (buf[:nl], buf[nl + 1:])
                if len(self._payload) + len(part) > _MAX_RESULT_BYTES:
                    self.result_too_large = True
                    self._payload = bytearray()
                    self._state = self._SKIP if nl < 0 else self._TEXT
                    continue
                self._payload += part
                if nl >= 0:
                    self._finish_payload()
            else:
                at = buf.find(self._marker)
                if at < 0:
                    cut = max(len(buf) - (len(self._marker) - 1), 0)
                    self._emit(buf[:cut])
                    self._carry = buf[cut:]
                    return
                self._emit(buf[:at])
                buf = buf[at + len(self._marker):]
                self._state = self._PAYLOAD
                self._payload = bytearray()

    @property
    def written(self) -> int:
        """Bytes of output (the result line not counted)."""
        return len(self._kept) + self.dropped

    def close(self) -> None:
        if self._state == self._PAYLOAD:
            self._finish_payload()
        self._emit(self._carry)
        self._carry = b""

    def text(self) -> str:
        text = self._kept.decode("utf-8", "replace")
        if self.dropped:
            text += f"\n[output truncated: {self.dropped} more bytes not shown (limit {self.limit} bytes)]"
        return text

    def _finish_payload(self) -> None:
        self._state = self._TEXT
        found = decode_result(bytes(self._payload))
        if found is None:
            self._emit(self._marker + bytes(self._payload) + b"\n")
        else:
            self.result = found
            if self._line_open:
                self._emit(b"\n")
        self._payload = bytearray()

    def _emit(self, data: bytes) -> None:
        if not data:
            return
        room = self.limit - len(self._kept)
        if room > 0:
            self._kept += data[:room]
        self.dropped += max(0, len(data) - max(room, 0))
        self._line_open = not data.endswith(b"\n")


async def _exited(proc: asyncio.subprocess.Process) -> None:
    """Wait for the process itself to end (``Process.wait`` also waits for every copy of its pipes)."""
    delay = 0.002
    while proc.returncode is None:
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


async def _pump(stream: asyncio.StreamReader, capture: _Capture, hard: int, kill: Any) -> None:
    while chunk := await stream.read(_READ_CHUNK):
        capture.feed(chunk)
        if capture.written > hard:
            kill("output")
    capture.close()


# --------------------------------------------------------------------------- helpers
def _load_libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.unshare.argtypes = [ctypes.c_int]
        libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        return libc
    except (OSError, AttributeError):
        return None


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _read_id_map(path: str) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    try:
        with open(path, encoding="ascii") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3:
                    ranges.append((int(parts[0]), int(parts[2])))
    except (OSError, ValueError):
        return []
    return ranges


def _covers(ranges: Sequence[tuple[int, int]], first: int, count: int) -> bool:
    return any(start <= first and first + count <= start + length for start, length in ranges)


def _pick_ids() -> tuple[int, int] | None:
    """A fresh (uid, gid) for a run of a root server, from ids no account uses; ``None`` if there are none."""
    if not sys.platform.startswith("linux"):
        return None
    first, count = _SEPARATE_UIDS
    uids, gids = _read_id_map("/proc/self/uid_map"), _read_id_map("/proc/self/gid_map")
    if _covers(uids, first, count) and _covers(gids, first, count):
        n = first + random.randrange(count)
        return n, n
    return None


def _tasks_of(uid: int) -> int | None:
    """How many tasks (threads) ``uid`` runs now, or ``None`` when /proc cannot tell."""
    total = 0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status", encoding="ascii", errors="replace") as f:
                real_uid = threads = None
                for line in f:
                    if line.startswith("Uid:"):
                        real_uid = int(line.split()[1])
                    elif line.startswith("Threads:"):
                        threads = int(line.split()[1])
                        break
        except (OSError, ValueError, IndexError):
            continue
        if real_uid == uid and threads:
            total += threads
    return total


def _closed_ancestor(path: Path) -> Path | None:
    """The first directory on the way to ``path`` that other users cannot pass through, if any."""
    path = path.resolve()
    for directory in (path, *path.parents):
        try:
            if not os.stat(directory).st_mode & stat.S_IXOTH:
                return directory
        except OSError:
            return directory
    return None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _out_of_memory(stderr: str) -> bool:
    return ("MemoryError" in stderr or "heap out of memory" in stderr
            or "Cannot allocate memory" in stderr or "std::bad_alloc" in stderr)
