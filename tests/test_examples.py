"""The example canvas the README's quick start runs works as the README says."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.canvas import next_turn, run_turn

EXAMPLE = Path(__file__).resolve().parents[1] / "src" / "taskcanvas" / "examples" / "quickstart.json"


async def test_quickstart_asks_for_topics_then_numbers_them() -> None:
    dsl = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    first = await run_turn(dsl, query="hello")
    assert first.status.value == "waiting"
    assert first.of("user_inputs")[0]["tips"] == 'You said "hello". Which topics should I list? (comma separated)'
    second = await next_turn(first, inputs={"topics": {"value": "canvas, engine, events"}})
    assert second.status.value == "finished"
    assert "0: canvas\n1: engine\n2: events" in second.text


async def test_quickstart_help_branch() -> None:
    dsl = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    turn = await run_turn(dsl, query="help me")
    assert turn.text.startswith("Say hello, then give me a few topics")


def test_the_agent_example_with_its_scripted_model(tmp_path) -> None:
    from taskcanvas.testing.model_server import ScriptedModelServer
    from tests.support.cli import Cli

    examples = Path(__file__).resolve().parents[1] / "examples"
    with ScriptedModelServer.from_script(examples / "agent.model.json") as server:
        cli = Cli(tmp_path, server)
        rc, events = cli.run(str(examples / "agent.json"), "What is 17 * 23?")
    assert rc == 0
    answer = "".join(e["data"].get("content") or "" for e in events if e["event"] == "message")
    assert answer.endswith("17 × 23 = 391.")


def _run_example(tmp_path: Path, name: str, *args: str) -> list[dict[str, Any]]:
    """``taskcanvas run examples/<name> ... --out <tmp>/reports --jsonl`` as a person runs it; its events."""
    example = Path(__file__).resolve().parents[1] / "examples" / name
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TASKCANVAS_"))}
    env["TASKCANVAS_DATA_DIR"] = str(tmp_path / "data")
    done = subprocess.run([sys.executable, "-m", "taskcanvas.cli.app", "run", str(example), *args,
                           "--out", str(tmp_path / "reports"), "--jsonl"],
                          env=env, cwd=tmp_path, text=True, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_the_report_example_writes_a_pdf(tmp_path: Path) -> None:
    from pypdf import PdfReader

    events = _run_example(tmp_path, "report.json", "--query", "solar power")
    answer = "".join(e["data"].get("content") or "" for e in events if e["event"] == "message")
    assert answer.startswith("Your report on solar power is ready: report.pdf (")
    [end] = [e["data"] for e in events if e["event"] == "message_end"]
    assert [d["filename"] for d in end["downloads"]] == ["report.pdf"]
    pages = PdfReader(tmp_path / "reports" / "report.pdf").pages
    text = pages[0].extract_text()
    for expected in ("Report: solar power", "What the DocGenerator can do", "watermark_text", "DRAFT",
                     "taskcanvas example report", "Page 1"):
        assert expected in text


def test_the_spreadsheet_example_writes_an_xlsx(tmp_path: Path) -> None:
    """The ExcelProcessor's output file is one of the run's files: ``--out`` writes it."""
    from openpyxl import load_workbook

    events = _run_example(tmp_path, "spreadsheet.json")
    answer = "".join(e["data"].get("content") or "" for e in events if e["event"] == "message")
    assert ": orders.xlsx (file id " in answer
    book = load_workbook(tmp_path / "reports" / "orders.xlsx")
    assert book.sheetnames == ["Orders", "Customers"]
    assert [c.value for c in next(book["Orders"].iter_rows())] == ["order", "customer", "item", "qty", "price"]
