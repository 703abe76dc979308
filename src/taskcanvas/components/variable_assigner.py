"""VariableAssigner: change conversation variables and outputs in place: set, clear, append, count (spec §4.14)."""

from __future__ import annotations

import numbers
from typing import Any

from taskcanvas.runtime.component import Component, ComponentParams, RunContext
from taskcanvas.runtime.state import RunState
from taskcanvas.runtime.templates import substitute

_NO_PARAMETER = frozenset({"clear", "remove_first", "remove_last"})
_NOT_LIST = "ERROR:VARIABLE_NOT_LIST"
_PARAMETER_NOT_LIST = "ERROR:PARAMETER_NOT_LIST"
_WRONG_ELEMENT_TYPE = "ERROR:PARAMETER_NOT_LIST_ELEMENT_TYPE"
_NOT_NUMBER = "ERROR:VARIABLE_NOT_NUMBER or PARAMETER_NOT_NUMBER"
_DIVIDE_BY_ZERO = "ERROR:DIVIDE_BY_ZERO"


class VariableAssignerParams(ComponentParams):
    variables: Any = []
    """``[{variable: <ref>, operator, parameter}]``; anything but a list assigns nothing (as in ragflow)."""


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def _cleared(value: Any) -> Any:
    if isinstance(value, list):
        return []
    if isinstance(value, str):
        return ""
    if isinstance(value, dict):
        return {}
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0
    if isinstance(value, float):
        return 0.0
    return None


def _arithmetic(op: str, value: Any, parameter: Any) -> Any:
    if not (_is_number(value) and _is_number(parameter)):
        return _NOT_NUMBER
    if op == "+=":
        return value + parameter
    if op == "-=":
        return value - parameter
    if op == "*=":
        return value * parameter
    if parameter == 0:
        return _DIVIDE_BY_ZERO
    return value / parameter


def _operate(state: RunState, op: str, value: Any, parameter: Any) -> Any:
    """The variable's new value; ragflow's "ERROR:..." strings are values, not failures."""
    if op == "overwrite":
        return state.get_variable_value(parameter)
    if op == "clear":
        return _cleared(value)
    if op == "set":
        if value is not None and not isinstance(value, str):
            return parameter
        # ragflow substitutes whatever the parameter is and fails on a non-text one; that is meant literally.
        return substitute(parameter, state.get_variable_value) if isinstance(parameter, str) else parameter
    if op in ("append", "extend"):
        return _add_items(op, value, state.get_variable_value(parameter))
    if op in ("remove_first", "remove_last"):
        if not isinstance(value, list):
            return _NOT_LIST
        if not value:
            return value
        return value[1:] if op == "remove_first" else value[:-1]
    if op in ("+=", "-=", "*=", "/="):
        return _arithmetic(op, value, parameter)
    return None


def _add_items(op: str, value: Any, parameter: Any) -> Any:
    if value is None:
        value = []
    if not isinstance(value, list):
        return _NOT_LIST
    if op == "append":
        if value and not isinstance(parameter, type(value[0])):
            return _WRONG_ELEMENT_TYPE
        # A new list: ragflow appends in place, which also changes every variable sharing the list.
        return [*value, parameter]
    if not isinstance(parameter, list):
        return _PARAMETER_NOT_LIST
    if value and parameter and not isinstance(parameter[0], type(value[0])):
        return _WRONG_ELEMENT_TYPE
    return value + parameter


class VariableAssigner(Component):
    component_name = "VariableAssigner"
    timeout = None  # never waits on anything
    Params = VariableAssignerParams

    def thoughts(self, state: RunState) -> str:
        return "Assign variables from canvas."

    async def invoke(self, ctx: RunContext) -> None:
        params = self.params
        assert isinstance(params, VariableAssignerParams)
        if not isinstance(params.variables, list):
            return
        state = ctx.state
        # Items apply one after another; an incomplete one fails the component after the earlier ones took effect.
        for item in params.variables:
            if not isinstance(item, dict):
                raise ValueError("Variable is not complete.")
            variable, op, parameter = item.get("variable"), item.get("operator"), item.get("parameter")
            if not variable or not op or (op not in _NO_PARAMETER and parameter is None):
                raise ValueError("Variable is not complete.")
            value = state.get_variable_value(variable)
            state.set_variable_value(variable, _operate(state, op, value, parameter))
