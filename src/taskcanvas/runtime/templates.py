"""Substituting references into text, in the modes ragflow's components use (spec §2.4).

- :func:`string_format`: ``{name}`` replaced literally (LLM prompts, mode B).
- :func:`substitute`: every reference replaced by its value (VariableAssigner ``set``,
  DataOperations, mode C).
- :func:`render`: references bound as Jinja variables and rendered in an immutable sandbox
  (Message without streaming, StringTransform merge, mode E).

ragflow's mode E replaces placeholder names with a regular expression over the whole text
after rendering, so ``{env.n}`` corrupts ``{env.n2}`` and backslashes in values act as regex
escapes; here each reference is replaced exactly where it stood.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from jinja2 import Template
from jinja2.sandbox import ImmutableSandboxedEnvironment

from taskcanvas.runtime.refs import VARIABLE_REF, split_text
from taskcanvas.runtime.stream import TextStream

_JINJA_MARKERS = re.compile(r"\{%.*%\}|\{\{|\}\}", re.DOTALL)
_JINJA_TAG = re.compile(r"\{%.*?%\}|\{\{.*?\}\}", re.DOTALL)
_ENV = ImmutableSandboxedEnvironment(autoescape=False)


def has_jinja(text: str) -> bool:
    """True when ``text`` has Jinja markers (``{{``, ``}}`` or a ``{% %}`` block)."""
    return _JINJA_MARKERS.search(text) is not None


@lru_cache(maxsize=512)
def _compile(text: str) -> Template:
    return _ENV.from_string(text)


def string_format(text: str, values: Mapping[str, Any]) -> str:
    """Replace each ``{name}`` of ``values`` with ``str(value)`` (``None`` → ``""``)."""
    for name, value in values.items():
        text = text.replace("{" + name + "}", "" if value is None else str(value))
    return text


def stringify(value: Any) -> str:
    """A value as text the way ragflow puts it into text: strings as is, the rest as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, TextStream):
        return value.text
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def substitute(text: str, resolve: Callable[[str], Any]) -> str:
    """Every reference in ``text`` replaced by ``stringify(resolve(ref))``."""
    if "{" not in text:
        return text
    return "".join(stringify(resolve(piece)) if is_ref else piece for is_ref, piece in split_text(text))


def sanitized_name(ref: str) -> str:
    """The Jinja variable name ragflow binds a reference to (``sys.query`` → ``sys_query``)."""
    return re.sub("[@:.]", "_", ref)


def render(text: str, values: Mapping[str, str], *, jinja: bool = True) -> str:
    """Render ``text`` with each ``{ref}`` of ``values`` replaced by its text.

    Inside Jinja tags a reference becomes the variable ``sanitized_name(ref)`` so that
    ``{% if {sys.query} %}`` works as in ragflow; elsewhere it is replaced by its value after
    rendering. A template Jinja cannot render is used unrendered, as ragflow does.
    """
    marks = {ref: f"\ue000{i}\ue001" for i, ref in enumerate(values)}
    for ref, mark in marks.items():
        text = text.replace("{" + ref + "}", mark)
    if jinja:
        def _name_in_tag(m: re.Match[str]) -> str:
            tag = m.group(0)
            for ref, mark in marks.items():
                tag = tag.replace(mark, sanitized_name(ref))
            return tag

        # A template that does not compile is the component's error (as in ragflow); one that
        # fails while rendering is used unrendered.
        template = _compile(_JINJA_TAG.sub(_name_in_tag, text))
        with contextlib.suppress(Exception):
            text = template.render({sanitized_name(r): v for r, v in values.items()})
    for ref, mark in marks.items():
        text = text.replace(mark, values[ref])
    return text


def refs_in(text: str) -> list[str]:
    """Distinct references in ``text`` in order of first appearance."""
    seen: dict[str, None] = {}
    for m in VARIABLE_REF.finditer(text):
        seen.setdefault(m.group(1), None)
    return list(seen)
