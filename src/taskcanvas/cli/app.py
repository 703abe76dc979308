"""The ``taskcanvas`` command: typer wiring only; each command lives in its own module.

Commands return their exit status instead of exiting themselves, so the status rules are
in one readable place per command and the functions can be called from tests.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from taskcanvas.cli import db, kb, models, serve, tokens, users
from taskcanvas.cli.client import agent_app, task_app

RUN_HELP = (
    "Run one turn of a ragflow agent canvas and show what it does.\n\n"
    "Without --state every run is a new session. With --state FILE the session is loaded from FILE when it "
    "exists (to answer a form the run is waiting for, or for the next turn of a conversation) and written "
    "back to FILE after the run.\n\n"
    "Exit status: 0 the run finished or is waiting for input; 1 the run failed; 2 invalid canvas or arguments "
    "(nothing was run); 130 interrupted by Ctrl-C: the run is cancelled and the session saved (a second Ctrl-C "
    "aborts at once, without saving)."
)

app = typer.Typer(
    name="taskcanvas",
    help="Run ragflow agent canvases as durable, observable tasks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


app.add_typer(models.app, name="models")
app.add_typer(kb.app, name="kb")
app.add_typer(db.app, name="db")
app.add_typer(users.app, name="users")
app.add_typer(tokens.app, name="tokens")
app.command("serve")(serve.serve)
app.add_typer(task_app, name="task")
app.add_typer(agent_app, name="agent")


def _version() -> str:
    try:
        return version("taskcanvas")
    except PackageNotFoundError:
        return "unknown"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"taskcanvas {_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option("--version", help="Show the version and exit.", callback=_show_version, is_eager=True),
    ] = False,
) -> None:
    """Run ragflow agent canvases as durable, observable tasks."""


@app.command("run", help=RUN_HELP)
def run(
    canvas_file: Annotated[str, typer.Argument(metavar="CANVAS_FILE", help="The canvas (ragflow DSL JSON).",
                                               show_default=False)],
    query: Annotated[str, typer.Option("--query", "-q", help="The user's message for this turn.")] = "",
    inputs: Annotated[str | None, typer.Option(
        "--inputs", "-i", metavar="JSON",
        help='Begin / form inputs: {"field": {"value": ...}} (a bare value per field is accepted).')] = None,
    state: Annotated[str | None, typer.Option(
        "--state", "-s", metavar="FILE", help="Session file: loaded if it exists, written after the run.")] = None,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="Print every event as one JSON line, nothing else.")] = False,
    files: Annotated[list[str] | None, typer.Option(
        "--file", "-f", metavar="PATH", help="A file for the run (sys.files); repeat for more.")] = None,
    out: Annotated[str | None, typer.Option(
        "--out", "-o", metavar="DIR",
        help="Where the files the run makes are written (default: the current directory).")] = None,
) -> None:
    from taskcanvas.cli.run import run_command  # the engine and its tools load only for the commands that run one

    raise typer.Exit(run_command(canvas_file, query=query, inputs=inputs, state_file=state, jsonl=jsonl,
                                 files=files or (), out_dir=out))


@app.command("validate")
def validate(
    canvas_file: Annotated[str, typer.Argument(metavar="CANVAS_FILE", help="The canvas (ragflow DSL JSON).",
                                               show_default=False)],
) -> None:
    """Check a canvas without running it: print every error and warning, one per line.

    Exit status: 0 no errors (warnings allowed), 2 the canvas has errors.
    """
    from taskcanvas.cli.validate import validate_command

    raise typer.Exit(validate_command(canvas_file))


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
