"""Errors of the files layer; each names the file or the store it is about.

    TaskcanvasError
    ├── FileError          a file that cannot be stored or read (missing, too large, unreadable)
    └── FileStoreError     the store itself failed (bucket missing, credentials refused, unreachable)

:class:`~taskcanvas.files.blobs.BlobNotFound` (a ``LookupError``) stays apart: an unknown id is
an answer, not a failure of the store.
"""

from __future__ import annotations

from taskcanvas.errors import TaskcanvasError

__all__ = ["FileError", "FileStoreError"]


class FileError(TaskcanvasError):
    """A file that cannot be stored or read; the message starts with the file's name."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem


class FileStoreError(TaskcanvasError):
    """The blob store could not do what was asked (not a problem of one file)."""
