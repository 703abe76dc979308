"""Loading every shape ragflow stores: DSL object, export wrapper, graph-only, legacy names."""

import json

import pytest

from taskcanvas.dsl.errors import DslError
from taskcanvas.dsl.load import load_canvas, load_canvas_file
from taskcanvas.dsl.normalize import normalize
from tests.support.canvas import FIXTURES, cpn, load_fixture, make_canvas


def test_dsl_object_keeps_conversation_state() -> None:
    raw = make_canvas({"begin": cpn("Begin", down=["m"]), "m": cpn("Message", {"content": ["x"]})})
    raw["path"] = ["begin", "m"]
    raw["history"] = [["user", "hi"]]
    dsl = load_canvas(raw)
    assert set(dsl.components) == {"begin", "m"}
    assert dsl.components["begin"].downstream == ("m",)
    assert dsl.path == ("begin", "m")
    assert dsl.history == (["user", "hi"],)


def test_export_wrapper_is_unwrapped() -> None:
    template = load_fixture("templates/customer_feedback_dispatcher.json")
    dsl = load_canvas(template)
    assert "begin" in dsl.components
    assert {c.component_name for c in dsl.components.values()} >= {"Begin", "Categorize", "Message"}


def test_graph_only_canvas_builds_components_from_the_graph() -> None:
    full = load_fixture("go_testdata/all.json")
    graph_only = {"graph": full["graph"], "globals": full["globals"], "variables": full.get("variables", {})}
    dsl = load_canvas(graph_only)
    stored = load_canvas(full)
    assert set(dsl.components) == set(stored.components)
    for cid, spec in stored.components.items():
        assert dsl.components[cid].component_name == spec.component_name
        assert set(dsl.components[cid].downstream) == set(spec.downstream)
        assert dsl.components[cid].parent_id == spec.parent_id


def test_display_names_come_from_the_graph() -> None:
    dsl = load_canvas(load_fixture("go_testdata/all.json"))
    assert dsl.components["UserFillUp:Menu"].name


def test_legacy_type_names_are_normalised_everywhere() -> None:
    raw = make_canvas({
        "begin": cpn("Begin", down=["PDFGenerator:Doc"]),
        "PDFGenerator:Doc": cpn("PDFGenerator", {"content": "{begin@x}"}, down=["m"]),
        "m": cpn("Message", {"content": ["{PDFGenerator:Doc@download}"]}),
    })
    raw["path"] = ["begin", "PDFGenerator:Doc"]
    out = normalize(raw)
    assert "DocGenerator:Doc" in out["components"]
    assert out["components"]["DocGenerator:Doc"]["obj"]["component_name"] == "DocGenerator"
    assert out["components"]["begin"]["downstream"] == ["DocGenerator:Doc"]
    assert out["components"]["m"]["obj"]["params"]["content"] == ["{DocGenerator:Doc@download}"]
    assert out["path"] == ["begin", "DocGenerator:Doc"]
    assert "PDFGenerator:Doc" in raw["components"], "the input is not changed"


def test_legacy_retrieval_dict_becomes_a_list() -> None:
    raw = make_canvas({"begin": cpn("Begin")})
    raw["retrieval"] = {"chunks": [], "doc_aggs": []}
    assert load_canvas(raw).retrieval == ({"chunks": [], "doc_aggs": []},)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("{not json", "line 1"),
        ("[1, 2]", "a canvas must be a JSON object"),
        ("{}", "no components"),
    ],
)
def test_unloadable_text_gets_one_clear_message(text: str, needle: str) -> None:
    with pytest.raises(DslError) as err:
        load_canvas(text, source="x.json")
    assert needle in str(err.value)
    assert "x.json" in str(err.value)


def test_malformed_component_entries_are_each_reported() -> None:
    raw = {"components": {
        "begin": {"obj": {"component_name": "Begin", "params": {}}, "downstream": "m"},
        "m": {"obj": {"params": {}}},
        "x": "nonsense",
    }}
    with pytest.raises(DslError) as err:
        load_canvas(raw)
    text = str(err.value)
    assert "3 problems" in text
    assert "component 'begin', field 'downstream'" in text
    assert "component 'm', field 'obj.component_name'" in text
    assert "component 'x'" in text


def test_missing_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(DslError, match="cannot read the file"):
        load_canvas_file(tmp_path / "nope.json")


def test_every_fixture_parses() -> None:
    files = sorted(FIXTURES.rglob("*.json"))
    assert files, f"no fixtures under {FIXTURES}"
    for f in files:
        dsl = load_canvas(json.loads(f.read_text(encoding="utf-8")), source=f.name)
        assert dsl.components, f.name
