"""DocGenerator (spec §4.15): the files it makes, read back with pypdf, python-docx and as text."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path
from typing import Any

import docx
import pytest
from docx.shared import Pt
from pypdf import PdfReader

from taskcanvas.components.doc_generator import sanitize_filename
from taskcanvas.dsl.errors import DslError
from taskcanvas.files import LocalBlobStore
from tests.support.canvas import Turn, build, cpn, make_canvas, run_turn

REPORT = """# Quarterly report for {sys.query}

Sales went **up** by *12 %* in `Q3`; see [the site](https://example.com).

## Regions

1. North
2. South
   - coastal towns

| Region | Revenue |
|:-------|--------:|
| North  | 1,200   |
| South  | 950     |

```python
total = 1200 + 950
```

> Figures are unaudited.
"""


def canvas(params: dict[str, Any], *, message: str = "Your file: {doc@download}", doc_type: str = "DocGenerator",
           glob: dict[str, Any] | None = None) -> dict[str, Any]:
    return make_canvas({
        "begin": cpn("Begin", down=["doc"]),
        "doc": cpn(doc_type, params, down=["m"]),
        "m": cpn("Message", {"content": [message]}),
    }, globals=glob)


async def generate(tmp_path: Path, params: dict[str, Any], *, query: str = "ACME", store: bool = True,
                   **canvas_kw: Any) -> Turn:
    services = {"files": LocalBlobStore(tmp_path / "files")} if store else {}
    return await run_turn(build(canvas(params, **canvas_kw), services=services), query=query)


async def stored(turn: Turn) -> bytes:
    store: LocalBlobStore = turn.engine.services["files"]
    return await store.get(turn.output("doc", "doc_id"))


def pdf_pages(data: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]


async def test_pdf_holds_the_text_with_header_footer_watermark_and_page_numbers(tmp_path: Path) -> None:
    turn = await generate(tmp_path, {"content": REPORT, "filename": "Q3 report", "header_text": "ACME Corp",
                                     "footer_text": "Internal", "watermark_text": "DRAFT"})
    assert turn.status.value == "finished", turn.error
    data = await stored(turn)
    assert data.startswith(b"%PDF")
    [text] = pdf_pages(data)
    for expected in ("Quarterly report for ACME", "Sales went up by 12 % in Q3; see the site.", "Regions", "North",
                     "South", "coastal towns", "Region", "Revenue", "1,200", "950", "total = 1200 + 950",
                     "Figures are unaudited.", "ACME Corp", "Internal", "DRAFT", "Page 1"):
        assert expected in text
    assert re.search(r"Generated: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", text)
    assert PdfReader(io.BytesIO(data)).metadata.title == "Q3 report"


async def test_outputs_describe_the_stored_file(tmp_path: Path) -> None:
    turn = await generate(tmp_path, {"content": "Hello", "filename": "Q3 report"})
    data = await stored(turn)
    doc_id = turn.output("doc", "doc_id")
    assert re.fullmatch(r"[0-9a-f]{32}", doc_id)
    assert turn.output("doc", "filename") == "Q3 report.pdf"
    assert turn.output("doc", "mime_type") == "application/pdf"
    assert turn.output("doc", "size") == len(data)
    download = json.loads(turn.output("doc", "download"))
    assert download == {
        "doc_id": doc_id, "filename": "Q3 report.pdf", "mime_type": "application/pdf", "size": len(data),
        "base64": base64.b64encode(data).decode(),
        "preview_url": f"/api/v1/agents/attachments/{doc_id}/preview?ext=pdf&mime_type=application%2Fpdf",
        "include_download_info_in_content": False,
    }
    info = await turn.engine.services["files"].info(doc_id)
    assert (info.filename, info.mime_type, info.size) == ("Q3 report.pdf", "application/pdf", len(data))
    assert turn.finished("doc")["outputs"]["doc_id"] == doc_id


async def test_the_message_offers_the_download(tmp_path: Path) -> None:
    turn = await generate(tmp_path, {"content": "Hello"})
    assert turn.text == "Your file: "
    [end] = turn.of("message_end")
    [download] = end["downloads"]
    assert download["doc_id"] == turn.output("doc", "doc_id")
    assert "include_download_info_in_content" not in download
    assert turn.output("m", "downloads") == [download]


async def test_download_info_in_the_message_text_when_asked(tmp_path: Path) -> None:
    turn = await generate(tmp_path, {"content": "Hello", "include_download_info_in_content": True},
                          message="{doc@download}")
    shown = json.loads(turn.text)
    assert shown["doc_id"] == turn.output("doc", "doc_id")
    assert "include_download_info_in_content" not in shown
    assert turn.of("message_end")[0]["downloads"] == [shown]


async def test_long_pdf_numbers_every_page(tmp_path: Path) -> None:
    content = "\n\n".join(f"Paragraph {i}: " + "words " * 40 for i in range(60))
    turn = await generate(tmp_path, {"content": content, "add_timestamp": False, "footer_text": "Footer"})
    pages = pdf_pages(await stored(turn))
    assert len(pages) > 2
    for n, text in enumerate(pages, start=1):
        assert f"Page {n}" in text
        assert "Footer" in text
        assert "Generated:" not in text
    assert "Paragraph 59:" in pages[-1]


async def test_pdf_without_decorations(tmp_path: Path) -> None:
    turn = await generate(tmp_path, {"content": "Just this.", "add_page_numbers": False, "add_timestamp": False})
    [text] = pdf_pages(await stored(turn))
    assert text.strip() == "Just this."


async def test_pdf_sets_chinese_and_cyrillic_text(tmp_path: Path) -> None:
    turn = await generate(tmp_path, {"content": "# 季度报告\n\nПривет, 世界 and 안녕하세요.", "header_text": "页眉",
                                     "add_timestamp": False})
    [text] = pdf_pages(await stored(turn))
    for expected in ("季度报告", "世界", "안녕하세요", "页眉"):
        assert expected in text


async def test_docx_paragraphs_tables_header_and_footer(tmp_path: Path) -> None:
    turn = await generate(tmp_path, {"content": REPORT, "output_format": "docx", "filename": "report.docx",
                                     "header_text": "ACME Corp", "footer_text": "Internal",
                                     "watermark_text": "DRAFT", "font_size": 14})
    assert turn.output("doc", "filename") == "report.docx"
    assert turn.output("doc", "mime_type") == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document")
    document = docx.Document(io.BytesIO(await stored(turn)))
    paragraphs = [(p.style.name, p.text) for p in document.paragraphs if p.text]
    assert ("Heading 1", "Quarterly report for ACME") in paragraphs
    assert ("Heading 2", "Regions") in paragraphs
    assert ("Normal", "Sales went up by 12 % in Q3; see the site.") in paragraphs
    assert ("List Paragraph", "1.\tNorth") in paragraphs
    assert ("List Bullet 2", "coastal towns") in paragraphs
    assert ("Quote", "Figures are unaudited.") in paragraphs
    assert ("Normal", "total = 1200 + 950") in paragraphs
    bold = [r.text for p in document.paragraphs for r in p.runs if r.bold]
    assert "up" in bold
    [table] = document.tables
    assert [[c.text for c in row.cells] for row in table.rows] == [
        ["Region", "Revenue"], ["North", "1,200"], ["South", "950"]]
    section = document.sections[0]
    assert section.header.paragraphs[0].text == "ACME Corp"
    assert "DRAFT" in section.header._element.xml
    footer = section.footer.paragraphs[0].text
    assert footer.startswith("Internal\tGenerated: ")
    assert footer.endswith("\tPage 1")
    assert "PAGE" in section.footer._element.xml
    assert document.styles["Normal"].font.size == Pt(14)
    assert document.styles["Heading 1"].font.size == Pt(20)
    assert document.core_properties.title == "report"


@pytest.mark.parametrize(("fmt", "extension", "mime"), [
    ("txt", "txt", "text/plain"), ("markdown", "md", "text/markdown"), ("html", "html", "text/html")])
async def test_text_formats(tmp_path: Path, fmt: str, extension: str, mime: str) -> None:
    turn = await generate(tmp_path, {"content": REPORT, "output_format": fmt, "filename": "out"})
    assert turn.output("doc", "filename") == f"out.{extension}"
    assert turn.output("doc", "mime_type") == mime
    text = (await stored(turn)).decode("utf-8")
    first, _, rest = text.partition("\n")
    assert re.fullmatch(r"(<p>)?Generated: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(</p>)?", first) or fmt == "html"
    if fmt == "markdown":
        assert rest == "\n" + REPORT.replace("{sys.query}", "ACME")
    elif fmt == "txt":
        assert "Quarterly report for ACME" in text
        assert "Sales went up by 12 % in Q3; see the site." in text
        assert "1. North" in text and "- coastal towns" in text
        assert re.search(r"North\s+1,200", text)
        assert "**" not in text and "|" not in text
    else:
        assert '<meta charset="utf-8">' in text
        assert "<title>out</title>" in text
        assert re.search(r"<p>Generated: \d{4}-", text)
        assert "<h1>Quarterly report for ACME</h1>" in text
        assert "<strong>up</strong>" in text
        assert '<td style="text-align:right">1,200</td>' in text


async def test_html_shows_raw_html_as_text(tmp_path: Path) -> None:
    turn = await generate(tmp_path, {"content": "<script>alert(1)</script>", "output_format": "html",
                                     "add_timestamp": False})
    text = (await stored(turn)).decode()
    assert "<script>" not in text
    assert "&lt;script&gt;" in text


async def test_thinking_is_left_out_and_values_are_filled_in(tmp_path: Path) -> None:
    glob = {"sys.answer": "<think>private reasoning</think>The answer.", "sys.items": ["a", "b"],
            "sys.n": 3}
    turn = await generate(tmp_path, {"content": "A: {sys.answer} Items: {sys.items} N: {sys.n}",
                                     "output_format": "markdown", "add_timestamp": False}, glob=glob)
    assert (await stored(turn)).decode() == 'A: The answer. Items: ["a", "b"] N: 3\n'


async def test_a_download_referred_to_in_content_is_left_out(tmp_path: Path) -> None:
    info = {"doc_id": "x", "filename": "a.pdf", "mime_type": "application/pdf"}
    turn = await generate(tmp_path, {"content": "See {sys.doc}.", "output_format": "txt", "add_timestamp": False},
                          glob={"sys.doc": json.dumps(info)})
    assert (await stored(turn)).decode() == "See .\n"


async def test_default_filename(tmp_path: Path) -> None:
    turn = await generate(tmp_path, {"content": "x", "output_format": "docx"})
    assert re.fullmatch(r"document_\d{8}_\d{6}_[0-9a-f]{8}\.docx", turn.output("doc", "filename"))


@pytest.mark.parametrize("doc_type", ["PDFGenerator", "DocsGenerator"])
async def test_other_type_names(tmp_path: Path, doc_type: str) -> None:
    turn = await generate(tmp_path, {"content": "Hello"}, doc_type=doc_type)
    assert turn.status.value == "finished", turn.error
    assert "Hello" in pdf_pages(await stored(turn))[0]


@pytest.mark.parametrize(("name", "extension", "expected"), [
    ("report", "pdf", "report.pdf"),
    ("report.docx", "pdf", "report.pdf"),
    ("a/b\\c:d*e?f", "pdf", "a b c d e f.pdf"),
    ('  "quoted"  |  <name>  ', "txt", "quoted name.txt"),
    ("Q1.2024 report", "pdf", "Q1.2024 report.pdf"),
    ("v1.2", "docx", "v1.2.docx"),
    ("...", "pdf", "file.pdf"),
    ("", "md", "file.md"),
    ("x" * 300 + ".pdf", "pdf", "x" * 180 + ".pdf"),
])
def test_sanitize_filename(name: str, extension: str, expected: str) -> None:
    assert sanitize_filename(name, extension) == expected


# ---------------------------------------------------------------- failures

async def assert_fails(turn: Turn, message: str) -> None:
    assert turn.status.value == "failed"
    error = turn.finished("doc")["error"]
    assert error.startswith("Document generation failed: ")
    assert message in error
    assert turn.of("workflow_finished")[0]["error"] == turn.error
    assert turn.output("doc", "doc_id") == ""  # nothing half-made
    assert turn.output("begin", "_ERROR") in ("", None)
    assert "m" not in [d["component_id"] for d in turn.of("node_started")]


async def test_unknown_format(tmp_path: Path) -> None:
    turn = await generate(tmp_path, {"content": "Hello", "output_format": "rtf"})
    await assert_fails(turn, "Unsupported output format: rtf")
    assert not (tmp_path / "files").exists()


async def test_content_reference_that_does_not_resolve(tmp_path: Path) -> None:
    turn = await generate(tmp_path, {"content": "Hello {sys.nothing}"})
    await assert_fails(turn, "Can't find variable: 'sys.nothing'")


async def test_no_file_store(tmp_path: Path) -> None:
    turn = await generate(tmp_path, {"content": "Hello"}, store=False)
    await assert_fails(turn, "no file store")


async def test_exception_goto_takes_the_failure(tmp_path: Path) -> None:
    dsl = make_canvas({
        "begin": cpn("Begin", down=["doc"]),
        "doc": cpn("DocGenerator", {"content": "x", "output_format": "rtf", "exception_method": "goto",
                                    "exception_goto": ["oops"]}, down=["m"]),
        "m": cpn("Message", {"content": ["done"]}),
        "oops": cpn("Message", {"content": ["failed: {doc@_ERROR}"], "stream": False}),
    })
    turn = await run_turn(build(dsl, services={"files": LocalBlobStore(tmp_path)}))
    assert turn.status.value == "finished"
    assert turn.text == "failed: Document generation failed: Unsupported output format: rtf"


@pytest.mark.parametrize(("params", "field"), [({"content": ""}, "content"),
                                               ({"content": "x", "font_size": 10}, "font_size")])
def test_invalid_params_are_refused_when_the_canvas_loads(params: dict[str, Any], field: str) -> None:
    with pytest.raises(DslError) as e:
        build(canvas(params))
    assert field in str(e.value)


async def test_the_report_example_through_the_engine(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "report.json"
    dsl = json.loads(example.read_text(encoding="utf-8"))
    turn = await run_turn(build(dsl, services={"files": LocalBlobStore(tmp_path)}), query="tides")
    assert turn.status.value == "finished", turn.error
    [download] = turn.of("message_end")[0]["downloads"]
    assert download["filename"] == "report.pdf"
    data = await LocalBlobStore(tmp_path).get(download["doc_id"])
    assert "Report: tides" in pdf_pages(data)[0]
