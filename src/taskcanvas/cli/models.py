"""``taskcanvas models ...``: what chat models are configured and where each llm_id goes.

A sub-app of its own; ``cli/app.py`` mounts it as ``models``. Configuration values are user
data, so they are printed as plain :class:`~rich.text.Text`, never as rich markup.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from taskcanvas.cli.render import print_error
from taskcanvas.config import ConfigError, Settings
from taskcanvas.llm.config import ModelRegistry, ModelRow

app = typer.Typer(
    name="models",
    help="Chat models: what is configured and where each llm_id goes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_SPECIAL_IDS = {"": "(empty llm_id)", "*": "(any other llm_id)"}


@app.callback()
def _models() -> None:
    """Chat models: what is configured and where each llm_id goes."""


@app.command("list")
def list_models() -> None:
    """Show the configured models ([models] in the configuration file, OPENAI_BASE_URL).

    Exit status: 0 shown; 2 the configuration cannot be used (one line says why).
    """
    raise typer.Exit(list_command())


def list_command(environ: Mapping[str, str] | None = None, console: Console | None = None) -> int:
    """Print the table and what the fallback does; the exit status."""
    try:
        registry = ModelRegistry.from_settings(Settings.load(environ))
    except ConfigError as e:
        print_error(str(e))
        return 2
    # Piped output is read whole (or by scripts): do not fold long ids and URLs at 80 columns.
    out = console or Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    path = registry.config_path
    rows = registry.describe()
    if not rows:
        where = str(path) if path else "a configuration file (TASKCANVAS_CONFIG, or config.toml in the data directory)"
        out.print(Text(f'No models are configured: add [models."<llm_id>"] tables to {where}, '
                       "or set OPENAI_BASE_URL to an OpenAI-compatible endpoint."))
        return 0
    out.print(Text(f"Configuration: {path}" if path else "Configuration: none (environment only)"))
    out.print(_table(rows))
    if registry.default:
        out.print(Text(f"A canvas that leaves llm_id empty uses {registry.default}."))
    if registry.fallback_base_url:
        out.print(Text(f"OPENAI_BASE_URL is set: any llm_id not listed goes to {registry.fallback_base_url}, "
                       "with the model name before the first @ (OPENAI_MODEL for an empty llm_id when no "
                       "default is set)."))
    return 0


def _table(rows: list[ModelRow]) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    for column in ("llm_id", "provider", "model", "base_url", "key"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(Text(_SPECIAL_IDS.get(row.llm_id, row.llm_id)), Text(row.provider), Text(row.model),
                      Text(row.base_url), Text(row.key))
    return table
