"""Retrieval through the real engine, on a real local knowledge base (and a ragflow server on loopback)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from taskcanvas.components import builtin_registry
from taskcanvas.config import Settings
from taskcanvas.dsl.errors import DslError
from taskcanvas.runtime.cancel import CancelToken
from taskcanvas.runtime.component import RunContext
from taskcanvas.runtime.engine import Engine
from taskcanvas.runtime.references import hash_str2int
from taskcanvas.tools.http import HttpPolicy, create_client
from taskcanvas.tools.knowledge import KnowledgeBases
from taskcanvas.tools.retrieval import Retrieval
from tests.support.canvas import Turn, build, cpn, make_canvas, run_turn
from tests.tools.knowledge.ragflow_server import API_KEY, running

REFUNDS = """# Refunds

A refund is paid within 30 days of the return reaching our warehouse.
"""
SHIPPING = "Parcels to Europe travel five to seven business days. Express shipping takes two days."
GARDEN = "Roses need sun and water. Prune them in early spring."


@pytest.fixture
def kbs(tmp_path: Path) -> KnowledgeBases:
    for name, text in (("refunds.md", REFUNDS), ("shipping.txt", SHIPPING), ("garden.txt", GARDEN)):
        (tmp_path / name).write_text(text, encoding="utf-8")
    knowledge = KnowledgeBases.from_settings(Settings(data_dir=tmp_path / "data"))
    knowledge.store.add_files("handbook", [tmp_path / "refunds.md", tmp_path / "shipping.txt"])
    knowledge.store.add_files("garden", [tmp_path / "garden.txt"])
    return knowledge


def _engine(params: dict[str, Any], services: dict[str, Any] | None, *, http: Any = None,
            begin: dict[str, Any] | None = None) -> Engine:
    dsl = make_canvas({
        "begin": cpn("Begin", begin, down=["retrieval"]),
        "retrieval": cpn("Retrieval", {"query": "{sys.query}", **params}, down=["answer"]),
        "answer": cpn("Message", {"content": ["{retrieval@formalized_content}"]}),
    })
    registry = builtin_registry()
    registry.register(Retrieval)
    return build(dsl, registry, services=services, http=http)


async def _run(params: dict[str, Any], kbs: KnowledgeBases | None, query: str, **kw: Any) -> Turn:
    services = {"knowledge": kbs} if kbs is not None else {}
    inputs = kw.pop("inputs", None)
    return await run_turn(_engine(params, services, **kw), query=query, inputs=inputs)


def _end(turn: Turn) -> dict[str, Any]:
    [end] = turn.of("message_end")
    return end


async def test_hits_become_formalized_content_json_and_references(kbs: KnowledgeBases) -> None:
    turn = await _run({"kb_ids": ["handbook"]}, kbs, "How long until my refund is paid?")
    assert turn.error is None, turn.error
    chunks = turn.output("retrieval", "json")
    assert chunks[0]["docnm_kwd"] == "refunds.md" and "refund is paid" in chunks[0]["content"]
    cid = chunks[0]["chunk_id"]
    expected = (f"\nID: {hash_str2int(cid, 500)}\n├── Title: refunds.md\n└── Content:\n"
                f"{chunks[0]['content']}")
    assert turn.output("retrieval", "formalized_content").startswith(expected)
    assert turn.text.startswith(expected)
    reference = _end(turn)["reference"]
    ref_chunk = reference["chunks"][str(hash_str2int(cid, 500))]
    assert ref_chunk["id"] == cid and ref_chunk["document_name"] == "refunds.md"
    assert ref_chunk["dataset_id"] == kbs.store.get("handbook").id  # type: ignore[union-attr]
    assert ref_chunk["content"] == chunks[0]["content"] and 0 < ref_chunk["similarity"] <= 1
    assert reference["doc_aggs"]["refunds.md"]["count"] == 1
    started = [d for d in turn.of("node_started") if d["component_id"] == "retrieval"]
    assert started[0]["thoughts"] == ("\nKeywords: How long until my refund is paid?\n"
                                      "Looking for the most relevant articles.\n        ")


async def test_no_hit_and_empty_query_say_empty_response(kbs: KnowledgeBases) -> None:
    params = {"kb_ids": ["handbook"], "empty_response": "Nothing found in dataset"}
    turn = await _run(params, kbs, "prune roses")  # only in the other knowledge base
    assert turn.error is None, turn.error
    assert turn.text == "Nothing found in dataset"
    assert turn.output("retrieval", "json") == ""  # not written, as in ragflow
    assert "reference" not in _end(turn)
    turn = await _run(params, kbs, "")
    assert turn.error is None and turn.text == "Nothing found in dataset"
    # No knowledge base named at all: nothing is searched (ragflow), whatever the query.
    turn = await _run({"empty_response": "none"}, kbs, "refund")
    assert turn.error is None and turn.text == "none"


async def test_threshold_and_top_n_apply(kbs: KnowledgeBases) -> None:
    params = {"kb_ids": ["handbook"], "similarity_threshold": 0.0, "top_n": 1}
    turn = await _run(params, kbs, "refund shipping Europe")
    assert len(turn.output("retrieval", "json")) == 1
    turn = await _run({**params, "top_n": 8}, kbs, "refund shipping Europe")
    assert {c["docnm_kwd"] for c in turn.output("retrieval", "json")} == {"refunds.md", "shipping.txt"}


async def test_dataset_ids_by_reference_name_or_id(kbs: KnowledgeBases) -> None:
    begin = {"inputs": {"kb": {"type": "line", "name": "kb", "optional": False}}}
    garden_id = kbs.store.get("garden").id  # type: ignore[union-attr]
    turn = await _run({"dataset_ids": ["begin@kb"]}, kbs, "prune roses", begin=begin,
                      inputs={"kb": {"value": "garden"}})
    assert turn.error is None, turn.error
    assert turn.output("retrieval", "json")[0]["docnm_kwd"] == "garden.txt"
    turn = await _run({"dataset_ids": ["begin@kb"]}, kbs, "prune roses", begin=begin,
                      inputs={"kb": {"value": garden_id}})
    assert turn.output("retrieval", "json")[0]["kb_id"] == garden_id
    # dataset_ids wins over the deprecated kb_ids
    turn = await _run({"dataset_ids": [garden_id], "kb_ids": ["handbook"]}, kbs, "prune roses")
    assert turn.output("retrieval", "json")[0]["docnm_kwd"] == "garden.txt"


async def test_unknown_knowledge_base_fails_clearly(kbs: KnowledgeBases) -> None:
    turn = await _run({"kb_ids": ["1a3d1d7afb0611ef9866047c16ec874f"]}, kbs, "refund")
    assert turn.error is not None
    assert "knowledge base '1a3d1d7afb0611ef9866047c16ec874f' is not known" in turn.error
    assert turn.output("retrieval", "_ERROR")
    turn = await _run({"kb_ids": ["handbook"]}, None, "refund")
    assert turn.error is not None and "no knowledge bases to search" in turn.error
    turn = await _run({"kb_ids": [], "retrieval_from": "dataset"}, kbs, "refund")
    assert turn.error is not None and "no knowledge base is selected" in turn.error
    turn = await _run({"memory_ids": ["m1"]}, kbs, "refund")
    assert turn.error is not None and "memory" in turn.error


async def test_exception_handling_comment(kbs: KnowledgeBases) -> None:
    turn = await _run({"kb_ids": ["nope"], "exception_method": "comment", "exception_default_value": "sorry"},
                      kbs, "refund")
    assert turn.error is None
    assert turn.text == "sorry"  # a tool's failure stays its error; the default is said as the message
    assert "knowledge base 'nope' is not known" in turn.output("retrieval", "_ERROR")


def test_params_are_checked() -> None:
    for bad in ({"similarity_threshold": 2}, {"keywords_similarity_weight": -0.1}, {"top_n": 0},
                {"retrieval_from": "web"}):
        with pytest.raises(DslError) as info:
            _engine({"kb_ids": ["x"], **bad}, {})
        assert next(iter(bad)) in str(info.value)


async def test_ragflow_dataset_through_the_run_http_client(kbs: KnowledgeBases, tmp_path: Path) -> None:
    with running() as server:
        remote = KnowledgeBases.from_settings(Settings(
            data_dir=tmp_path / "data", env={"RF": API_KEY},
            raw={"knowledge_bases": {"869a2368": {"backend": "ragflow", "base_url": server.base,
                                                  "api_key_env": "RF", "dataset_id": "ds-manuals"}}}))
        async with create_client(HttpPolicy(allowed_hosts=frozenset({"127.0.0.1"}))) as http:
            turn = await _run({"kb_ids": ["869a2368", "handbook"], "keywords_similarity_weight": 0.3,
                               "rerank_id": "bge-reranker", "use_kg": True}, remote, "user: pump filter refund",
                              http=http)
        assert turn.error is None, turn.error
        body = server.requests[0].json()
        assert body["question"] == "pump filter refund"  # ragflow drops a leading "user:"
        assert body["vector_similarity_weight"] == pytest.approx(0.7)
        assert body["rerank_id"] == "bge-reranker" and body["use_kg"] is True
        names = {c["docnm_kwd"] for c in turn.output("retrieval", "json")}
        assert {"pump.pdf", "refunds.md"} <= names
        assert {c["document_name"] for c in _end(turn)["reference"]["chunks"].values()} == names


# --------------------------------------------------------------------------- as an Agent's tool
@pytest.fixture
async def tool_ctx(kbs: KnowledgeBases) -> AsyncIterator[tuple[Retrieval, RunContext]]:
    registry = builtin_registry()
    registry.register(Retrieval)
    dsl = make_canvas({"begin": cpn("Begin", down=["tool"]),
                       "tool": cpn("Retrieval", {"kb_ids": ["handbook"], "empty_response": "no idea"})})
    engine = build(dsl, registry, services={"knowledge": kbs})
    ctx = RunContext(state=engine.new_session(), canvas=engine.canvas, cancel=CancelToken(),
                     services={"knowledge": kbs})
    tool = engine.canvas.components["tool"]
    assert isinstance(tool, Retrieval)
    yield tool, ctx


async def test_as_a_models_tool(tool_ctx: tuple[Retrieval, RunContext]) -> None:
    tool, ctx = tool_ctx
    schema = tool.function_schema()
    assert schema["function"]["name"] == "search_my_dateset"
    assert schema["function"]["parameters"]["required"] == ["query"]
    assert list(schema["function"]["parameters"]["properties"]) == ["query"]
    result = await tool.call_for_model(ctx, {"query": "Europe express shipping"})
    assert isinstance(result, str) and "├── Title: shipping.txt" in result and "Express shipping" in result
    assert result == ctx.state.output("tool", "formalized_content")
    assert [c["document_name"] for c in ctx.state.reference()["chunks"].values()] == ["shipping.txt"]
    assert await tool.call_for_model(ctx, {"query": "quantum zebras"}) == "no idea"
    assert await tool.call_for_model(ctx, {"query": ""}) == "no idea"


async def test_a_models_tool_failure_is_text(tool_ctx: tuple[Retrieval, RunContext]) -> None:
    tool, ctx = tool_ctx
    ctx.services.clear()
    result = await tool.call_for_model(ctx, {"query": "refund"})
    assert "no knowledge bases to search" in result
    assert ctx.state.output("tool", "_ERROR") == result


def test_literal_ids_for_checking(kbs: KnowledgeBases) -> None:
    engine = _engine({"dataset_ids": ["handbook", "begin@kb", "missing"]}, {"knowledge": kbs})
    tool = engine.canvas.components["retrieval"]
    assert isinstance(tool, Retrieval)
    assert tool.literal_dataset_ids() == ["handbook", "missing"]
    assert len(kbs.check(tool.literal_dataset_ids())) == 1
