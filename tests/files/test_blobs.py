"""The local blob store keeps bytes with their name and type, under ids it made itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskcanvas.files import BlobNotFound, LocalBlobStore


async def test_a_stored_file_comes_back_with_its_name_and_type(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "files")
    blob = await store.put(b"a,b\n1,2\n", filename="table.csv")
    assert (blob.filename, blob.mime_type, blob.size) == ("table.csv", "text/csv", 8)
    assert await store.get(blob.id) == b"a,b\n1,2\n"
    assert await LocalBlobStore(tmp_path / "files").info(blob.id) == blob


async def test_a_deleted_or_made_up_id_is_not_found(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    blob = await store.put(b"x", filename="x.bin", mime_type="application/x-test")
    await store.delete(blob.id)
    await store.delete(blob.id)
    for wanted in (blob.id, "../../etc/passwd", "0" * 31):
        with pytest.raises(BlobNotFound, match="no stored file"):
            await store.get(wanted)
