"""The canvas definition: what a ragflow DSL says, read once and never changed by a run.

A ragflow DSL mixes two things: the graph of components and the state of a conversation
(`path`, `history`, `globals`, output values written into component params). taskcanvas keeps
them apart: :class:`CanvasDsl` holds the definition plus the *stored* state it came with,
and the runtime builds its own mutable session state from that.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ComponentSpec:
    """One entry of ``components``: a component's type, parameters and edges."""

    id: str
    component_name: str
    params: Mapping[str, Any]
    downstream: tuple[str, ...] = ()
    upstream: tuple[str, ...] = ()
    parent_id: str | None = None
    name: str = ""
    """Display name from the graph (``graph.nodes[].data.name``); used in events only."""


@dataclass(frozen=True)
class CanvasDsl:
    """A loaded canvas: its components and the conversation state stored with it."""

    components: Mapping[str, ComponentSpec]
    globals: Mapping[str, Any] = field(default_factory=dict)
    variables: Mapping[str, Any] = field(default_factory=dict)
    history: tuple[Any, ...] = ()
    path: tuple[str, ...] = ()
    retrieval: tuple[Any, ...] = ()
    memory: tuple[Any, ...] = ()
    graph: Mapping[str, Any] | None = None
