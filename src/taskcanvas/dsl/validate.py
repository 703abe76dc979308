"""Structural checks on a loaded canvas: the graph is one a run can follow.

Parameter checks belong to each component type and run when the runtime builds the canvas;
here only what can be seen from the graph itself: a Begin named ``begin``, edges that lead
somewhere, loop bodies inside their loops, no cycles outside a Loop.

Routing targets kept in params (Switch / Categorize ``to``, ``exception_goto``) that name no
component are *warnings*: ragflow loads such canvases (its editor leaves stale ids behind when a
node is deleted), and only the branch that uses the stale id is broken. The run fails with a
clear error if it ever takes that route.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from taskcanvas.dsl.errors import DslIssue
from taskcanvas.dsl.models import CanvasDsl, ComponentSpec

_LOOP_TYPES = {"Loop", "Iteration"}


def routes(spec: ComponentSpec) -> Iterator[tuple[str, str]]:
    """(field, target id) for every component a spec can route to through its params."""
    params = spec.params
    if spec.component_name == "Switch":
        for i, cond in enumerate(_as_list(params.get("conditions"))):
            if isinstance(cond, Mapping):
                for target in _as_list(cond.get("to")):
                    yield f"conditions[{i}].to", str(target)
        for target in _as_list(params.get("end_cpn_ids")):
            yield "end_cpn_ids", str(target)
    elif spec.component_name == "Categorize":
        cats = params.get("category_description")
        if isinstance(cats, Mapping):
            for cat_name, cat in cats.items():
                if isinstance(cat, Mapping):
                    for target in _as_list(cat.get("to")):
                        yield f"category_description.{cat_name}.to", str(target)
    for target in _as_list(params.get("exception_goto")):
        yield "exception_goto", str(target)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def validate(dsl: CanvasDsl) -> list[DslIssue]:
    """Every structural problem of ``dsl``, errors and warnings."""
    issues: list[DslIssue] = []
    comps = dsl.components
    begin = comps.get("begin")
    if begin is None:
        begins = [c.id for c in comps.values() if c.component_name == "Begin"]
        hint = f" (found a Begin with id {begins[0]!r}; ragflow requires the id 'begin')" if begins else ""
        issues.append(DslIssue("no_begin", f"the canvas has no Begin component with id 'begin'{hint}"))
    elif begin.component_name != "Begin":
        issues.append(DslIssue("no_begin", f"'begin' must be a Begin component, not {begin.component_name}", "begin"))

    for spec in comps.values():
        for target in spec.downstream:
            if target not in comps:
                issues.append(DslIssue("dangling_edge", f"downstream names {target!r}, which is not a component",
                                       spec.id, "downstream"))
        for source in spec.upstream:
            if source not in comps:
                issues.append(DslIssue("dangling_edge", f"upstream names {source!r}, which is not a component",
                                       spec.id, "upstream", severity="warning"))
        for fld, target in routes(spec):
            if target not in comps:
                issues.append(DslIssue("dangling_route",
                                       f"routes to {target!r}, which is not a component; the run fails if it "
                                       "takes this route", spec.id, fld, severity="warning"))
        issues.extend(_check_parent(spec, comps))

    for loop_type, item_type in (("Iteration", "IterationItem"), ("Loop", "LoopItem")):
        for spec in comps.values():
            if spec.component_name == loop_type:
                items = [c.id for c in comps.values() if c.parent_id == spec.id and c.component_name == item_type]
                if len(items) != 1:
                    issues.append(DslIssue("loop_start", f"a {loop_type} needs exactly one {item_type} inside it, "
                                                         f"found {len(items)}", spec.id))
    issues.extend(_check_cycles(dsl))
    return issues


def _check_parent(spec: ComponentSpec, comps: Mapping[str, ComponentSpec]) -> Iterator[DslIssue]:
    parent = comps.get(spec.parent_id) if spec.parent_id else None
    if spec.parent_id and parent is None:
        yield DslIssue("dangling_parent", f"parent_id names {spec.parent_id!r}, which is not a component",
                       spec.id, "parent_id")
        return
    needed = {"IterationItem": "Iteration", "LoopItem": "Loop", "ExitLoop": "Loop"}.get(spec.component_name)
    if needed and (parent is None or parent.component_name != needed):
        yield DslIssue("bad_parent", f"a {spec.component_name} must sit inside a {needed} (parent_id)",
                       spec.id, "parent_id")
    if parent is not None and parent.component_name not in _LOOP_TYPES:
        yield DslIssue("bad_parent", f"parent {parent.id!r} is a {parent.component_name}, not a Loop or Iteration",
                       spec.id, "parent_id")


def _edges(spec: ComponentSpec, comps: Mapping[str, ComponentSpec]) -> set[str]:
    targets = set(spec.downstream)
    targets.update(t for _, t in routes(spec))
    return {t for t in targets if t in comps}


def _check_cycles(dsl: CanvasDsl) -> list[DslIssue]:
    """Cycles along edges and routes; allowed only when every member sits inside a Loop."""
    comps = dsl.components
    graph = {cid: _edges(spec, comps) for cid, spec in comps.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []
    counter = 0

    # Tarjan's strongly connected components, iterative so deep canvases cannot overflow.
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                member: list[str] = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    member.append(top)
                    if top == node:
                        break
                if len(member) > 1 or node in graph[node]:
                    cycles.append(sorted(member))
    issues = []
    for members in cycles:
        # A loop body may lead back to its own start (older canvases draw that edge explicitly).
        parents = {comps[m].parent_id for m in members}
        inside_loop = len(parents) == 1 and None not in parents and all(
            p in comps and comps[p].component_name in _LOOP_TYPES for p in parents if p is not None)
        if not inside_loop:
            issues.append(DslIssue("cycle", "components form a cycle outside a Loop: " + " → ".join(members),
                                   members[0]))
    return issues
