"""coder's search-query language (``?q=owner:alice status:active``), parsed into plain filter values.

Two dialects, as coder's ``searchquery`` package has them:

- :func:`parse_task_query`: ``searchquery.Tasks`` of the ``/api/v2/tasks`` list (spec §6.4);
  bare words mean ``owner``.
- :func:`parse_workspace_query`: the subset of ``searchquery.Workspaces`` that the seed's
  ``/api/experimental/tasks`` list accepted (tasks were workspaces then); bare words mean a
  workspace ``name``, or ``owner/name``.

Both follow coder's grammar exactly, quirks included, so that a query coder accepts or refuses
gets the same answer here: the query is lower-cased; tokens split on spaces outside double
quotes; ``key:value`` tokens stand alone and every other token is joined, with spaces, into one
bare term; quotes are dropped from keys and values. Faults are reported in coder's words, as
``Invalid`` with coder's ``validations`` (the element's field is ``q``, a parameter's its key).

Values stay strings: resolving ``me``, a username or an organization name to an id needs the
store and the caller, and is the list service's job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from taskcanvas.service.errors import Invalid

TASK_QUERY_INVALID = "Invalid task search query."
WORKSPACE_QUERY_INVALID = "Invalid workspace search query."
WORKSPACE_STATUSES = ("pending", "starting", "running", "stopping", "stopped", "failed", "canceling", "canceled",
                      "deleting", "deleted")
"""What ``status:`` may say in the workspace dialect (coder's ``database.WorkspaceStatus``)."""

_TRUE, _FALSE = ("1", "t", "true"), ("0", "f", "false")
"""Go's ``strconv.ParseBool`` words, after the query has been lower-cased."""

_Values = dict[str, list[str]]
_Default = Callable[[str, _Values], None]


@dataclass(frozen=True)
class TaskQuery:
    """Filters of the task list; ``None`` means "any". ``owner`` may be ``me``, a username or an id."""

    owner: str | None = None
    organization: str | None = None
    status: str | None = None
    """Compared with the task status as given; coder does not check it against the status names."""


@dataclass(frozen=True)
class WorkspaceQuery:
    """Filters of the seed-era task list; ``None`` means "any"."""

    owner: str | None = None
    template: str | None = None
    name: str | None = None
    status: str | None = None
    """One of :data:`WORKSPACE_STATUSES`."""
    organization: str | None = None
    has_ai_task: bool | None = None
    """Accepted because coder's dialect has it; the seed's list forces it to true whatever it says."""


def parse_task_query(q: str) -> TaskQuery:
    """``q`` of ``GET /api/v2/tasks``; raises :class:`Invalid` as coder's ``tasksList`` answers 400."""
    if q == "":
        return TaskQuery()
    params = _Params(_search_terms(q.lower(), _bare_owner, TASK_QUERY_INVALID), TASK_QUERY_INVALID)
    query = TaskQuery(owner=params.string("owner"), organization=params.string("organization"),
                      status=params.string("status"))
    params.finish()
    return query


def parse_workspace_query(q: str) -> WorkspaceQuery:
    """``q`` of the seed-era ``GET /api/experimental/tasks``; raises :class:`Invalid` as it answered 400."""
    if q == "":
        return WorkspaceQuery()
    params = _Params(_search_terms(q.lower(), _bare_workspace, WORKSPACE_QUERY_INVALID), WORKSPACE_QUERY_INVALID)
    query = WorkspaceQuery(owner=params.string("owner"), template=params.string("template"),
                           name=params.string("name"), status=params.choice("status", WORKSPACE_STATUSES),
                           has_ai_task=params.boolean("has-ai-task"), organization=params.string("organization"))
    params.finish()
    return query


# ---------------------------------------------------------------------------- the grammar
def _bare_owner(term: str, values: _Values) -> None:
    values.setdefault("owner", []).append(term)


def _bare_workspace(term: str, values: _Values) -> None:
    """A bare term names a workspace, optionally as ``owner/name``."""
    parts = _split(term, "/", keep_quotes=False)
    if len(parts) == 1:
        values.setdefault("name", []).append(parts[0])
    elif len(parts) == 2:
        values.setdefault("owner", []).append(parts[0])
        values.setdefault("name", []).append(parts[1])
    else:
        raise ValueError(f"Query element {_go_quote(term)} can only contain 1 '/'")


def _search_terms(query: str, default: _Default, message: str) -> _Values:
    """``key -> values`` in the order met; the first malformed element is refused (field ``q``)."""
    values: _Values = {}
    for element in _elements(_split(query, " ", keep_quotes=True)):
        if element.startswith(":") or element.endswith(":"):
            raise Invalid(message, validations=[("q", f"Query element {_go_quote(element)} cannot start or end "
                                                      "with ':'")])
        parts = _split(element, ":", keep_quotes=False)
        if len(parts) == 1:
            try:
                default(element, values)
            except ValueError as e:
                raise Invalid(message, validations=[("q", str(e))]) from None
        elif len(parts) == 2:
            values.setdefault(parts[0].lower(), []).append(parts[1])
        else:
            raise Invalid(message, validations=[("q", f"Query element {_go_quote(element)} can only contain 1 ':'")])
    return values


def _elements(tokens: list[str]) -> list[str]:
    """``key:value`` tokens as they are, then every other token joined by spaces into one term."""
    keyed = [t for t in tokens if ":" in t]
    bare = [t for t in tokens if ":" not in t]
    return [*keyed, " ".join(bare)] if bare else keyed


def _split(text: str, delimiter: str, *, keep_quotes: bool) -> list[str]:
    """Go's ``strings.FieldsFunc`` on ``delimiter`` outside double quotes: empty fields are dropped."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == delimiter and not quoted:
            if current:
                parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if current:
        parts.append("".join(current))
    return parts if keep_quotes else [p.strip('"') for p in parts]


class _Params:
    """coder's ``QueryParamParser``: reads each known key once, collects every fault, then refuses the rest."""

    def __init__(self, values: _Values, message: str) -> None:
        self._values = values
        self._message = message
        self._read: set[str] = set()
        self._faults: list[tuple[str, str]] = []

    def string(self, key: str) -> str | None:
        """The key's single value; absent or empty is ``None``, as coder treats it."""
        self._read.add(key)
        found = self._values.get(key)
        if not found or found[0] == "":
            return None
        if len(found) > 1:
            self._faults.append((key, f"Query param {_go_quote(key)} provided more than once, found {len(found)} "
                                      "times. Only provide 1 instance of this query param."))
            return None
        return found[0]

    def choice(self, key: str, allowed: tuple[str, ...]) -> str | None:
        value = self.string(key)
        if value is not None and value not in allowed:
            self._faults.append((key, f"Query param {_go_quote(key)} has invalid value: {_go_quote(value)} is not a "
                                      "valid value"))
            return None
        return value

    def boolean(self, key: str) -> bool | None:
        value = self.string(key)
        if value is None or value in _TRUE or value in _FALSE:
            return None if value is None else value in _TRUE
        self._faults.append((key, f"Query param {_go_quote(key)} must be a valid boolean: strconv.ParseBool: "
                                  f"parsing {_go_quote(value)}: invalid syntax"))
        return None

    def finish(self) -> None:
        """Refuse keys nobody read, then raise everything found (coder's ``ErrorExcessParams``)."""
        self._faults += [(k, f"{_go_quote(k)} is not a valid query param") for k in self._values if k not in self._read]
        if self._faults:
            raise Invalid(self._message, validations=self._faults)


_ESCAPES = {"\a": r"\a", "\b": r"\b", "\f": r"\f", "\n": r"\n", "\r": r"\r", "\t": r"\t", "\v": r"\v",
            "\\": "\\\\", '"': '\\"'}


def _go_quote(text: str) -> str:
    """Go's ``%q``: so messages quote query elements exactly as coder's do."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'
