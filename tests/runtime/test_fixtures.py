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
    if not missing:
        canvas = Canvas.build(dsl, registry, source=path.name)
        assert set(canvas.components) == set(dsl.components)
        return
    with pytest.raises(DslError) as err:
        Canvas.build(dsl, registry, source=path.name)
    errors = [i for i in err.value.issues if i.severity == "error"]
    legacy = {"Answer", "Generate"} & missing
    # ragflow v1 canvases loop through their Answer component; that cycle is reported too.
    allowed = {"unknown_type", "cycle"} if legacy else {"unknown_type"}
    assert {i.code for i in errors} <= allowed, str(err.value)
    errors = [i for i in errors if i.code == "unknown_type"]
    named = {t for i in errors for t in re.findall(r"component type '([^']+)'", i.message)}
    assert named == missing
    for issue in errors:
        assert issue.component_id.split("-->")[0] in dsl.components
        assert "not available" in issue.message or "v1 type" in issue.message
    assert path.name in str(err.value)


def _types(component_name: str, params: dict) -> set[str]:
    """A component's type and, for an Agent, its tools' types (sub-agents' included)."""
    found = {component_name}
    for tool in params.get("tools") or []:
        found |= _types(tool.get("component_name", ""), tool.get("params") or {})
    return found


def test_fixtures_are_present() -> None:
    assert len(FILES) >= 20
