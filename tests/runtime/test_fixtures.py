"""Every ragflow fixture either builds, or fails naming exactly the component types not available."""

import json
import re

import pytest

from taskcanvas.components import builtin_registry
from taskcanvas.dsl.errors import DslError
from taskcanvas.dsl.load import load_canvas
from taskcanvas.runtime.canvas import Canvas
from tests.support.canvas import FIXTURES

FILES = sorted(FIXTURES.rglob("*.json"))


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_fixture_builds_or_names_missing_types(path) -> None:
    registry = builtin_registry()
    dsl = load_canvas(json.loads(path.read_text(encoding="utf-8")), source=path.name)
    missing = {t for c in dsl.components.values() for t in _types(c.component_name, c.params)
               if registry.get(t) is None}
    try:
        canvas = Canvas.build(dsl, registry, source=path.name)
    except DslError as err:
        errors = [i for i in err.issues if i.severity == "error"]
        assert path.name in str(err)
        named = {t for i in errors for t in re.findall(r"component type '([^']+)'", i.message)}
        assert named == missing, str(err)
        for issue in errors:
            assert issue.component_id and issue.component_id.split("-->")[0] in dsl.components, str(issue)
            if issue.code == "unknown_type":
                assert "not available" in issue.message or "v1 type" in issue.message
            elif issue.code == "bad_param":
                # This template ships without the database settings its user must fill in; ragflow's
                # ExeSQL check refuses it too.
                assert path.name == "text2sql_data_expert.json" and issue.component_id.startswith("ExeSQL:")
                assert issue.field in ("params.database", "params.username", "params.host"), str(issue)
            else:
                # ragflow v1 canvases loop through their Answer component.
                assert issue.code == "cycle" and {"Answer", "Generate"} & missing, str(issue)
        return
    assert not missing
    assert set(canvas.components) == set(dsl.components)


def _types(component_name: str, params: dict) -> set[str]:
    """A component's type and, for an Agent, its tools' types (sub-agents' included)."""
    found = {component_name}
    for tool in params.get("tools") or []:
        found |= _types(tool.get("component_name", ""), tool.get("params") or {})
    return found


def test_fixtures_are_present() -> None:
    assert len(FILES) >= 20
