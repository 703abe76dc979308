"""``taskcanvas kb``: the typer sub-app on a real data directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from taskcanvas.cli.kb import app
from taskcanvas.tools.knowledge import KnowledgeStore

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"TASKCANVAS_DATA_DIR": str(tmp_path / "data"), "TASKCANVAS_CONFIG": ""}


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "refunds.md").write_text("# Refunds\n\nA refund is paid within 30 days.\n", encoding="utf-8")
    (folder / "long.txt").write_text("\n\n".join(f"Paragraph {i}. " + "words " * 150 for i in range(6)),
                                     encoding="utf-8")
    return folder


def test_add_list_search(env: dict[str, str], docs: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["add", "handbook", str(docs / "refunds.md"), str(docs / "long.txt")], env=env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "added refunds.md: 1 chunk"
    assert lines[1].startswith("added long.txt: ") and lines[1].endswith(" chunks")
    assert lines[2].startswith("knowledge base handbook (id ") and ": 2 files," in lines[2]
    assert (tmp_path / "data" / "knowledge.db").is_file()

    again = runner.invoke(app, ["add", "handbook", str(docs / "refunds.md")], env=env)
    assert again.exit_code == 0 and again.output.startswith("replaced refunds.md: 1 chunk\n")

    listed = runner.invoke(app, ["list"], env=env)
    assert listed.exit_code == 0
    header, row = listed.output.splitlines()
    assert header.split() == ["NAME", "ID", "DOCUMENTS", "CHUNKS"]
    kb = KnowledgeStore.in_data_dir(tmp_path / "data").get("handbook")
    assert kb is not None
    assert row.split()[:3] == ["handbook", kb.id, "2"]

    found = runner.invoke(app, ["search", "handbook", "when is my refund paid?"], env=env)
    assert found.exit_code == 0, found.output
    first, text = found.output.splitlines()[:2]
    assert first.startswith("1. ") and first.endswith("  refunds.md")
    assert text.strip() == "# Refunds A refund is paid within 30 days."

    many = runner.invoke(app, ["search", kb.id, "paragraph words", "--top-n", "2", "--threshold", "0"], env=env)
    assert many.exit_code == 0
    assert many.output.splitlines()[-1].startswith("(2 of ")
    assert all(len(line) < 320 for line in many.output.splitlines())

    none = runner.invoke(app, ["search", "handbook", "zebra"], env=env)
    assert none.exit_code == 0 and none.output == "no passage matches\n"


def test_list_when_empty(env: dict[str, str], tmp_path: Path) -> None:
    result = runner.invoke(app, ["list"], env=env)
    assert result.exit_code == 0 and result.output.startswith("no knowledge bases yet")
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["add", "kb", "{docs}/notes.odt"], "notes.odt: unsupported file type '.odt'"),
    (["add", "kb", "{docs}/refunds.md", "{docs}/missing.txt"], "missing.txt: no such file"),
    (["add", " kb", "{docs}/refunds.md"], "must not start or end with spaces"),
    (["search", "nope", "refund"], "there is no local knowledge base named 'nope'"),
    (["search", "kb", "refund", "--top-n", "0"], "--top-n must be a positive number"),
    (["search", "kb", "refund", "--threshold", "2"], "--threshold must be a number from 0 to 1"),
])
def test_errors_are_one_line_exit_2(env: dict[str, str], docs: Path, tmp_path: Path, args: list[str],
                                    message: str) -> None:
    (docs / "notes.odt").write_bytes(b"x")
    result = runner.invoke(app, [a.replace("{docs}", str(docs)) for a in args], env=env)
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("error: ")
    assert message in result.output
    assert "Traceback" not in result.output
    assert KnowledgeStore.in_data_dir(tmp_path / "data").list_all() == []  # nothing half-added


def test_bad_configuration_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[limits\n", encoding="utf-8")
    result = runner.invoke(app, ["list"], env={**env, "TASKCANVAS_CONFIG": str(config)})
    assert result.exit_code == 2
    assert result.output.startswith("error: the configuration ") and "is not valid TOML" in result.output


def test_usage_errors(env: dict[str, str]) -> None:
    assert runner.invoke(app, ["add", "kb"], env=env).exit_code == 2  # FILE... is required
    assert runner.invoke(app, [], env=env).exit_code in (0, 2)  # help
