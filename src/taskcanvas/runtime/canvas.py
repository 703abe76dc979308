"""A built canvas: the DSL with a component object per entry, checked and ready to run.

Building validates everything that can be known before running — the graph (``dsl.validate``),
each component's type and parameters — and raises one :class:`DslError` listing every
problem. Nothing here changes during a run; the run's changes live in a :class:`RunState`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from taskcanvas.dsl.errors import DslError, DslIssue
from taskcanvas.dsl.models import CanvasDsl, ComponentSpec
from taskcanvas.dsl.validate import routes, validate
from taskcanvas.runtime.component import Component
from taskcanvas.runtime.refs import split_ref
from taskcanvas.runtime.registry import Registry

_SYSTEM_GLOBAL_PREFIXES = ("sys.", "env.")


class Canvas:
    """Components by id, their display names and loop structure."""

    def __init__(self, dsl: CanvasDsl, components: Mapping[str, Component], warnings: list[DslIssue]) -> None:
        self.dsl = dsl
        self.components = dict(components)
        self.warnings = warnings
        self._starts: dict[str, str] = {}
        self._reach: dict[str, frozenset[str]] = {}
        for c in self.components.values():
            if c.component_name in ("IterationItem", "LoopItem") and c.spec.parent_id:
                self._starts.setdefault(c.spec.parent_id, c.id)

    @classmethod
    def build(cls, dsl: CanvasDsl, registry: Registry, *, source: str | None = None) -> Canvas:
        """Instantiate and check every component; raise :class:`DslError` on any error."""
        issues = validate(dsl)
        built: dict[str, Component] = {}
        for spec in dsl.components.values():
            component_cls = registry.get(spec.component_name)
            if component_cls is None:
                issues.append(DslIssue("unknown_type", registry.why_unavailable(spec.component_name),
                                       spec.id, "component_name"))
                continue
            try:
                params = component_cls.Params.model_validate(dict(spec.params))
            except ValidationError as e:
                issues.extend(_param_issues(spec, e))
                continue
            built[spec.id] = component_cls(spec, params, None)  # type: ignore[arg-type]
        canvas = cls(dsl, built, issues)

        def build_inner(spec: ComponentSpec) -> Component:
            inner_cls = registry.get(spec.component_name)
            if inner_cls is None:
                raise DslError([DslIssue("unknown_type", registry.why_unavailable(spec.component_name),
                                         spec.id, "component_name")])
            try:
                inner_params = inner_cls.Params.model_validate(dict(spec.params))
            except ValidationError as e:
                raise DslError(_param_issues(spec, e)) from None
            return inner_cls(spec, inner_params, canvas)

        for component in built.values():
            component.canvas = canvas
        for component in built.values():
            issues.extend(component.attach(build_inner))
        if any(i.severity == "error" for i in issues):
            raise DslError(issues, source)
        for component in built.values():
            if component.reads_text:
                component.upstream_refs = component.referenced_components()
            issues.extend(canvas._check_refs(component))
        return canvas

    def check_services(self, services: Mapping[str, Any], *, source: str | None = None) -> None:
        """Raise :class:`DslError` when a component needs a service it will not get."""
        issues = [i for c in self.components.values() for i in c.requirements(services)]
        if issues:
            raise DslError(issues, source)

    def _check_refs(self, component: Component) -> list[DslIssue]:
        issues = []
        for ref in component.text_refs().values():
            cpn_id, _ = split_ref(ref)
            if cpn_id and cpn_id not in self.components:
                issues.append(DslIssue("unknown_ref", f"refers to {{{ref}}}, but there is no component {cpn_id!r}; "
                                       "the run fails if it reaches this component", component.id,
                                       severity="warning"))
        return issues

    def reachable(self, cid: str) -> frozenset[str]:
        """Every component a run could reach after ``cid`` (any branch, loop-backs included)."""
        cached = self._reach.get(cid)
        if cached is not None:
            return cached
        seen: set[str] = set()
        todo = list(self._edges(cid))
        while todo:
            nxt = todo.pop()
            if nxt in seen or nxt not in self.components:
                continue
            seen.add(nxt)
            todo.extend(self._edges(nxt))
        result = frozenset(seen)
        self._reach[cid] = result
        return result

    def _edges(self, cid: str) -> list[str]:
        spec = self.components[cid].spec
        out = list(spec.downstream)
        out.extend(t for _, t in routes(spec))
        start = self._starts.get(cid)
        if start:
            out.append(start)
        if spec.parent_id:
            parent = self.components.get(spec.parent_id)
            if parent is not None:
                # Leaving a loop body (its end, ExitLoop) or looping back to its start.
                out.extend(parent.spec.downstream)
                if self._starts.get(parent.id):
                    out.append(self._starts[parent.id])
        return out

    def start_of(self, loop_id: str) -> str | None:
        """The IterationItem / LoopItem inside an Iteration / Loop."""
        return self._starts.get(loop_id)

    def display_name(self, cid: str) -> str:
        c = self.components.get(cid)
        return c.spec.name if c is not None else ""

    def component_type(self, cid: str) -> str:
        c = self.components.get(cid)
        return c.component_name if c is not None else ""


def _param_issues(spec: ComponentSpec, error: ValidationError) -> list[DslIssue]:
    issues = []
    for err in error.errors():
        fld = ".".join(str(p) for p in err["loc"]) or None
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        issues.append(DslIssue("bad_param", f"{spec.component_name} parameter {msg[0].lower() + msg[1:]}",
                               spec.id, f"params.{fld}" if fld else "params"))
    return issues
