"""Rebuild ragflow's ``components`` mapping from a front-end ``graph``.

ragflow's web editor stores a React-Flow ``graph`` ({nodes, edges}) and, on every save, derives the
``components`` the engine executes from it. Canvases that carry only a ``graph`` (exports, hand-written
files) must get the same derivation so they run exactly as they would after a save in ragflow.

Mirrors ``web/src/pages/agent/utils.ts::buildDslComponentsByGraph`` together with the filtering done by
``utils/dsl-bridge.ts::graphToDsl`` (Placeholder nodes and their edges are dropped first):

* Note, Tool and Placeholder nodes, and Agents hanging below another Agent (``agentTop`` target) are not
  components.
* ``downstream``/``upstream`` come from the edges; for an Agent source, edges to tools (target id starting
  with ``Tool``), to sub-agents (``agentTop``) and exception edges (``agentException``) are left out.
* Agent: sub-agents (``agentBottom`` edges, recursively) are appended to ``params.tools``;
  ``params.exception_goto`` = targets of its ``agentException`` edges.
* Categorize: ``params.items`` becomes ``category_description[name]`` with ``to`` = targets of the edges
  leaving the item's uuid handle; unused LLM settings are dropped.
* Begin (webhook mode) and DataOperations: form-shaped lists are flattened as the front end does.
* Switch: params are kept as they are. The front end does not rebuild ``conditions[].to`` /
  ``end_cpn_ids`` at save time; its store writes them into the form when a ``Case N`` /
  ``end_cpn_ids`` handle is connected or disconnected, so the form already holds them.

Deliberate differences from the front end, all for input it would not produce: edges naming a node that
does not exist are skipped; a missing ``tools`` list or Categorize ``items`` list does not fail (an absent
``items`` keeps ``category_description`` as is); list entries that are already flat are kept. Ingestion
pipeline operators (Parser, TokenChunker, TitleChunker, Extractor) are not agent components and keep
their form unchanged.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["components_from_graph"]

_NOT_COMPONENTS = frozenset({"Note", "Tool", "Placeholder"})
_PLACEHOLDER = "Placeholder"

_TOOL_HANDLE = "tool"
_AGENT_TOP = "agentTop"
_AGENT_BOTTOM = "agentBottom"
_AGENT_EXCEPTION = "agentException"

# web/src/constants/chat.ts variableEnabledFieldMap: switch -> LLM setting it enables.
_LLM_SETTING_SWITCHES = {
    "temperatureEnabled": "temperature",
    "topPEnabled": "top_p",
    "presencePenaltyEnabled": "presence_penalty",
    "frequencyPenaltyEnabled": "frequency_penalty",
    "maxTokensEnabled": "max_tokens",
}


@dataclass(frozen=True)
class _Edge:
    source: str
    target: str
    source_handle: Any
    target_handle: Any


def components_from_graph(graph: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the ``components`` ragflow's front end would save for ``graph``.

    Never raises on malformed input: missing ``data``/``form`` gives empty params, edges naming unknown
    nodes are skipped. The result shares no mutable state with ``graph``.
    """
    nodes = _index_nodes(graph.get("nodes"))
    edges = _usable_edges(graph.get("edges"), nodes)
    sub_agents = {e.target for e in edges if e.target_handle == _AGENT_TOP}

    components: dict[str, dict[str, Any]] = {}
    for node_id, node in nodes.items():
        label = _label(node)
        if label in _NOT_COMPONENTS or node_id in sub_agents:
            continue
        entry: dict[str, Any] = {
            "obj": {"component_name": label, "params": _params(node_id, label, nodes, edges)},
            "downstream": _downstream(node_id, label, edges),
            "upstream": [e.source for e in edges if e.target == node_id],
        }
        parent_id = node.get("parentId")
        if parent_id is not None:
            entry["parent_id"] = parent_id
        components[node_id] = entry
    return components


def _index_nodes(raw: Any) -> dict[str, Mapping[str, Any]]:
    """Nodes by id, in graph order; the first of duplicated ids wins (as ``nodes.find`` does)."""
    nodes: dict[str, Mapping[str, Any]] = {}
    if not isinstance(raw, list):
        return nodes
    for node in raw:
        if isinstance(node, Mapping) and isinstance(node.get("id"), str):
            nodes.setdefault(node["id"], node)
    return nodes


def _usable_edges(raw: Any, nodes: Mapping[str, Mapping[str, Any]]) -> list[_Edge]:
    edges: list[_Edge] = []
    if not isinstance(raw, list):
        return edges
    for edge in raw:
        if not isinstance(edge, Mapping):
            continue
        source, target = edge.get("source"), edge.get("target")
        if not (isinstance(source, str) and isinstance(target, str)):
            continue
        if source not in nodes or target not in nodes:
            continue
        if _PLACEHOLDER in (_label(nodes[source]), _label(nodes[target])):
            continue
        edges.append(_Edge(source, target, edge.get("sourceHandle"), edge.get("targetHandle")))
    return edges


def _data(node: Mapping[str, Any]) -> Mapping[str, Any]:
    data = node.get("data")
    return data if isinstance(data, Mapping) else {}


def _label(node: Mapping[str, Any]) -> str:
    label = _data(node).get("label")
    return label if isinstance(label, str) else ""


def _form(node: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of the node's form, so callers may mutate the result freely."""
    form = _data(node).get("form")
    return copy.deepcopy(dict(form)) if isinstance(form, Mapping) else {}


def _downstream(node_id: str, label: str, edges: list[_Edge]) -> list[str]:
    outgoing = [e for e in edges if e.source == node_id]
    if label == "Agent":
        outgoing = [
            e
            for e in outgoing
            if e.source_handle != _AGENT_EXCEPTION
            and not e.target.startswith("Tool")
            and not (e.target.startswith("Agent") and e.target_handle == _AGENT_TOP)
        ]
    return [e.target for e in outgoing]


def _params(
    node_id: str, label: str, nodes: Mapping[str, Mapping[str, Any]], edges: list[_Edge]
) -> dict[str, Any]:
    if label == "Agent":
        params = _agent_params(node_id, nodes, edges, frozenset())
        params["exception_goto"] = _targets(edges, node_id, _AGENT_EXCEPTION)
        return params
    form = _form(nodes[node_id])
    if label == "Categorize":
        return _without_unused_llm_settings(_categorize_params(node_id, form, edges))
    if label == "Begin":
        return _begin_params(form)
    if label == "DataOperations":
        return _data_operations_params(form)
    return form


def _targets(edges: list[_Edge], source: str, handle: Any) -> list[str]:
    return [e.target for e in edges if e.source == source and e.source_handle == handle]


def _agent_params(
    node_id: str,
    nodes: Mapping[str, Mapping[str, Any]],
    edges: list[_Edge],
    ancestors: frozenset[str],
) -> dict[str, Any]:
    """Agent form with its sub-agents (``agentBottom`` edges) appended to ``tools``, recursively."""
    node = nodes[node_id]
    params = _form(node)
    if _label(node) != "Agent":
        return params
    tools = params.get("tools")
    params["tools"] = list(tools) if isinstance(tools, list) else []
    below = ancestors | {node_id}
    for sub_id in _targets(edges, node_id, _AGENT_BOTTOM):
        if sub_id in below:  # a cycle would recurse forever in the front end; stop it here
            continue
        params["tools"].append(
            {
                "component_name": "Agent",
                "id": sub_id,
                "name": _data(nodes[sub_id]).get("name"),
                "params": _agent_params(sub_id, nodes, edges, below),
            }
        )
    return params


def _categorize_params(node_id: str, form: dict[str, Any], edges: list[_Edge]) -> dict[str, Any]:
    items = form.pop("items", None)
    if items is None:
        return form
    descriptions: dict[str, Any] = {}
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            continue
        uuid = item.get("uuid")
        rest = {k: v for k, v in item.items() if k not in ("name", "uuid")}
        descriptions[item["name"]] = {
            **rest,
            "examples": _pluck(item.get("examples"), "value"),
            "to": _targets(edges, node_id, uuid) if uuid is not None else [],
        }
    form["category_description"] = descriptions
    return form


def _without_unused_llm_settings(params: dict[str, Any]) -> dict[str, Any]:
    """Drop the UI switches, ``parameter`` and every LLM setting whose switch is off."""
    dropped = {"parameter", *_LLM_SETTING_SWITCHES}
    dropped.update(field for switch, field in _LLM_SETTING_SWITCHES.items() if not params.get(switch))
    return {k: v for k, v in params.items() if k not in dropped}


def _begin_params(form: dict[str, Any]) -> dict[str, Any]:
    if form.get("mode") != "Webhook":
        return form
    raw_security = form.get("security")
    security: dict[str, Any] = dict(raw_security) if isinstance(raw_security, Mapping) else {}
    if "ip_whitelist" in security:
        security["ip_whitelist"] = _pluck(security["ip_whitelist"], "value")
    jwt = security.get("jwt")
    if security.get("auth_type") == "jwt" and isinstance(jwt, Mapping):
        security["jwt"] = {**jwt}
        if "required_claims" in jwt:
            security["jwt"]["required_claims"] = _pluck(jwt["required_claims"], "value")
    if security.get("auth_type") == "none" and security.get("allow_anonymous"):
        security["allow_anonymous"] = True
    else:
        security.pop("allow_anonymous", None)
    return {**form, "schema": _request_json_schema(form.get("schema")), "security": security}


def _request_json_schema(schema: Any) -> dict[str, Any]:
    """``{query|headers|body: [{key, type, required}]}`` -> one JSON-schema object per part."""
    result: dict[str, Any] = {}
    if not isinstance(schema, Mapping):
        return result
    for part, fields in schema.items():
        if not isinstance(fields, list):
            continue
        entries = [f for f in fields if isinstance(f, Mapping)]
        result[part] = {
            "type": "object",
            "required": [f.get("key") for f in entries if f.get("required")],
            "properties": {f.get("key"): {"type": f.get("type")} for f in entries},
        }
    return result


def _data_operations_params(form: dict[str, Any]) -> dict[str, Any]:
    for key, field in (("select_keys", "name"), ("remove_keys", "name"), ("query", "input")):
        if key in form:
            form[key] = _pluck(form[key], field)
    return form


def _pluck(values: Any, field: str) -> list[Any]:
    """``[{field: v}, ...]`` -> ``[v, ...]``; entries that are already flat are kept."""
    if not isinstance(values, list):
        return []
    return [v.get(field) if isinstance(v, Mapping) else v for v in values]
