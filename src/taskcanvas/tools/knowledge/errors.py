"""Errors of the knowledge bases; each message names the file, knowledge base or server concerned."""

from __future__ import annotations

from taskcanvas.errors import TaskcanvasError


class KnowledgeError(TaskcanvasError):
    """A knowledge base that cannot be found, read, searched or reached."""


class DocumentError(KnowledgeError):
    """A file that cannot be added to a knowledge base (unsupported type, unreadable, no text)."""
