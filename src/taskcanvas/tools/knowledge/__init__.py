"""Knowledge bases for the Retrieval tool: a local one in SQLite, and ragflow servers.

- :mod:`~taskcanvas.tools.knowledge.store`: local knowledge bases, one SQLite file in the data
  directory, FTS5 full-text search ranked by BM25 (``taskcanvas kb add NAME FILE...``);
- :mod:`~taskcanvas.tools.knowledge.documents`: text out of .txt/.md/.pdf/.docx, and passages;
- :mod:`~taskcanvas.tools.knowledge.remote`: a ragflow server's ``/api/v1/retrieval``;
- :mod:`~taskcanvas.tools.knowledge.registry`: :class:`KnowledgeBases`, which resolves the ids a
  canvas names through ``[knowledge_bases]`` in the configuration; the engine's ``knowledge`` service.

Every backend returns chunks in ragflow's shape (``chunk_id``, ``content``, ``doc_id``,
``docnm_kwd``, ``kb_id``, ``similarity``, ...) in a :class:`SearchResult`.
"""

from __future__ import annotations

from taskcanvas.tools.knowledge.documents import SUPPORTED_SUFFIXES, chunk_text, extract_text
from taskcanvas.tools.knowledge.errors import DocumentError, KnowledgeError
from taskcanvas.tools.knowledge.registry import KnowledgeBases, LocalTarget, RagflowTarget, Target
from taskcanvas.tools.knowledge.remote import RagflowServer
from taskcanvas.tools.knowledge.store import AddedDocument, KnowledgeBase, KnowledgeStore, SearchResult

__all__ = [
    "SUPPORTED_SUFFIXES",
    "AddedDocument",
    "DocumentError",
    "KnowledgeBase",
    "KnowledgeBases",
    "KnowledgeError",
    "KnowledgeStore",
    "LocalTarget",
    "RagflowServer",
    "RagflowTarget",
    "SearchResult",
    "Target",
    "chunk_text",
    "extract_text",
]
