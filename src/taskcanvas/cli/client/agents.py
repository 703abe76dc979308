"""``taskcanvas agent ...``: agents on a taskcanvas server, through ragflow's agent API (``/api/v1``).

``import`` uploads a canvas file (a DSL, or an export with the DSL under ``dsl``) and prints
the new agent's id, so ``ID=$(taskcanvas agent import f.json)`` works; ``export`` writes an
agent's DSL back to a file that ``import`` and ``taskcanvas run`` read.
"""

from __future__ import annotations

import datetime
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from taskcanvas.cli.client.command import OutputOption, TokenOption, UrlOption, run
from taskcanvas.cli.client.http import DEFAULT_URL, ClientError, Connection, ServerError, segment
from taskcanvas.cli.client.output import check_output, one_line, print_json, print_table, timestamp

__all__ = ["app"]

PAGE_SIZE = 100
"""ragflow's largest page."""

app = typer.Typer(
    name="agent",
    help="Agents on a taskcanvas server (TASKCANVAS_URL, TASKCANVAS_TOKEN): import, list, export.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _agent() -> None:
    """Agents on a taskcanvas server (TASKCANVAS_URL, TASKCANVAS_TOKEN): import, list, export."""


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(metavar="FILE", show_default=False,
                                         help="The canvas: ragflow DSL JSON, or an export with it under \"dsl\".")],
    title: Annotated[str, typer.Option("--title", help="The agent's title (default: the export's title, else the "
                                                       "file's name).")] = "",
    description: Annotated[str, typer.Option("--description", help="What the agent does.")] = "",
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = "",
) -> None:
    """Create an agent from a canvas file and print its id."""
    raise typer.Exit(run(lambda c: _import(c, file, title=title, description=description), url, token))


def _import(connection: Connection, file: Path, *, title: str, description: str) -> int:
    try:
        decoded = json.loads(file.read_text(encoding="utf-8"))
    except OSError as e:
        raise ClientError(f"{file}: {e.strerror or e}", exit_code=2) from None
    except UnicodeDecodeError:
        raise ClientError(f"{file} is not UTF-8 text", exit_code=2) from None
    except json.JSONDecodeError as e:
        raise ClientError(f"{file} is not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})",
                          exit_code=2) from None
    if not isinstance(decoded, dict):
        raise ClientError(f"{file}: a canvas is a JSON object", exit_code=2)
    dsl: Any = decoded
    wrapper: Mapping[str, Any] = {}
    if "components" not in decoded and "graph" not in decoded and isinstance(decoded.get("dsl"), (dict, str)):
        wrapper, dsl = decoded, decoded["dsl"]
    body = {"title": title or _text(wrapper.get("title")) or file.stem,
            "description": description or _text(wrapper.get("description")), "dsl": dsl}
    created = connection.ragflow("POST", "/agents", body=body)
    if not isinstance(created, Mapping) or not created.get("id"):
        raise ClientError("the server's answer has no agent id")
    typer.echo(created["id"])
    return 0


def _text(value: Any) -> str:
    """A title or description from an export: a string, or ragflow's ``{"en": ...}`` translations."""
    if isinstance(value, Mapping):
        value = value.get("en") or next(iter(value.values()), "")
    return value if isinstance(value, str) else ""


@app.command("list")
def list_(output: OutputOption = "table", url: UrlOption = DEFAULT_URL, token: TokenOption = "") -> None:
    """List the agents you can use, newest first."""
    raise typer.Exit(run(lambda c: _list(c, output=output), url, token))


def _list(connection: Connection, *, output: str) -> int:
    check_output(output)
    agents: list[Mapping[str, Any]] = []
    page = 1
    while True:
        data = connection.ragflow("GET", "/agents", params={"page": str(page), "page_size": str(PAGE_SIZE)}) or {}
        items = [a for a in data.get("canvas") or [] if isinstance(a, Mapping)]
        agents += [a for a in items if a.get("type", "agent") == "agent"]
        if len(items) < PAGE_SIZE or page * PAGE_SIZE >= int(data.get("total") or 0):
            break
        page += 1
    if output == "json":
        print_json(agents)
    elif not agents:
        typer.echo("No agents found.", err=True)
    else:
        print_table(["id", "title", "permission", "owner", "updated", "description"], [
            [str(a.get("id") or ""), str(a.get("title") or ""), str(a.get("permission") or ""),
             str(a.get("nickname") or ""), _updated(a.get("update_time")), one_line(a.get("description"))]
            for a in agents])
    return 0


def _updated(milliseconds: Any) -> str:
    if not isinstance(milliseconds, (int, float)):
        return ""
    return timestamp(datetime.datetime.fromtimestamp(milliseconds / 1000, datetime.UTC))


@app.command("export")
def export(
    agent_id: Annotated[str, typer.Argument(metavar="ID", show_default=False, help="The agent's id.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", metavar="FILE", show_default=False,
                                                help="Write the DSL to FILE (default: standard output).")] = None,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = "",
) -> None:
    """Write an agent's canvas (its DSL JSON) to standard output or a file."""
    raise typer.Exit(run(lambda c: _export(c, agent_id, output), url, token))


def _export(connection: Connection, agent_id: str, output: Path | None) -> int:
    try:
        agent = connection.ragflow("GET", f"/agents/{segment(agent_id.strip())}")
    except ServerError as e:
        raise ServerError(f"agent {agent_id}: {e}", e.status) from None
    dsl = agent.get("dsl") if isinstance(agent, Mapping) else None
    if isinstance(dsl, str):
        try:
            dsl = json.loads(dsl)
        except json.JSONDecodeError:
            raise ClientError(f"agent {agent_id}: its DSL is not valid JSON") from None
    if not isinstance(dsl, Mapping):
        raise ClientError(f"agent {agent_id}: the server's answer has no DSL")
    text = json.dumps(dsl, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return 0
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as e:
        raise ClientError(f"{output}: {e.strerror or e}") from None
    typer.echo(f"Wrote the DSL of agent {agent.get('title') or agent_id} to {output}.", err=True)
    return 0
