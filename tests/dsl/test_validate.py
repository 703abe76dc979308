"""Structural validation: one clear issue per problem, naming the component and field."""

from taskcanvas.dsl.load import load_canvas
from taskcanvas.dsl.validate import validate
from tests.support.canvas import cpn, load_fixture, make_canvas


def _issues(components, **kw):
    return validate(load_canvas(make_canvas(components, **kw)))


def test_valid_canvas_has_no_issues() -> None:
    assert _issues({"begin": cpn("Begin", down=["m"]), "m": cpn("Message", {"content": ["x"]})}) == []


def test_missing_begin() -> None:
    issues = _issues({"Begin:X": cpn("Begin", down=[])})
    assert [i.code for i in issues] == ["no_begin"]
    assert "found a Begin with id 'Begin:X'" in issues[0].message


def test_edge_to_missing_component_names_source_and_field() -> None:
    issues = _issues({"begin": cpn("Begin", down=["ghost"])})
    assert len(issues) == 1
    assert (issues[0].code, issues[0].component_id, issues[0].field, issues[0].severity) == (
        "dangling_edge", "begin", "downstream", "error")
    assert "'ghost'" in str(issues[0])


def test_stale_switch_target_is_a_warning() -> None:
    issues = validate(load_canvas(load_fixture("go_testdata/all.json")))
    stale = [i for i in issues if i.code == "dangling_route"]
    assert [(i.component_id, i.severity) for i in stale] == [("Switch:Route", "warning")]
    assert "CodeExec:FunnyBroomsShare" in stale[0].message
    assert not [i for i in issues if i.severity == "error"]


def test_cycle_outside_a_loop() -> None:
    issues = _issues({
        "begin": cpn("Begin", down=["a"]),
        "a": cpn("Message", {"content": ["x"]}, down=["b"]),
        "b": cpn("Message", {"content": ["y"]}, down=["a"]),
    })
    assert [i.code for i in issues] == ["cycle"]
    assert "a → b" in issues[0].message


def test_loop_body_parts_must_sit_in_their_loop() -> None:
    issues = _issues({
        "begin": cpn("Begin", down=["loop"]),
        "loop": cpn("Loop", {}),
        "item": cpn("LoopItem", {}, parent="begin"),
        "it": cpn("Iteration", {"items_ref": "sys.files"}),
    })
    codes = sorted((i.code, i.component_id) for i in issues)
    assert ("bad_parent", "item") in codes
    assert ("loop_start", "loop") in codes
    assert ("loop_start", "it") in codes


def test_parent_must_exist() -> None:
    issues = _issues({"begin": cpn("Begin"), "m": cpn("Message", {"content": ["x"]}, parent="nowhere")})
    assert [(i.code, i.field) for i in issues] == [("dangling_parent", "parent_id")]
