"""Legacy forms of the DSL, rewritten the way ragflow rewrites them on every load.

ragflow (``agent/dsl_migration.py``) renames three component types and every id that carries
the old type as its prefix, wherever ids appear: component keys, edges, ``path``, variable
references in text, graph nodes and edges, and the conversation history. The input is not
changed; a rewritten copy is returned.
"""

from __future__ import annotations

import copy
import re
from typing import Any

_RENAMED_TYPES = {
    "Splitter": "TokenChunker",
    "HierarchicalMerger": "TitleChunker",
    "PDFGenerator": "DocGenerator",
}
_RENAMED_NODE_TYPES = {"splitterNode": "chunkerNode"}
_REF = re.compile(r"(\{+\s*)([A-Za-z0-9:_-]+)(@[A-Za-z0-9_.-]+)(\s*\}+)")


def _rename_id(value: str) -> str:
    old, sep, rest = value.partition(":")
    if sep and old in _RENAMED_TYPES:
        return f"{_RENAMED_TYPES[old]}:{rest}"
    return value


def _rename_refs(text: str) -> str:
    return _REF.sub(lambda m: m.group(1) + _rename_id(m.group(2)) + m.group(3) + m.group(4), text)


def _rewrite(value: Any) -> Any:
    """Rewrite ids and references inside any JSON value."""
    if isinstance(value, str):
        return _rename_refs(_rename_id(value)) if ("{" in value or ":" in value) else value
    if isinstance(value, list):
        return [_rewrite(v) for v in value]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            key = _rename_id(k) if isinstance(k, str) else k
            if k == "component_name" and isinstance(v, str):
                out[key] = _RENAMED_TYPES.get(v, v)
            elif k == "type" and isinstance(v, str) and v in _RENAMED_NODE_TYPES:
                out[key] = _RENAMED_NODE_TYPES[v]
            elif k == "label" and isinstance(v, str):
                out[key] = _RENAMED_TYPES.get(v, v)
            else:
                out[key] = _rewrite(v)
        return out
    return value


def needs_normalizing(dsl: dict[str, Any]) -> bool:
    """True when the DSL mentions a renamed type, so the (costly) rewrite is worth doing."""
    components = dsl.get("components")
    if isinstance(components, dict):
        for cid, entry in components.items():
            if isinstance(cid, str) and cid.partition(":")[0] in _RENAMED_TYPES:
                return True
            obj = entry.get("obj") if isinstance(entry, dict) else None
            if isinstance(obj, dict) and obj.get("component_name") in _RENAMED_TYPES:
                return True
    graph = dsl.get("graph")
    nodes = graph.get("nodes") if isinstance(graph, dict) else None
    if isinstance(nodes, list):
        for node in nodes:
            if isinstance(node, dict) and (
                node.get("type") in _RENAMED_NODE_TYPES
                or str(node.get("id", "")).partition(":")[0] in _RENAMED_TYPES
            ):
                return True
    return False


def normalize(dsl: dict[str, Any]) -> dict[str, Any]:
    """Return ``dsl`` with legacy component types and ids renamed (a copy when anything changes)."""
    if not needs_normalizing(dsl):
        return dsl
    out = copy.deepcopy(dsl)
    for key in ("components", "path", "graph", "history", "messages", "reference"):
        if key in out:
            out[key] = _rewrite(out[key])
    return out
