"""A ragflow server on loopback (a replay server) that answers ``POST /api/v1/retrieval`` as ragflow does.

It holds datasets of chunks, checks the bearer key, scores a chunk by the share of the
question's words it holds, and answers with ragflow's envelope and the API's key names
(``id``, ``document_id``, ``document_keyword``, ``dataset_id``, ...). :data:`FAILURES` make it fail.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from typing import Any

from tests.support.replay import Recorded, ReplayServer, Reply

API_KEY = "ragflow-test-key"

DATASETS: dict[str, list[dict[str, str]]] = {
    "ds-manuals": [
        {"id": "c1", "doc": "d1", "name": "pump.pdf", "text": "The pump must be primed before the first start."},
        {"id": "c2", "doc": "d1", "name": "pump.pdf", "text": "Clean the pump filter every month."},
        {"id": "c3", "doc": "d2", "name": "valve.docx", "text": "Close the valve before servicing."},
    ],
    "ds-faq": [
        {"id": "c9", "doc": "d9", "name": "faq.md", "text": "Opening hours are nine to five."},
    ],
}


RETRIEVAL = "/api/v1/retrieval"

FAILURES = {
    "http500": Reply(500, b"boom", "text/plain"),
    "not-json": Reply(200, b"<html>proxy error</html>", "text/html"),
}
"""Answers of a ragflow server that fails, by name (route one to ``POST RETRIEVAL``)."""


def retrieval(request: Recorded) -> Reply:
    """ragflow's answer to ``POST /api/v1/retrieval``."""
    body = json.loads(request.body or b"{}")
    if request.headers.get("Authorization") != f"Bearer {API_KEY}":
        # ragflow answers a bad key with HTTP 200 and code 109.
        return Reply(body={"code": 109, "message": "Authentication error: API key is invalid!", "data": None})
    if not body.get("dataset_ids"):
        return Reply(body={"code": 102, "message": "`dataset_ids` is required."})
    for ds in body["dataset_ids"]:
        if ds not in DATASETS:
            return Reply(body={"code": 102, "message": f"You don't own the dataset {ds}."})
    words = set(re.findall(r"\w+", str(body.get("question", "")).lower()))
    threshold = float(body.get("similarity_threshold", 0.2))
    hits = []
    for ds in body["dataset_ids"]:
        for ck in DATASETS[ds]:
            text_words = set(re.findall(r"\w+", ck["text"].lower()))
            sim = len(words & text_words) / len(words) if words else 0.0
            if sim >= threshold:
                hits.append((sim, ds, ck))
    hits.sort(key=lambda h: -h[0])
    aggs: dict[str, dict[str, Any]] = {}
    for _sim, _ds, ck in hits:
        aggs.setdefault(ck["name"], {"doc_name": ck["name"], "doc_id": ck["doc"], "count": 0})["count"] += 1
    chunks = [{
        "id": ck["id"], "content": ck["text"], "content_ltks": ck["text"].lower(), "document_id": ck["doc"],
        "document_keyword": ck["name"], "dataset_id": ds, "image_id": "", "important_keywords": [""],
        "tag_kwd": [], "positions": [""], "similarity": sim, "term_similarity": sim,
        "vector_similarity": sim, "vector": [0.1, 0.2], "highlight": ck["text"],
    } for sim, ds, ck in hits[: int(body.get("page_size", 30))]]
    return Reply(body={"code": 0, "data": {"chunks": chunks, "doc_aggs": list(aggs.values()), "total": len(hits)}})


@contextlib.contextmanager
def running() -> Iterator[ReplayServer]:
    """A replay server on 127.0.0.1 answering like ragflow."""
    with ReplayServer() as server:
        server.route("POST", RETRIEVAL, retrieval)
        yield server
