"""Loading canvases in every shape ragflow stores or exports.

Accepted: a DSL object (``components`` + conversation state), an export wrapper with the DSL
under ``dsl`` (ragflow's agent templates), and a graph-only DSL (``graph.nodes``/``edges``, as
the front end saves it) whose components are built from the graph. Legacy type names are
normalised first. Structural problems are collected and raised together as one
:class:`DslError`; nothing here reads files except :func:`load_canvas_file`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from taskcanvas.dsl.errors import DslError, DslIssue
from taskcanvas.dsl.graph import components_from_graph
from taskcanvas.dsl.models import CanvasDsl, ComponentSpec
from taskcanvas.dsl.normalize import normalize


def load_canvas_file(path: str | Path) -> CanvasDsl:
    """Read and parse a canvas file; errors name the file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise DslError([DslIssue("unreadable", f"cannot read the file: {e.strerror or e}")], str(p)) from None
    except UnicodeDecodeError:
        raise DslError([DslIssue("unreadable", "the file is not UTF-8 text")], str(p)) from None
    return load_canvas(text, source=str(p))


def load_canvas(data: str | bytes | Mapping[str, Any], *, source: str | None = None) -> CanvasDsl:
    """Parse a canvas from JSON text or an already-decoded object."""
    if isinstance(data, (str, bytes)):
        try:
            decoded = json.loads(data)
        except json.JSONDecodeError as e:
            issue = DslIssue("json", f"not valid JSON: {e.msg} (column {e.colno})", line=e.lineno)
            raise DslError([issue], source) from None
    else:
        decoded = data
    if not isinstance(decoded, Mapping):
        raise DslError([DslIssue("shape", "a canvas must be a JSON object")], source)
    return _parse(dict(decoded), source)


def _unwrap(raw: dict[str, Any]) -> dict[str, Any]:
    """The DSL inside an export wrapper (``{"title": ..., "dsl": {...}}``), else ``raw``."""
    inner = raw.get("dsl")
    if "components" not in raw and "graph" not in raw and isinstance(inner, Mapping):
        return dict(inner)
    if isinstance(inner, str) and "components" not in raw:
        try:
            decoded = json.loads(inner)
        except json.JSONDecodeError:
            return raw
        if isinstance(decoded, dict):
            return decoded
    return raw


def _display_names(graph: Any) -> dict[str, str]:
    names: dict[str, str] = {}
    nodes = graph.get("nodes") if isinstance(graph, Mapping) else None
    for node in nodes if isinstance(nodes, list) else []:
        if isinstance(node, Mapping) and isinstance(node.get("id"), str):
            data = node.get("data")
            name = data.get("name") if isinstance(data, Mapping) else None
            if isinstance(name, str):
                names[node["id"]] = name
    return names


def _id_list(value: Any, cid: str, fld: str, issues: list[DslIssue]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        issues.append(DslIssue("type", "must be a list of component ids", cid, fld))
        return ()
    return tuple(value)


def _parse(raw: dict[str, Any], source: str | None) -> CanvasDsl:
    dsl = normalize(_unwrap(raw))
    issues: list[DslIssue] = []
    components_raw = dsl.get("components")
    graph = dsl.get("graph")
    if not components_raw and isinstance(graph, Mapping) and graph.get("nodes"):
        components_raw = components_from_graph(graph)
    if not isinstance(components_raw, Mapping) or not components_raw:
        raise DslError([DslIssue("shape", "the canvas has no components (and no graph to build them from)",
                                 field="components")], source)
    names = _display_names(graph)
    components: dict[str, ComponentSpec] = {}
    for cid, entry in components_raw.items():
        spec = _parse_component(str(cid), entry, names, issues)
        if spec is not None:
            components[spec.id] = spec

    state: dict[str, Any] = {}
    for key, kind in (("globals", dict), ("variables", dict), ("history", list), ("path", list),
                      ("memory", list)):
        value = dsl.get(key)
        if value is None or value == []:
            # The front end saves an empty ``variables`` as [] (seen in ragflow templates).
            state[key] = kind()
        elif not isinstance(value, kind):
            issues.append(DslIssue("type", f"must be a JSON {'object' if kind is dict else 'array'}", field=key))
            state[key] = kind()
        else:
            state[key] = value
    retrieval = dsl.get("retrieval")
    # ragflow's older DSLs store one reference dict instead of a list of them.
    state["retrieval"] = retrieval if isinstance(retrieval, list) else ([retrieval] if retrieval else [])
    if not all(isinstance(p, str) for p in state["path"]):
        issues.append(DslIssue("type", "must be a list of component ids", field="path"))
        state["path"] = []

    if any(i.severity == "error" for i in issues):
        raise DslError(issues, source)
    return CanvasDsl(
        components=components,
        globals=state["globals"],
        variables=state["variables"],
        history=tuple(state["history"]),
        path=tuple(state["path"]),
        retrieval=tuple(state["retrieval"]),
        memory=tuple(state["memory"]),
        graph=graph if isinstance(graph, Mapping) else None,
    )


def _parse_component(cid: str, entry: Any, names: dict[str, str], issues: list[DslIssue]) -> ComponentSpec | None:
    if not isinstance(entry, Mapping):
        issues.append(DslIssue("shape", "a component entry must be an object with 'obj'", cid))
        return None
    obj = entry.get("obj")
    if not isinstance(obj, Mapping):
        issues.append(DslIssue("shape", "missing 'obj' with the component's type and params", cid, "obj"))
        return None
    name = obj.get("component_name")
    if not isinstance(name, str) or not name:
        issues.append(DslIssue("shape", "missing the component type", cid, "obj.component_name"))
        return None
    params = obj.get("params")
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        issues.append(DslIssue("type", "params must be an object", cid, "obj.params"))
        return None
    parent = entry.get("parent_id")
    if parent is not None and not isinstance(parent, str):
        issues.append(DslIssue("type", "must be a component id", cid, "parent_id"))
        parent = None
    return ComponentSpec(
        id=cid,
        component_name=name,
        params=dict(params),
        downstream=_id_list(entry.get("downstream"), cid, "downstream", issues),
        upstream=_id_list(entry.get("upstream"), cid, "upstream", issues),
        parent_id=parent or None,
        name=names.get(cid, ""),
    )
