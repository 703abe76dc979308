"""Component types by name: the built-in table, plug-ins through entry points, clear refusals."""

import sys
import textwrap

from taskcanvas.components import builtin_registry
from tests.support.canvas import build, cpn, make_canvas, run_turn


def test_unavailable_and_unknown_types_say_why() -> None:
    registry = builtin_registry(plugins=False)
    assert "not available" in registry.why_unavailable("Bing")
    assert "v1 type" in registry.why_unavailable("Answer")
    assert registry.why_unavailable("Nope") == "unknown component type 'Nope'"


async def test_a_plugin_component_registers_through_its_entry_point(tmp_path, monkeypatch) -> None:
    (tmp_path / "tc_shout.py").write_text(textwrap.dedent('''
        from taskcanvas.runtime.component import Component

        class Shout(Component):
            component_name = "Shout"

            async def invoke(self, ctx):
                ctx.state.set_output(self.id, "result", str(ctx.state.globals["sys.query"]).upper())
    '''))
    dist = tmp_path / "tc_shout-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tc-shout\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[taskcanvas.components]\nShout = tc_shout:Shout\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        registry = builtin_registry()
        assert "Shout" in registry.names()
        dsl = make_canvas({
            "begin": cpn("Begin", down=["s"]),
            "s": cpn("Shout", down=["m"]),
            "m": cpn("Message", {"content": ["{s@result}!"]}),
        })
        turn = await run_turn(build(dsl, registry), query="hey")
        assert turn.text == "HEY!"
    finally:
        sys.modules.pop("tc_shout", None)
