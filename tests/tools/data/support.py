"""What the data tools' tests share: settings and a Begin → Tool → Message canvas run through the
real engine. The replay server on 127.0.0.1 is the ``replay`` fixture (tests/support/replay.py)."""

from __future__ import annotations

from typing import Any

from taskcanvas.components import builtin_registry
from taskcanvas.config import Settings
from taskcanvas.runtime.component import Component
from taskcanvas.tools.http import HttpPolicy
from tests.support.canvas import Turn, build, cpn, make_canvas, run_turn

LOOPBACK = HttpPolicy(allowed_hosts=frozenset({"127.0.0.1"}))


def settings(**sections: Any) -> Settings:
    """Settings with these top-level tables; the HTTP policy allows 127.0.0.1 like the client."""
    return Settings(raw=sections, http_allowed_hosts=("127.0.0.1",))


async def run_tool(tool: type[Component], params: dict[str, Any], *, http: Any, config: Settings | None = None,
                   query: str = "", message: str = "{tool@formalized_content}",
                   globals: dict[str, Any] | None = None) -> Turn:
    """Begin → tool (id ``tool``) → Message (id ``answer``) through the engine."""
    dsl = make_canvas({
        "begin": cpn("Begin", down=["tool"]),
        "tool": cpn(tool.component_name, params, down=["answer"]),
        "answer": cpn("Message", {"content": [message]}),
    }, globals=globals)
    registry = builtin_registry()
    registry.register(tool)
    engine = build(dsl, registry, http=http, services={"settings": config or settings()})
    return await run_turn(engine, query=query)
