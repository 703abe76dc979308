"""DataOperations: reshape the objects that variables hold (select, convert, merge, filter, edit keys) (spec §4.10)."""

from __future__ import annotations

import ast
from typing import Any

from pydantic import field_validator

from taskcanvas.runtime.component import Component, ComponentParams, RunContext
from taskcanvas.runtime.state import RunState
from taskcanvas.runtime.templates import substitute

OPERATIONS = ("select_keys", "literal_eval", "combine", "filter_values", "append_or_update", "remove_keys",
              "rename_keys")
_LITERAL_STARTS = ("{", "[", "(", "'", '"')
_LITERAL_WORDS = ("true", "false", "none")


class DataOperationsParams(ComponentParams):
    query: list[str] = []
    operations: str = "literal_eval"
    select_keys: list[Any] = []
    filter_values: list[dict[str, Any]] = []
    updates: list[Any] = []
    remove_keys: list[Any] = []
    rename_keys: list[Any] = []
    outputs: dict[str, Any] = {"result": {"value": [], "type": "Array of Object"}}

    @field_validator("query", mode="before")
    @classmethod
    def _query_list(cls, v: Any) -> Any:
        return list(v) if isinstance(v, (list, tuple)) else [v]

    @field_validator("select_keys", "filter_values", "updates", "remove_keys", "rename_keys", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return [] if v is None else v

    @field_validator("operations")
    @classmethod
    def _known_operation(cls, v: str) -> str:
        if v not in OPERATIONS:
            raise ValueError(f"operations {v!r} is not supported; use one of {', '.join(OPERATIONS)}")
        return v


def _literal(value: Any) -> Any:
    """Strings that look like Python literals become values, recursively (ragflow's test, not JSON)."""
    if isinstance(value, dict):
        return {k: _literal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_literal(v) for v in value]
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith(_LITERAL_STARTS) or text.lower() in _LITERAL_WORDS or text.replace(".", "").isdigit():
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError, MemoryError):
            return value
    return value


def _combine(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """One object; a key seen again collects its values in a list. The sources are left as they were."""
    result: dict[str, Any] = {}
    for obj in objects:
        for key, value in obj.items():
            if key not in result:
                # A copy, so that extending it later does not reach into the source object.
                result[key] = list(value) if isinstance(value, list) else value
            elif isinstance(result[key], list):
                if isinstance(value, list):
                    result[key].extend(value)
                else:
                    result[key].append(value)
            elif isinstance(value, list):
                result[key] = [result[key], *value]
            else:
                result[key] = [result[key], value]
    return result


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _resolved(state: RunState, template: str) -> str:
    # ragflow keeps the template itself when it substitutes to nothing.
    return substitute(template, state.get_variable_value) or template


def _matches(state: RunState, obj: dict[str, Any], rule: dict[str, Any]) -> bool:
    key = rule.get("key")
    op = (rule.get("operator") or "equals").lower()
    target = _resolved(state, _text(rule.get("value")))
    if key not in obj:
        return False
    value = _text(obj.get(key))
    if op == "=":
        return value == target
    if op == "≠":
        return value != target
    if op == "contains":
        return target in value
    if op == "start with":
        return value.startswith(target)
    if op == "end with":
        return value.endswith(target)
    return False


class DataOperations(Component):
    component_name = "DataOperations"
    timeout = None  # never waits on anything
    Params = DataOperationsParams

    def thoughts(self, state: RunState) -> str:
        return "DataOperation in progress"

    async def invoke(self, ctx: RunContext) -> None:
        params = self.params
        assert isinstance(params, DataOperationsParams)
        state = ctx.state
        objects = self._input_objects(state, params.query)
        op = params.operations
        result: Any
        if op == "select_keys":
            keys = params.select_keys
            result = [{k: v for k, v in obj.items() if k in keys} for obj in objects]
        elif op == "literal_eval":
            result = _literal(objects)
        elif op == "combine":
            result = _combine(objects)
        elif op == "filter_values":
            rules = params.filter_values
            result = [obj for obj in objects if all(_matches(state, obj, r) for r in rules)]
        elif op == "append_or_update":
            result = [self._updated(state, obj, params.updates) for obj in objects]
        elif op == "remove_keys":
            drop = [k for k in params.remove_keys if isinstance(k, str)]
            result = [{k: v for k, v in obj.items() if k not in drop} for obj in objects]
        else:
            result = [self._renamed(obj, params.rename_keys) for obj in objects]
        state.set_output(self.id, "result", result)

    def _input_objects(self, state: RunState, refs: list[str]) -> list[dict[str, Any]]:
        """The objects the referenced values hold: a dict, or the dicts of a list; anything else is skipped."""
        objects: list[dict[str, Any]] = []
        for ref in refs:
            value = state.get_variable_value(ref)
            state.set_input(self.id, ref, value)
            if isinstance(value, dict):
                objects.append(value)
            elif isinstance(value, list):
                objects.extend(v for v in value if isinstance(v, dict))
        return objects

    @staticmethod
    def _updated(state: RunState, obj: dict[str, Any], updates: list[Any]) -> dict[str, Any]:
        new = dict(obj)
        for item in updates:
            if not isinstance(item, dict):
                continue
            key = (item.get("key") or "").strip()
            if not key:
                continue
            value = item.get("value")
            # ragflow substitutes non-text values too and fails; a number or null is meant literally.
            new[key] = _resolved(state, value) if isinstance(value, str) else value
        return new

    @staticmethod
    def _renamed(obj: dict[str, Any], pairs: list[Any]) -> dict[str, Any]:
        new = dict(obj)
        for pair in pairs:
            if not isinstance(pair, dict):
                continue
            old = (pair.get("old_key") or "").strip()
            to = (pair.get("new_key") or "").strip()
            if old and to and old != to and old in new:
                new[to] = new.pop(old)
        return new
