"""``POST /agents/chat/completions``: one turn of an agent, streamed or aggregated, in ragflow's
shapes (``agent_api.py agent_chat_completion``) or OpenAI's (``openai-compatible: true``).

The turn is a stored run the executor runs; this route only follows its events
(:func:`taskcanvas.execution.follow`). A client that goes away stops reading, never the run.

ragflow's branches, by what the request names:

- ``openai-compatible`` → OpenAI's ``chat.completion`` JSON, or ``data: {chunk}`` frames ending
  ``data: [DONE]`` (a space after ``data:``); only ``message``/``message_end`` events count;
- no ``session_id`` → a new ``workflow`` session; every event is forwarded;
- a ``workflow`` session → every event is forwarded;
- an ``agent`` session (``POST /agents/<id>/sessions``) → only ``message``, ``message_end``,
  ``user_inputs``, ``node_finished`` (with ``data.trace`` under ``return_trace``), and
  ``workflow_finished`` reduced to ``{"data": {"usage"}}``.

Native frames are ``data:{json}\\n\\n`` (no space) ending ``data:[DONE]\\n\\n``.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from taskcanvas.api.deps import OriginDep, PrincipalDep, ServicesDep
from taskcanvas.api.ragflow._common import ident, mapping, read_json, refuse, refuse_json, truthy, with_refusals
from taskcanvas.components.llm import count_tokens
from taskcanvas.execution import follow
from taskcanvas.service.auth import Principal
from taskcanvas.service.services import Services
from taskcanvas.service.sessions import AGENT_SOURCE, WORKFLOW_SOURCE, Turn, parse_id

_log = logging.getLogger(__name__)

router = APIRouter(tags=["ragflow: completions"])

SSE_HEADERS: Final = {"Cache-control": "no-cache", "Connection": "keep-alive", "X-Accel-Buffering": "no",
                      "Content-Type": "text/event-stream; charset=utf-8"}
DONE: Final = "data:[DONE]\n\n"
OPENAI_DONE: Final = "data: [DONE]\n\n"
_SESSION_EVENTS: Final = frozenset({"message", "message_end", "user_inputs"})
_LEGACY_EVENTS: Final = frozenset({"message", "message_end"})


@router.post("/agents/chat/completions", summary="Run one turn of an agent (ragflow's four branches, OpenAI mode)")
@with_refusals
async def chat_completions(request: Request, services: ServicesDep, principal: PrincipalDep,
                           origin: OriginDep) -> Response:
    return await complete(services, principal, origin, await read_json(request))


@router.post("/agents/{agent_id}/completions", summary="Deprecated: POST /agents/chat/completions",
             deprecated=True)
@with_refusals
async def legacy_completions(agent_id: str, request: Request, services: ServicesDep, principal: PrincipalDep,
                             origin: OriginDep) -> Response:
    # The route ragflow's SDK (<= 0.22) asks: its stream reader wants message events only.
    return await complete(services, principal, origin, await read_json(request), agent_id=agent_id, legacy=True)


@router.post("/agents_openai/{agent_id}/chat/completions",
             summary="Deprecated: POST /agents/chat/completions with openai-compatible", deprecated=True)
@with_refusals
async def legacy_openai(agent_id: str, request: Request, services: ServicesDep, principal: PrincipalDep,
                        origin: OriginDep) -> Response:
    body = await read_json(request)
    body["openai-compatible"] = True
    return await complete(services, principal, origin, body, agent_id=agent_id)


async def complete(services: Services, principal: Principal, origin: Any, body: dict[str, Any], *,
                   agent_id: str | None = None, legacy: bool = False) -> Response:
    agent_ref = agent_id or body.get("agent_id")
    if not agent_ref:
        raise refuse_json(101, "`agent_id` is required.")
    wanted = parse_id(str(agent_ref))
    sessions = services.sessions
    release = str(body.get("release", "")).strip().lower() == "true"
    user_id = body.get("user_id")
    user_ref = str(user_id) if user_id not in (None, "") else None
    stream = truthy(body.get("stream", False))
    if truthy(body.get("openai-compatible", False)):
        messages = body.get("messages")
        if not messages or not isinstance(messages, list):
            raise refuse(102, "You must provide at least one message.")
        question = next((str(m.get("content") or "") for m in reversed(messages)
                         if isinstance(m, dict) and m.get("role") == "user"), "")
        metadata = body.get("metadata")
        session_id = body.get("session_id") or body.get("id") or (
            metadata.get("id") if isinstance(metadata, dict) else None)
        turn = await sessions.start_turn(principal, wanted, session_id=str(session_id) if session_id else None,
                                         query=question, user_id=user_ref, release=release, source=AGENT_SOURCE,
                                         origin=origin)
        events = follow(services.database, services.hub, turn.run.id, turn.session.id)
        model = ident(turn.agent.id) or str(agent_ref)
        if stream:
            return StreamingResponse(openai_stream(events, turn, model, question), headers=SSE_HEADERS)
        return JSONResponse(await openai_answer(events, turn, model, question))
    query = body.get("query") or body.get("question") or ""
    name = body.get("name")
    session_id = body.get("session_id")
    turn = await sessions.start_turn(principal, wanted, session_id=str(session_id) if session_id else None,
                                     query=query, inputs=body.get("inputs"), files=body.get("files"),
                                     user_id=user_ref, release=release, name=str(name) if name else None,
                                     source=WORKFLOW_SOURCE, origin=origin)
    events = follow(services.database, services.hub, turn.run.id, turn.session.id)
    filtered = turn.session.source == AGENT_SOURCE
    return_trace = truthy(body.get("return_trace", False))
    if stream:
        frames = native_stream(events, turn, filtered=filtered, legacy=legacy, return_trace=return_trace)
        return StreamingResponse(frames, headers=SSE_HEADERS)
    return JSONResponse(await native_answer(events, turn, filtered=filtered, return_trace=return_trace))


# ---------------------------------------------------------------------------- native frames
def frame(data: Any) -> str:
    return "data:" + json.dumps(data, ensure_ascii=False, default=str) + "\n\n"


async def native_stream(events: AsyncIterator[tuple[int, dict[str, Any]]], turn: Turn, *, filtered: bool,
                        legacy: bool, return_trace: bool) -> AsyncIterator[str]:
    session_hex = ident(turn.session.id)
    trace: list[dict[str, Any]] = []
    emitted = False
    try:
        async for _, event in events:
            shown = _shown(event, filtered=filtered, legacy=legacy, return_trace=return_trace, trace=trace)
            if shown is None:
                continue
            emitted = True
            yield frame(shown)
        if not emitted:
            yield frame({"session_id": session_hex, "data": {}})
    except Exception as e:  # the run goes on; this reader reports what stopped it
        _log.exception("following run %s failed", turn.run.id)
        yield frame({"code": 500, "message": str(e), "data": False})
    yield DONE


def _shown(event: dict[str, Any], *, filtered: bool, legacy: bool, return_trace: bool,
           trace: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The event as this branch forwards it (a copy: live events are shared), or ``None``."""
    name = event.get("event")
    data = mapping(event.get("data"))
    if legacy:
        return event if name in _LEGACY_EVENTS else None
    if not filtered:
        return event
    if name == "node_finished":
        if not return_trace:
            return event
        trace.append({"component_id": data.get("component_id"), "trace": [copy.deepcopy(data)]})
        return {**event, "data": {**data, "trace": list(trace)}}
    if name in _SESSION_EVENTS:
        return event
    if name == "workflow_finished" and data.get("usage") is not None:
        return {**event, "data": {"usage": data["usage"]}}
    return None


async def native_answer(events: AsyncIterator[tuple[int, dict[str, Any]]], turn: Turn, *, filtered: bool,
                        return_trace: bool) -> dict[str, Any]:
    """The aggregated answer: the final event with ``data.content`` (every message joined),
    ``reference``, ``structured``, ``trace`` and, for an agent session, ``usage``."""
    try:
        collected = [event async for _, event in events]
    except Exception as e:
        _log.exception("following run %s failed", turn.run.id)
        return {"code": 0, "data": f"**ERROR**: {e}"}
    return {"code": 0, "data": aggregate(collected, ident(turn.session.id) or "", filtered=filtered,
                                         return_trace=return_trace)}


def aggregate(events: Iterable[dict[str, Any]], session_hex: str, *, filtered: bool,
              return_trace: bool) -> dict[str, Any]:
    content = ""
    reference: dict[str, Any] = {}
    final: dict[str, Any] | None = None
    trace: list[dict[str, Any]] = []
    structured: dict[str, Any] = {}
    usage: Any = None
    for event in events:
        name = event.get("event")
        data = mapping(event.get("data"))
        if filtered and name not in _SESSION_EVENTS | {"node_finished", "workflow_finished"}:
            continue
        if name == "message":
            piece = data.get("content")
            content += piece if isinstance(piece, str) else ("" if piece is None else str(piece))
            if not filtered and data.get("start_to_think"):
                content += "<think>"
            elif not filtered and data.get("end_to_think"):
                content += "</think>"
        if isinstance(data.get("reference"), dict) and data["reference"]:
            reference.update(data["reference"])
        if name == "node_finished":
            outputs = data.get("outputs")
            if isinstance(outputs, dict) and "structured" in outputs and data.get("component_id") is not None:
                structured[str(data["component_id"])] = copy.deepcopy(outputs["structured"])
            if return_trace:
                trace.append({"component_id": data.get("component_id"), "trace": [copy.deepcopy(data)]})
        if filtered:
            if name == "workflow_finished":
                usage = data.get("usage")
            elif name == "message_end" or (name == "user_inputs" and final is None):
                final = event
        else:
            final = event
    if final is None:
        return {"session_id": session_hex}
    answer = {**final, "data": mapping(final.get("data"))}
    answer["data"]["content"] = content
    answer["data"]["reference"] = reference
    if filtered and usage:
        answer["data"]["usage"] = usage
    if structured:
        answer["data"]["structured"] = structured
    if trace or (filtered and return_trace):
        answer["data"]["trace"] = trace
    return answer


# ---------------------------------------------------------------------------- OpenAI shapes
def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "completion_tokens_details": {"reasoning_tokens": 0, "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0}}


def openai_chunk(chunk_id: str, model: str, content: str, *, prompt_tokens: int, completion_tokens: int,
                 finish_reason: str | None = None) -> dict[str, Any]:
    """ragflow's ``get_data_openai(stream=True)``: usage only on a chunk that finishes."""
    return {"id": chunk_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "system_fingerprint": "",
            "usage": _usage(prompt_tokens, completion_tokens) if finish_reason is not None else None,
            "choices": [{"delta": {"content": content, "role": "assistant", "function_call": None,
                                   "tool_calls": None},
                         "finish_reason": finish_reason, "index": 0, "logprobs": None}]}


def openai_completion(completion_id: str, model: str, content: str, *, prompt_tokens: int,
                      completion_tokens: int) -> dict[str, Any]:
    """ragflow's ``get_data_openai(stream=False)``: the raw ``chat.completion`` object, no envelope."""
    return {"id": completion_id, "object": "chat.completion", "created": int(time.time()), "model": model,
            "param": None, "usage": _usage(prompt_tokens, completion_tokens),
            "choices": [{"message": {"role": "assistant", "content": content}, "logprobs": None,
                         "finish_reason": "stop", "index": 0}]}


def _failure(event: dict[str, Any]) -> str | None:
    data = event.get("data")
    if event.get("event") == "workflow_finished" and isinstance(data, dict) and data.get("status") == "failed":
        return str(data.get("error") or "the run failed")
    return None


async def openai_stream(events: AsyncIterator[tuple[int, dict[str, Any]]], turn: Turn, model: str,
                        question: str) -> AsyncIterator[str]:
    chunk_id = ident(turn.session.id) or ""
    prompt_tokens = count_tokens(question)
    completion_tokens = 0
    try:
        async for _, event in events:
            failed = _failure(event)
            if failed is not None:
                text = f"**ERROR**: {failed}"
                yield "data: " + json.dumps(openai_chunk(
                    chunk_id, model, text, prompt_tokens=prompt_tokens, completion_tokens=count_tokens(text),
                    finish_reason="stop"), ensure_ascii=False) + "\n\n"
                break
            name = event.get("event")
            if name not in _LEGACY_EVENTS:
                continue
            data = mapping(event.get("data"))
            content = data.get("content")
            piece = content if name == "message" and isinstance(content, str) else ""
            completion_tokens += count_tokens(piece)
            chunk = openai_chunk(chunk_id, model, piece, prompt_tokens=prompt_tokens,
                                 completion_tokens=completion_tokens)
            if data.get("reference"):
                chunk["choices"][0]["delta"]["reference"] = data["reference"]
            yield "data: " + json.dumps(chunk, ensure_ascii=False, default=str) + "\n\n"
    except Exception as e:
        _log.exception("following run %s failed", turn.run.id)
        text = f"**ERROR**: {e}"
        yield "data: " + json.dumps(openai_chunk(chunk_id, model, text, prompt_tokens=prompt_tokens,
                                                 completion_tokens=count_tokens(text), finish_reason="stop"),
                                    ensure_ascii=False) + "\n\n"
    yield OPENAI_DONE


async def openai_answer(events: AsyncIterator[tuple[int, dict[str, Any]]], turn: Turn, model: str,
                        question: str) -> dict[str, Any]:
    content = ""
    reference: dict[str, Any] = {}
    failed: str | None = None
    try:
        async for _, event in events:
            failed = failed or _failure(event)
            name = event.get("event")
            if name not in _LEGACY_EVENTS:
                continue
            data = mapping(event.get("data"))
            if name == "message" and isinstance(data.get("content"), str):
                content += data["content"]
            if isinstance(data.get("reference"), dict) and data["reference"]:
                reference.update(data["reference"])
    except Exception as e:
        _log.exception("following run %s failed", turn.run.id)
        failed = str(e)
    if failed is not None:
        content = f"**ERROR**: {failed}"
    answer = openai_completion(ident(turn.session.id) or "", model, content, prompt_tokens=count_tokens(question),
                               completion_tokens=count_tokens(content))
    if reference:
        answer["choices"][0]["message"]["reference"] = reference
    return answer
