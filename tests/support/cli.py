"""The `taskcanvas` command in a subprocess, with its own data directory, config and model server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from taskcanvas.testing.model_server import ScriptedModelServer
from tests.support.canvas import FIXTURES

TEMPLATES = FIXTURES / "templates"


class Cli:
    """The `taskcanvas` command with a data directory, a config file and a model server."""

    def __init__(self, tmp_path: Path, server: ScriptedModelServer, config: str = "") -> None:
        self.tmp = tmp_path
        (tmp_path / "config.toml").write_text(config, encoding="utf-8")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TASKCANVAS_"))}
        self.env.update({"TASKCANVAS_DATA_DIR": str(tmp_path), "OPENAI_BASE_URL": server.base_url,
                         "OPENAI_API_KEY": "test-key", "OPENAI_MODEL": "scripted-model"})

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "taskcanvas.cli.app", *args], env=self.env, text=True,
                              capture_output=True, timeout=120, cwd=self.tmp)

    def run(self, template: str, query: str = "", *, inputs: dict[str, Any] | None = None,
            state: bool = False) -> tuple[int, list[dict[str, Any]]]:
        canvas = Path(template) if template.endswith(".json") else TEMPLATES / f"{template}.json"
        args = ["run", str(canvas), "--query", query, "--jsonl"]
        if inputs is not None:
            args += ["--inputs", json.dumps(inputs)]
        if state:
            args += ["--state", str(self.tmp / f"{canvas.stem}.state.json")]
        done = self(*args)
        assert "Traceback" not in done.stderr, done.stderr
        events = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
        return done.returncode, events
