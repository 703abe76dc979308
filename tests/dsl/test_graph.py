"""graph -> components conversion, checked against the components ragflow stored beside each graph."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from taskcanvas.dsl.graph import components_from_graph

FIXTURES = Path(__file__).parents[3] / "shared" / "fixtures" / "ragflow"
GO_TESTDATA = FIXTURES / "go_testdata"
TEMPLATES = FIXTURES / "templates"


def _load_dsl(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data.get("dsl", data) if path.parent == TEMPLATES else data


def _fixture_paths() -> list[Path]:
    paths = [GO_TESTDATA / "all.json", GO_TESTDATA / "agent_msg.json", *sorted(TEMPLATES.glob("*.json"))]
    return [p for p in paths if p.is_file() and {"components", "graph"} <= _load_dsl(p).keys()]


FIXTURE_PATHS = _fixture_paths()


def _fixture_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def _converted(path: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    dsl = _load_dsl(path)
    return dsl, components_from_graph(dsl["graph"]), dsl["components"]


def test_fixtures_are_present() -> None:
    # Guards against a silently empty parametrisation when shared/ is not beside the repo.
    names = {p.name for p in FIXTURE_PATHS}
    assert {"all.json", "agent_msg.json"} <= names
    assert len(names) >= 17


# --- Structure: ids, names, edges, parents -------------------------------------------------------------


@pytest.mark.parametrize("path", FIXTURE_PATHS, ids=_fixture_id)
def test_topology_matches_stored_components(path: Path) -> None:
    _, got, stored = _converted(path)

    assert got.keys() == stored.keys()
    for cid, entry in got.items():
        expected = stored[cid]
        assert entry["obj"]["component_name"] == expected["obj"]["component_name"], cid
        # Order follows the edge order, as in the front end; it matches for every fixture too.
        assert entry["downstream"] == expected["downstream"], cid
        assert entry["upstream"] == expected["upstream"], cid
        assert entry.get("parent_id") == expected.get("parent_id"), cid


@pytest.mark.parametrize("path", FIXTURE_PATHS, ids=_fixture_id)
def test_switch_targets_match_stored_components(path: Path) -> None:
    _, got, stored = _converted(path)

    for cid, entry in got.items():
        if entry["obj"]["component_name"] != "Switch":
            continue
        params, expected = entry["obj"]["params"], stored[cid]["obj"]["params"]
        assert [c.get("to") for c in params["conditions"]] == [c.get("to") for c in expected["conditions"]]
        assert params["end_cpn_ids"] == expected["end_cpn_ids"]


@pytest.mark.parametrize("path", FIXTURE_PATHS, ids=_fixture_id)
def test_categorize_targets_match_stored_components(path: Path) -> None:
    _, got, stored = _converted(path)

    for cid, entry in got.items():
        if entry["obj"]["component_name"] != "Categorize":
            continue
        categories = entry["obj"]["params"]["category_description"]
        expected = stored[cid]["obj"]["params"]["category_description"]
        assert categories.keys() == expected.keys()
        for name, category in categories.items():
            assert category["to"] == expected[name]["to"], (cid, name)


# --- Params: equal up to drift in the templates themselves -----------------------------------------------


def _without_tool_ids(params: dict[str, Any]) -> dict[str, Any]:
    """Agent params with plain tools' ``id`` removed (sub-agent ids are real node ids and stay)."""
    params = copy.deepcopy(params)
    for tool in params.get("tools", []):
        if tool.get("component_name") == "Agent":
            tool["params"] = _without_tool_ids(tool["params"])
        else:
            tool.pop("id", None)
    return params


# Where a template's stored components drifted from its graph (the templates were edited by hand, the
# stored components are not what a save of that graph would give): (file, component id, param keys).
PARAM_DRIFT = {
    # sys_prompt edited in the graph form only: "CodeExec (Python)" -> "CodeExec (Python/SQL/R)".
    ("data_analysis_beginner_assistant.json", "Agent:SillyStatesRun"): {"sys_prompt"},
    # The Begin form gained `mode` / `enablePrologue`; the stored components predate that.
    ("deep_research.json", "begin"): {"mode", "enablePrologue"},
    ("user_interaction.json", "begin"): {"mode", "enablePrologue"},
    ("your_starter_dataset_chatbot.json", "begin"): {"mode", "enablePrologue"},
}


@pytest.mark.parametrize("path", FIXTURE_PATHS, ids=_fixture_id)
def test_params_match_stored_components_up_to_known_drift(path: Path) -> None:
    # Tool `id`s inside Agent params differ in 6 templates (e.g. web_search_assistant's
    # "TavilySearch:WildSheepMarch" in the graph vs "TavilySearch:SafeBeansFall" in components): the
    # front end regenerates them and nothing references them, so they are compared without ids.
    _, got, stored = _converted(path)

    for cid, entry in got.items():
        params = _without_tool_ids(entry["obj"]["params"])
        expected = _without_tool_ids(stored[cid]["obj"]["params"])
        drift = PARAM_DRIFT.get((path.name, cid), set())
        assert {k for k in params.keys() | expected.keys() if params.get(k) != expected.get(k)} == drift, cid


def test_begin_drift_is_only_missing_keys() -> None:
    _, got, stored = _converted(TEMPLATES / "deep_research.json")
    assert got["begin"]["obj"]["params"]["mode"] == "conversational"
    assert "mode" not in stored["begin"]["obj"]["params"]


# --- all.json: the Switch:Route form vs its edges ------------------------------------------------------


def test_all_json_switch_keeps_stale_target_from_form() -> None:
    # Switch:Route's condition 5 ("data_ops") still lists CodeExec:FunnyBroomsShare, a node deleted from
    # the graph. The front end does not rebuild Switch `to` lists when it saves (its store updates them
    # only when an edge on a "Case N" handle is connected or removed), so a save keeps the stale id, and
    # so does the conversion; the stored components agree. It is not downstream: no edge leads there.
    dsl, got, stored = _converted(GO_TESTDATA / "all.json")
    node_ids = {n["id"] for n in dsl["graph"]["nodes"]}
    stale = "CodeExec:FunnyBroomsShare"

    assert stale not in node_ids
    route = got["Switch:Route"]
    assert route["obj"]["params"]["conditions"][4]["to"] == ["DataOperations:UpdateSample", stale]
    assert stored["Switch:Route"]["obj"]["params"]["conditions"][4]["to"] == [
        "DataOperations:UpdateSample",
        stale,
    ]
    assert stale not in route["downstream"]


def test_all_json_switch_case_handles_are_shifted_after_a_removed_case() -> None:
    # The graph has no "Case 6" edge and a "Case 13" edge although Switch:Route has only 12 conditions:
    # condition 6 was removed in the editor, which shifts the form's conditions (with their `to`) but
    # does not renumber edge handles. Reading `to` from the handles would therefore route e.g. "text"
    # and every later case to the wrong branch; the form (kept by the conversion) is right.
    dsl, got, _ = _converted(GO_TESTDATA / "all.json")
    conditions = got["Switch:Route"]["obj"]["params"]["conditions"]
    by_handle: dict[str, list[str]] = {}
    for edge in dsl["graph"]["edges"]:
        if edge["source"] == "Switch:Route":
            by_handle.setdefault(edge["sourceHandle"], []).append(edge["target"])

    assert len(conditions) == 12
    assert "Case 6" not in by_handle
    assert by_handle["Case 13"] == ["UserFillUp:JustWait"]
    assert conditions[11]["items"][0]["value"] == "wait_input"
    assert conditions[11]["to"] == ["UserFillUp:JustWait"]
    for index in range(6, 13):  # Case 7..13 hold the targets of conditions 6..12 (1-based)
        assert by_handle[f"Case {index + 1}"] == conditions[index - 1]["to"]
    assert by_handle["end_cpn_ids"] == got["Switch:Route"]["obj"]["params"]["end_cpn_ids"]


def test_all_json_loop_and_iteration_children_carry_parent_id() -> None:
    _, got, _ = _converted(GO_TESTDATA / "all.json")
    assert got["LoopItem:InputUntil1Start"]["parent_id"] == "Loop:InputUntil1"
    assert got["IterationItem:IterStart"]["parent_id"] == "Iteration:IterateList"
    assert "parent_id" not in got["Loop:InputUntil1"]


def test_all_json_note_is_not_a_component() -> None:
    dsl, got, _ = _converted(GO_TESTDATA / "all.json")
    notes = [n["id"] for n in dsl["graph"]["nodes"] if n["data"]["label"] == "Note"]
    assert notes
    assert not set(notes) & got.keys()


# --- Agent tools and sub-agents (templates) ------------------------------------------------------------


def test_sub_agents_become_tools_and_leave_downstream() -> None:
    dsl, got, _ = _converted(TEMPLATES / "deep_research.json")
    lead = got["Agent:NewPumasLick"]
    subs = ["Agent:FreeDucksObey", "Agent:WeakBoatsServe", "Agent:SwiftToysTell"]

    assert [t["id"] for t in lead["obj"]["params"]["tools"]] == subs
    assert all(t["component_name"] == "Agent" for t in lead["obj"]["params"]["tools"])
    assert lead["obj"]["params"]["tools"][0]["name"] == "Web Search Specialist"
    assert not set(subs) & got.keys()
    assert not set(subs) & set(lead["downstream"])
    # A sub-agent's params are its form as is (its own tools included, no exception_goto rebuilt).
    searcher = lead["obj"]["params"]["tools"][0]["params"]
    form = next(n["data"]["form"] for n in dsl["graph"]["nodes"] if n["id"] == "Agent:FreeDucksObey")
    assert searcher == form
    assert [t["component_name"] for t in searcher["tools"]] == ["TavilySearch"]


def test_tool_nodes_are_not_components_nor_downstream() -> None:
    dsl, got, _ = _converted(TEMPLATES / "web_search_assistant.json")
    tools = {n["id"] for n in dsl["graph"]["nodes"] if n["data"]["label"] == "Tool"}
    assert tools
    assert not tools & got.keys()
    assert not any(tools & set(c["downstream"]) for c in got.values())


# --- Synthetic graphs: behaviours the fixtures do not exercise -------------------------------------------


def _node(node_id: str, label: str, form: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"label": label, "name": node_id.split(":")[-1]}
    if form is not None:
        data["form"] = form
    return {"id": node_id, "data": data, **extra}


def _edge(
    source: str, target: str, source_handle: str = "start", target_handle: str = "end"
) -> dict[str, Any]:
    return {"source": source, "target": target, "sourceHandle": source_handle, "targetHandle": target_handle}


def test_agent_exception_goto_and_excluded_edges() -> None:
    graph = {
        "nodes": [
            _node("begin", "Begin", {}),
            _node("Agent:A", "Agent", {"tools": [{"component_name": "Wikipedia", "params": {}}]}),
            _node("Tool:T", "Tool", {}),
            _node("Agent:Sub", "Agent", {"tools": []}),
            _node("Message:Ok", "Message", {}),
            _node("Message:Oops", "Message", {}),
        ],
        "edges": [
            _edge("begin", "Agent:A"),
            _edge("Agent:A", "Tool:T", "tool"),
            _edge("Agent:A", "Agent:Sub", "agentBottom", "agentTop"),
            _edge("Agent:A", "Message:Oops", "agentException"),
            _edge("Agent:A", "Message:Ok"),
        ],
    }
    got = components_from_graph(graph)

    agent = got["Agent:A"]
    assert agent["downstream"] == ["Message:Ok"]
    assert agent["obj"]["params"]["exception_goto"] == ["Message:Oops"]
    assert [t["component_name"] for t in agent["obj"]["params"]["tools"]] == ["Wikipedia", "Agent"]
    assert got["Message:Oops"]["upstream"] == ["Agent:A"]
    assert set(got) == {"begin", "Agent:A", "Message:Ok", "Message:Oops"}


def test_sub_agent_cycle_does_not_recurse_forever() -> None:
    graph = {
        "nodes": [_node("Agent:A", "Agent", {}), _node("Agent:B", "Agent", {})],
        "edges": [
            _edge("Agent:A", "Agent:B", "agentBottom", "agentTop"),
            _edge("Agent:B", "Agent:A", "agentBottom", "agentTop"),
        ],
    }
    # Both are sub-agents of each other, so neither is a component; nothing must hang.
    assert components_from_graph(graph) == {}


def test_categorize_items_become_category_description() -> None:
    form = {
        "items": [
            {"name": "greet", "uuid": "u1", "description": "hi", "examples": [{"value": "hello"}]},
            {"name": "other", "uuid": "u2", "description": "rest"},
        ],
        "llm_id": "m",
        "parameter": "Precise",
        "temperature": 0.1,
        "temperatureEnabled": True,
        "top_p": 0.3,
        "topPEnabled": False,
        "max_tokens": 256,
    }
    graph = {
        "nodes": [_node("Categorize:C", "Categorize", form), _node("Message:A", "Message")],
        "edges": [_edge("Categorize:C", "Message:A", "u1")],
    }
    params = components_from_graph(graph)["Categorize:C"]["obj"]["params"]

    assert params == {
        "llm_id": "m",
        "temperature": 0.1,
        "category_description": {
            "greet": {"description": "hi", "examples": ["hello"], "to": ["Message:A"]},
            "other": {"description": "rest", "examples": [], "to": []},
        },
    }


def test_categorize_without_items_keeps_category_description() -> None:
    stored = {"a": {"description": "x", "examples": [], "to": ["Message:A"]}}
    graph = {"nodes": [_node("Categorize:C", "Categorize", {"category_description": stored})], "edges": []}
    assert components_from_graph(graph)["Categorize:C"]["obj"]["params"]["category_description"] == stored


def test_begin_webhook_and_data_operations_lists_are_flattened() -> None:
    begin_form = {
        "mode": "Webhook",
        "security": {
            "auth_type": "jwt",
            "ip_whitelist": [{"value": "10.0.0.1"}],
            "jwt": {"algorithm": "HS256", "required_claims": [{"value": "sub"}]},
            "allow_anonymous": True,
        },
        "schema": {
            "body": [{"key": "q", "type": "string", "required": True}, {"key": "n", "type": "number"}]
        },
    }
    data_ops_form = {
        "operations": "select_keys",
        "select_keys": [{"name": "a"}],
        "query": [{"input": "sys.query"}, "already.flat"],
    }
    graph = {
        "nodes": [
            _node("begin", "Begin", begin_form),
            _node("DataOperations:D", "DataOperations", data_ops_form),
        ],
        "edges": [_edge("begin", "DataOperations:D")],
    }
    got = components_from_graph(graph)

    begin = got["begin"]["obj"]["params"]
    assert begin["security"] == {
        "auth_type": "jwt",
        "ip_whitelist": ["10.0.0.1"],
        "jwt": {"algorithm": "HS256", "required_claims": ["sub"]},
    }
    assert begin["schema"] == {
        "body": {
            "type": "object",
            "required": ["q"],
            "properties": {"q": {"type": "string"}, "n": {"type": "number"}},
        }
    }
    data_ops = got["DataOperations:D"]["obj"]["params"]
    assert data_ops["select_keys"] == ["a"]
    assert data_ops["query"] == ["sys.query", "already.flat"]
    assert "remove_keys" not in data_ops


def test_odd_input_is_tolerated() -> None:
    graph = {
        "nodes": [
            {"id": "Message:NoData"},
            _node("Message:NoForm", "Message"),
            _node("Placeholder:P", "Placeholder"),
            "not a node",
            {"data": {"label": "Message"}},  # no id
        ],
        "edges": [
            _edge("Message:NoForm", "Message:Ghost"),  # unknown target: skipped
            _edge("Message:NoForm", "Placeholder:P"),  # placeholder: dropped like the front end does
            _edge("Message:NoData", "Message:NoForm"),
            {"source": None},
        ],
    }
    got = components_from_graph(graph)

    assert set(got) == {"Message:NoData", "Message:NoForm"}
    assert got["Message:NoData"]["obj"] == {"component_name": "", "params": {}}
    assert got["Message:NoForm"]["obj"]["params"] == {}
    assert got["Message:NoForm"]["downstream"] == []
    assert got["Message:NoForm"]["upstream"] == ["Message:NoData"]
    assert components_from_graph({}) == {}


def test_input_graph_is_not_mutated_or_shared() -> None:
    dsl = _load_dsl(GO_TESTDATA / "all.json")
    before = copy.deepcopy(dsl["graph"])
    got = components_from_graph(dsl["graph"])
    got["Switch:Route"]["obj"]["params"]["conditions"][0]["to"].append("X")

    assert dsl["graph"] == before
