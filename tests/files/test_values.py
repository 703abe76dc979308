"""File values as ragflow makes them, and what components see of each kind of file."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from taskcanvas.files import BlobStore, FileError, FileReader, file_value, store_file
from tests.files import samples

HEADER = "\n -----------------\nFile: {}\nContent as following: \n"


async def stored(store: BlobStore, name: str, content: bytes, mime_type: str | None = None) -> dict[str, object]:
    return dict(file_value(await store.put(content, filename=name, mime_type=mime_type), created_by="u1"))


async def test_a_local_file_becomes_ragflows_upload_info(store: BlobStore, tmp_path: Path) -> None:
    (tmp_path / "Report.PDF").write_bytes(samples.pdf("hello"))
    value = await store_file(store, tmp_path / "Report.PDF", created_by="alice")
    assert set(value) == {"id", "name", "size", "extension", "mime_type", "created_by", "created_at",
                          "preview_url"}
    assert (value["name"], value["extension"], value["mime_type"], value["created_by"], value["preview_url"]) == (
        "Report.PDF", "pdf", "application/pdf", "alice", None)
    assert value["size"] == len(samples.pdf("hello"))
    assert await store.get(value["id"]) == samples.pdf("hello")


async def test_missing_directory_and_too_large_local_files_are_named(store: BlobStore, tmp_path: Path) -> None:
    with pytest.raises(FileError, match=r"nope\.txt: no such file"):
        await store_file(store, tmp_path / "nope.txt")
    with pytest.raises(FileError, match="not a regular file"):
        await store_file(store, tmp_path)
    (tmp_path / "big.bin").write_bytes(b"x" * 3 * 1024 * 1024)
    with pytest.raises(FileError, match=r"big\.bin: the file is 3 MB, over the 2 MB limit"):
        await store_file(store, tmp_path / "big.bin", max_bytes=2 * 1024 * 1024)


async def test_documents_are_read_as_text_under_ragflows_header(store: BlobStore) -> None:
    files = [
        await stored(store, "memo.pdf", samples.pdf("Quarterly numbers", "are up")),
        await stored(store, "letter.docx", samples.docx("Dear Ann,", "See the table.",
                                                        table=[["item", "qty"], ["pens", "3"]])),
        await stored(store, "notes.txt", "café au lait\n".encode()),
        await stored(store, "readme.md", b"# Title\n\n- one\n"),
        await stored(store, "page.html", b"<html><head><title>x</title><style>p{}</style></head>"
                                         b"<body><h1>Hello</h1><script>evil()</script><p>there</p></body></html>"),
        await stored(store, "data.json", b'{"a": 1}'),
    ]
    texts = await FileReader(store).read(files)
    assert [t.split("Content as following: \n")[0] for t in texts] == [
        HEADER.format(f["name"]).split("Content as following: \n")[0] for f in files]
    body = [t.split("Content as following: \n", 1)[1] for t in texts]
    assert "Quarterly numbers" in body[0] and "are up" in body[0]
    assert body[1] == "Dear Ann,\nSee the table.\nitem | qty\npens | 3"
    assert body[2] == "café au lait\n"
    assert body[3] == "# Title\n\n- one\n"
    assert body[4] == "Hello\nthere"
    assert body[5] == '{"a": 1}'


async def test_spreadsheets_are_read_row_by_row_as_ragflow_does(store: BlobStore) -> None:
    book = samples.xlsx({"Sheet1": [["name", "age"], ["Ann", 31], ["Bob", None]],
                         "Prices": [["item", "price"], ["tea", 2.5]]})
    files = [await stored(store, "people.xlsx", book),
             await stored(store, "people.csv", b"name,age\nAnn,31\n,\nCy,40\n"),
             await stored(store, "latin.csv", ("name;city;note\nJosé;Málaga;très bien, déjà vu\n"
                                               "Zoë;Göteborg;crème brûlée à la carte\n").encode("cp1252"))]
    xlsx_text, csv_text, latin = await FileReader(store).read(files)
    assert xlsx_text == HEADER.format("people.xlsx") + "name：Ann; age：31\nname：Bob\nitem：tea; price：2.5 ——Prices"
    assert csv_text == HEADER.format("people.csv") + "name：Ann; age：31\nname：Cy; age：40"
    assert latin.endswith("name：José; city：Málaga; note：très bien, déjà vu\n"
                          "name：Zoë; city：Göteborg; note：crème brûlée à la carte")


async def test_images_become_data_urls(store: BlobStore) -> None:
    by_type = await stored(store, "pixel.png", samples.PNG)
    by_name = await stored(store, "photo.jpg", b"\xff\xd8\xff\xe0jpeg", mime_type="application/octet-stream")
    png_url, jpg_url = await FileReader(store).read([by_type, by_name])
    assert png_url == "data:image/png;base64," + base64.b64encode(samples.PNG).decode()
    assert jpg_url == "data:image/jpeg;base64," + base64.b64encode(b"\xff\xd8\xff\xe0jpeg").decode()


@pytest.mark.parametrize(("name", "content", "message"), [
    ("broken.pdf", b"%PDF-1.4 not really", r"broken\.pdf: not a readable PDF file"),
    ("broken.docx", b"PK not a zip", r"broken\.docx: not a readable DOCX file"),
    ("broken.xlsx", b"nope", r"broken\.xlsx: not a readable XLSX file"),
    ("program.exe", b"MZ\x90\x00", r"program\.exe: cannot read this kind of file \(taskcanvas reads PDF, DOCX"),
])
async def test_unreadable_files_are_named(store: BlobStore, name: str, content: bytes, message: str) -> None:
    value = await stored(store, name, content)
    with pytest.raises(FileError, match=message):
        await FileReader(store).read([value])


async def test_files_over_the_limit_are_named_and_not_read(store: BlobStore) -> None:
    value = await stored(store, "huge.txt", b"x" * (1024 * 1024 + 1))
    with pytest.raises(FileError, match=r"huge\.txt: the file is 1.0 MB, over the 1 MB limit"):
        await FileReader(store, max_bytes=1024 * 1024).read([value])


async def test_values_that_are_not_stored_files_are_named(store: BlobStore) -> None:
    reader = FileReader(store)
    with pytest.raises(FileError, match=r"gone\.txt: no stored file has the id '0{32}'"):
        await reader.read([{"id": "0" * 32, "name": "gone.txt", "mime_type": "text/plain"}])
    with pytest.raises(FileError, match="not a file value"):
        await reader.read(["/etc/passwd"])
