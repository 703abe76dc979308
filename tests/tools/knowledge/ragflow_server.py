"""A ragflow server on loopback that answers ``POST /api/v1/retrieval`` the way ragflow does.

It holds datasets of chunks, checks the bearer key, scores a chunk by the share of the
question's words it holds, and answers with ragflow's envelope and the API's key names
(``id``, ``document_id``, ``document_keyword``, ``dataset_id``, ...). ``mode`` makes it fail.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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


class _Handler(BaseHTTPRequestHandler):
    server: RagflowServerStub

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.requests.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
        mode = self.server.mode
        if mode == "http500":
            return self._reply(500, b"boom", "text/plain")
        if mode == "not-json":
            return self._reply(200, b"<html>proxy error</html>", "text/html")
        if self.path != "/api/v1/retrieval":
            return self._reply(404, b"not found", "text/plain")
        if self.headers.get("Authorization") != f"Bearer {API_KEY}":
            # ragflow answers a bad key with HTTP 200 and code 109.
            return self._json({"code": 109, "message": "Authentication error: API key is invalid!", "data": None})
        if not body.get("dataset_ids"):
            return self._json({"code": 102, "message": "`dataset_ids` is required."})
        for ds in body["dataset_ids"]:
            if ds not in DATASETS:
                return self._json({"code": 102, "message": f"You don't own the dataset {ds}."})
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
        self._json({"code": 0, "data": {"chunks": chunks, "doc_aggs": list(aggs.values()), "total": len(hits)}})

    def _json(self, payload: Any) -> None:
        self._reply(200, json.dumps(payload).encode(), "application/json")

    def _reply(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class RagflowServerStub(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict[str, Any]] = []
        self.mode = ""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextlib.contextmanager
def running() -> Iterator[RagflowServerStub]:
    srv = RagflowServerStub()
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
