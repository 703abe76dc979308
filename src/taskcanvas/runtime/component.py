"""The component contract: parameters, the context a component runs with, and the base class.

A component type is a :class:`Component` subclass with a ``component_name`` (ragflow's type
name), a :class:`ComponentParams` model with ragflow's defaults, and an async :meth:`invoke`
that reads the :class:`RunState` and writes its outputs there. The engine does everything
else: scheduling, events, timeouts, retries, exception handling.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, field_validator

from taskcanvas.dsl.errors import DslIssue
from taskcanvas.dsl.models import ComponentSpec
from taskcanvas.runtime.cancel import CancelToken
from taskcanvas.runtime.refs import ITERATION_ALIAS, VARIABLE_REF, split_ref
from taskcanvas.runtime.state import RunState

if TYPE_CHECKING:
    from taskcanvas.runtime.canvas import Canvas


class ComponentParams(BaseModel):
    """Parameters every component has (ragflow's ``ComponentParamBase``); unknown keys are kept."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    message_history_window_size: int = 13
    inputs: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    description: str | None = ""
    max_retries: int = 0
    delay_after_error: float = 2.0
    exception_method: str | None = None
    exception_default_value: Any = None
    exception_goto: list[str] | None = None

    @field_validator("exception_goto", mode="before")
    @classmethod
    def _goto_as_list(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [v] if v else None
        return v

    @field_validator("max_retries", mode="before")
    @classmethod
    def _retries_not_negative(cls, v: Any) -> Any:
        if isinstance(v, (int, float)) and v < 0:
            raise ValueError("must be 0 or more")
        return v


@dataclass
class RunContext:
    """What a component may use while it runs; the outside world arrives here, injected."""

    state: RunState
    canvas: Canvas
    cancel: CancelToken
    inputs: Mapping[str, Any] = field(default_factory=dict)
    """The run's Begin/UserFillUp inputs, ``{field: {"value": ...}}``."""
    http: Any = None
    """The one outbound HTTP client (``httpx.AsyncClient`` with the SSRF guard), or ``None``."""
    services: dict[str, Any] = field(default_factory=dict)
    """Further injected services by name (models, sandboxes, knowledge bases)."""
    task_id: str = ""
    """The run's task (session) id, as ragflow's ``task_id`` (artifact links carry it)."""
    usage: dict[str, int] = field(
        default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "calls": 0})
    """Model token usage of the run, summed by the components that call models."""


class Component:
    """Base class of every component type."""

    component_name: ClassVar[str] = ""
    Params: ClassVar[type[ComponentParams]] = ComponentParams
    timeout: ClassVar[float | None] = 600.0
    """Seconds an invocation may take before it fails (ragflow's default table); ``None`` for
    components that never wait on anything, where a time limit could not fire and only costs."""
    default_on_error: ClassVar[bool] = True
    """With ``exception_method: comment``, whether a failure writes the default into ``result``
    (ragflow's ComponentBase) or stays the component's error and the default is said as a
    message (ragflow's tools and Invoke)."""
    reads_text: ClassVar[bool] = False
    """True for components whose references live in free text; only these wait for upstreams."""

    def __init__(self, spec: ComponentSpec, params: ComponentParams, canvas: Canvas) -> None:
        self.spec = spec
        self.id = spec.id
        self.params = params
        self.canvas = canvas
        self.upstream_refs: tuple[str, ...] = ()
        """Component ids this component's text refers to (filled in by the canvas)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id!r}>"

    # -------------------------------------------------------------- overridable
    def text_inputs(self) -> list[str]:
        """The free text whose references this component reads (for text-reading components)."""
        return []

    def thoughts(self, state: RunState) -> str:
        """The ``thoughts`` shown in ``node_started``."""
        return ""

    def time_limit(self) -> float | None:
        """Seconds this invocation may take; a component with its own timeout param widens it."""
        return self.timeout

    async def invoke(self, ctx: RunContext) -> None:
        raise NotImplementedError

    def attach(self, build: Callable[[ComponentSpec], Component]) -> list[DslIssue]:
        """Called once the canvas is built: build inner components (an Agent's tools) with
        ``build``; return the problems found."""
        return []

    def requirements(self, services: Mapping[str, Any]) -> list[DslIssue]:
        """What this component needs from the injected services and does not get (a model that
        nothing serves, an unconfigured knowledge base), checked before a run starts."""
        return []

    def loop_ended(self, state: RunState) -> bool:
        """IterationItem/LoopItem: whether the enclosing loop is over (checked after each pass)."""
        return False

    def form_fields(self, state: RunState) -> dict[str, Any]:
        """Begin/UserFillUp: the form with the current values (``{field: {type, name, ..., value}}``)."""
        return {}

    # -------------------------------------------------------------- helpers
    @property
    def parent(self) -> Component | None:
        pid = self.spec.parent_id
        return self.canvas.components.get(pid) if pid else None

    def set_output(self, state: RunState, name: str, value: Any) -> None:
        state.set_output(self.id, name, value)

    def text_refs(self) -> dict[str, str]:
        """References in all of :meth:`text_inputs`, see :meth:`text_refs_of`."""
        refs: dict[str, str] = {}
        for text in self.text_inputs():
            for name, target in self.text_refs_of(text).items():
                refs.setdefault(name, target)
        return refs

    def text_refs_of(self, text: str) -> dict[str, str]:
        """References in ``text``, mapped to what they resolve through.

        Bare iteration aliases (``{item}``, ``{index}``, ``{result}``) map to the enclosing
        Iteration's IterationItem, as in ragflow.
        """
        refs: dict[str, str] = {}
        for m in VARIABLE_REF.finditer(text):
            refs.setdefault(m.group(1), m.group(1))
        for m in ITERATION_ALIAS.finditer(text):
            alias = m.group(1)
            target = self.iteration_alias(alias)
            if target is not None:
                refs.setdefault(alias, target)
        return refs

    def iteration_alias(self, alias: str) -> str | None:
        """``<IterationItem id>@alias`` when this component sits inside an Iteration."""
        if alias not in ("item", "index", "result"):
            return None
        parent = self.parent
        if parent is None or parent.component_name != "Iteration":
            return None
        start = self.canvas.start_of(parent.id)
        return f"{start}@{alias}" if start else None

    def referenced_components(self) -> tuple[str, ...]:
        ids: dict[str, None] = {}
        for target in self.text_refs().values():
            cpn_id, _ = split_ref(target)
            if cpn_id:
                ids.setdefault(cpn_id, None)
        return tuple(ids)
