"""The blob store: bytes under an opaque id, with the name and media type they were stored with.

:class:`BlobStore` is the protocol every backend keeps; :class:`LocalBlobStore` is the default,
a directory in the data directory. Ids are fresh uuid hex strings (ragflow's ``doc_id`` shape),
so a caller can never name a path of its own choosing.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import os
import re
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

__all__ = ["Blob", "BlobNotFound", "BlobStore", "LocalBlobStore", "guess_mime_type", "valid_blob_id"]

_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Blob:
    """What is known of a stored file besides its bytes."""

    id: str
    filename: str
    mime_type: str
    size: int


class BlobNotFound(LookupError):
    """No blob has this id (never stored, deleted, or not an id this store hands out)."""

    def __init__(self, blob_id: str) -> None:
        super().__init__(f"no stored file has the id '{blob_id}'")
        self.blob_id = blob_id


class BlobStore(Protocol):
    async def put(self, content: bytes, *, filename: str, mime_type: str | None = None) -> Blob:
        """Store ``content``; the media type is guessed from ``filename`` when not given."""
        ...

    async def get(self, blob_id: str) -> bytes:
        """The bytes of a stored blob; :class:`BlobNotFound` if there is none."""
        ...

    async def info(self, blob_id: str) -> Blob:
        ...

    async def delete(self, blob_id: str) -> None:
        """Forget a blob; deleting one that is not there is not an error."""
        ...


def guess_mime_type(filename: str) -> str:
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def valid_blob_id(blob_id: object) -> bool:
    """Whether ``blob_id`` has the shape of an id a store hands out (so it can name no path or key)."""
    return isinstance(blob_id, str) and _ID.fullmatch(blob_id) is not None


class LocalBlobStore:
    """Blobs as files under one directory: ``<id[:2]>/<id>`` and its ``<id>.json`` description."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    async def put(self, content: bytes, *, filename: str, mime_type: str | None = None) -> Blob:
        blob = Blob(uuid.uuid4().hex, filename, mime_type or guess_mime_type(filename), len(content))
        await asyncio.to_thread(self._write, blob, content)
        return blob

    async def get(self, blob_id: str) -> bytes:
        path = self._path(blob_id)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise BlobNotFound(blob_id) from None

    async def info(self, blob_id: str) -> Blob:
        path = self._path(blob_id).with_suffix(".json")
        try:
            described = json.loads(await asyncio.to_thread(path.read_text, encoding="utf-8"))
        except FileNotFoundError:
            raise BlobNotFound(blob_id) from None
        return Blob(**described)

    async def delete(self, blob_id: str) -> None:
        if not valid_blob_id(blob_id):
            return  # never handed out, so not there
        path = self._path(blob_id)
        for file in (path, path.with_suffix(".json")):
            await asyncio.to_thread(file.unlink, missing_ok=True)

    def _path(self, blob_id: str) -> Path:
        if not valid_blob_id(blob_id):
            raise BlobNotFound(str(blob_id))
        return self.root / blob_id[:2] / blob_id

    def _write(self, blob: Blob, content: bytes) -> None:
        path = self._path(blob.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Bytes first, description last: a blob whose description exists is whole.
        for target, data in ((path, content), (path.with_suffix(".json"), json.dumps(asdict(blob)).encode())):
            part = target.with_name(f".{target.name}.part")
            part.write_bytes(data)
            os.replace(part, target)
