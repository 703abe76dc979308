"""Where CodeExec keeps the files a script produced: ``<data_dir>/artifacts/<uuid><ext>``.

ragflow uploads each artifact to its object store under ``<uuid hex><ext>`` and links it as
``/api/v1/documents/artifact/<name>?session_id=<task id>``; :class:`ArtifactStore` is the same
on the local disk. The HTTP face serves :meth:`ArtifactStore.path` of a name it is given;
names are checked, so a request cannot reach outside the directory.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from pathlib import Path
from urllib.parse import quote

__all__ = ["ArtifactStore", "artifact_url"]

_NAME = re.compile(r"^[0-9a-f]{32}(\.[a-z0-9]{1,10})?$")


def artifact_url(stored_name: str, session_id: str) -> str:
    """ragflow's link to a stored artifact."""
    return f"/api/v1/documents/artifact/{stored_name}?session_id={quote(session_id, safe='')}"


class ArtifactStore:
    """Files under one directory, named by a fresh uuid and the original extension."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    async def put(self, name: str, content: bytes) -> str:
        """Store ``content`` (a file called ``name``); returns the stored name."""
        ext = os.path.splitext(name)[1].lower()
        if not re.fullmatch(r"\.[a-z0-9]{1,10}", ext):
            ext = ""
        stored = f"{uuid.uuid4().hex}{ext}"
        await asyncio.to_thread(self._write, stored, content)
        return stored

    def path(self, stored_name: str) -> Path | None:
        """The file of a stored name, or ``None`` for a name this store never hands out or no longer has."""
        if not _NAME.match(stored_name):
            return None
        path = self.root / stored_name
        return path if path.is_file() else None

    def read(self, stored_name: str) -> bytes | None:
        path = self.path(stored_name)
        return path.read_bytes() if path is not None else None

    def _write(self, stored: str, content: bytes) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{stored}.part"
        tmp.write_bytes(content)
        tmp.replace(self.root / stored)
