"""ListOperations: pick, filter, sort or de-duplicate the items of a list variable (spec §4.11)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from taskcanvas.runtime.component import Component, ComponentParams, RunContext
from taskcanvas.runtime.state import RunState

OPERATIONS = ("nth", "head", "tail", "filter", "sort", "drop_duplicates")
_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


class ListOperationsParams(ComponentParams):
    query: str = Field("", validate_default=True)
    operations: str = "nth"
    n: int = 0
    strict: bool = False
    sort_method: str | None = "asc"
    sort_by: str | None = ""
    """Comma-separated keys to sort objects by (first key first)."""
    filter: dict[str, Any] = {"operator": "=", "value": ""}
    outputs: dict[str, Any] = {"result": {"value": [], "type": "Array of ?"}, "first": {"value": "", "type": "?"},
                               "last": {"value": "", "type": "?"}}

    @field_validator("query")
    @classmethod
    def _query_given(cls, v: str) -> str:
        if not v:
            raise ValueError("query must name the list variable")
        return v

    @field_validator("operations", mode="before")
    @classmethod
    def _known_operation(cls, v: Any) -> str:
        op = "" if v is None else str(v).strip()
        if op.lower() == "topn":
            op = "head"
        op = op or "nth"
        if op not in OPERATIONS:
            raise ValueError(f"operations {op!r} is not supported; use one of {', '.join(OPERATIONS)}")
        return op

    @field_validator("n", mode="before")
    @classmethod
    def _n_as_int(cls, v: Any) -> int:
        # Anything int() cannot take counts as 0, as in ragflow.
        try:
            return int(v)
        except (TypeError, ValueError, OverflowError):
            return 0

    @field_validator("strict", mode="before")
    @classmethod
    def _strict_flag(cls, v: Any) -> bool:
        if isinstance(v, str):
            return v.strip().lower() in _TRUE_WORDS
        return bool(v)


def _range_error(op: str, n: int) -> ValueError:
    return ValueError(f"{op} requires n to be within the valid range in strict mode, got {n}.")


def _nth(items: list[Any], n: int, strict: bool) -> list[Any]:
    """The n-th item (1-based; negative counts from the end) as a one-item list."""
    if 0 < n <= len(items):
        return [items[n - 1]]
    if n < 0 and -n <= len(items):
        return [items[n]]
    if strict:
        raise _range_error("nth", n)
    return []


def _slice(op: str, items: list[Any], n: int, strict: bool) -> list[Any]:
    if strict and not 1 <= n <= len(items):
        raise _range_error(op, n)
    if n < 1:
        return []
    return items[:n] if op == "head" else items[-n:]


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _passes(value: str, op: str, operand: Any) -> bool:
    if op == "=":
        return bool(value == operand)
    if op == "≠":
        return bool(value != operand)
    if op == "contains":
        return operand in value
    if op == "start with":
        return value.startswith(operand)
    if op == "end with":
        return value.endswith(operand)
    return False


def _hashable(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, set):
        return tuple(sorted(_hashable(v) for v in value))
    return value


def _sorted(items: list[Any], sort_by: str, descending: bool) -> list[Any]:
    if not items:
        return []
    if not isinstance(items[0], dict):
        return sorted(items, reverse=descending)
    keys = [k.strip() for k in sort_by.split(",") if k.strip()]
    if keys:
        return sorted(items, key=lambda x: tuple(x.get(k) for k in keys), reverse=descending)
    # Without keys, objects compare by their (key, value) pairs: in effect by their alphabetically first key.
    return sorted(items, key=_hashable, reverse=descending)


def _unique(items: list[Any]) -> list[Any]:
    seen: set[Any] = set()
    out = []
    for item in items:
        key = _hashable(item)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


class ListOperations(Component):
    component_name = "ListOperations"
    timeout = None  # never waits on anything
    Params = ListOperationsParams

    def thoughts(self, state: RunState) -> str:
        return "ListOperation in progress"

    async def invoke(self, ctx: RunContext) -> None:
        params = self.params
        assert isinstance(params, ListOperationsParams)
        state = ctx.state
        items = state.get_variable_value(params.query)
        if not isinstance(items, list):
            raise TypeError("The input of List Operations should be an array.")
        state.set_input(self.id, params.query, items)
        op = params.operations
        if op == "nth":
            result = _nth(items, params.n, params.strict)
        elif op in ("head", "tail"):
            result = _slice(op, items, params.n, params.strict)
        elif op == "filter":
            rule = params.filter
            result = [i for i in items if _passes(_text(i), rule["operator"], rule["value"])]
        elif op == "sort":
            result = _sorted(items, params.sort_by or "", (params.sort_method or "asc") == "desc")
        else:
            result = _unique(items)
        # ragflow fails when the canvas does not declare first/last; they are simply written here.
        state.set_output(self.id, "result", result)
        state.set_output(self.id, "first", result[0] if result else None)
        state.set_output(self.id, "last", result[-1] if result else None)
