"""The ragflow backend against a ragflow-shaped server on loopback, through the guarded client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from taskcanvas.tools.http import GuardedClient, HttpPolicy, create_client
from taskcanvas.tools.knowledge import KnowledgeError, RagflowServer
from taskcanvas.tools.knowledge.remote import map_chunk
from tests.support.replay import ReplayServer
from tests.tools.knowledge.ragflow_server import API_KEY, FAILURES, RETRIEVAL, running


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with running() as srv:
        yield srv


@pytest.fixture
async def http() -> AsyncIterator[GuardedClient]:
    async with create_client(HttpPolicy(allowed_hosts=frozenset({"127.0.0.1"}))) as client:
        yield client


async def test_search_maps_chunks_to_the_retriever_shape(server: ReplayServer, http: GuardedClient) -> None:
    remote = RagflowServer(server.base + "/", API_KEY)
    result = await remote.search(http, ["ds-manuals"], "pump filter", top_n=5, similarity_threshold=0.3,
                                 keywords_similarity_weight=0.7, top_k=256, rerank_id="bge", use_kg=True,
                                 cross_languages=["English"])
    [request] = server.requests
    assert request.path == "/api/v1/retrieval"
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.json() == {
        "question": "pump filter", "dataset_ids": ["ds-manuals"], "page": 1, "page_size": 5,
        "similarity_threshold": 0.3, "vector_similarity_weight": pytest.approx(0.3), "top_k": 256,
        "keyword": False, "highlight": False, "use_kg": True, "toc_enhance": False, "rerank_id": "bge",
        "cross_languages": ["English"],
    }
    top = result.chunks[0]
    assert top["chunk_id"] == "c2" and top["doc_id"] == "d1" and top["docnm_kwd"] == "pump.pdf"
    assert top["kb_id"] == "ds-manuals" and top["content"] == top["content_with_weight"]
    assert top["important_kwd"] == [""] and top["similarity"] == 1.0
    assert "vector" not in top and "content_ltks" not in top and "id" not in top
    assert [c["chunk_id"] for c in result.chunks] == ["c2", "c1"]
    assert result.doc_aggs == [{"doc_name": "pump.pdf", "doc_id": "d1", "count": 2}]
    assert result.total == 2


async def test_several_datasets_in_one_request(server: ReplayServer, http: GuardedClient) -> None:
    result = await RagflowServer(server.base, API_KEY).search(
        http, ["ds-manuals", "ds-faq"], "opening hours valve", similarity_threshold=0.1)
    assert len(server.requests) == 1
    assert {c["kb_id"] for c in result.chunks} == {"ds-manuals", "ds-faq"}


async def test_top_n_beyond_the_api_page_limit(server: ReplayServer, http: GuardedClient) -> None:
    await RagflowServer(server.base, API_KEY).search(http, ["ds-faq"], "hours", top_n=500)
    assert server.requests[0].json()["page_size"] == 100


async def test_empty_query_asks_nothing(server: ReplayServer, http: GuardedClient) -> None:
    result = await RagflowServer(server.base, API_KEY).search(http, ["ds-faq"], "  ")
    assert result.chunks == [] and server.requests == []


@pytest.mark.parametrize(("mode", "key", "datasets", "message"), [
    ("", "wrong-key", ["ds-faq"], r"answered: Authentication error: API key is invalid! \(code 109\)"),
    ("", API_KEY, ["ds-unknown"], r"answered: You don't own the dataset ds-unknown. \(code 102\)"),
    ("http500", API_KEY, ["ds-faq"], r"answered HTTP 500 to /api/v1/retrieval"),
    ("not-json", API_KEY, ["ds-faq"], r"did not answer /api/v1/retrieval with JSON"),
])
async def test_server_errors_are_clear(server: ReplayServer, http: GuardedClient, mode: str, key: str,
                                       datasets: list[str], message: str) -> None:
    if mode:
        server.route("POST", RETRIEVAL, FAILURES[mode])
    with pytest.raises(KnowledgeError, match=rf"the ragflow server http://127\.0\.0\.1:\d+ {message}"):
        await RagflowServer(server.base, key).search(http, datasets, "hours")


async def test_the_ssrf_guard_applies(server: ReplayServer) -> None:
    async with create_client(HttpPolicy()) as strict:
        with pytest.raises(KnowledgeError, match=r"may not be reached: .*not a public address.*allowed_hosts"):
            await RagflowServer(server.base, API_KEY).search(strict, ["ds-faq"], "hours")
    assert server.requests == []


async def test_unreachable_server(http: GuardedClient) -> None:
    with running() as srv:
        url = srv.base
    with pytest.raises(KnowledgeError, match=r"cannot reach the ragflow server http://127\.0\.0\.1"):
        await RagflowServer(url, API_KEY, timeout=2).search(http, ["ds-faq"], "hours")


def test_map_chunk_keeps_the_retriever_keys() -> None:
    chunk = map_chunk({"id": "a", "chunk_id": "b", "content_with_weight": "text", "document_keyword": "x.pdf",
                       "docnm_kwd": "y.pdf", "similarity": "0.5", "url": "https://example.com/x"})
    assert chunk["chunk_id"] == "b" and chunk["docnm_kwd"] == "y.pdf"
    assert chunk["content"] == "text" and chunk["similarity"] == 0.5 and chunk["url"] == "https://example.com/x"
