"""Agent: the tool-calling loop, sub-agents and what the model is told, over a scripted model server."""

from collections.abc import Iterator
from typing import Any

import pytest

from taskcanvas.components import builtin_registry
from taskcanvas.runtime.component import RunContext
from taskcanvas.testing.model_server import Reply, Rule, ScriptedModelServer
from taskcanvas.tools.base import Tool, ToolParams
from tests.support.canvas import build, cpn, make_canvas, run_turn
from tests.support.models import ServerModels


class WeatherParams(ToolParams):
    city: str = ""


class Weather(Tool):
    """Test-only tool: the weather of a city."""

    component_name = "Weather"
    Params = WeatherParams
    meta = {"name": "weather", "description": "Weather of a city.",
            "parameters": {"city": {"type": "string", "description": "The city.", "required": True}}}

    async def call(self, ctx: RunContext, **args: Any) -> Any:
        city = args.get("city")
        if city == "Atlantis":
            raise ValueError("no such city")
        ctx.state.set_output(self.id, "formalized_content", f"sunny in {city}")
        return f"sunny in {city}"


@pytest.fixture
def server() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as srv:
        yield srv


def _engine(dsl: dict, server: ScriptedModelServer):
    registry = builtin_registry()
    registry.register(Weather)
    return build(dsl, registry, services={"models": ServerModels(server)})


def _canvas(agent: dict[str, Any], *, message: bool = True) -> dict:
    params = {"llm_id": "m", "sys_prompt": "You answer about weather.", "max_rounds": 2,
              "tools": [{"component_name": "Weather", "name": "Weather Tool", "params": {}}], **agent}
    comps = {"begin": cpn("Begin", down=["agent"]), "agent": cpn("Agent", params, down=["msg"] if message else [])}
    if message:
        comps["msg"] = cpn("Message", {"content": ["{agent@content}"]})
    return make_canvas(comps)


def _tool_messages(request: dict) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


async def test_the_model_calls_a_tool_then_answers(server: ScriptedModelServer) -> None:
    server.add(Rule(Reply(tool_calls=[{"name": "weather_0", "arguments": {"city": "Paris"}}]), times=1))
    server.add(Rule("It is sunny in Paris.", tool_result_contains="sunny in Paris"))
    turn = await run_turn(_engine(_canvas({}), server), query="Weather in Paris?")
    assert turn.text.endswith("It is sunny in Paris.")
    assert turn.output("agent", "content") == "It is sunny in Paris."
    first = server.requests[0]
    assert [t["function"]["name"] for t in first["tools"]] == ["weather_0"]
    assert first["tools"][0]["function"]["parameters"]["required"] == ["city"]
    assert _tool_messages(server.requests[1]) == ["sunny in Paris"]
    thinking = [e["data"] for e in turn.events if e["event"] == "message" and (
        e["data"].get("start_to_think") or e["data"].get("end_to_think"))]
    assert thinking, "the tool run is shown as thinking"
    assert "Running the weather_0 tool..." in turn.text
    assert turn.output("agent-->Weather_Tool", "formalized_content") == "sunny in Paris"


async def test_tool_problems_are_told_to_the_model_not_fatal(server: ScriptedModelServer) -> None:
    server.add(Rule(Reply(tool_calls=[{"name": "nope", "arguments": {}},
                                      {"name": "weather_0", "arguments": "[1, 2]"},
                                      {"name": "weather_0", "arguments": {"city": "Atlantis"}}]), times=1))
    server.add(Rule("I could not find out."))
    turn = await run_turn(_engine(_canvas({}, message=False), server), query="?")
    assert turn.status.value == "finished"
    results = _tool_messages(server.requests[1])
    assert results[0].startswith("Tool 'nope' does not exist. Available tools: weather_0")
    assert results[1].startswith("Tool arguments for weather_0 must be a JSON object, got list")
    assert results[2] == "no such city"
    assert turn.output("agent", "content") == "I could not find out."


async def test_rounds_are_limited(server: ScriptedModelServer) -> None:
    server.add(Rule("Giving up.", last_user_contains="Exceed max rounds: 2"))
    server.add(Rule(Reply(tool_calls=[{"name": "weather_0", "arguments": {"city": "Rome"}}])))
    turn = await run_turn(_engine(_canvas({}, message=False), server), query="loop forever")
    assert turn.output("agent", "content") == "Giving up."
    assert len(server.requests) == 4, "max_rounds + 1 rounds with tools, then one final answer"


async def test_a_sub_agent_is_a_tool(server: ScriptedModelServer) -> None:
    sub = {"component_name": "Agent", "name": "Researcher", "params": {
        "llm_id": "sub", "description": "Finds facts.", "sys_prompt": "You research.", "tools": []}}
    server.add(Rule(Reply(tool_calls=[{"name": "Researcher_0", "arguments": {
        "user_prompt": "find x", "reasoning": "need x", "context": "ctx"}}]), model="lead", times=1))
    server.add(Rule("x is 42", model="sub"))
    server.add(Rule("The answer is 42.", model="lead"))
    dsl = _canvas({"llm_id": "lead", "tools": [sub]})
    turn = await run_turn(_engine(dsl, server), query="what is x?")
    assert turn.output("agent", "content") == "The answer is 42."
    sub_request = next(r for r in server.requests if r["model"] == "sub")
    assert sub_request["messages"][-1]["content"] == "\nREASONING:\nneed x\n\nCONTEXT:\nctx\n\nQUERY:\nfind x\n"
    lead_tools = server.requests[0]["tools"]
    assert lead_tools[0]["function"]["name"] == "Researcher_0"
    assert lead_tools[0]["function"]["description"] == "Finds facts."
    assert _tool_messages(server.requests[-1]) == ["x is 42"]


async def test_unknown_tool_types_fail_validation_naming_the_agent() -> None:
    from taskcanvas.dsl.errors import DslError

    dsl = _canvas({"tools": [{"component_name": "Bing", "name": "b", "params": {}}]})
    with pytest.raises(DslError) as err:
        build(dsl)
    assert "component 'agent'" in str(err.value) and "tool 'b'" in str(err.value) and "'Bing'" in str(err.value)


async def test_a_session_with_tool_outputs_continues_in_another_process(server: ScriptedModelServer) -> None:
    from tests.support.canvas import next_turn

    server.add(Rule(Reply(tool_calls=[{"name": "weather_0", "arguments": {"city": "Oslo"}}]), times=1))
    server.add(Rule("Snowy.", tool_result_contains="Oslo"))
    server.add(Rule("Still snowy."))
    first = await run_turn(_engine(_canvas({}), server), query="Weather in Oslo?")
    assert first.output("agent-->Weather_Tool", "formalized_content") == "sunny in Oslo"
    second = await next_turn(first, query="And now?")
    assert second.status.value == "finished"
    assert second.output("agent", "content") == "Still snowy."
