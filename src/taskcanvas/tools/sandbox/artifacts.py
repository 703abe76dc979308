"""CodeExec's artifacts, kept in the blob store like every other file of a run.

ragflow uploads each artifact under ``<uuid hex><ext>`` and links it as
``/api/v1/documents/artifact/<name>?session_id=<task id>``. Here the uuid is the blob's id and
the extension that of the file's name, so the link keeps ragflow's shape while the bytes live in
whichever :class:`~taskcanvas.files.BlobStore` the settings chose (a directory or S3). The HTTP
route serves :meth:`ArtifactStore.open` of a name it is given; a name that is not
``<32 hex><ext>`` of a stored file with that extension is simply not found.
"""

from __future__ import annotations

import asyncio
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from taskcanvas.files import Blob, BlobNotFound, BlobStore, LocalBlobStore

__all__ = ["ARTIFACT_CONTENT_TYPES", "ArtifactStore", "StoredArtifact", "artifact_url"]

_NAME = re.compile(r"^([0-9a-f]{32})(\.[a-z0-9]{1,10})?$")

ARTIFACT_CONTENT_TYPES = {
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml",
    ".pdf": "application/pdf", ".csv": "text/csv", ".json": "application/json", ".html": "text/html",
}
"""The kinds the artifact route serves and the type it serves each as (ragflow's list)."""


def artifact_url(stored_name: str, session_id: str) -> str:
    """ragflow's link to a stored artifact."""
    return f"/api/v1/documents/artifact/{stored_name}?session_id={quote(session_id, safe='')}"


@dataclass(frozen=True)
class StoredArtifact:
    blob: Blob
    content: bytes
    content_type: str


class ArtifactStore:
    """Artifacts in a blob store (a directory path is taken as a :class:`LocalBlobStore` there)."""

    def __init__(self, blobs: BlobStore | Path | str) -> None:
        self.blobs: BlobStore = LocalBlobStore(blobs) if isinstance(blobs, (str, Path)) else blobs

    @property
    def root(self) -> Path | None:
        """The directory of a local store (``None`` for any other)."""
        return self.blobs.root if isinstance(self.blobs, LocalBlobStore) else None

    async def put(self, name: str, content: bytes, *, mime_type: str | None = None) -> str:
        """Store ``content`` (a file called ``name``); returns the stored name, ``<id><ext>``."""
        blob = await self.blobs.put(content, filename=name, mime_type=mime_type)
        return f"{blob.id}{_extension(name)}"

    async def open(self, stored_name: str) -> StoredArtifact | None:
        """The artifact of a stored name, or ``None`` for a name this store never handed out or no longer has."""
        match = _NAME.match(stored_name)
        if match is None:
            return None
        blob_id, ext = match.group(1), match.group(2) or ""
        try:
            blob = await self.blobs.info(blob_id)
            if _extension(blob.filename) != ext:
                return None
            content = await self.blobs.get(blob_id)
        except BlobNotFound:
            return None
        return StoredArtifact(blob, content, ARTIFACT_CONTENT_TYPES.get(ext, "application/octet-stream"))

    def read(self, stored_name: str) -> bytes | None:
        """:meth:`open`'s bytes, blocking (for scripts and tests; async code awaits :meth:`open`)."""
        with ThreadPoolExecutor(max_workers=1) as pool:
            found = pool.submit(asyncio.run, self.open(stored_name)).result()
        return found.content if found is not None else None


def _extension(name: str) -> str:
    ext = os.path.splitext(name)[1].lower()
    return ext if re.fullmatch(r"\.[a-z0-9]{1,10}", ext) else ""
