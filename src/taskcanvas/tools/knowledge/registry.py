"""Which knowledge base a canvas means: the ids a Retrieval names, resolved to backends.

A canvas names knowledge bases by id (``dataset_ids``/``kb_ids``, ragflow dataset ids when
the canvas comes from ragflow) or, through a reference such as ``begin@kb``, by name or id.
Each one resolves, in this order, to:

1. its entry in the configuration, ``[knowledge_bases."<id as in the canvas>"]``::

       [knowledge_bases."support"]            # a local knowledge base under another name
       backend = "local"
       name = "support-2024"                  # default: the id itself

       [knowledge_bases."b2a62730759d11ef"]   # a dataset of a ragflow server
       backend = "ragflow"
       base_url = "https://ragflow.example.com"
       api_key_env = "RAGFLOW_API_KEY"        # or api_key = "..."
       dataset_id = "b2a62730759d11ef"        # default: the id itself
       timeout = 30                           # seconds per request (default 30)

   A Retrieval that names none searches ``[knowledge] default = "<id or name>"`` if set.
2. the local knowledge base with that name, else with that id (``taskcanvas kb add NAME FILE...``);
3. the catch-all entry ``[knowledge_bases."*"]`` (``backend = "ragflow"``, no ``dataset_id``):
   any other id is a dataset id of that server — the way to run a canvas exported from ragflow
   against the server it came from;
4. otherwise an error naming the id and how to set it up.

:meth:`KnowledgeBases.check` reports the ids that would fail, before a run.
:meth:`KnowledgeBases.search` searches several at once: the local ones in one query, the
datasets of one ragflow server (same URL and key) in one request, all concurrently; the results
are merged by similarity (local and remote similarities are both 0..1 but computed differently).
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from taskcanvas.config import ConfigError, Settings
from taskcanvas.tools.knowledge.errors import KnowledgeError
from taskcanvas.tools.knowledge.remote import RagflowServer
from taskcanvas.tools.knowledge.store import KnowledgeBase, KnowledgeStore, SearchResult

__all__ = ["KnowledgeBases", "LocalTarget", "RagflowTarget", "Target"]

SECTION = "knowledge_bases"
CATCH_ALL = "*"
_BACKENDS = ("local", "ragflow")


@dataclass(frozen=True)
class LocalTarget:
    ref: str
    """The id as the canvas names it."""
    kb: KnowledgeBase


@dataclass(frozen=True)
class RagflowTarget:
    ref: str
    server: RagflowServer
    dataset_id: str


Target = LocalTarget | RagflowTarget


@dataclass(frozen=True)
class _Entry:
    """One ``[knowledge_bases."<id>"]`` table, checked."""

    ref: str
    backend: str
    name: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    api_key_env: str | None = None
    dataset_id: str | None = None
    timeout: float = 30.0


def _where(ref: str) -> str:
    return f'[{SECTION}."{ref}"]'


def _parse_entry(ref: str, table: Any, settings: Settings | None) -> _Entry:
    where = _where(ref)
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} in the configuration must be a table")
    backend = table.get("backend", "local")
    if backend not in _BACKENDS:
        raise ConfigError(f"{where}: backend {backend!r} is not known (use \"local\" or \"ragflow\")")
    known = {"backend", "name"} if backend == "local" else {
        "backend", "base_url", "api_key", "api_key_env", "dataset_id", "timeout"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{where}: {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not a setting "
                          f"of the {backend} backend (settings: {', '.join(sorted(known))})")
    for key in known - {"timeout"}:
        if key in table and not isinstance(table[key], str):
            raise ConfigError(f"{where}: {key} must be a string")
    if backend == "local":
        if ref == CATCH_ALL:
            raise ConfigError(f"{where}: the catch-all entry must have backend = \"ragflow\"")
        return _Entry(ref, "local", name=table.get("name") or ref)
    base_url = str(table.get("base_url") or "").strip()
    if not base_url:
        raise ConfigError(f"{where}: base_url is required for the ragflow backend (e.g. \"https://ragflow.example.com\")")
    if not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: base_url {base_url!r} must start with http:// or https://")
    if ref == CATCH_ALL and table.get("dataset_id"):
        raise ConfigError(f"{where}: the catch-all entry takes the dataset id from the canvas; remove dataset_id")
    timeout = table.get("timeout", 30)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ConfigError(f"{where}: timeout must be a positive number of seconds")
    api_key = settings.secret(table, "api_key") if settings is not None else table.get("api_key")
    return _Entry(ref, "ragflow", base_url=base_url, api_key=api_key or None,
                  api_key_env=table.get("api_key_env"), dataset_id=table.get("dataset_id") or None,
                  timeout=float(timeout))


class KnowledgeBases:
    """The knowledge bases a run can search (the ``knowledge`` service of the engine)."""

    def __init__(self, store: KnowledgeStore, config: Mapping[str, Any] | None = None, *,
                 settings: Settings | None = None, default: str | None = None) -> None:
        """``config`` is the ``[knowledge_bases]`` table; ``settings`` supplies ``api_key_env`` values;
        ``default`` is searched by a Retrieval that names no knowledge base (ragflow's templates ship
        with none selected)."""
        self.store = store
        self.default = default or None
        if config is not None and not isinstance(config, Mapping):
            raise ConfigError(f"[{SECTION}] in the configuration must be a table")
        self._entries = {str(ref): _parse_entry(str(ref), table, settings) for ref, table in (config or {}).items()}

    @classmethod
    def from_settings(cls, settings: Settings) -> KnowledgeBases:
        """The local store in the data directory and the ``[knowledge_bases]`` of the configuration."""
        default = settings.section("knowledge").get("default")
        return cls(KnowledgeStore.in_data_dir(settings.data_dir), settings.section(SECTION), settings=settings,
                   default=str(default) if default else None)

    # ------------------------------------------------------------------ resolving
    def resolve(self, ref: str) -> Target:
        """The knowledge base the canvas id (or name) ``ref`` stands for; :class:`KnowledgeError` if none."""
        entry = self._entries.get(ref)
        if entry is not None:
            return self._target(entry, ref)
        kb = self.store.get(ref)
        if kb is not None:
            return LocalTarget(ref, kb)
        catch_all = self._entries.get(CATCH_ALL)
        if catch_all is not None:
            return self._target(catch_all, ref)
        raise KnowledgeError(
            f"knowledge base {ref!r} is not known: create a local one with `taskcanvas kb add {_shell(ref)} FILE...`, "
            f"or configure it in {_where(ref)} (backend = \"local\" with name = \"<local knowledge base>\", or "
            "backend = \"ragflow\" with base_url, api_key_env and dataset_id)")

    def _target(self, entry: _Entry, ref: str) -> Target:
        if entry.backend == "local":
            assert entry.name is not None
            kb = self.store.get(entry.name)
            if kb is None:
                raise KnowledgeError(
                    f"knowledge base {ref!r} is configured in {_where(entry.ref)} as the local knowledge base "
                    f"{entry.name!r}, which does not exist: add files with `taskcanvas kb add {_shell(entry.name)} "
                    "FILE...`")
            return LocalTarget(ref, kb)
        assert entry.base_url is not None
        if not entry.api_key:
            how = (f"set the environment variable {entry.api_key_env}" if entry.api_key_env
                   else "set api_key_env (the name of an environment variable holding it)")
            raise KnowledgeError(f"knowledge base {ref!r}: there is no API key for the ragflow server "
                                 f"{entry.base_url}: {how} ({_where(entry.ref)})")
        server = RagflowServer(entry.base_url, entry.api_key, timeout=entry.timeout)
        return RagflowTarget(ref, server, entry.dataset_id or ref)

    def resolve_all(self, refs: Sequence[str]) -> list[Target]:
        """Every ref resolved, each knowledge base once; the first one that can't be raises."""
        targets: dict[tuple[str, ...], Target] = {}
        for ref in refs:
            if not ref:
                continue
            target = self.resolve(ref)
            key = (("local", target.kb.id) if isinstance(target, LocalTarget)
                   else ("ragflow", *map(str, target.server.key), target.dataset_id))
            targets.setdefault(key, target)
        return list(targets.values())

    def check(self, refs: Sequence[str]) -> list[str]:
        """A problem message for each ref that would not resolve (empty: all fine)."""
        problems: list[str] = []
        for ref in dict.fromkeys(refs):
            if not ref:
                continue
            try:
                self.resolve(ref)
            except KnowledgeError as e:
                problems.append(str(e))
        return problems

    # ------------------------------------------------------------------ searching
    async def search(self, refs: Sequence[str], query: str, *, http: httpx.AsyncClient | None = None,
                     top_n: int = 8, similarity_threshold: float = 0.2, keywords_similarity_weight: float = 0.5,
                     top_k: int = 1024, rerank_id: str = "", use_kg: bool = False, toc_enhance: bool = False,
                     cross_languages: Sequence[str] = ()) -> SearchResult:
        """The best ``top_n`` chunks of the knowledge bases ``refs`` for ``query``.

        ``keywords_similarity_weight``, ``rerank_id``, ``use_kg``, ``toc_enhance`` and
        ``cross_languages`` are passed to ragflow servers; the local store has no equivalent.
        """
        targets = await asyncio.to_thread(self.resolve_all, refs)
        if not targets:
            raise KnowledgeError("no knowledge base is selected (dataset_ids is empty)")
        local_ids = [t.kb.id for t in targets if isinstance(t, LocalTarget)]
        remote: dict[tuple[str, str, float], tuple[RagflowServer, list[str]]] = {}
        for t in targets:
            if isinstance(t, RagflowTarget):
                remote.setdefault(t.server.key, (t.server, []))[1].append(t.dataset_id)
        if remote and http is None:
            raise KnowledgeError("this run has no HTTP client, so the ragflow knowledge bases "
                                 f"{', '.join(repr(t.ref) for t in targets if isinstance(t, RagflowTarget))} "
                                 "cannot be searched")
        tasks: list[asyncio.Task[SearchResult]] = []
        try:
            async with asyncio.TaskGroup() as group:
                if local_ids:
                    tasks.append(group.create_task(asyncio.to_thread(
                        self.store.search, local_ids, query, top_n=top_n,
                        similarity_threshold=similarity_threshold, top_k=top_k)))
                for server, dataset_ids in remote.values():
                    assert http is not None
                    tasks.append(group.create_task(server.search(
                        http, dataset_ids, query, top_n=top_n, similarity_threshold=similarity_threshold,
                        keywords_similarity_weight=keywords_similarity_weight, top_k=top_k, rerank_id=rerank_id,
                        use_kg=use_kg, toc_enhance=toc_enhance, cross_languages=cross_languages)))
        except BaseExceptionGroup as group_error:
            # One backend failed (the others were cancelled): its error is the message.
            raise group_error.exceptions[0] from None
        results = [t.result() for t in tasks]
        if len(results) == 1:
            return results[0]
        return _merge(results, top_n)


def _merge(results: Sequence[SearchResult], top_n: int) -> SearchResult:
    chunks = sorted((c for r in results for c in r.chunks), key=lambda c: -float(c.get("similarity") or 0.0))
    aggs: dict[str, dict[str, Any]] = {}
    for r in results:
        for doc in r.doc_aggs:
            name = str(doc.get("doc_name"))
            if name in aggs:
                aggs[name]["count"] = int(aggs[name].get("count") or 0) + int(doc.get("count") or 0)
            else:
                aggs[name] = dict(doc)
    doc_aggs = sorted(aggs.values(), key=lambda d: -int(d.get("count") or 0))
    return SearchResult(chunks[:top_n], doc_aggs, sum(r.total for r in results))


def _shell(text: str) -> str:
    """``text`` as one shell word in a hint (quoted when it needs to be)."""
    return shlex.quote(text)
