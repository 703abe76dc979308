"""The local knowledge base: one SQLite file per data directory, searched with FTS5 and BM25.

``<data_dir>/knowledge.db`` holds every local knowledge base::

    knowledge_bases(id, name UNIQUE, created_at)
    documents(id, kb_id → knowledge_bases, name, path, added_at)      name: the file name (docnm_kwd)
    chunks(rowid, id, doc_id → documents, kb_id, position, content)   position: order in the document
    chunks_fts: FTS5 over chunks.content (external content, kept in step by triggers),
                tokenizer ``porter unicode61 remove_diacritics 2`` (English stemming, no accents)

Adding a file that was added to the same knowledge base before (same resolved path) replaces
it. Every file of one ``add`` is read and chunked before anything is written, and all of them
are written in one transaction: a file that cannot be read adds nothing and loses nothing.

**Search.** The question becomes an FTS5 query of its words, each one a quoted string joined
with ``OR`` (so a natural-language question matches passages holding any of its words and FTS5
operators or syntax in the question are just words); common English stop words are dropped
unless nothing else is left. Candidates are ranked by ``bm25()`` (the best ``top_k`` kept).

**Similarity (0..1).** BM25 has no fixed scale, so each score is divided by the score the same
query gets from a passage of average length holding every query word once — the sum of the
query words' IDF, with the IDF FTS5 itself uses (``log((N - n + 0.5) / (n + 0.5))``, at least
1e-6; a word no passage holds counts 0, so a word the knowledge bases don't know does not lower
every score) — and capped at 1. A passage with all the words scores about 1, one with words worth half
the query's IDF about 0.5; the order is the BM25 order. ``similarity_threshold`` applies to this
number (ragflow's default 0.2 means "at least a fifth of what the question asks about"). The
statistics (N, n, average length) are those of the whole file, all knowledge bases together.

Results have ragflow's chunk shape (``rag/nlp/search.py`` ``Dealer.retrieval``): ``chunk_id``,
``content`` and ``content_with_weight``, ``doc_id``, ``docnm_kwd``, ``kb_id``, ``similarity``
and ``term_similarity`` (the same number: there are no vectors), ``important_kwd``, ``tag_kwd``,
``image_id``, ``positions``, ``doc_type_kwd``; ``doc_aggs`` counts every passage above the
threshold per document, most first, as ragflow does.

The store is synchronous (stdlib ``sqlite3``, one connection per call); async callers run it
with ``asyncio.to_thread``. Reading never creates the file.
"""

from __future__ import annotations

import math
import re
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taskcanvas.tools.knowledge.documents import chunk_text, extract_text
from taskcanvas.tools.knowledge.errors import DocumentError, KnowledgeError

__all__ = ["DB_NAME", "AddedDocument", "KnowledgeBase", "KnowledgeStore", "SearchResult", "fts_query",
           "query_terms"]

DB_NAME = "knowledge.db"
_SCHEMA_VERSION = 1
_MAX_TERMS = 64
_MAX_NAME = 200

_SCHEMA = """
CREATE TABLE IF NOT EXISTS knowledge_bases (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    kb_id TEXT NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    added_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_kb ON documents(kb_id, path);
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    kb_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    content TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    content, content='chunks', content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, content) VALUES (new.rowid, new.content);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, content) VALUES ('delete', old.rowid, old.content);
END;
"""

_WORDS = re.compile(r"\w+")
_STOPWORD_TEXT = """
a about above after again against all am an and any are as at be because been before being below between both
but by can could did do does doing down during each few for from further had has have having he her here hers
herself him himself his how i if in into is it its itself just me more most my myself no nor not of off on once
only or other our ours ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were what when where which
while who whom why will with would you your yours yourself yourselves
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass(frozen=True)
class KnowledgeBase:
    id: str
    name: str
    created_at: float
    documents: int = 0
    chunks: int = 0


@dataclass(frozen=True)
class AddedDocument:
    kb: KnowledgeBase
    doc_id: str
    name: str
    path: str
    chunks: int
    replaced: bool
    """True when the same file had been added to this knowledge base before (its old passages are gone)."""


@dataclass
class SearchResult:
    """ragflow's ``kbinfos``: the best ``top_n`` chunks, documents with passages above the threshold, how many."""

    chunks: list[dict[str, Any]] = field(default_factory=list)
    doc_aggs: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0


def query_terms(query: str) -> list[str]:
    """The distinct words of ``query`` (lower case), stop words dropped unless only they are left."""
    words: dict[str, None] = {}
    for m in _WORDS.finditer(query.lower()):
        words.setdefault(m.group(0), None)
    terms = [w for w in words if w not in _STOPWORDS] or list(words)
    return terms[:_MAX_TERMS]


def _quoted(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def fts_query(terms: Sequence[str]) -> str:
    """An FTS5 query matching any of ``terms``; each is a quoted string, so nothing is FTS syntax."""
    return " OR ".join(_quoted(t) for t in terms)


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise KnowledgeError("a knowledge base name must not be empty")
    if name != name.strip():
        raise KnowledgeError(f"knowledge base name {name!r} must not start or end with spaces")
    if len(name) > _MAX_NAME:
        raise KnowledgeError(f"knowledge base name {name[:40]!r}... is longer than {_MAX_NAME} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise KnowledgeError(f"knowledge base name {name!r} must not hold control characters")
    return name


class KnowledgeStore:
    """The local knowledge bases in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> KnowledgeStore:
        return cls(Path(data_dir) / DB_NAME)

    def __repr__(self) -> str:
        return f"KnowledgeStore({str(self.path)!r})"

    # ------------------------------------------------------------------ connections
    @contextmanager
    def _connect(self, *, write: bool) -> Iterator[sqlite3.Connection | None]:
        """A connection (``None`` when reading a file that doesn't exist yet); a write is one transaction."""
        if not write and not self.path.exists():
            yield None
            return
        try:
            if write:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            raise KnowledgeError(f"cannot open the knowledge base file {self.path}: {e}") from None
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            if write:
                self._ensure_schema(conn)
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            else:
                if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
                    yield None  # an empty file: nothing was ever added
                    return
                yield conn
        except sqlite3.DatabaseError as e:
            raise KnowledgeError(f"the knowledge base file {self.path} cannot be used: {e}") from None
        finally:
            conn.close()

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == _SCHEMA_VERSION:
            return
        if version > _SCHEMA_VERSION:
            raise KnowledgeError(f"the knowledge base file {self.path} was written by a newer taskcanvas "
                                 f"(schema {version}, this one knows {_SCHEMA_VERSION})")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript("BEGIN;" + _SCHEMA + f"PRAGMA user_version = {_SCHEMA_VERSION}; COMMIT;")

    # ------------------------------------------------------------------ knowledge bases
    def get(self, name_or_id: str) -> KnowledgeBase | None:
        """The knowledge base with this name, else with this id (as ragflow looks datasets up)."""
        with self._connect(write=False) as conn:
            return None if conn is None else _find(conn, name_or_id)

    def list_all(self) -> list[KnowledgeBase]:
        """Every knowledge base, by name, with its numbers of documents and passages."""
        with self._connect(write=False) as conn:
            if conn is None:
                return []
            rows = conn.execute(
                "SELECT k.id, k.name, k.created_at,"
                " (SELECT count(*) FROM documents d WHERE d.kb_id = k.id),"
                " (SELECT count(*) FROM chunks c WHERE c.kb_id = k.id)"
                " FROM knowledge_bases k ORDER BY k.name").fetchall()
        return [KnowledgeBase(*row) for row in rows]

    def create(self, name: str) -> KnowledgeBase:
        """The knowledge base ``name``, created when there is none."""
        _check_name(name)
        with self._connect(write=True) as conn:
            assert conn is not None
            return _ensure_kb(conn, name)

    # ------------------------------------------------------------------ documents
    def add_files(self, name: str, paths: Sequence[Path]) -> list[AddedDocument]:
        """Add (or replace) ``paths`` in the knowledge base ``name``, creating it when needed.

        Every file is read and chunked first; the first one that cannot be read raises a
        :class:`DocumentError` naming it, and nothing is written.
        """
        _check_name(name)
        prepared: list[tuple[Path, list[str]]] = []
        seen: set[str] = set()
        for path in paths:
            passages = chunk_text(extract_text(Path(path)))
            if not passages:
                raise DocumentError(f"cannot add {path}: it has no text to search"
                                    + (" (a scanned PDF needs OCR, which taskcanvas does not do)"
                                       if Path(path).suffix.lower() == ".pdf" else ""))
            resolved = str(Path(path).resolve())
            if resolved in seen:
                continue
            seen.add(resolved)
            prepared.append((Path(path), passages))
        added: list[AddedDocument] = []
        with self._connect(write=True) as conn:
            assert conn is not None
            kb = _ensure_kb(conn, name)
            for path, passages in prepared:
                resolved = str(path.resolve())
                old = conn.execute("SELECT id FROM documents WHERE kb_id = ? AND path = ?",
                                   (kb.id, resolved)).fetchall()
                for (old_id,) in old:
                    conn.execute("DELETE FROM chunks WHERE doc_id = ?", (old_id,))
                    conn.execute("DELETE FROM documents WHERE id = ?", (old_id,))
                doc_id = uuid.uuid4().hex
                conn.execute("INSERT INTO documents(id, kb_id, name, path, added_at) VALUES (?, ?, ?, ?, ?)",
                             (doc_id, kb.id, path.name, resolved, time.time()))
                conn.executemany(
                    "INSERT INTO chunks(id, doc_id, kb_id, position, content) VALUES (?, ?, ?, ?, ?)",
                    [(uuid.uuid4().hex, doc_id, kb.id, i, text) for i, text in enumerate(passages)])
                added.append(AddedDocument(kb, doc_id, path.name, resolved, len(passages), bool(old)))
        return added

    # ------------------------------------------------------------------ search
    def search(self, kb_ids: Sequence[str], query: str, *, top_n: int = 8, similarity_threshold: float = 0.2,
               top_k: int = 1024) -> SearchResult:
        """The passages of the knowledge bases ``kb_ids`` (ids) that best match ``query``."""
        terms = query_terms(query)
        ids = list(dict.fromkeys(k for k in kb_ids if k))
        if not terms or not ids or top_n <= 0:
            return SearchResult()
        with self._connect(write=False) as conn:
            if conn is None:
                return SearchResult()
            n_rows = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
            ideal = 0.0
            for term in terms:
                hits = conn.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?",
                                    (_quoted(term),)).fetchone()[0]
                ideal += _idf(n_rows, hits)
            marks = ", ".join("?" for _ in ids)
            rows = conn.execute(
                "SELECT c.id, c.content, c.doc_id, c.kb_id, d.name, -bm25(chunks_fts) AS score"
                " FROM chunks_fts JOIN chunks c ON c.rowid = chunks_fts.rowid"
                " JOIN documents d ON d.id = c.doc_id"
                f" WHERE chunks_fts MATCH ? AND c.kb_id IN ({marks})"
                " ORDER BY bm25(chunks_fts), c.rowid LIMIT ?",
                (fts_query(terms), *ids, max(int(top_k), 1))).fetchall()
        valid: list[dict[str, Any]] = []
        for cid, content, doc_id, kb_id, doc_name, score in rows:
            similarity = min(1.0, float(score) / ideal) if ideal > 0 else 0.0
            if similarity < similarity_threshold:
                continue
            valid.append({
                "chunk_id": cid, "content": content, "content_with_weight": content, "doc_id": doc_id,
                "docnm_kwd": doc_name, "kb_id": kb_id, "important_kwd": [], "tag_kwd": [], "image_id": "",
                "similarity": similarity, "term_similarity": similarity, "positions": [], "doc_type_kwd": "",
            })
        counts: dict[str, dict[str, Any]] = {}
        for ck in valid:
            agg = counts.setdefault(ck["docnm_kwd"], {"doc_name": ck["docnm_kwd"], "doc_id": ck["doc_id"],
                                                      "count": 0})
            agg["count"] += 1
        doc_aggs = sorted(counts.values(), key=lambda a: -a["count"])
        return SearchResult(valid[:top_n], doc_aggs, len(valid))


def _idf(n_rows: int, hits: int) -> float:
    """FTS5's own IDF (``fts5_aux.c``): ``log((N - n + 0.5) / (n + 0.5))``, at least 1e-6."""
    if hits <= 0:
        return 0.0  # a word no passage holds: FTS5 matches nothing on it, so it adds nothing to any score
    value = math.log((n_rows - hits + 0.5) / (hits + 0.5))
    return value if value > 0 else 1e-6


def _find(conn: sqlite3.Connection, name_or_id: str) -> KnowledgeBase | None:
    for column in ("name", "id"):
        row = conn.execute(f"SELECT id, name, created_at FROM knowledge_bases WHERE {column} = ?",
                           (name_or_id,)).fetchone()
        if row is not None:
            return KnowledgeBase(*row)
    return None


def _ensure_kb(conn: sqlite3.Connection, name: str) -> KnowledgeBase:
    row = conn.execute("SELECT id, name, created_at FROM knowledge_bases WHERE name = ?", (name,)).fetchone()
    if row is not None:
        return KnowledgeBase(*row)
    kb = KnowledgeBase(uuid.uuid4().hex, name, time.time())
    conn.execute("INSERT INTO knowledge_bases(id, name, created_at) VALUES (?, ?, ?)", (kb.id, kb.name, kb.created_at))
    return kb
