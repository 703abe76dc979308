"""A remote ragflow server's datasets, searched through its HTTP retrieval API.

``POST <base_url>/api/v1/retrieval`` with ``Authorization: Bearer <api key>`` and the body
``{question, dataset_ids, page, page_size, similarity_threshold, vector_similarity_weight,
top_k, rerank_id?, use_kg, toc_enhance, cross_languages?, keyword, highlight}``; the answer is
ragflow's envelope ``{code, message, data: {chunks, doc_aggs, total}}`` (ragflow
``api/apps/restful_apis/chunk_api.py`` ``retrieval_test``, ``docs/references/http_api_reference.md``).

The API renames the chunk keys of ragflow's retriever (``id``, ``document_id``,
``document_keyword``, ``dataset_id``, ...); :func:`map_chunk` renames them back, so a remote
chunk has the shape of a local one (``chunk_id``, ``content``/``content_with_weight``,
``doc_id``, ``docnm_kwd``, ``kb_id``, ``similarity``, ...). The server does the whole search —
embeddings, reranking, knowledge graph, table of contents, translation — so the Retrieval
settings that the local store ignores take effect here.

The request goes through the HTTP client it is handed (the run's guarded client): a server on
a private network must be allowed in ``[http] allowed_hosts``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from taskcanvas.tools.http import SsrfBlocked
from taskcanvas.tools.knowledge.errors import KnowledgeError
from taskcanvas.tools.knowledge.store import SearchResult

__all__ = ["RagflowServer", "map_chunk"]

RETRIEVAL_PATH = "/api/v1/retrieval"
_MAX_PAGE_SIZE = 100
"""ragflow's ``REST_API_MAX_PAGE_SIZE``: a bigger ``page_size`` is an error there."""

_RENAMED = {
    "id": "chunk_id",
    "document_id": "doc_id",
    "document_keyword": "docnm_kwd",
    "dataset_id": "kb_id",
    "important_keywords": "important_kwd",
    "questions": "question_kwd",
}
_DROPPED = frozenset({"vector", "content_ltks"})


def map_chunk(chunk: Mapping[str, Any]) -> dict[str, Any]:
    """A chunk of the retrieval API in the retriever's shape (the keys ragflow's Retrieval sees)."""
    out: dict[str, Any] = {}
    for key, value in chunk.items():
        if key in _DROPPED:
            continue
        name = _RENAMED.get(key, key)
        if key in _RENAMED and name in chunk:
            continue  # the server sent the retriever's own key too: it wins
        out[name] = value
    content = out.get("content")
    if content is None:
        content = out.get("content_with_weight", "")
    out["content"] = content
    out.setdefault("content_with_weight", content)
    try:
        out["similarity"] = float(out.get("similarity") or 0.0)
    except (TypeError, ValueError):
        out["similarity"] = 0.0
    return out


def _doc_aggs(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, Mapping):  # {name: {doc_id, count}} (what an empty answer may carry)
        return [{"doc_name": k, **dict(v)} for k, v in value.items() if isinstance(v, Mapping)]
    if isinstance(value, list):
        return [dict(v) for v in value if isinstance(v, Mapping)]
    return []


class RagflowServer:
    """One ragflow server reached with one API key."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"RagflowServer({self.base_url!r})"

    @property
    def key(self) -> tuple[str, str, float]:
        """Datasets with the same key are searched in one request (ranked together by the server)."""
        return (self.base_url, self.api_key, self.timeout)

    async def search(self, http: httpx.AsyncClient, dataset_ids: Sequence[str], query: str, *, top_n: int = 8,
                     similarity_threshold: float = 0.2, keywords_similarity_weight: float = 0.5,
                     top_k: int = 1024, rerank_id: str = "", use_kg: bool = False, toc_enhance: bool = False,
                     cross_languages: Sequence[str] = ()) -> SearchResult:
        """The server's best ``top_n`` chunks of ``dataset_ids`` for ``query``."""
        if not query.strip() or not dataset_ids:
            return SearchResult()
        body: dict[str, Any] = {
            "question": query,
            "dataset_ids": list(dataset_ids),
            "page": 1,
            "page_size": max(1, min(int(top_n), _MAX_PAGE_SIZE)),
            "similarity_threshold": similarity_threshold,
            "vector_similarity_weight": 1 - keywords_similarity_weight,
            "top_k": top_k,
            "keyword": False,
            "highlight": False,
            "use_kg": use_kg,
            "toc_enhance": toc_enhance,
        }
        if rerank_id:
            body["rerank_id"] = rerank_id
        if cross_languages:
            body["cross_languages"] = list(cross_languages)
        url = self.base_url + RETRIEVAL_PATH
        where = f"the ragflow server {self.base_url}"
        try:
            response = await http.post(url, json=body, timeout=self.timeout,
                                       headers={"Authorization": f"Bearer {self.api_key}"})
        except SsrfBlocked as e:
            raise KnowledgeError(f"{where} may not be reached: {e.reason} (a server on a private network must "
                                 "be allowed in [http] allowed_hosts)") from None
        except httpx.TimeoutException:
            raise KnowledgeError(f"{where} did not answer within {self.timeout:g} s") from None
        except httpx.HTTPError as e:
            raise KnowledgeError(f"cannot reach {where}: {e or type(e).__name__}") from None
        if response.status_code in (401, 403):
            raise KnowledgeError(f"{where} refused the API key (HTTP {response.status_code})")
        if response.status_code != 200:
            raise KnowledgeError(f"{where} answered HTTP {response.status_code} to {RETRIEVAL_PATH}")
        try:
            payload = response.json()
        except ValueError:
            raise KnowledgeError(f"{where} did not answer {RETRIEVAL_PATH} with JSON") from None
        if not isinstance(payload, Mapping):
            raise KnowledgeError(f"{where} answered {RETRIEVAL_PATH} with something other than a JSON object")
        code = payload.get("code", 0)
        if code not in (0, None):
            message = payload.get("message") or "no message"
            raise KnowledgeError(f"{where} answered: {message} (code {code})")
        data = payload.get("data")
        if not isinstance(data, Mapping):
            return SearchResult()
        chunks = [map_chunk(c) for c in data.get("chunks") or [] if isinstance(c, Mapping)]
        total = data.get("total")
        return SearchResult(chunks[:top_n], _doc_aggs(data.get("doc_aggs")),
                            total if isinstance(total, int) else len(chunks))
