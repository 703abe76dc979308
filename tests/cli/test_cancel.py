"""Ctrl-C during ``taskcanvas run``: the run is cancelled through its token, the session saved.

In-process (a real SIGINT to this process) because no built-in component is slow enough to
interrupt reliably; a test-only slow component is swapped into the CLI's registry.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
from pathlib import Path

import pytest

from taskcanvas.cli import run as cli_run
from taskcanvas.components import builtin_registry
from taskcanvas.runtime.component import Component, RunContext
from taskcanvas.runtime.registry import Registry
from tests.support.canvas import cpn, make_canvas


class Slow(Component):
    component_name = "Slow"

    async def invoke(self, ctx: RunContext) -> None:
        ctx.state.set_output(self.id, "started", True)
        await asyncio.sleep(30)


def registry_with_slow() -> Registry:
    registry = builtin_registry(plugins=False)
    registry.register(Slow)
    return registry


@pytest.mark.parametrize("jsonl", [False, True])
def test_ctrl_c_cancels_the_run_and_saves_the_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str], jsonl: bool) -> None:
    monkeypatch.setattr(cli_run, "builtin_registry", registry_with_slow)
    dsl = make_canvas({"begin": cpn("Begin", down=["slow"]), "slow": cpn("Slow", down=["m"]),
                       "m": cpn("Message", {"content": ["never"]})})
    canvas = tmp_path / "slow.json"
    canvas.write_text(json.dumps(dsl), encoding="utf-8")
    state = tmp_path / "s.json"

    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        code = cli_run.run_command(str(canvas), query="", inputs=None, state_file=str(state), jsonl=jsonl)
    finally:
        timer.cancel()

    assert code == cli_run.EXIT_INTERRUPTED
    out = capsys.readouterr().out
    if jsonl:
        last = json.loads(out.splitlines()[-1])
        assert last["event"] == "workflow_finished"
        assert last["data"]["status"] == "cancelled"
    else:
        assert "cancelling" in out
        assert "cancelled after" in out
        assert "never" not in out
    saved = json.loads(state.read_text(encoding="utf-8"))
    assert saved["outputs"]["slow"]["started"] is True
    # Python's own Ctrl-C handling is back once the command returns.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
