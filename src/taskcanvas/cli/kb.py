"""``taskcanvas kb``: local knowledge bases — add files, list them, try a search.

The knowledge bases live in ``knowledge.db`` in the data directory (``TASKCANVAS_DATA_DIR``);
a canvas's Retrieval finds one by name or id (see :mod:`taskcanvas.tools.knowledge.registry`).

Exit status: 0 done (also a search without hits), 2 bad arguments, an unknown knowledge base,
a file that cannot be added (then nothing of that ``add`` is added), or an unusable configuration.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from taskcanvas.cli.render import describe_error, print_error
from taskcanvas.config import Settings
from taskcanvas.errors import TaskcanvasError
from taskcanvas.tools.knowledge import SUPPORTED_SUFFIXES, KnowledgeStore

__all__ = ["add_command", "app", "list_command", "search_command"]

EXIT_OK = 0
EXIT_INVALID = 2
_PREVIEW = 300

app = typer.Typer(
    name="kb",
    help="Local knowledge bases for Retrieval: add files, list them, try a search.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _store() -> KnowledgeStore:
    return KnowledgeStore.in_data_dir(Settings.load().data_dir)


def _failed(error: BaseException) -> int:
    print_error(describe_error(error))
    return EXIT_INVALID


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# --------------------------------------------------------------------------- commands
def add_command(name: str, files: list[Path]) -> int:
    try:
        added = _store().add_files(name, files)
    except (TaskcanvasError, OSError) as e:
        return _failed(e)
    for doc in added:
        typer.echo(f"{'replaced' if doc.replaced else 'added'} {doc.name}: {_plural(doc.chunks, 'chunk')}")
    if added:
        kb = added[0].kb
        total = sum(d.chunks for d in added)
        typer.echo(f"knowledge base {kb.name} (id {kb.id}): {_plural(len(added), 'file')}, "
                   f"{_plural(total, 'chunk')} added")
    return EXIT_OK


def list_command() -> int:
    try:
        kbs = _store().list_all()
    except (TaskcanvasError, OSError) as e:
        return _failed(e)
    if not kbs:
        typer.echo("no knowledge bases yet: add files with `taskcanvas kb add NAME FILE...`")
        return EXIT_OK
    rows = [("NAME", "ID", "DOCUMENTS", "CHUNKS")] + [(kb.name, kb.id, str(kb.documents), str(kb.chunks))
                                                      for kb in kbs]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        typer.echo("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3])
    return EXIT_OK


def search_command(name: str, query: str, *, top_n: int = 8, threshold: float = 0.2) -> int:
    if top_n <= 0:
        return _failed(ValueError("--top-n must be a positive number"))
    if not 0 <= threshold <= 1:
        return _failed(ValueError("--threshold must be a number from 0 to 1"))
    try:
        store = _store()
        kb = store.get(name)
        if kb is None:
            print_error(f"there is no local knowledge base named {name!r} (see `taskcanvas kb list`)")
            return EXIT_INVALID
        result = store.search([kb.id], query, top_n=top_n, similarity_threshold=threshold)
    except (TaskcanvasError, OSError) as e:
        return _failed(e)
    if not result.chunks:
        typer.echo("no passage matches")
        return EXIT_OK
    for i, ck in enumerate(result.chunks, 1):
        text = re.sub(r"\s+", " ", str(ck["content"])).strip()
        if len(text) > _PREVIEW:
            text = text[:_PREVIEW].rstrip() + "…"
        typer.echo(f"{i}. {ck['similarity']:.3f}  {ck['docnm_kwd']}")
        typer.echo(f"   {text}")
    shown = len(result.chunks)
    if result.total > shown:
        typer.echo(f"({shown} of {result.total} matching passages shown)")
    return EXIT_OK


# --------------------------------------------------------------------------- typer wiring
@app.command("add")
def add(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The knowledge base (created when new).",
                                        show_default=False)],
    files: Annotated[list[Path], typer.Argument(
        metavar="FILE...", help=f"Files to add ({', '.join(SUPPORTED_SUFFIXES)}); a file added before is replaced.",
        show_default=False)],
) -> None:
    """Add files to a local knowledge base: split into passages and indexed for search."""
    raise typer.Exit(add_command(name, files))


@app.command("list")
def list_() -> None:
    """List the local knowledge bases with their numbers of documents and chunks."""
    raise typer.Exit(list_command())


@app.command("search")
def search(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The knowledge base (name or id).", show_default=False)],
    query: Annotated[str, typer.Argument(metavar="QUERY", help="What to look for.", show_default=False)],
    top_n: Annotated[int, typer.Option("--top-n", "-n", help="How many passages to show.")] = 8,
    threshold: Annotated[float, typer.Option("--threshold", "-t", help="Lowest similarity shown (0 to 1).")] = 0.2,
) -> None:
    """Search a local knowledge base the way Retrieval does, and show the passages found."""
    raise typer.Exit(search_command(name, query, top_n=top_n, threshold=threshold))
