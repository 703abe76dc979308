"""UserFillUp: stop the run and ask the user to fill in a form (spec §3.9, §4.2)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from taskcanvas.files import reader_of
from taskcanvas.runtime.component import Component, ComponentParams, RunContext
from taskcanvas.runtime.refs import VARIABLE_REF
from taskcanvas.runtime.state import RunState
from taskcanvas.runtime.stream import TextStream


class UserFillUpParams(ComponentParams):
    enable_tips: bool = True
    tips: str = "Please fill up the form"
    layout_recognize: str | None = ""


def _tip_text(value: Any) -> str:
    if isinstance(value, TextStream):
        return value.text
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    try:
        return json.dumps(value, ensure_ascii=False) or ""
    except (TypeError, ValueError):
        return ""


def is_file_field(value: Any) -> bool:
    return isinstance(value, Mapping) and "file" in str(value.get("type", "")).lower()


async def resolve_input(ctx: RunContext, value: Any, layout_recognize: str | None) -> Any:
    """A submitted form value as components see it (ragflow's ``_resolve_input_value``).

    A file field's files are read through the run's file reader (``FileService.get_files``):
    images as ``data:`` URLs, documents as their text. A file that cannot be read raises
    :class:`~taskcanvas.files.FileError` naming it, which fails the component.
    """
    resolved = resolve_field_value(value)
    if not is_file_field(value) or resolved is None:
        return resolved
    reader = reader_of(ctx.services)
    if reader is None:  # an engine without a file store: the values stay as they came
        return resolved
    return await reader.read(resolved, layout_recognize)


def resolve_field_value(value: Any) -> Any:
    """A submitted form value without reading files (objects decoded, file lists kept as lists)."""
    if isinstance(value, Mapping):
        if "file" in str(value.get("type", "")).lower():
            if value.get("optional") and value.get("value") is None:
                return None
            raw = value.get("value")
            return raw if isinstance(raw, list) else [raw]
        raw = value.get("value")
        if value.get("type") == "object" and isinstance(raw, str) and raw.strip():
            try:
                return json.loads(raw)
            except ValueError:
                return raw
        return raw
    return value


class UserFillUp(Component):
    component_name = "UserFillUp"
    Params = UserFillUpParams

    def thoughts(self, state: RunState) -> str:
        return "Waiting for your input..."

    def text_inputs(self) -> list[str]:
        params = self.params
        assert isinstance(params, UserFillUpParams)
        return [params.tips] if params.enable_tips and params.tips else []

    def form(self) -> dict[str, Any]:
        fields = self.params.inputs
        return fields if isinstance(fields, dict) else {}

    def form_fields(self, state: RunState) -> dict[str, Any]:
        values = state.inputs[self.id]
        out: dict[str, Any] = {}
        for name, spec in self.form().items():
            if isinstance(spec, Mapping):
                out[name] = {**spec, "value": values.get(name, spec.get("value"))}
            else:
                out[name] = values.get(name, spec)
        return out

    def merge_inputs(self, ctx: RunContext) -> Mapping[str, Any]:
        return ctx.inputs or {}

    async def invoke(self, ctx: RunContext) -> None:
        state = ctx.state
        params = self.params
        assert isinstance(params, UserFillUpParams)
        if params.enable_tips:
            content = params.tips or ""
            for m in list(VARIABLE_REF.finditer(content)):
                ref = m.group(1)
                content = content.replace("{" + ref + "}", _tip_text(state.get_variable_value(ref)))
            state.set_output(self.id, "tips", content)
        await self._take_inputs(ctx, self.merge_inputs(ctx))

    async def _take_inputs(self, ctx: RunContext, inputs: Mapping[str, Any]) -> None:
        state = ctx.state
        if not inputs:
            self._clear_form_values(state)
        layout_recognize = getattr(self.params, "layout_recognize", None) or None
        for name, value in inputs.items():
            resolved = await resolve_input(ctx, value, layout_recognize)
            state.set_output(self.id, name, resolved)
            state.set_input(self.id, name, resolved)

    def _clear_form_values(self, state: RunState) -> None:
        for name, spec in self.form().items():
            if not isinstance(spec, Mapping):
                continue
            # An optional file is already satisfied when empty; clearing it would drop an upload.
            if "file" in str(spec.get("type", "")).lower() and spec.get("optional"):
                continue
            state.set_input(self.id, name, None)
