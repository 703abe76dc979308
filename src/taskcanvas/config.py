"""Settings, read once at the entry point and handed down; nothing below reads the environment.

Sources, later ones winning: defaults, the TOML file named by ``TASKCANVAS_CONFIG`` (default:
``config.toml`` in the data directory, if it exists), then ``TASKCANVAS_*`` environment variables.
The data directory is ``TASKCANVAS_DATA_DIR`` (default ``$XDG_DATA_HOME/taskcanvas``, i.e.
``~/.local/share/taskcanvas``). Sections other than the ones below belong to the subsystems that
read them through :meth:`Settings.section` (``[models]``, ``[knowledge_bases]``, ...).

    [http]
    allow_private = false                 # let tools reach private/loopback addresses
    allowed_hosts = ["intranet.example"]  # hosts, IPs or CIDRs allowed even when private

    [limits]
    concurrency = 5                       # components of one wave running at once
    timeout = 600                         # seconds, for every component type
    timeouts = { Invoke = 120 }           # seconds per component type

    [files]
    url = "s3://bucket/prefix"            # where files are kept (default: files/ in the data directory)
    max_size_mb = 20                      # the largest file a run is given or reads

Environment: ``TASKCANVAS_HTTP_ALLOW_PRIVATE`` (1/true/yes/on), ``TASKCANVAS_HTTP_ALLOWED_HOSTS``
(comma separated), ``TASKCANVAS_COMPONENT_TIMEOUT`` (seconds), ``TASKCANVAS_FILES_URL``,
``TASKCANVAS_FILES_MAX_SIZE_MB`` (see docs/files.md; S3 credentials are the standard ``AWS_*`` variables).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taskcanvas.errors import TaskcanvasError

_TRUE = {"1", "true", "yes", "on"}


class ConfigError(TaskcanvasError):
    """A configuration file or variable that cannot be used."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    config_file: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    """The environment as read at start-up (for ``*_env`` indirections: ``api_key_env = "X"``)."""
    raw: Mapping[str, Any] = field(default_factory=dict)
    """The whole configuration file."""
    http_allow_private: bool = False
    http_allowed_hosts: tuple[str, ...] = ()
    concurrency: int = 5
    timeout: float | None = None
    timeouts: Mapping[str, float] = field(default_factory=dict)
    files_url: str | None = None
    """Where files are kept: ``s3://bucket/prefix``, a directory, or ``None`` for ``files/`` in the data dir."""
    files_max_bytes: int = 20 * 1024 * 1024

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        data_dir = Path(env["TASKCANVAS_DATA_DIR"]) if env.get("TASKCANVAS_DATA_DIR") else _default_data_dir(env)
        data: dict[str, Any] = {}
        path: Path | None = Path(env["TASKCANVAS_CONFIG"]) if env.get("TASKCANVAS_CONFIG") else None
        if path is None and (data_dir / "config.toml").is_file():
            path = data_dir / "config.toml"
        if path is not None:
            data = _read_toml(path)
        http = _table(data, "http")
        limits = _table(data, "limits")
        allow_private = bool(http.get("allow_private", False))
        hosts = tuple(str(h) for h in http.get("allowed_hosts", ()))
        timeout = limits.get("timeout")
        if "TASKCANVAS_HTTP_ALLOW_PRIVATE" in env:
            allow_private = env["TASKCANVAS_HTTP_ALLOW_PRIVATE"].strip().lower() in _TRUE
        if env.get("TASKCANVAS_HTTP_ALLOWED_HOSTS"):
            hosts = tuple(h.strip() for h in env["TASKCANVAS_HTTP_ALLOWED_HOSTS"].split(",") if h.strip())
        if env.get("TASKCANVAS_COMPONENT_TIMEOUT"):
            timeout = env["TASKCANVAS_COMPONENT_TIMEOUT"]
        files = _table(data, "files")
        files_url = env.get("TASKCANVAS_FILES_URL") or files.get("url") or None
        max_mb = env.get("TASKCANVAS_FILES_MAX_SIZE_MB") or files.get("max_size_mb", 20)
        try:
            files_max_bytes = int(float(max_mb) * 1024 * 1024)
        except (TypeError, ValueError):
            raise ConfigError(f"the largest file size (TASKCANVAS_FILES_MAX_SIZE_MB or [files] max_size_mb) "
                              f"must be a number of megabytes, not {max_mb!r}") from None
        if files_max_bytes <= 0:
            raise ConfigError(f"the largest file size must be more than 0 MB, not {max_mb!r}")
        try:
            return cls(
                data_dir=data_dir,
                config_file=path,
                env=env,
                raw=data,
                http_allow_private=allow_private,
                http_allowed_hosts=hosts,
                concurrency=int(limits.get("concurrency", 5)),
                timeout=float(timeout) if timeout is not None else None,
                timeouts={str(k): float(v) for k, v in dict(limits.get("timeouts", {})).items()},
                files_url=str(files_url) if files_url else None,
                files_max_bytes=files_max_bytes,
            )
        except (TypeError, ValueError) as e:
            raise ConfigError(f"invalid setting in [limits]: {e}") from None


    def section(self, name: str) -> Mapping[str, Any]:
        """A top-level table of the configuration file (empty when absent)."""
        return _table(self.raw, name)

    def secret(self, table: Mapping[str, Any], key: str) -> str | None:
        """``table[key]``, or the environment variable named by ``table[key + "_env"]``."""
        if table.get(key):
            return str(table[key])
        name = table.get(f"{key}_env")
        return self.env.get(str(name)) if name else None


def _default_data_dir(env: Mapping[str, str]) -> Path:
    base = Path(env["XDG_DATA_HOME"]) if env.get("XDG_DATA_HOME") else Path.home() / ".local" / "share"
    return base / "taskcanvas"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"cannot read the configuration {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"the configuration {path} is not valid TOML: {e}") from None


def _table(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, Mapping):
        raise ConfigError(f"[{name}] in the configuration must be a table")
    return table
