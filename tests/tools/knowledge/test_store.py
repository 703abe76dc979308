"""The local knowledge base: real SQLite files, real .txt/.md/.pdf/.docx files made here."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import docx
import pytest

from taskcanvas.tools.knowledge import DocumentError, KnowledgeError, KnowledgeStore, chunk_text, extract_text
from taskcanvas.tools.knowledge.documents import MAX_CHUNK_CHARS, TARGET_CHUNK_CHARS
from taskcanvas.tools.knowledge.store import fts_query, query_terms

REFUNDS = """# Refunds

Customers can ask for a refund within 30 days of purchase. The refund goes back to the original
payment method; a refund for a gift card is paid as store credit.

# Shipping

We ship worldwide. Shipping to Europe takes five to seven business days, shipping to Asia ten.
"""

PETS = """Cats sleep for most of the day and hunt at dusk.

Dogs are loyal companions and need a walk twice a day.
"""


def make_pdf(path: Path, pages: list[str]) -> Path:
    """A minimal, valid PDF with one line of Helvetica text per page (offsets computed)."""
    objects: list[bytes] = []
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    font_obj = 3 + 2 * len(pages)
    for i, text in enumerate(pages):
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET".encode()
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + 2 * i} 0 R "
                       f"/Resources << /Font << /F1 {font_obj} 0 R >> >> >>".encode())
        objects.append(b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(bytes(out))
    return path


def make_docx(path: Path) -> Path:
    document = docx.Document()
    document.add_heading("Warranty", level=1)
    document.add_paragraph("Every laptop carries a two year warranty covering hardware faults.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Product"
    table.cell(0, 1).text = "Warranty years"
    table.cell(1, 0).text = "Laptop"
    table.cell(1, 1).text = "2"
    document.add_paragraph("Batteries are covered for one year only.")
    document.save(str(path))
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "refunds.md").write_text(REFUNDS, encoding="utf-8")
    (tmp_path / "pets.txt").write_text(PETS, encoding="utf-8")
    make_pdf(tmp_path / "telescope.pdf", ["The telescope mirror is polished by hand.",
                                          "Astronomers observe distant galaxies at night."])
    make_docx(tmp_path / "warranty.docx")
    return {p.name: p for p in tmp_path.iterdir()}


@pytest.fixture
def store(tmp_path: Path, files: dict[str, Path]) -> KnowledgeStore:
    s = KnowledgeStore.in_data_dir(tmp_path / "data")
    s.add_files("main", list(files.values()))
    return s


# --------------------------------------------------------------------------- extraction
def test_text_extraction_by_type(files: dict[str, Path]) -> None:
    assert extract_text(files["refunds.md"]).startswith("# Refunds\n\nCustomers can ask")
    pdf = extract_text(files["telescope.pdf"])
    assert "telescope mirror is polished" in pdf and "distant galaxies" in pdf
    assert "\n\n" in pdf  # a page break ends a paragraph
    text = extract_text(files["warranty.docx"])
    assert text.startswith("# Warranty\n\nEvery laptop carries a two year warranty")
    assert "Product | Warranty years\nLaptop | 2" in text
    assert text.index("Laptop | 2") < text.index("Batteries")  # tables stay in document order


def test_unsupported_and_broken_files_are_named(tmp_path: Path) -> None:
    odt = tmp_path / "notes.odt"
    odt.write_bytes(b"x")
    with pytest.raises(DocumentError, match=r"notes\.odt: unsupported file type '\.odt' \(supported: .*\.docx"):
        extract_text(odt)
    with pytest.raises(DocumentError, match=r"missing\.txt: no such file"):
        extract_text(tmp_path / "missing.txt")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(DocumentError, match=r"latin\.txt: it is not UTF-8 text"):
        extract_text(latin)
    bad_pdf = tmp_path / "bad.pdf"
    bad_pdf.write_bytes(b"not a pdf at all")
    with pytest.raises(DocumentError, match=r"bad\.pdf: not a readable PDF"):
        extract_text(bad_pdf)
    bad_docx = tmp_path / "bad.docx"
    bad_docx.write_bytes(b"not a zip")
    with pytest.raises(DocumentError, match=r"bad\.docx: not a readable \.docx file"):
        extract_text(bad_docx)


# --------------------------------------------------------------------------- chunking
def test_chunks_follow_paragraphs_within_bounds() -> None:
    short = "\n\n".join(f"Paragraph {i} is short." for i in range(5))
    assert chunk_text(short) == [short]  # small blocks are packed together
    para = "word " * 100  # ~500 chars
    chunks = chunk_text("\n\n".join([para.strip()] * 4))
    assert len(chunks) == 2 and all(TARGET_CHUNK_CHARS <= len(c) <= MAX_CHUNK_CHARS for c in chunks)
    assert chunk_text("intro\n\n# Heading\n\ntext") == ["intro", "# Heading\n\ntext"]
    long = " ".join(f"Sentence number {i} ends here." for i in range(200))
    pieces = chunk_text(long)
    assert len(pieces) > 1 and all(len(p) <= MAX_CHUNK_CHARS for p in pieces)
    assert all(p.endswith(".") for p in pieces)  # cut between sentences
    assert "".join(p.replace(" ", "") for p in pieces) == long.replace(" ", "")  # nothing lost, no overlap
    unbroken = "x" * (MAX_CHUNK_CHARS * 2 + 5)
    assert [len(p) for p in chunk_text(unbroken)] == [MAX_CHUNK_CHARS, MAX_CHUNK_CHARS, 5]
    assert chunk_text("  \n\n \n") == []


# --------------------------------------------------------------------------- store
def test_add_lists_and_replaces(tmp_path: Path, store: KnowledgeStore, files: dict[str, Path]) -> None:
    [kb] = store.list_all()
    assert kb.name == "main" and kb.documents == 4 and kb.chunks >= 4
    assert store.get("main") == store.get(kb.id) is not None
    again = store.add_files("main", [files["pets.txt"]])
    assert again[0].replaced and again[0].chunks == 1
    assert store.list_all()[0].documents == 4  # replaced, not added twice
    db = sqlite3.connect(tmp_path / "data" / "knowledge.db")
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    assert {"knowledge_bases", "documents", "chunks", "chunks_fts"} <= names
    assert db.execute("SELECT count(*) FROM chunks").fetchone()[0] == db.execute(
        "SELECT count(*) FROM chunks_fts").fetchone()[0]


def test_a_bad_file_adds_nothing(tmp_path: Path, store: KnowledgeStore, files: dict[str, Path]) -> None:
    before = store.list_all()
    (tmp_path / "x.bin").write_bytes(b"\x00")
    (tmp_path / "empty.txt").write_text("  \n", encoding="utf-8")
    with pytest.raises(DocumentError, match=r"x\.bin"):
        store.add_files("other", [files["pets.txt"], tmp_path / "x.bin"])
    with pytest.raises(DocumentError, match=r"empty\.txt: it has no text to search"):
        store.add_files("main", [tmp_path / "empty.txt"])
    assert store.list_all() == before


def test_names_are_checked(store: KnowledgeStore, files: dict[str, Path]) -> None:
    for bad in ("", " padded ", "tab\there"):
        with pytest.raises(KnowledgeError, match="knowledge base name"):
            store.add_files(bad, [files["pets.txt"]])


def test_reading_creates_nothing(tmp_path: Path) -> None:
    s = KnowledgeStore(tmp_path / "none" / "knowledge.db")
    assert s.list_all() == [] and s.get("x") is None
    assert s.search(["x"], "anything").chunks == []
    assert not (tmp_path / "none").exists()


# --------------------------------------------------------------------------- search
def test_ranking_and_chunk_shape(store: KnowledgeStore) -> None:
    kb = store.get("main")
    assert kb is not None
    result = store.search([kb.id], "How long does shipping to Europe take?")
    top = result.chunks[0]
    assert "Shipping to Europe" in top["content"]
    assert top["docnm_kwd"] == "refunds.md" and top["kb_id"] == kb.id
    assert top["content_with_weight"] == top["content"] and top["chunk_id"] and top["doc_id"]
    assert 0 < top["similarity"] <= 1 and top["term_similarity"] == top["similarity"]
    assert result.doc_aggs[0] == {"doc_name": "refunds.md", "doc_id": top["doc_id"], "count": result.total}

    sims = [c["similarity"] for c in store.search([kb.id], "telescope galaxies warranty laptop").chunks]
    assert sims == sorted(sims, reverse=True)

    assert store.search([kb.id], "laptop warranty").chunks[0]["docnm_kwd"] == "warranty.docx"
    assert store.search([kb.id], "polished mirror").chunks[0]["docnm_kwd"] == "telescope.pdf"
    # Stemming: "refunded" finds "refund"; a passage with every word of the question scores 1.
    hit = store.search([kb.id], "refunded purchase").chunks[0]
    assert hit["content"].startswith("# Refunds") and hit["similarity"] == pytest.approx(1.0, abs=0.2)


def test_threshold_and_top_n(store: KnowledgeStore) -> None:
    kb = store.get("main")
    assert kb is not None
    query = "dogs walk telescope galaxies refund warranty"
    everything = store.search([kb.id], query, top_n=50, similarity_threshold=0.0)
    assert everything.total >= 4
    assert len(store.search([kb.id], query, top_n=2, similarity_threshold=0.0).chunks) == 2
    # Each passage holds a part of the question only: a high threshold keeps none of them.
    assert store.search([kb.id], query, similarity_threshold=0.9).chunks == []
    middle = sorted(c["similarity"] for c in everything.chunks)[len(everything.chunks) // 2]
    kept = store.search([kb.id], query, top_n=50, similarity_threshold=middle)
    assert kept.chunks and all(c["similarity"] >= middle for c in kept.chunks)
    assert kept.total == len(kept.chunks) < everything.total
    assert store.search([kb.id], "zebra quantum").chunks == []
    assert store.search(["no-such-kb"], "dogs").chunks == []


def test_knowledge_bases_are_separate(store: KnowledgeStore, tmp_path: Path) -> None:
    other_file = tmp_path / "other.txt"
    other_file.write_text("Dogs in the other knowledge base.", encoding="utf-8")
    [added] = store.add_files("other", [other_file])
    main = store.get("main")
    assert main is not None
    assert {c["docnm_kwd"] for c in store.search([added.kb.id], "dogs").chunks} == {"other.txt"}
    assert {c["docnm_kwd"] for c in store.search([main.id], "dogs").chunks} == {"pets.txt"}
    both = store.search([main.id, added.kb.id], "dogs", similarity_threshold=0)
    assert {c["docnm_kwd"] for c in both.chunks} == {"pets.txt", "other.txt"}


@pytest.mark.parametrize("query", [
    'dogs" OR "cats', "dogs AND NOT cats", "NEAR(dogs cats)", "content:dogs", "dog*", "^dogs", "(dogs", '"',
    "dogs'; DROP TABLE chunks; --", "{dogs}", "- + * : ^ ( ) \"",
])
def test_query_syntax_cannot_be_injected(store: KnowledgeStore, query: str) -> None:
    kb = store.get("main")
    assert kb is not None
    result = store.search([kb.id], query, similarity_threshold=0)  # never an FTS5 syntax error
    for chunk in result.chunks:
        assert any(w in chunk["content"].lower() for w in query_terms(query))
    assert store.list_all()[0].chunks > 0


def test_query_terms() -> None:
    assert query_terms("What is the refund policy for the Refund?") == ["refund", "policy"]
    assert query_terms("the is") == ["the", "is"]  # only stop words: keep them
    assert query_terms("¿Dónde está?") == ["dónde", "está"]
    assert fts_query(["a", 'b"c']) == '"a" OR "b""c"'
