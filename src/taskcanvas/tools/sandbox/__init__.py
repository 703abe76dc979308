"""Code sandboxes for CodeExec (spec §5.3): where a canvas's scripts run.

Two providers implement :class:`Sandbox`:

- :class:`LocalSandbox` (default) runs ``python3`` / ``node`` as child processes with limits,
  a fresh directory and — where the OS allows it — no network;
- :class:`RemoteSandbox` speaks ragflow's sandbox executor API (``POST {base_url}/run``).

The configuration picks one (:func:`from_settings`)::

    [sandbox]
    provider = "local"            # or "remote"
    base_url = "http://sandbox-executor-manager:9385"   # remote only
    timeout = 30                  # seconds a script may run (CodeExec asks for at most 600)
    memory_mb = 512               # local: address-space limit of the script
    # local only, all optional:
    python = "/usr/bin/python3"   # default: python3 on /usr/local/bin:/usr/bin:/bin
    node = "/usr/bin/node"        # default: node on the same path
    max_output_bytes = 1048576    # kept of stdout and of stderr, each
    isolate_network = true        # run scripts in their own network namespace when possible
    require_network_isolation = false   # refuse to run scripts when that is not possible
    separate_user = true          # a root server runs each script as a fresh unprivileged uid
    work_dir = "/tmp"             # where the per-run directories are made

CodeExec finds the sandbox in ``ctx.services["sandbox"]`` and stores the files scripts produce
with the :class:`ArtifactStore` in ``ctx.services["artifacts"]``; :func:`sandbox_services`
builds both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from taskcanvas.config import ConfigError, Settings
from taskcanvas.tools.sandbox.artifacts import ArtifactStore, artifact_url
from taskcanvas.tools.sandbox.local import Isolation, LocalSandbox
from taskcanvas.tools.sandbox.protocol import (
    ARTIFACT_TYPES,
    RESULT_MARKER,
    Artifact,
    ExecutionResult,
    Sandbox,
    SandboxError,
    StructuredResult,
    extract_result,
    normalize_language,
)
from taskcanvas.tools.sandbox.remote import RemoteSandbox

__all__ = [
    "ARTIFACT_TYPES",
    "RESULT_MARKER",
    "Artifact",
    "ArtifactStore",
    "ExecutionResult",
    "Isolation",
    "LocalSandbox",
    "RemoteSandbox",
    "Sandbox",
    "SandboxError",
    "StructuredResult",
    "artifact_url",
    "extract_result",
    "from_settings",
    "normalize_language",
    "sandbox_services",
]

_PROVIDERS = ("local", "remote")
_LOCAL_KEYS = {"python", "node", "max_output_bytes", "isolate_network", "require_network_isolation",
               "separate_user", "work_dir", "timeout", "memory_mb", "provider"}
_REMOTE_KEYS = {"base_url", "timeout", "provider"}


def from_settings(settings: Settings) -> Sandbox:
    """The sandbox the ``[sandbox]`` section configures (a local one when there is none)."""
    table = settings.section("sandbox")
    provider = str(table.get("provider", "local")).strip().lower()
    if provider not in _PROVIDERS:
        raise ConfigError(f"[sandbox] provider {table.get('provider')!r} is not supported: use local or remote")
    unknown = sorted(set(table) - (_LOCAL_KEYS if provider == "local" else _REMOTE_KEYS) - {"memory_mb"})
    if unknown:
        raise ConfigError(f"[sandbox] has settings the {provider} provider does not use: {', '.join(unknown)}")
    timeout = _number(table, "timeout", 30.0)
    try:
        if provider == "remote":
            base_url = table.get("base_url")
            if not base_url or not isinstance(base_url, str):
                raise ConfigError("[sandbox] provider = \"remote\" needs base_url, the sandbox executor's address "
                                  "(e.g. http://sandbox-executor-manager:9385)")
            return RemoteSandbox(base_url, timeout=timeout)
        return LocalSandbox(
            timeout=timeout,
            memory_mb=int(_number(table, "memory_mb", 512)),
            python=_text(table, "python"),
            node=_text(table, "node"),
            max_output_bytes=int(_number(table, "max_output_bytes", 1024 * 1024)),
            isolate_network=_flag(table, "isolate_network", True),
            require_network_isolation=_flag(table, "require_network_isolation", False),
            separate_user=_flag(table, "separate_user", True),
            work_dir=_text(table, "work_dir"),
        )
    except ValueError as e:
        raise ConfigError(f"[sandbox] {e}") from None


def sandbox_services(settings: Settings) -> dict[str, Any]:
    """``{"sandbox": ..., "artifacts": ...}`` for an engine's services."""
    return {"sandbox": from_settings(settings), "artifacts": ArtifactStore(settings.data_dir / "artifacts")}


def _number(table: Mapping[str, Any], key: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"[sandbox] {key} must be a number greater than 0, got {value!r}")
    return float(value)


def _flag(table: Mapping[str, Any], key: str, default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"[sandbox] {key} must be true or false, got {value!r}")
    return value


def _text(table: Mapping[str, Any], key: str) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"[sandbox] {key} must be a non-empty string, got {value!r}")
    return value
