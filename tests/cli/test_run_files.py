"""``taskcanvas run --file/--out``: files in, files out, run in a subprocess as a user would."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from taskcanvas.files import LocalBlobStore
from tests.files import samples
from tests.support.canvas import cpn, make_canvas


def taskcanvas(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TASKCANVAS_DATA_DIR": str(cwd / "data")}
    env.pop("TASKCANVAS_FILES_URL", None)
    proc = subprocess.run([sys.executable, "-m", "taskcanvas.cli.app", "run", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, encoding="utf-8", timeout=120)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc


def write(tmp_path: Path, dsl: dict[str, Any]) -> str:
    (tmp_path / "canvas.json").write_text(json.dumps(dsl), encoding="utf-8")
    return "canvas.json"


def files_canvas() -> dict[str, Any]:
    return make_canvas({"begin": cpn("Begin", down=["m"]),
                        "m": cpn("Message", {"content": ["Files: {sys.files}"]})})


def test_files_are_given_to_the_run_as_their_text(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("alpha beta", encoding="utf-8")
    (tmp_path / "b.pdf").write_bytes(samples.pdf("gamma delta"))
    proc = taskcanvas(write(tmp_path, files_canvas()), "--query", "x", "--file", "a.txt", "-f", "b.pdf",
                      "--jsonl", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    text = "".join(e["data"].get("content") or "" for e in events if e["event"] == "message")
    assert "File: a.txt" in text and "alpha beta" in text
    assert "File: b.pdf" in text and "gamma delta" in text


def test_a_missing_or_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    canvas = write(tmp_path, files_canvas())
    missing = taskcanvas(canvas, "--file", "nope.txt", cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.strip() == "error: --file nope.txt: no such file"
    (tmp_path / "blob.exe").write_bytes(b"MZ\x90")
    unreadable = taskcanvas(canvas, "--file", "blob.exe", cwd=tmp_path)
    assert unreadable.returncode == 1
    assert "blob.exe: cannot read this kind of file" in unreadable.stdout + unreadable.stderr


def test_the_files_a_run_offers_are_written_to_out(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "data" / "files")
    report = asyncio.run(store.put(samples.pdf("Final report"), filename="report.pdf"))
    offered = {"doc_id": report.id, "filename": "report.pdf", "mime_type": "application/pdf", "size": report.size}
    dsl = make_canvas({
        "begin": cpn("Begin", {"inputs": {"doc": {"type": "object", "name": "Doc", "optional": False}}},
                     down=["m"]),
        "m": cpn("Message", {"content": ["Here it is: {begin@doc}"]}),
    })
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "report.pdf").write_bytes(b"older")
    inputs = json.dumps({"doc": {"type": "object", "value": json.dumps(offered)}})
    proc = taskcanvas(write(tmp_path, dsl), "--inputs", inputs, "--out", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    written = tmp_path / "out" / "report (1).pdf"
    assert f"wrote {Path('out') / 'report (1).pdf'}" in proc.stdout
    assert written.read_bytes() == samples.pdf("Final report")
    assert (tmp_path / "out" / "report.pdf").read_bytes() == b"older"  # never overwritten


def test_out_must_be_a_directory(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    proc = taskcanvas(write(tmp_path, files_canvas()), "--out", "afile", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --out afile: not a directory"
