"""File inputs: ``sys.files`` and Begin / UserFillUp file fields read as ragflow reads them."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from taskcanvas.files import FileReader, LocalBlobStore, file_value, store_file
from taskcanvas.runtime.engine import Engine
from taskcanvas.runtime.errors import RunStatus
from tests.files import samples
from tests.support.canvas import build, cpn, make_canvas, next_turn, run_turn


def engine_for(dsl: dict[str, Any], store: LocalBlobStore, *, max_bytes: int = 20 * 1024 * 1024) -> Engine:
    return build(dsl, services={"files": store, "file_reader": FileReader(store, max_bytes=max_bytes)})


def begin_canvas(field_type: str = "file", optional: bool = False) -> dict[str, Any]:
    return make_canvas({
        "begin": cpn("Begin", {"inputs": {"doc": {"type": field_type, "name": "Document", "optional": optional}}},
                     down=["m"]),
        "m": cpn("Message", {"content": ["Got: {begin@doc}"]}),
    })


async def test_sys_files_hold_the_text_of_documents_and_images_as_data_urls(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "files")
    (tmp_path / "memo.txt").write_text("Meet at noon.", encoding="utf-8")
    (tmp_path / "dot.png").write_bytes(samples.PNG)
    files = [await store_file(store, tmp_path / "memo.txt"), await store_file(store, tmp_path / "dot.png")]
    dsl = make_canvas({"begin": cpn("Begin", down=["m"]), "m": cpn("Message", {"content": ["{sys.query}"]})})
    turn = await run_turn(engine_for(dsl, store), query="hi", files=files)
    assert turn.status is RunStatus.FINISHED, turn.error
    assert turn.state.globals["sys.files"] == [
        "\n -----------------\nFile: memo.txt\nContent as following: \nMeet at noon.",
        "data:image/png;base64," + base64.b64encode(samples.PNG).decode(),
    ]


async def test_an_unreadable_run_file_fails_the_run_naming_it(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "files")
    bad = file_value(await store.put(b"not a pdf", filename="scan.pdf"))
    dsl = make_canvas({"begin": cpn("Begin", down=["m"]), "m": cpn("Message", {"content": ["never"]})})
    turn = await run_turn(engine_for(dsl, store), query="hi", files=[bad])
    assert turn.status is RunStatus.FAILED
    assert turn.names == ["workflow_finished"]
    assert turn.error is not None and "scan.pdf: not a readable PDF file" in turn.error
    assert turn.of("workflow_finished")[0]["error"] == turn.error


async def test_a_begin_file_field_is_read_into_its_output(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "files")
    doc = file_value(await store.put(samples.docx("Section one", "Section two"), filename="plan.docx"))
    turn = await run_turn(engine_for(begin_canvas(), store), inputs={"doc": {"type": "file", "value": doc}})
    assert turn.status is RunStatus.FINISHED, turn.error
    assert turn.output("begin", "doc") == [
        "\n -----------------\nFile: plan.docx\nContent as following: \nSection one\nSection two"]
    assert "Section one" in turn.text and "Section two" in turn.text


async def test_an_optional_empty_file_field_is_none(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "files")
    turn = await run_turn(engine_for(begin_canvas(optional=True), store),
                          inputs={"doc": {"type": "file", "optional": True, "value": None}})
    assert turn.status is RunStatus.FINISHED, turn.error
    assert turn.output("begin", "doc") is None


async def test_a_file_over_the_limit_fails_begin_with_ragflows_error_output(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "files")
    big = file_value(await store.put(b"x" * 2048, filename="big.txt"))
    turn = await run_turn(engine_for(begin_canvas(), store, max_bytes=1024),
                          inputs={"doc": {"type": "file", "value": [big]}})
    assert turn.status is RunStatus.FAILED
    assert turn.finished("begin")["error"] == "big.txt: the file is 2 KB, over the 1 KB limit"
    assert turn.output("begin", "_ERROR") == "big.txt: the file is 2 KB, over the 1 KB limit"
    assert turn.error == "big.txt: the file is 2 KB, over the 1 KB limit"


async def test_a_form_waits_for_a_file_then_reads_it(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "files")
    dsl = make_canvas({
        "begin": cpn("Begin", down=["UserFillUp:ask"]),
        "UserFillUp:ask": cpn("UserFillUp", {"inputs": {"sheet": {"type": "file", "name": "Sheet",
                                                                  "optional": False}},
                                             "tips": "Upload the sheet"}, down=["m"]),
        "m": cpn("Message", {"content": ["Rows: {UserFillUp:ask@sheet}"]}),
    })
    engine = engine_for(dsl, store)
    first = await run_turn(engine, query="go")
    assert first.status is RunStatus.WAITING
    assert list(first.of("user_inputs")[0]["inputs"]) == ["sheet"]
    sheet = file_value(await store.put(samples.xlsx({"Sheet1": [["city", "pop"], ["Oslo", 709000]]}),
                                       filename="cities.xlsx"))
    turn = await next_turn(first, inputs={"sheet": {"type": "file", "value": [sheet]}})
    assert turn.status is RunStatus.FINISHED, turn.error
    assert turn.output("UserFillUp:ask", "sheet") == [
        "\n -----------------\nFile: cities.xlsx\nContent as following: \ncity：Oslo; pop：709000"]
    assert "city：Oslo; pop：709000" in turn.text
