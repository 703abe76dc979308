"""An Agent whose tools come from a real MCP server on loopback."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from taskcanvas.config import Settings
from taskcanvas.testing.model_server import Reply, Rule, ScriptedModelServer
from taskcanvas.tools.mcp import McpServers
from tests.support.canvas import build, cpn, make_canvas, run_turn
from tests.support.mcp_server import mcp_server
from tests.support.models import ServerModels


def quote(symbol: str) -> str:
    """The price of a stock."""
    return f"{symbol}: 123.45 USD"


@pytest.fixture(scope="module")
def mcp_url() -> Iterator[str]:
    with mcp_server("quotes", [quote]) as url:
        yield url


async def test_agent_calls_an_mcp_tool(mcp_url: str, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[mcp_servers."stocks"]\nurl = "{mcp_url}"\n')
    settings = Settings.load({"TASKCANVAS_CONFIG": str(config), "TASKCANVAS_DATA_DIR": str(tmp_path)})
    with ScriptedModelServer([
        Rule(Reply(tool_calls=[{"name": "quote_0", "arguments": {"symbol": "NVDA"}}]), times=1),
        Rule("NVDA trades at 123.45 USD.", tool_result_contains="123.45"),
    ]) as server:
        dsl = make_canvas({
            "begin": cpn("Begin", down=["agent"]),
            "agent": cpn("Agent", {"llm_id": "m", "mcp": [{"mcp_id": "stocks", "tools": {
                "quote": {"name": "quote", "description": "The price of a stock.",
                          "inputSchema": {"type": "object", "properties": {"symbol": {"type": "string"}}}}}}]},
                         down=["msg"]),
            "msg": cpn("Message", {"content": ["{agent@content}"]}),
        })
        engine = build(dsl, services={"models": ServerModels(server), "mcp": McpServers.from_settings(settings)})
        engine.canvas.check_services(engine.services)
        turn = await run_turn(engine, query="price of NVDA?")
        assert turn.output("agent", "content") == "NVDA trades at 123.45 USD."
        assert server.requests[0]["tools"][0]["function"]["name"] == "quote_0"
        tool_results = [m["content"] for m in server.requests[1]["messages"] if m["role"] == "tool"]
        assert tool_results == ["NVDA: 123.45 USD"]


async def test_an_unconfigured_mcp_server_fails_before_the_run(tmp_path: Path) -> None:
    from taskcanvas.dsl.errors import DslError

    dsl = make_canvas({"begin": cpn("Begin", down=["agent"]),
                       "agent": cpn("Agent", {"llm_id": "m", "mcp": [{"mcp_id": "ghost", "tools": {}}]})})
    with ScriptedModelServer() as server:
        settings = Settings.load({"TASKCANVAS_DATA_DIR": str(tmp_path)})
        engine = build(dsl, services={"models": ServerModels(server), "mcp": McpServers.from_settings(settings)})
        with pytest.raises(DslError, match="MCP server 'ghost', which is not configured"):
            engine.canvas.check_services(engine.services)
