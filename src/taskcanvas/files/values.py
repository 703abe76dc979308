"""File values: how a run refers to a stored file, and what components see of one.

A *file value* is the dict ragflow's ``FileService.upload_info`` makes when a user uploads a
file for an agent — ``{"id", "name", "size", "extension", "mime_type", "created_by",
"created_at", "preview_url"}`` — and what ``sys.files`` and file form fields are given.
:class:`FileReader` turns file values into what components see (``FileService.get_files``):
an image becomes a ``data:`` URL, any other file the text of the document under a short header.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict

from taskcanvas.files.blobs import Blob, BlobNotFound, BlobStore, guess_mime_type
from taskcanvas.files.errors import FileError
from taskcanvas.files.readers import document_text, image_data_url, is_image_name

__all__ = ["DEFAULT_MAX_BYTES", "FileReader", "FileValue", "file_value", "reader_of", "size_text", "store_file"]

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
"""The largest file a run is given or reads (20 MB), unless the settings say otherwise."""


class FileValue(TypedDict):
    id: str
    name: str
    size: int
    extension: str
    mime_type: str
    created_by: str
    created_at: float
    preview_url: str | None


def file_value(blob: Blob, *, created_by: str = "", created_at: float | None = None) -> FileValue:
    """The file value of a stored blob, in ragflow's ``upload_info`` shape."""
    return {
        "id": blob.id,
        "name": blob.filename,
        "size": blob.size,
        "extension": blob.filename.split(".")[-1].lower(),
        "mime_type": blob.mime_type,
        "created_by": created_by,
        "created_at": time.time() if created_at is None else created_at,
        "preview_url": None,
    }


def size_text(size: int) -> str:
    """A size for people: ``20 MB``, ``25.3 MB``, ``2 KB``, ``512 bytes``."""
    if size < 1024:
        return f"{size} bytes"
    for unit, scale in (("KB", 1024), ("MB", 1024 * 1024), ("GB", 1024**3)):
        amount = size / scale
        if amount < 1024 or unit == "GB":
            return f"{amount:.0f} {unit}" if amount == int(amount) or amount >= 100 else f"{amount:.1f} {unit}"
    raise AssertionError("unreachable")


async def store_file(store: BlobStore, path: str | os.PathLike[str], *, created_by: str = "",
                     max_bytes: int | None = DEFAULT_MAX_BYTES, mime_type: str | None = None) -> FileValue:
    """Store a local file and return its file value.

    Raises :class:`FileError` naming the path when it is missing, not a regular file,
    unreadable, or larger than ``max_bytes``.
    """
    file = Path(path)
    content = await asyncio.to_thread(_read_local, file, max_bytes)
    blob = await store.put(content, filename=file.name, mime_type=mime_type or guess_mime_type(file.name))
    return file_value(blob, created_by=created_by)


def _read_local(file: Path, max_bytes: int | None) -> bytes:
    try:
        if not file.is_file():
            problem = "no such file" if not file.exists() else "not a regular file"
            raise FileError(str(file), problem)
        size = file.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise FileError(str(file), f"the file is {size_text(size)}, over the {size_text(max_bytes)} limit")
        return file.read_bytes()
    except OSError as e:
        raise FileError(str(file), f"cannot read the file ({e.strerror or e})") from None


class FileReader:
    """Reads file values from one store, no file larger than ``max_bytes``."""

    def __init__(self, store: BlobStore, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.store = store
        self.max_bytes = max_bytes

    async def read(self, files: Sequence[Any], layout_recognize: str | None = None) -> list[str]:
        """What components see of ``files``, in order (ragflow's ``get_files``).

        ``layout_recognize`` (Begin's and UserFillUp's parameter) is accepted for ragflow's
        signature; taskcanvas reads every document as plain text. The first file that cannot
        be read raises :class:`FileError` naming it.
        """
        del layout_recognize
        return list(await asyncio.gather(*(self.read_one(f) for f in files)))

    async def read_one(self, value: Any) -> str:
        if not isinstance(value, Mapping) or not isinstance(value.get("id"), str):
            shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
            raise FileError(str(value.get("name") or "file") if isinstance(value, Mapping) else "file",
                            f"not a file value (expected an object with an 'id' from the file store): {shown}")
        label = str(value.get("name") or value["id"])
        try:
            blob = await self.store.info(value["id"])
        except BlobNotFound:
            raise FileError(label, f"no stored file has the id '{value['id']}'") from None
        name = str(value.get("name") or blob.filename)
        if blob.size > self.max_bytes:
            raise FileError(name, f"the file is {size_text(blob.size)}, over the {size_text(self.max_bytes)} limit")
        try:
            content = await self.store.get(blob.id)
        except BlobNotFound:
            raise FileError(name, f"no stored file has the id '{blob.id}'") from None
        mime_type = str(value.get("mime_type") or blob.mime_type)
        if "image" in mime_type:
            return image_data_url(content, mime_type)
        if is_image_name(name):
            return image_data_url(content)
        text = await asyncio.to_thread(document_text, name, content)
        return f"\n -----------------\nFile: {name}\nContent as following: \n{text}"


def reader_of(services: Mapping[str, Any]) -> FileReader | None:
    """The run's :class:`FileReader`: ``services["file_reader"]``, else one over ``services["files"]``."""
    reader = services.get("file_reader")
    if isinstance(reader, FileReader):
        return reader
    store = services.get("files")
    if store is None:
        return None
    settings = services.get("settings")
    max_bytes = getattr(settings, "files_max_bytes", DEFAULT_MAX_BYTES)
    return FileReader(store, max_bytes=int(max_bytes))
