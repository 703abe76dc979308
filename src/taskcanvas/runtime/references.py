"""The reference store of a run: the chunks and documents retrieved, cited in ``message_end``.

ragflow keeps one ``{"chunks": {id: chunk}, "doc_aggs": {name: doc}}`` per run in
``retrieval[-1]``; chunks are keyed by a short stable hash of their id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any


def hash_str2int(text: str, mod: int = 10**8) -> int:
    """ragflow's stable number for a text (``common/misc_utils.hash_str2int``)."""
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16) % mod


def _first(chunk: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if chunk.get(key) is not None:
            return chunk[key]
    return None


def chunk_reference(chunk: Mapping[str, Any]) -> dict[str, Any]:
    """A retrieved chunk in the shape clients get (ragflow's ``chunks_format``)."""
    return {
        "id": _first(chunk, "chunk_id", "id"),
        "content": _first(chunk, "content", "content_with_weight"),
        "document_id": _first(chunk, "doc_id", "document_id"),
        "document_name": _first(chunk, "docnm_kwd", "document_name"),
        "dataset_id": _first(chunk, "kb_id", "dataset_id"),
        "image_id": _first(chunk, "image_id", "img_id"),
        "positions": _first(chunk, "positions", "position_int"),
        "url": chunk.get("url"),
        "similarity": chunk.get("similarity"),
        "vector_similarity": chunk.get("vector_similarity"),
        "term_similarity": chunk.get("term_similarity"),
        "row_id": chunk.get("row_id"),
        "doc_type": _first(chunk, "doc_type_kwd", "doc_type"),
        "document_metadata": chunk.get("document_metadata"),
    }


def add_to_store(store: dict[str, Any], chunks: Sequence[Mapping[str, Any]],
                 doc_aggs: Sequence[Mapping[str, Any]]) -> None:
    """Add chunks and documents to one run's reference store (first one of an id wins)."""
    stored_chunks = store.setdefault("chunks", {})
    stored_docs = store.setdefault("doc_aggs", {})
    if not isinstance(stored_chunks, dict):
        stored_chunks = store["chunks"] = {}
    if not isinstance(stored_docs, dict):
        stored_docs = store["doc_aggs"] = {}
    for chunk in chunks:
        ref = chunk_reference(chunk)
        key = str(hash_str2int(str(ref["id"]), 500))
        stored_chunks.setdefault(key, ref)
    for doc in doc_aggs:
        stored_docs.setdefault(str(doc.get("doc_name")), dict(doc))
