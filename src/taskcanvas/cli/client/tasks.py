"""``taskcanvas task ...``: coder's ``coder task`` commands against a taskcanvas server.

Same names, flags, messages and rules as coder's CLI (``cli/task_*.go``), with what differs
here said where it is: a template is an agent (``--template`` takes its name, title or id),
``status`` shows the latest run, ``logs --follow`` streams the run's events, and ``send``
waits for a task that is still starting instead of refusing it.

A task is named as coder names it: ``NAME`` (one of yours), ``OWNER/NAME``, or its id.
"""

from __future__ import annotations

import datetime
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import typer

from taskcanvas.cli.client.command import (
    OutputOption,
    TokenOption,
    UrlOption,
    YesOption,
    confirm,
    read_stdin,
    run,
)
from taskcanvas.cli.client.events import follow_events
from taskcanvas.cli.client.http import DEFAULT_URL, ClientError, Connection, ServerError, segment
from taskcanvas.cli.client.output import (
    Column,
    ago,
    check_output,
    one_line,
    parse_time,
    print_json,
    print_table,
    select_columns,
    timestamp,
)

__all__ = ["app", "display", "resolve", "task_path"]

STATUSES = ("pending", "initializing", "active", "paused", "error", "unknown")
SETTLED_STATES = ("idle", "complete", "failed")
"""States in which a task takes input: not ``working``."""
POLL_SECONDS = 1.0

app = typer.Typer(
    name="task",
    help="Tasks on a taskcanvas server (TASKCANVAS_URL, TASKCANVAS_TOKEN): create them, follow them, talk to them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

TaskArgument = Annotated[str, typer.Argument(metavar="TASK", show_default=False,
                                             help="NAME (one of yours), OWNER/NAME, or the task's id.")]
InputArgument = Annotated[str | None, typer.Argument(metavar="INPUT", show_default=False)]
StdinOption = Annotated[bool, typer.Option("--stdin", help="Read the input from standard input.")]


@app.callback()
def _task() -> None:
    """Tasks on a taskcanvas server (TASKCANVAS_URL, TASKCANVAS_TOKEN): create them, follow them, talk to them."""


# ---------------------------------------------------------------------------- naming tasks


def resolve(connection: Connection, identifier: str) -> dict[str, Any]:
    """coder's ``TaskByIdentifier``: an id, ``NAME`` (owner ``me``) or ``OWNER/NAME``."""
    ident = identifier.strip()
    if _uuid(ident) is not None:
        path = f"/tasks/me/{segment(ident)}"
    else:
        parts = ident.split("/")
        if len(parts) == 1 and parts[0]:
            owner, name = "me", parts[0]
        elif len(parts) == 2 and all(parts):
            owner, name = parts
        else:
            raise ClientError(f'invalid task identifier: "{ident}"')
        path = f"/tasks/{segment(owner)}/{segment(name)}"
    try:
        return _task_json(connection.coder("GET", path))
    except ServerError as e:
        raise ServerError(f'resolve task "{ident}": {e}', e.status) from None


def task_path(task: Mapping[str, Any]) -> str:
    return f"/tasks/{segment(str(task['owner_name']))}/{segment(str(task['id']))}"


def display(task: Mapping[str, Any]) -> str:
    return f"{task.get('owner_name')}/{task.get('name')}"


def _task_json(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or "id" not in value:
        raise ClientError("the server's answer is not a task")
    return value


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _state(task: Mapping[str, Any]) -> Mapping[str, Any]:
    state = task.get("current_state")
    return state if isinstance(state, Mapping) else {}


# ---------------------------------------------------------------------------- columns


def _state_changed(task: Mapping[str, Any], now: datetime.datetime) -> str:
    return ago(parse_time(_state(task).get("timestamp")), now)


COLUMNS: dict[str, Column] = {
    "id": lambda t, _: str(t.get("id") or ""),
    "name": lambda t, _: str(t.get("name") or ""),
    "display name": lambda t, _: str(t.get("display_name") or ""),
    "owner name": lambda t, _: str(t.get("owner_name") or ""),
    "template name": lambda t, _: str(t.get("template_name") or ""),
    "template display name": lambda t, _: str(t.get("template_display_name") or ""),
    "template version id": lambda t, _: str(t.get("template_version_id") or ""),
    "status": lambda t, _: str(t.get("status") or ""),
    "state": lambda t, _: str(_state(t).get("state") or ""),
    "state changed": _state_changed,
    "message": lambda t, _: one_line(_state(t).get("message")),
    "initial prompt": lambda t, _: one_line(t.get("initial_prompt")),
    "run": lambda t, _: str(t.get("workspace_build_number") or ""),
    "run id": lambda t, _: str(t.get("workspace_build_id") or ""),
    "created at": lambda t, _: str(t.get("created_at") or ""),
    "updated at": lambda t, _: str(t.get("updated_at") or ""),
}
LIST_COLUMNS = ("name", "status", "state", "state changed", "message")
STATUS_COLUMNS = ("state changed", "status", "state", "message", "run id")


def _rows(tasks: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> list[list[str]]:
    now = datetime.datetime.now(datetime.UTC)
    return [[COLUMNS[c](task, now) for c in columns] for task in tasks]


# ---------------------------------------------------------------------------- create


@app.command("create")
def create(
    input_: InputArgument = None,
    stdin: StdinOption = False,
    name: Annotated[str, typer.Option("--name", help="The task's name; one is made from the input when omitted.")]
    = "",
    template: Annotated[str, typer.Option(
        "--template", metavar="TEMPLATE", help="The agent to run: its template name, title or id. Needed when "
                                               "more than one agent is available.")] = "",
    template_version: Annotated[str, typer.Option(
        "--template-version", metavar="VERSION", help="A version of the agent (its id, or its name such as v2); "
                                                      "default: the newest.")] = "",
    owner: Annotated[str, typer.Option("--owner", help="Whose task it is (a username, or me).")] = "me",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the new task's id.")] = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = "",
) -> None:
    """Create a task: start an agent with INPUT as its prompt.

    Examples: taskcanvas task create "Summarise the news" --template Echo;
    echo "hello" | taskcanvas task create --stdin --name greeting
    """
    raise typer.Exit(run(lambda c: _create(c, input_, stdin=stdin, name=name, template=template,
                                           template_version=template_version, owner=owner, quiet=quiet),
                         url, token))


def _create(connection: Connection, text: str | None, *, stdin: bool, name: str, template: str,
            template_version: str, owner: str, quiet: bool) -> int:
    if stdin:
        text = read_stdin()
    elif text is None:
        raise ClientError("expected an input for task")
    if text == "":
        raise ClientError("a task cannot be started with an empty input")
    version_id = _template_version_id(connection, template.strip(), template_version.strip())
    body: dict[str, Any] = {"input": text, "template_version_id": version_id}
    if name:
        body["name"] = name
    task = _task_json(connection.coder("POST", f"/tasks/{segment(owner or 'me')}", body=body))
    if quiet:
        typer.echo(task["id"])
    else:
        typer.echo(f"The task {task.get('name')} has been created at {timestamp(parse_time(task.get('created_at')))}!")
    return 0


def _template_version_id(connection: Connection, template: str, version: str) -> str:
    """coder's choice of a template version: named, or the only template's newest."""
    if version and not template and _uuid(version) is not None:
        return str(connection.coder("GET", f"/templateversions/{segment(version)}")["id"])
    templates = connection.coder("GET", "/templates", params={"q": "has-ai-task:true"})
    templates = [t for t in templates or [] if isinstance(t, Mapping)]
    names = ", ".join(str(t.get("name")) for t in templates)
    if template:
        chosen = _match_template(templates, template, names)
    elif not templates:
        raise ClientError("no task templates configured")
    elif len(templates) > 1:
        raise ClientError(f"template name not provided, available templates: {names}")
    else:
        chosen = templates[0]
    if not version:
        return str(chosen["active_version_id"])
    shown = chosen.get("name")
    if _uuid(version) is not None:
        found = connection.coder("GET", f"/templateversions/{segment(version)}")
        if _uuid(str(found.get("template_id"))) != _uuid(str(chosen.get("id"))):
            raise ClientError(f'template version {version} is not a version of template "{shown}"')
        return str(found["id"])
    versions = connection.coder("GET", f"/templates/{segment(str(chosen['id']))}/versions") or []
    for candidate in versions:
        if str(candidate.get("name", "")).lower() == version.lower():
            return str(candidate["id"])
    raise ClientError(f'template "{shown}" has no version "{version}"; its versions: '
                      + ", ".join(str(v.get("name")) for v in versions))


def _match_template(templates: list[Mapping[str, Any]], wanted: str, names: str) -> Mapping[str, Any]:
    as_id = _uuid(wanted)
    matches = [t for t in templates
               if (as_id is not None and _uuid(str(t.get("id"))) == as_id)
               or str(t.get("name", "")).lower() == wanted.lower()
               or str(t.get("display_name", "")).lower() == wanted.lower()]
    if not matches:
        if not templates:
            raise ClientError("no task templates configured")
        raise ClientError(f'template "{wanted}" not found; available templates: {names}')
    if len(matches) > 1:
        raise ClientError(f'template "{wanted}" names several templates; pass one of their ids: '
                          + ", ".join(str(t.get("id")) for t in matches))
    return matches[0]


# ---------------------------------------------------------------------------- list


@app.command("list")
def list_(
    status: Annotated[str, typer.Option("--status", metavar="|".join(STATUSES), help="Only tasks with this status.")]
    = "",
    all_: Annotated[bool, typer.Option("--all", "-a", help="Tasks of every user you can see.")] = False,
    user: Annotated[str, typer.Option("--user", help='Tasks of this user (a username, or "me").')] = "",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the tasks' ids.")] = False,
    column: Annotated[list[str] | None, typer.Option(
        "--column", "-c", metavar="COLUMNS",
        help=f"Table columns, comma separated (default: {','.join(LIST_COLUMNS)}; available: "
             f"{', '.join(COLUMNS)}).")] = None,
    output: OutputOption = "table",
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = "",
) -> None:
    """List your tasks (--all: everyone's you can see). "No tasks found." on stderr when there are none."""
    raise typer.Exit(run(lambda c: _list(c, status=status, all_=all_, user=user, quiet=quiet, column=column,
                                         output=output), url, token))


def _list(connection: Connection, *, status: str, all_: bool, user: str, quiet: bool, column: list[str] | None,
          output: str) -> int:
    check_output(output)
    if status and status not in STATUSES:
        raise ClientError(f"--status must be one of {', '.join(STATUSES)}, not {status!r}", exit_code=2)
    columns = select_columns(column, LIST_COLUMNS, COLUMNS)
    owner = user.strip() or ("" if all_ else "me")
    terms = [f'owner:"{owner}"'] if owner else []
    if status:
        terms.append(f'status:"{status}"')
    answer = connection.coder("GET", "/tasks", params={"q": " ".join(terms)} if terms else None)
    tasks = [t for t in (answer or {}).get("tasks") or [] if isinstance(t, Mapping)]
    if quiet:
        for task in tasks:
            typer.echo(task.get("id"))
        return 0
    if output == "json":
        print_json(tasks)
    elif not tasks:
        typer.echo("No tasks found.", err=True)
    else:
        print_table(columns, _rows(tasks, columns))
    return 0


app.command("ls", hidden=True)(list_)


# ---------------------------------------------------------------------------- status


@app.command("status")
def status(
    task: TaskArgument,
    watch: Annotated[bool, typer.Option("--watch", help="Keep polling and print each change, until the task is "
                                                        "no longer working.")] = False,
    watch_interval: Annotated[float, typer.Option("--watch-interval", hidden=True, min=0.0)] = POLL_SECONDS,
    output: OutputOption = "table",
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = "",
) -> None:
    """Show a task's status, state and latest run (with --watch: follow it until it stops working).

    -o json prints the task; with --watch, one task per line at every change.
    """
    raise typer.Exit(run(lambda c: _status(c, task, watch=watch, interval=watch_interval, output=output), url, token))


def _status(connection: Connection, identifier: str, *, watch: bool, interval: float, output: str) -> int:
    check_output(output)
    task = resolve(connection, identifier)
    _print_status(task, output, first=True, watch=watch)
    if not watch:
        return 0
    shown = _status_key(task)
    while not _watch_ended(task):
        time.sleep(interval)
        task = _task_json(connection.coder("GET", f"/tasks/me/{segment(str(task['id']))}"))
        if _status_key(task) != shown:
            _print_status(task, output, first=False, watch=True)
            shown = _status_key(task)
    return 0


def _print_status(task: Mapping[str, Any], output: str, *, first: bool, watch: bool) -> None:
    if output == "json":
        print_json(task, compact=watch)
    else:
        print_table(STATUS_COLUMNS, _rows([task], STATUS_COLUMNS), show_header=first)


def _status_key(task: Mapping[str, Any]) -> tuple[Any, ...]:
    state = _state(task)
    return task.get("status"), state.get("state"), state.get("message"), task.get("workspace_build_id")


def _watch_ended(task: Mapping[str, Any]) -> bool:
    """Not working any more: paused, broken, or its latest run settled (coder: the agent is idle)."""
    status_ = task.get("status")
    if status_ in ("paused", "error", "unknown"):
        return True
    return status_ == "active" and _state(task).get("state") in SETTLED_STATES


app.command("stat", hidden=True)(status)


# ---------------------------------------------------------------------------- logs


@app.command("logs")
def logs(
    task: TaskArgument,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Stream the latest run's events as they happen, "
                                                                "until the run ends.")] = False,
    output: OutputOption = "table",
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = "",
) -> None:
    """Show a task's conversation: its inputs and the agent's outputs.

    With --follow: every event of the task's runs (components starting and finishing, message text as
    it streams, forms waiting for input), then live ones until the latest run ends; -o json prints
    ragflow's events, one per line.
    """
    raise typer.Exit(run(lambda c: _logs(c, task, follow=follow, output=output), url, token))


def _logs(connection: Connection, identifier: str, *, follow: bool, output: str) -> int:
    check_output(output)
    task = resolve(connection, identifier)
    if follow:
        return follow_events(connection, task, path=task_path(task) + "/events", display=display(task), output=output,
                             settled=lambda fresh, run: _run_settled(fresh, run),
                             refresh=lambda: _task_json(connection.coder("GET", task_path(task))))
    answer = connection.coder("GET", task_path(task) + "/logs") or {}
    entries = [e for e in answer.get("logs") or [] if isinstance(e, Mapping)]
    if output == "json":
        print_json(entries)
    else:
        print_table(["type", "content"], [[str(e.get("type") or ""), str(e.get("content") or "")] for e in entries])
    return 0


def _run_settled(task: Mapping[str, Any], run_number: int) -> bool:
    """Run ``run_number`` no longer executes: the task stopped, moved on to a later run, or settled."""
    if task.get("status") in ("paused", "error", "unknown"):
        return True
    if int(task.get("workspace_build_number") or 0) > run_number:
        return True
    return _watch_ended(task)


# ---------------------------------------------------------------------------- send


@app.command("send")
def send(
    task: TaskArgument,
    input_: InputArgument = None,
    stdin: StdinOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = "",
) -> None:
    """Send input to a task: the answer to the form it waits on, or the next message.

    A paused task is resumed first; a task still working (or starting) is waited for until it is idle.
    """
    raise typer.Exit(run(lambda c: _send(c, task, input_, stdin=stdin), url, token))


def _send(connection: Connection, identifier: str, text: str | None, *, stdin: bool) -> int:
    if stdin:
        text = read_stdin()
    elif text is None:
        raise ClientError("expected an input for the task")
    task = resolve(connection, identifier)
    shown = display(task)
    status_ = task.get("status")
    if status_ == "paused":
        connection.coder("POST", task_path(task) + "/resume")
        task = _task_json(connection.coder("GET", task_path(task)))
    elif status_ not in ("active", "pending", "initializing"):
        raise ClientError(f'task "{shown}" has status {status_} and cannot be sent input')
    _wait_until_idle(connection, task, shown)
    connection.coder("POST", task_path(task) + "/send", body={"input": text})
    return 0


def _wait_until_idle(connection: Connection, task: Mapping[str, Any], shown: str) -> None:
    """coder's ``waitForTaskReady`` and ``waitForTaskIdle``: active, and not working."""
    while True:
        status_ = task.get("status")
        if status_ in ("error", "unknown"):
            raise ClientError(f'task "{shown}" entered {status_} state while waiting for it to become active')
        if status_ == "paused":
            raise ClientError(f'task "{shown}" was paused while waiting for it to become idle')
        if status_ == "active" and _state(task).get("state") in SETTLED_STATES:
            return
        time.sleep(POLL_SECONDS)
        task = _task_json(connection.coder("GET", task_path(task)))


# ---------------------------------------------------------------------------- pause, resume, delete


@app.command("pause")
def pause(task: TaskArgument, yes: YesOption = False, url: UrlOption = DEFAULT_URL,
          token: TokenOption = "") -> None:
    """Pause a task: its run stops after the component it is in, and goes on when resumed."""
    raise typer.Exit(run(lambda c: _pause(c, task, yes=yes), url, token))


def _pause(connection: Connection, identifier: str, *, yes: bool) -> int:
    task = resolve(connection, identifier)
    shown = display(task)
    confirm(f"Pause task {shown}?", yes)
    connection.coder("POST", task_path(task) + "/pause")
    typer.echo(f"The {task.get('name')} task has been paused at {timestamp()}!")
    return 0


@app.command("resume")
def resume(task: TaskArgument, yes: YesOption = False, url: UrlOption = DEFAULT_URL,
           token: TokenOption = "") -> None:
    """Resume a paused task: its run goes on from where it stopped."""
    raise typer.Exit(run(lambda c: _resume(c, task, yes=yes), url, token))


def _resume(connection: Connection, identifier: str, *, yes: bool) -> int:
    task = resolve(connection, identifier)
    shown = display(task)
    status_ = task.get("status")
    if status_ in ("error", "unknown"):
        raise ClientError(f'task "{shown}" is in {status_} state and cannot be resumed; check '
                          f"`taskcanvas task status {shown}` and its logs for details")
    if status_ != "paused":
        raise ClientError(f'task "{shown}" cannot be resumed (current status: {status_})')
    confirm(f"Resume task {shown}?", yes)
    connection.coder("POST", task_path(task) + "/resume")
    typer.echo(f"The {shown} task has been resumed.")
    return 0


@app.command("delete")
def delete(
    tasks: Annotated[list[str], typer.Argument(metavar="TASK...", show_default=False,
                                               help="NAME (one of yours), OWNER/NAME, or a task's id.")],
    yes: YesOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = "",
) -> None:
    """Delete tasks (their runs are stopped); asks first unless --yes."""
    raise typer.Exit(run(lambda c: _delete(c, tasks, yes=yes), url, token))


def _delete(connection: Connection, identifiers: list[str], *, yes: bool) -> int:
    found = [resolve(connection, identifier) for identifier in identifiers]
    shown = [display(t) for t in found]
    confirm(f"Delete these tasks: {', '.join(shown)}?", yes)
    for task, name in zip(found, shown, strict=True):
        try:
            connection.coder("DELETE", task_path(task))
        except ClientError as e:
            raise ClientError(f'delete task "{name}": {e}', exit_code=e.exit_code) from None
        typer.echo(f"Deleted task {name} at {timestamp()}")
    return 0


app.command("rm", hidden=True)(delete)

