"""ExcelProcessor (spec §4.16): real xlsx/csv files in a real blob store, run through the engine.

Expected summaries and markdown follow ragflow's ``excel_processor.py`` line for line; the
differences (failures instead of silent skips, JSON-safe cells) are marked where tested.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from taskcanvas.dsl.errors import DslError
from taskcanvas.files import LocalBlobStore
from tests.support.canvas import Turn, build, cpn, make_canvas, run_turn

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# --------------------------------------------------------------------------- helpers
def workbook(sheets: dict[str, list[list[Any]]]) -> bytes:
    book = openpyxl.Workbook()
    first = True
    for name, rows in sheets.items():
        sheet = book.active if first else book.create_sheet()
        assert sheet is not None
        sheet.title = name
        first = False
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def upload(store: LocalBlobStore, content: bytes, name: str) -> dict[str, Any]:
    """A ragflow file value (``upload_info`` shape) for ``content`` stored under ``name``."""
    blob = await store.put(content, filename=name)
    return {"id": blob.id, "name": name, "size": blob.size, "extension": name.rsplit(".", 1)[-1],
            "mime_type": blob.mime_type, "created_by": "u1", "created_at": 0.0, "preview_url": None}


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "files")


async def run(store: LocalBlobStore, params: dict[str, Any], env: dict[str, Any] | None = None, *,
              msg: str = "{x@summary}") -> Turn:
    dsl = make_canvas({
        "begin": cpn("Begin", down=["x"]),
        "x": cpn("ExcelProcessor", params, down=["m"]),
        "m": cpn("Message", {"content": [msg], "stream": False}),
    }, globals={f"env.{k}": v for k, v in (env or {}).items()})
    return await run_turn(build(dsl, services={"files": store}))


def failed(turn: Turn, error: str) -> None:
    assert turn.finished("x")["error"] == error
    assert turn.status is not None and turn.status.value == "failed"
    assert "m" not in [d["component_id"] for d in turn.of("node_finished")]


SALES = [["region", "units", "price", "when"],
         ["North", 12, 2.5, dt.datetime(2024, 1, 5)],
         ["South", None, 3, dt.datetime(2024, 2, 1, 9, 30)]]
COSTS = [["item", "cost"], ["rent", 1000], ["power", 120.5]]


# --------------------------------------------------------------------------- read
async def test_read_every_sheet_of_a_workbook(store: LocalBlobStore) -> None:
    book = await upload(store, workbook({"Sales": SALES, "Costs": COSTS}), "q1.xlsx")
    turn = await run(store, {"input_files": ["{env.book}"]}, {"book": book})
    assert turn.output("x", "data") == {
        "q1.xlsx_Sales": [
            {"region": "North", "units": 12.0, "price": 2.5, "when": "2024-01-05T00:00:00"},
            # Deliberate: ragflow keeps NaN and pandas Timestamps; JSON holds null and ISO text.
            {"region": "South", "units": None, "price": 3.0, "when": "2024-02-01T09:30:00"}],
        "q1.xlsx_Costs": [{"item": "rent", "cost": 1000.0}, {"item": "power", "cost": 120.5}],
    }
    assert turn.output("x", "summary") == ("**q1.xlsx_Sales**: 2 rows, 4 columns (region, units, price, when)\n"
                                           "**q1.xlsx_Costs**: 2 rows, 2 columns (item, cost)")
    assert turn.output("x", "markdown") == (
        "### q1.xlsx_Sales\n\n"
        "| region   |   units |   price | when                |\n"
        "|:---------|--------:|--------:|:--------------------|\n"
        "| North    |      12 |     2.5 | 2024-01-05 00:00:00 |\n"
        "| South    |     nan |     3   | 2024-02-01 09:30:00 |\n"
        "\n\n"
        "### q1.xlsx_Costs\n\n"
        "| item   |   cost |\n"
        "|:-------|-------:|\n"
        "| rent   | 1000   |\n"
        "| power  |  120.5 |\n")
    assert turn.text == turn.output("x", "summary")
    assert turn.finished("x")["inputs"] == {"{env.book}": str(book)[:200]}
    assert turn.of("node_started")[1]["thoughts"] == "Reading Excel files..."


@pytest.mark.parametrize(("selection", "key", "first_row"), [
    ("first", "q1.xlsx", {"region": "North", "units": 12.0, "price": 2.5, "when": "2024-01-05T00:00:00"}),
    ("Costs, Nope", "q1.xlsx", {"item": "rent", "cost": 1000.0}),
])
async def test_sheet_selection_names_a_single_sheet_by_file(store: LocalBlobStore, selection: str, key: str,
                                                          first_row: dict[str, Any]) -> None:
    book = await upload(store, workbook({"Sales": SALES, "Costs": COSTS}), "q1.xlsx")
    turn = await run(store, {"input_files": ["env.book"], "sheet_selection": selection}, {"book": book})
    data = turn.output("x", "data")
    assert list(data) == [key]
    assert data[key][0] == first_row


async def test_sheet_selection_with_no_sheet_found_reads_nothing(store: LocalBlobStore) -> None:
    book = await upload(store, workbook({"Sales": SALES}), "q1.xlsx")
    turn = await run(store, {"input_files": ["{env.book}"], "sheet_selection": "Totals"}, {"book": book})
    assert turn.output("x", "data") == {}
    assert turn.output("x", "summary") == "No Excel files found"
    assert turn.output("x", "markdown") == "No data"


async def test_read_csv_shows_five_columns_and_ten_rows(store: LocalBlobStore) -> None:
    lines = ["a,b,c,d,e,f"] + [f"{i},{i * 2},x{i},,y,{i % 2 == 0}" for i in range(12)]
    csv = await upload(store, ("\n".join(lines) + "\n").encode(), "wide.csv")
    turn = await run(store, {"input_files": ["{env.csv}"]}, {"csv": csv})
    data = turn.output("x", "data")
    assert list(data) == ["wide.csv"]
    assert len(data["wide.csv"]) == 12
    assert data["wide.csv"][1] == {"a": 1, "b": 2, "c": "x1", "d": None, "e": "y", "f": False}
    assert turn.output("x", "summary") == "**wide.csv**: 12 rows, 6 columns (a, b, c, d, e...)"
    markdown = turn.output("x", "markdown")
    assert markdown.startswith("### wide.csv\n\n|   a |   b | c   |   d | e   | f     |\n"
                               "|----:|----:|:----|----:|:----|:------|\n|   0 |   0 | x0  | nan | y   | True  |\n")
    assert markdown.endswith("|   9 |  18 | x9  | nan | y   | False |\n")
    assert markdown.count("\n") == 14  # heading, blank, header, rule, ten rows, and the closing newline


async def test_lists_of_files_ids_and_data_urls(store: LocalBlobStore) -> None:
    first = await upload(store, workbook({"S": [["k"], [1]]}), "one.xlsx")
    second = await upload(store, b"k\n2\n", "two.csv")
    third = await store.put(workbook({"S": [["k"], [3]]}), filename="three.xlsx")
    url = "data:text/csv;base64," + base64.b64encode(b"k\n4\n").decode()
    turn = await run(store, {"input_files": ["{env.files}", "{env.id}", "{env.url}", "{env.none}"]},
                     {"files": [first, second], "id": third.id, "url": url, "none": None})
    assert turn.output("x", "data") == {"one.xlsx": [{"k": 1}], "two.csv": [{"k": 2}], "three.xlsx": [{"k": 3}],
                                        "uploaded.csv": [{"k": 4}]}
    assert turn.output("x", "summary").splitlines() == [
        "**one.xlsx**: 1 rows, 1 columns (k)", "**two.csv**: 1 rows, 1 columns (k)",
        "**three.xlsx**: 1 rows, 1 columns (k)", "**uploaded.csv**: 1 rows, 1 columns (k)"]


async def test_no_input_files(store: LocalBlobStore) -> None:
    turn = await run(store, {"input_files": ["{env.none}", "{env.empty}"]}, {"none": None, "empty": []})
    assert turn.output("x", "data") == {}
    assert turn.output("x", "summary") == "No Excel files found"
    assert turn.output("x", "markdown") == "No data"


async def test_a_file_field_of_begin_is_read_from_the_uploaded_file(store: LocalBlobStore) -> None:
    # Begin hands on the text of an uploaded document (ragflow's get_files); the spreadsheet is read
    # from the file values this run was given. ragflow finds no spreadsheet here.
    sheet = await upload(store, workbook({"Costs": COSTS}), "costs.xlsx")
    dsl = make_canvas({
        "begin": cpn("Begin", {"mode": "task", "inputs": {"sheet": {"type": "file", "name": "Sheet"}}}, down=["x"]),
        "x": cpn("ExcelProcessor", {"input_files": ["{begin@sheet}"]}, down=["m"]),
        "m": cpn("Message", {"content": ["{x@summary}"], "stream": False}),
    })
    turn = await run_turn(build(dsl, services={"files": store}),
                          inputs={"sheet": {"type": "file", "value": [sheet]}})
    assert turn.error is None
    assert turn.text == "**costs.xlsx**: 2 rows, 2 columns (item, cost)"


# --------------------------------------------------------------------------- merge
async def test_merge_concatenates_every_sheet(store: LocalBlobStore) -> None:
    book = await upload(store, workbook({"Jan": [["name", "units"], ["a", 1]], "Feb": [["name", "units"], ["b", 2]]}),
                        "months.xlsx")
    extra = await upload(store, b"name,note\nc,late\n", "extra.csv")
    turn = await run(store, {"operation": "merge", "input_files": ["{env.book}", "{env.extra}"]},
                     {"book": book, "extra": extra})
    assert turn.output("x", "data") == {"merged": [{"name": "a", "units": 1.0, "note": None},
                                                   {"name": "b", "units": 2.0, "note": None},
                                                   {"name": "c", "units": None, "note": "late"}]}
    assert turn.output("x", "summary") == "Merged 3 sources into 3 rows, 3 columns"
    assert turn.output("x", "markdown") == ("| name   |   units | note   |\n"
                                            "|:-------|--------:|:-------|\n"
                                            "| a      |       1 | nan    |\n"
                                            "| b      |       2 | nan    |\n"
                                            "| c      |     nan | late   |")
    assert turn.of("node_started")[1]["thoughts"] == "Merging Excel data..."


async def test_merge_joins_on_a_column(store: LocalBlobStore) -> None:
    people = await upload(store, workbook({"P": [["id", "name"], [1, "Ann"], [2, "Bo"]]}), "people.xlsx")
    scores = await upload(store, b"id,score\n2,7\n3,9\n", "scores.csv")
    turn = await run(store, {"operation": "merge", "merge_strategy": "join", "join_on": "id",
                             "input_files": ["{env.p}", "{env.s}"]}, {"p": people, "s": scores})
    assert turn.output("x", "data") == {"merged": [{"id": 1, "name": "Ann", "score": None},
                                                   {"id": 2, "name": "Bo", "score": 7.0},
                                                   {"id": 3, "name": None, "score": 9.0}]}
    assert turn.output("x", "summary") == "Merged 2 sources into 3 rows, 3 columns"


async def test_merge_without_files(store: LocalBlobStore) -> None:
    turn = await run(store, {"operation": "merge", "input_files": []})
    assert turn.output("x", "data") == {}
    assert turn.output("x", "summary") == "No data to merge"
    assert turn.output("x", "markdown") == ""


async def test_join_on_a_missing_column_fails_naming_it_and_keeps_other_outputs(store: LocalBlobStore) -> None:
    people = await upload(store, b"id,name\n1,Ann\n", "people.csv")
    scores = await upload(store, b"key,score\n1,7\n", "scores.csv")
    dsl = make_canvas({
        "begin": cpn("Begin", down=["read"]),
        "read": cpn("ExcelProcessor", {"input_files": ["{env.p}"]}, down=["x"]),
        "x": cpn("ExcelProcessor", {"operation": "merge", "merge_strategy": "join", "join_on": "id",
                                    "input_files": ["{env.p}", "{env.s}"]}, down=["m"]),
        "m": cpn("Message", {"content": ["{x@summary}"], "stream": False}),
    }, globals={"env.p": people, "env.s": scores})
    turn = await run_turn(build(dsl, services={"files": store}))
    failed(turn, "cannot join on column 'id': 'scores.csv' has no such column (its columns: key, score)")
    assert turn.output("x", "_ERROR") == turn.finished("x")["error"]
    assert turn.output("read", "summary") == "**people.csv**: 1 rows, 2 columns (id, name)"
    assert turn.error is not None and "cannot join on column 'id'" in turn.error


# --------------------------------------------------------------------------- transform
@pytest.mark.parametrize(("value", "data", "markdown"), [
    ({"North": [{"a": 1}], "South": [{"a": 2, "b": "x"}]},
     {"North": [{"a": 1}], "South": [{"a": 2, "b": "x"}]},
     "### North\n\n|   a |\n|----:|\n|   1 |\n\n### South\n\n|   a | b   |\n|----:|:----|\n|   2 | x   |"),
    ({"a": 1, "b": "x"}, [{"a": 1, "b": "x"}], "|   a | b   |\n|----:|:----|\n|   1 | x   |"),
    ([{"a": 1}, {"b": 2}], [{"a": 1.0, "b": None}, {"a": None, "b": 2.0}],
     "|   a |   b |\n|----:|----:|\n|   1 | nan |\n| nan |   2 |"),
    ("plain text", {"raw": "plain text"}, "plain text"),
])
async def test_transform_normalises_data(store: LocalBlobStore, value: Any, data: Any, markdown: str) -> None:
    turn = await run(store, {"operation": "transform", "transform_data": "{env.v}"}, {"v": value})
    assert turn.output("x", "data") == data
    assert turn.output("x", "markdown") == markdown
    assert turn.output("x", "summary") == "Transformed data ready for processing"
    assert turn.finished("x")["inputs"] == {"{env.v}": str(value)[:300]}


@pytest.mark.parametrize(("params", "env", "summary"), [
    ({"operation": "transform"}, {}, "No transform data reference provided"),
    ({"operation": "transform", "transform_data": "{env.v}"}, {"v": None}, "Transform data is empty"),
    ({"operation": "output"}, {}, "No data reference for output"),
    ({"operation": "output", "transform_data": "{env.v}"}, {"v": None}, "No data to output"),
    ({"operation": "output", "transform_data": "{env.v}"}, {"v": "text"}, "Invalid data format for Excel output"),
    ({"operation": "output", "transform_data": "{env.v}", "output_format": "csv"}, {"v": {}},
     "Error generating output: list index out of range"),
])
async def test_nothing_to_work_on_is_said_in_the_summary(store: LocalBlobStore, params: dict[str, Any],
                                                        env: dict[str, Any], summary: str) -> None:
    turn = await run(store, params, env)
    assert turn.error is None
    assert turn.output("x", "summary") == summary
    assert turn.output("x", "data") == {}
    assert turn.output("x", "attachment") == ""


# --------------------------------------------------------------------------- output
async def test_output_xlsx_writes_one_sheet_per_key(store: LocalBlobStore) -> None:
    value = {"Orders": [{"id": 1, "item": "pen", "qty": 3}, {"id": 2, "item": "ink", "qty": None}],
             "a/b": [{"note": "slashes become underscores"}]}
    turn = await run(store, {"operation": "output", "transform_data": "{env.v}", "output_filename": "report"},
                     {"v": value}, msg="{x@attachment.file_name}")
    attachment = turn.output("x", "attachment")
    assert attachment == {"doc_id": attachment["doc_id"], "format": "xlsx", "file_name": "report.xlsx"}
    assert turn.output("x", "summary") == "Generated report.xlsx with 2 sheet(s), 3 total rows"
    assert turn.output("x", "data") == value
    assert turn.text == "report.xlsx"
    assert turn.of("node_started")[1]["thoughts"] == "Generating Excel output..."
    blob = await store.info(attachment["doc_id"])
    assert (blob.filename, blob.mime_type) == ("report.xlsx", XLSX)
    book = openpyxl.load_workbook(io.BytesIO(await store.get(blob.id)))
    assert book.sheetnames == ["Orders", "a_b"]
    assert [[c.value for c in row] for row in book["Orders"].iter_rows()] == [
        ["id", "item", "qty"], [1, "pen", 3], [2, "ink", None]]
    assert [[c.value for c in row] for row in book["a_b"].iter_rows()] == [["note"], ["slashes become underscores"]]


async def test_output_csv_writes_the_first_sheet(store: LocalBlobStore) -> None:
    value = [{"name": "Ann", "city": "Oslo, NO"}, {"name": "Bo", "score": 7}]
    turn = await run(store, {"operation": "output", "transform_data": "{env.v}", "output_format": "csv"}, {"v": value})
    attachment = turn.output("x", "attachment")
    assert attachment["format"] == "csv" and attachment["file_name"] == "output.csv"
    assert turn.output("x", "summary") == "Generated output.csv with 1 sheet(s), 2 total rows"
    assert turn.output("x", "data") == {"Sheet1": [{"name": "Ann", "city": "Oslo, NO", "score": None},
                                                   {"name": "Bo", "city": None, "score": 7.0}]}
    assert (await store.get(attachment["doc_id"])).decode() == 'name,city,score\nAnn,"Oslo, NO",\nBo,,7.0\n'
    assert (await store.info(attachment["doc_id"])).mime_type == "text/csv"


async def test_read_then_output_round_trips_a_workbook(store: LocalBlobStore) -> None:
    book = await upload(store, workbook({"Costs": COSTS, "Other": [["x"], ["y"]]}), "in.xlsx")
    dsl = make_canvas({
        "begin": cpn("Begin", down=["read"]),
        "read": cpn("ExcelProcessor", {"input_files": ["{env.book}"]}, down=["x"]),
        "x": cpn("ExcelProcessor", {"operation": "output", "transform_data": "{read@data}"}, down=["m"]),
        "m": cpn("Message", {"content": ["{x@summary}"], "stream": False}),
    }, globals={"env.book": book})
    turn = await run_turn(build(dsl, services={"files": store}))
    assert turn.text == "Generated output.xlsx with 2 sheet(s), 3 total rows"
    out = openpyxl.load_workbook(io.BytesIO(await store.get(turn.output("x", "attachment")["doc_id"])))
    assert out.sheetnames == ["in.xlsx_Costs", "in.xlsx_Other"]
    assert [[c.value for c in row] for row in out["in.xlsx_Costs"].iter_rows()] == [
        ["item", "cost"], ["rent", 1000], ["power", 120.5]]


# --------------------------------------------------------------------------- failures
async def test_an_unreadable_workbook_fails_naming_it(store: LocalBlobStore) -> None:
    # Deliberate: ragflow logs the parse error and reads on as if the file were not there.
    bad = await upload(store, b"not a workbook", "bad.xlsx")
    turn = await run(store, {"input_files": ["{env.f}"]}, {"f": bad})
    failed(turn, "cannot read 'bad.xlsx' as an xlsx workbook: File is not a zip file")


async def test_an_xls_workbook_is_refused(store: LocalBlobStore) -> None:
    old = await upload(store, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), "old.xls")
    turn = await run(store, {"input_files": ["{env.f}"]}, {"f": old})
    failed(turn, "cannot read 'old.xls': it is an Excel 97-2003 (.xls) workbook; only .xlsx and .csv files are "
                 "supported")


async def test_a_csv_that_is_not_utf8_fails(store: LocalBlobStore) -> None:
    latin = await upload(store, "name\nJosé\n".encode("latin-1"), "latin.csv")
    turn = await run(store, {"input_files": ["{env.f}"]}, {"f": latin})
    failed(turn, "cannot read 'latin.csv' as CSV: it is not UTF-8 text")


async def test_a_file_over_the_size_limit_fails(store: LocalBlobStore) -> None:
    big = await upload(store, b"k\n" + b"1\n" * 600, "big.csv")
    turn = await run(store, {"input_files": ["{env.f}"], "max_file_mb": 0.001}, {"f": big})
    failed(turn, "file 'big.csv' is 1.17 KB, over the 1.02 KB limit for spreadsheets")


async def test_the_size_limit_comes_from_the_settings(store: LocalBlobStore) -> None:
    class Settings:
        files_max_bytes = 1000

    big = await upload(store, b"k\n" + b"1\n" * 600, "big.csv")
    dsl = make_canvas({"begin": cpn("Begin", down=["x"]),
                       "x": cpn("ExcelProcessor", {"input_files": ["{env.f}"]})}, globals={"env.f": big})
    turn = await run_turn(build(dsl, services={"files": store, "settings": Settings()}))
    assert turn.finished("x")["error"] == "file 'big.csv' is 1.17 KB, over the 1000 bytes limit for spreadsheets"


@pytest.mark.parametrize(("value", "error"), [
    ({"id": "0" * 32, "name": "gone.xlsx"}, f"file 'gone.xlsx' ({'0' * 32}) from {{env.f}} is not a stored file"),
    ({"name": "no-id.xlsx"}, "{env.f} holds an object that is not a file (it has no 'id')"),
    ("some text, not a file", "{env.f} holds str 'some text, not a file', not a file: expected a file value, "
                              "a stored file id or a data: URL"),
    (42, "{env.f} holds int '42', not a file: expected a file value, a stored file id or a data: URL"),
])
async def test_values_that_are_not_stored_files_fail(store: LocalBlobStore, value: Any, error: str) -> None:
    turn = await run(store, {"input_files": ["{env.f}"]}, {"f": value})
    failed(turn, error)


async def test_an_unknown_reference_fails(store: LocalBlobStore) -> None:
    turn = await run(store, {"input_files": ["{nowhere@file}"]})
    failed(turn, "Can't find variable: 'nowhere@file'")


@pytest.mark.parametrize(("params", "message"), [
    ({"operation": "pivot"}, "operation 'pivot' is not supported; use one of read, merge, transform, output"),
    ({"output_format": "pdf"}, "output_format 'pdf' is not supported; use one of xlsx, csv"),
])
def test_unknown_operation_or_format_fails_to_load(params: dict[str, Any], message: str) -> None:
    # As ragflow's ExcelProcessorParam.check(): the canvas does not load.
    dsl = make_canvas({"begin": cpn("Begin", down=["x"]), "x": cpn("ExcelProcessor", params)})
    with pytest.raises(DslError, match=message):
        build(dsl)


async def test_a_workbook_that_unpacks_far_beyond_the_limit_is_refused(store: LocalBlobStore) -> None:
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"0" * 200_000)
    bomb = await upload(store, packed.getvalue(), "bomb.xlsx")
    turn = await run(store, {"input_files": ["{env.f}"], "max_file_mb": 0.001}, {"f": bomb})
    failed(turn, "cannot read 'bomb.xlsx': it unpacks to 195 KB, over the 25.6 KB allowed")


# --------------------------------------------------------------------------- the example
async def test_the_spreadsheet_example_writes_its_orders_to_xlsx(store: LocalBlobStore) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "spreadsheet.json"
    dsl = json.loads(example.read_text(encoding="utf-8"))
    turn = await run_turn(build(dsl, services={"files": store}))
    assert turn.error is None
    attachment = turn.output("ExcelProcessor:Export", "attachment")
    assert attachment["file_name"] == "orders.xlsx"
    assert turn.text.startswith("### Orders\n\n|   order | customer   | item   |   qty |   price |\n")
    assert turn.text.endswith("\n\nGenerated orders.xlsx with 2 sheet(s), 5 total rows: orders.xlsx "
                              f"(file id {attachment['doc_id']})")
    book = openpyxl.load_workbook(io.BytesIO(await store.get(attachment["doc_id"])))
    assert book.sheetnames == ["Orders", "Customers"]
    assert [c.value for c in book["Orders"][2]] == [1001, "Ann", "pen", 3, 1.5]
    assert [[c.value for c in row] for row in book["Customers"].iter_rows()] == [
        ["customer", "city"], ["Ann", "Oslo"], ["Bo", "Lyon"]]
