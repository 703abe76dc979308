"""What the client commands print: tables for people (rich), JSON for programs, coder's times.

Cells are plain :class:`~rich.text.Text`: names, prompts and messages are user data and must
never be read as markup.
"""

from __future__ import annotations

import datetime
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from taskcanvas.cli.client.http import ClientError

OUTPUTS = ("table", "json")
Row = Mapping[str, Any]
Column = Callable[[Row, datetime.datetime], str]


def check_output(output: str) -> None:
    if output not in OUTPUTS:
        raise ClientError(f"--output must be table or json, not {output!r}", exit_code=2)


def console() -> Console:
    """stdout for people; not a terminal (a pipe, a file): wide enough that no cell wraps."""
    out = Console(highlight=False, soft_wrap=False)
    if not out.is_terminal:
        out = Console(highlight=False, soft_wrap=False, width=max(out.width, 1000))
    return out


def print_json(value: Any, *, compact: bool = False) -> None:
    text = json.dumps(value, ensure_ascii=False) if compact else json.dumps(value, indent=2, ensure_ascii=False)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, show_header: bool = True) -> None:
    table = Table(box=None, show_edge=False, pad_edge=False, show_header=show_header, header_style="bold",
                  padding=(0, 2, 0, 0))
    for header in headers:
        table.add_column(header.upper(), overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    out = console()
    if out.is_terminal:
        out.print(table)
        return
    with out.capture() as captured:  # a pipe or a file: no padding after the last column
        out.print(table)
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
    sys.stdout.flush()


def select_columns(wanted: Sequence[str] | None, default: Sequence[str],
                   available: Mapping[str, Column]) -> list[str]:
    """``-c name,status`` (or ``-c name -c status``) checked against what a table can show."""
    if not wanted:
        return list(default)
    names = [part.strip().lower() for item in wanted for part in item.split(",") if part.strip()]
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ClientError(f"unknown column {unknown[0]!r}; available columns: {', '.join(available)}", exit_code=2)
    return names


def parse_time(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.UTC)


def timestamp(moment: datetime.datetime | None = None) -> str:
    """A moment for a sentence ("created at ..."): UTC, to the second."""
    moment = moment or datetime.datetime.now(datetime.UTC)
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(moment: datetime.datetime | None, now: datetime.datetime) -> str:
    """coder's ``<duration> ago`` (Go's duration format, whole seconds); empty without a moment."""
    if moment is None:
        return ""
    seconds = max(0, int((now - moment).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        text = f"{hours}h{minutes}m{seconds}s"
    elif minutes:
        text = f"{minutes}m{seconds}s"
    else:
        text = f"{seconds}s"
    return f"{text} ago"


def one_line(text: Any) -> str:
    """A cell's text on one line (a message may span several)."""
    return " ".join(str(text or "").split())
