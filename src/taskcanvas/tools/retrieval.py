"""Retrieval: search knowledge bases (ragflow ``agent/tools/retrieval.py``, spec §5.2).

A canvas component and an Agent tool (``search_my_dateset``, one parameter ``query``). The
knowledge bases are the run's ``knowledge`` service, a
:class:`~taskcanvas.tools.knowledge.KnowledgeBases`: local SQLite/FTS5 knowledge bases and
datasets of ragflow servers, found by the ids the canvas names (``dataset_ids``, or the older
``kb_ids``). An id holding ``@`` is a reference (``begin@kb``) whose value — a name or id, or a
list of them — names the knowledge bases, as in ragflow.

As in ragflow: an empty query, or no id and no memory, writes ``formalized_content =
empty_response`` and searches nothing; no hit does the same; hits are added to the run's
references (cited in ``message_end``), written as ``formalized_content`` (ragflow's
``kb_prompt`` text, which is also what a model is told) and ``json`` (the chunks). The query's
own references are filled in and a leading ``user:`` is dropped before searching.

Settings the local store has no equivalent for — ``keywords_similarity_weight`` (there are no
vectors: the score is all keywords), ``rerank_id``, ``use_kg``, ``toc_enhance``,
``cross_languages`` — are accepted, passed on to ragflow servers (which honour them) and
otherwise ignored. ``meta_data_filter`` is ignored with a warning in the log. Memory retrieval
(``retrieval_from = "memory"``, ``memory_ids``) is not available and fails with a clear error.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import field_validator

from taskcanvas.dsl.errors import DslIssue
from taskcanvas.runtime.component import RunContext
from taskcanvas.runtime.errors import RunError, VariableNotFound
from taskcanvas.runtime.state import RunState
from taskcanvas.runtime.templates import string_format, stringify
from taskcanvas.tools.base import Tool, ToolMeta, ToolParams, format_chunks
from taskcanvas.tools.knowledge import KnowledgeBases, KnowledgeError

__all__ = ["Retrieval", "RetrievalParams"]

_log = logging.getLogger(__name__)

SERVICE = "knowledge"
"""The name of the :class:`KnowledgeBases` in ``RunContext.services``."""

_META: ToolMeta = {
    "name": "search_my_dateset",
    "description": "This tool can be utilized for relevant content searching in the datasets.",
    "parameters": {
        "query": {
            "type": "string",
            "description": "The keywords to search the dataset. The keywords should be the most important "
                           "words/terms(includes synonyms) from the original request.",
            "default": "",
            "required": True,
        },
    },
}

_USER_PREFIX = re.compile(r"^user[:：\s]*", re.IGNORECASE)
_DROPPED_KEYS = ("vector", "content_ltks")


def _as_list(value: Any) -> Any:
    if value is None or value == "":
        return []
    if isinstance(value, (str, dict)):
        return [value]
    return value


def _fraction(value: Any, name: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name} {value!r} is not supported: it is a number from 0 to 1")
    return value


_NONE_SELECTED = ("no knowledge base is selected: set dataset_ids in the canvas, or [knowledge] default = "
                  "\"<name>\" in the configuration")


class RetrievalParams(ToolParams):
    query: Any = ""
    similarity_threshold: float = 0.2
    keywords_similarity_weight: float = 0.5
    top_n: int = 8
    top_k: int = 1024
    dataset_ids: list[str] = []
    kb_ids: list[str] = []
    """Deprecated in ragflow; read when ``dataset_ids`` is empty."""
    memory_ids: list[Any] = []
    kb_vars: list[Any] = []
    rerank_id: str | None = ""
    empty_response: str | None = ""
    use_kg: bool = False
    cross_languages: list[str] = []
    toc_enhance: bool = False
    meta_data_filter: dict[str, Any] | None = {}
    retrieval_from: str | None = None
    user_id: Any = None

    @field_validator("dataset_ids", "kb_ids", "memory_ids", "kb_vars", "cross_languages", mode="before")
    @classmethod
    def _lists(cls, v: Any) -> Any:
        return _as_list(v)

    @field_validator("similarity_threshold", mode="before")
    @classmethod
    def _threshold(cls, v: Any) -> Any:
        return _fraction(v, "similarity_threshold")

    @field_validator("keywords_similarity_weight", mode="before")
    @classmethod
    def _weight(cls, v: Any) -> Any:
        return _fraction(v, "keywords_similarity_weight")

    @field_validator("top_n", mode="before")
    @classmethod
    def _top_n(cls, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            raise ValueError(f"top_n {v!r} is not supported: it is a positive number")
        return v

    @field_validator("top_k", mode="before")
    @classmethod
    def _top_k(cls, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            raise ValueError(f"top_k {v!r} is not supported: it is a positive number")
        return v

    @field_validator("retrieval_from")
    @classmethod
    def _source(cls, v: Any) -> Any:
        if v not in (None, "", "dataset", "memory"):
            raise ValueError(f"retrieval_from {v!r} is not supported: use dataset or memory")
        return v


class Retrieval(Tool):
    component_name = "Retrieval"
    Params = RetrievalParams
    meta: ClassVar[ToolMeta] = _META
    timeout = 12.0

    def thoughts(self, state: RunState) -> str:
        try:
            query = self.node_arguments(state).get("query", "-_-!")
        except VariableNotFound:
            query = "-_-!"
        return f"\nKeywords: {query}\nLooking for the most relevant articles.\n        "

    def dataset_ids(self) -> list[str]:
        """The ids this Retrieval names (``dataset_ids``, else ``kb_ids``), references included."""
        params = self.params
        assert isinstance(params, RetrievalParams)
        return [str(i) for i in (params.dataset_ids or params.kb_ids) if i]

    def requirements(self, services: Mapping[str, Any]) -> list[DslIssue]:
        kbs = services.get(SERVICE)
        if not isinstance(kbs, KnowledgeBases):
            return []
        ids = self.literal_dataset_ids()
        if not self.dataset_ids() and not kbs.default:
            params = self.params
            assert isinstance(params, RetrievalParams)
            if params.retrieval_from == "dataset":
                return [DslIssue("no_knowledge_base", _NONE_SELECTED, self.id, "params.dataset_ids")]
        return [DslIssue("no_knowledge_base", problem, self.id, "params.dataset_ids") for problem in kbs.check(ids)]

    def literal_dataset_ids(self) -> list[str]:
        """The ids that are not references: what :meth:`KnowledgeBases.check` can check before a run."""
        return [i for i in self.dataset_ids() if "@" not in i]

    async def call(self, ctx: RunContext, **args: Any) -> Any:
        params = self.params
        assert isinstance(params, RetrievalParams)
        state = ctx.state
        empty = params.empty_response or ""
        query = args.get("query")
        ids = self.dataset_ids()
        source = params.retrieval_from or ""
        if not query:
            return self._empty(state, empty)
        if source == "memory" or (source != "dataset" and not ids and params.memory_ids):
            raise KnowledgeError("Retrieval from memory (memory_ids) is not available in taskcanvas; "
                                 "search knowledge bases with dataset_ids")
        kbs = ctx.services.get(SERVICE)
        if not ids and source != "dataset" and not (isinstance(kbs, KnowledgeBases) and kbs.default):
            return self._empty(state, empty)
        if not isinstance(kbs, KnowledgeBases):
            raise KnowledgeError("this run has no knowledge bases to search (no knowledge service was set up)")
        refs = self._knowledge_refs(state, ids) or ([kbs.default] if kbs.default else [])
        if not refs:
            raise KnowledgeError(_NONE_SELECTED)
        if params.meta_data_filter:
            _log.warning("Retrieval %s: meta_data_filter is not supported by taskcanvas and was ignored", self.id)
        text = self._query_text(state, query)
        result = await kbs.search(
            refs, text, http=ctx.http, top_n=int(params.top_n), similarity_threshold=params.similarity_threshold,
            keywords_similarity_weight=params.keywords_similarity_weight, top_k=int(params.top_k),
            rerank_id=params.rerank_id or "", use_kg=params.use_kg, toc_enhance=params.toc_enhance,
            cross_languages=params.cross_languages)
        chunks = [{k: v for k, v in ck.items() if k not in _DROPPED_KEYS} for ck in result.chunks]
        if not chunks:
            return self._empty(state, empty)
        state.add_reference(chunks, result.doc_aggs)
        content = format_chunks(chunks)
        state.set_output(self.id, "formalized_content", content)
        state.set_output(self.id, "json", [dict(ck) for ck in chunks])
        return content

    def _empty(self, state: RunState, empty: str) -> str:
        state.set_output(self.id, "formalized_content", empty)
        return empty

    def _knowledge_refs(self, state: RunState, ids: list[str]) -> list[str]:
        """The ids, with every reference (an id holding ``@``) replaced by the names or ids it holds."""
        refs: dict[str, None] = {}
        for kb_id in ids:
            if "@" not in kb_id:
                refs.setdefault(kb_id, None)
                continue
            try:
                value = state.get_variable_value(kb_id)
            except VariableNotFound:
                raise RunError(f"dataset_ids refers to {kb_id!r}, which this canvas does not have",
                               self.id) from None
            for item in value if isinstance(value, (list, tuple)) else [value]:
                name = stringify(item).strip()
                if name:
                    refs.setdefault(name, None)
        return list(refs)

    def _query_text(self, state: RunState, query: Any) -> str:
        """The query with its own references filled in and a leading ``user:`` dropped (ragflow)."""
        text = stringify(query)
        if "{" in text:
            found = self.text_refs_of(text)
            values: dict[str, Any] = {}
            for name, target in found.items():
                try:
                    values[name] = stringify(state.get_variable_value(target))
                except VariableNotFound:
                    continue
            text = string_format(text, values)
        return _USER_PREFIX.sub("", text)
