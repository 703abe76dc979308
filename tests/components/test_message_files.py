"""Message and files (spec §4.3): generated documents become ``downloads``; ``output_format`` keeps
the said text as a file named in ``attachment``."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import docx
import openpyxl
import pytest
from pypdf import PdfReader

from taskcanvas.files import LocalBlobStore
from tests.support.canvas import Turn, build, cpn, make_canvas, run_turn

INFO = {"doc_id": "0" * 32, "filename": "a.pdf", "mime_type": "application/pdf", "size": 3}


async def say(tmp_path: Path | None, content: str, *, stream: bool = True, output_format: str | None = None,
              glob: dict[str, Any] | None = None) -> Turn:
    params: dict[str, Any] = {"content": [content], "stream": stream}
    if output_format is not None:
        params["output_format"] = output_format
    dsl = make_canvas({"begin": cpn("Begin", down=["m"]), "m": cpn("Message", params)}, globals=glob)
    services = {"files": LocalBlobStore(tmp_path)} if tmp_path is not None else {}
    turn = await run_turn(build(dsl, services=services), query="q")
    assert turn.status.value == "finished", turn.error
    return turn


async def attachment_bytes(turn: Turn) -> bytes:
    attachment = turn.output("m", "attachment")
    return await turn.engine.services["files"].get(attachment["doc_id"])


# ---------------------------------------------------------------- downloads

@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("value", [INFO, json.dumps(INFO), [INFO, {**INFO, "filename": "b.pdf"}],
                                   json.dumps([INFO])])
async def test_download_values_become_downloads(value: Any, stream: bool) -> None:
    turn = await say(None, "Files: {sys.doc} end", stream=stream, glob={"sys.doc": value})
    assert turn.text == "Files:  end"
    expected = value if isinstance(value, list) else [INFO]
    if isinstance(value, str):
        expected = json.loads(value) if value.startswith("[") else [INFO]
    assert turn.output("m", "downloads") == expected
    [end] = turn.of("message_end")
    assert end["downloads"] == expected


@pytest.mark.parametrize("stream", [True, False])
async def test_download_shown_in_text_when_the_flag_says(stream: bool) -> None:
    flagged = {**INFO, "include_download_info_in_content": True}
    turn = await say(None, "{sys.doc}", stream=stream, glob={"sys.doc": json.dumps(flagged)})
    assert json.loads(turn.text) == INFO
    assert turn.output("m", "downloads") == [INFO]


@pytest.mark.parametrize("value", [{"doc_id": "x", "filename": "y"}, [INFO, {"other": 1}], "[]", "not json"])
async def test_other_values_are_text(value: Any) -> None:
    turn = await say(None, "{sys.v}", glob={"sys.v": value})
    assert turn.text == (value if isinstance(value, str) else json.dumps(value))
    assert turn.output("m", "downloads") == []
    assert "downloads" not in turn.of("message_end")[0]


# ---------------------------------------------------------------- output_format

TABLES = """Summary: two tables follow.

Table 1: Sales
| Region | Revenue | Code |
|--------|--------:|------|
| North  | 1,200   | 007  |
| South  | 95.5    |      |

## Staff
| Name | Age |
|---|---|
| Ann | 41 |
"""


@pytest.mark.parametrize("stream", [True, False])
async def test_xlsx_has_a_sheet_per_table(tmp_path: Path, stream: bool) -> None:
    turn = await say(tmp_path, "{sys.report}", stream=stream, output_format="xlsx", glob={"sys.report": TABLES})
    attachment = turn.output("m", "attachment")
    assert attachment["format"] == "xlsx"
    assert attachment["file_name"] == f"{attachment['doc_id'][:8]}.xlsx"
    assert turn.of("message_end")[0]["attachment"] == attachment
    book = openpyxl.load_workbook(io.BytesIO(await attachment_bytes(turn)))
    assert book.sheetnames == ["Table 1 Sales", "Staff"]
    rows = [[c.value for c in row] for row in book["Table 1 Sales"].iter_rows()]
    assert rows == [["Region", "Revenue", "Code"], ["North", 1200, "007"], ["South", 95.5, None]]
    assert [[c.value for c in row] for row in book["Staff"].iter_rows()] == [["Name", "Age"], ["Ann", 41]]
    info = await turn.engine.services["files"].info(attachment["doc_id"])
    assert info.mime_type == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def test_xlsx_without_tables_keeps_the_text(tmp_path: Path) -> None:
    turn = await say(tmp_path, "No tables here.", output_format="xlsx")
    book = openpyxl.load_workbook(io.BytesIO(await attachment_bytes(turn)))
    assert book.sheetnames == ["Data"]
    assert [[c.value for c in row] for row in book["Data"].iter_rows()] == [["Content"], ["No tables here."]]


async def test_docx_attachment(tmp_path: Path) -> None:
    turn = await say(tmp_path, "# Title\n\nHello {sys.query}.\n\n| a | b |\n|---|---|\n| 1 | 2 |",
                     output_format="docx")
    document = docx.Document(io.BytesIO(await attachment_bytes(turn)))
    assert [(p.style.name, p.text) for p in document.paragraphs if p.text] == [
        ("Heading 1", "Title"), ("Normal", "Hello q.")]
    assert [[c.text for c in row.cells] for row in document.tables[0].rows] == [["a", "b"], ["1", "2"]]
    assert turn.output("m", "attachment")["file_name"].endswith(".docx")


async def test_pdf_attachment_leaves_out_thinking(tmp_path: Path) -> None:
    turn = await say(tmp_path, "{sys.answer}", output_format="pdf",
                     glob={"sys.answer": "<think>hidden steps</think>\n\n**Visible** answer."})
    assert "hidden steps" in turn.text  # the message says what it was given
    text = PdfReader(io.BytesIO(await attachment_bytes(turn))).pages[0].extract_text()
    assert "Visible answer." in text
    assert "hidden" not in text


@pytest.mark.parametrize(("fmt", "expected"), [("markdown", "# Hi\n\n*there*\n"), ("MARKDOWN", "# Hi\n\n*there*\n"),
                                               ("rtf", "# Hi\n\n*there*\n")])
async def test_markdown_attachment_and_unknown_formats(tmp_path: Path, fmt: str, expected: str) -> None:
    turn = await say(tmp_path, "# Hi\n\n*there*", output_format=fmt)
    assert turn.output("m", "attachment")["format"] == "markdown"
    assert (await attachment_bytes(turn)).decode() == expected


async def test_html_attachment(tmp_path: Path) -> None:
    turn = await say(tmp_path, "# Hi\n\n*there*", output_format="html", stream=False)
    page = (await attachment_bytes(turn)).decode()
    assert "<h1>Hi</h1>" in page and "<em>there</em>" in page


async def test_no_output_format_no_attachment(tmp_path: Path) -> None:
    turn = await say(tmp_path, "Hello")
    assert turn.output("m", "attachment") == ""
    assert "attachment" not in turn.of("message_end")[0]
    assert not tmp_path.joinpath("files").exists() and not any(tmp_path.iterdir())


async def test_a_failed_conversion_is_only_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="taskcanvas.components.message"):
        turn = await say(None, "Hello {sys.query}", output_format="pdf")
    assert turn.text == "Hello q"
    assert turn.output("m", "attachment") == ""
    assert "attachment" not in turn.of("message_end")[0]
    assert "converting the content to pdf failed: there is no file store" in caplog.text
