"""LLM and Categorize against a scripted OpenAI-compatible server (spec §8.3 cases 40–44)."""

import json
from collections.abc import Iterator

import pytest

from taskcanvas.testing.model_server import Reply, Rule, ScriptedModelServer
from tests.support.canvas import build, cpn, make_canvas, next_turn, run_turn
from tests.support.models import ServerModels


@pytest.fixture
def server() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as srv:
        yield srv


def _llm(params: dict | None = None, down: list[str] | None = None) -> dict:
    return cpn("LLM", {"llm_id": "gpt-test@OpenAI", **(params or {})}, down=down)


def _engine(dsl: dict, server: ScriptedModelServer):
    return build(dsl, services={"models": ServerModels(server)})


def _chat_messages(request: dict) -> list[dict]:
    return [{"role": m["role"], "content": m["content"]} for m in request["messages"]]


async def test_case40_llm_streams_into_a_message(server: ScriptedModelServer) -> None:
    server.add(Rule("Forty two, of course.", last_user_contains="Q: life?"))
    dsl = make_canvas({
        "begin": cpn("Begin", down=["llm"]),
        "llm": _llm({"prompts": [{"role": "user", "content": "Q: {sys.query}"}]}, down=["msg"]),
        "msg": cpn("Message", {"content": ["{llm@content}"]}),
    })
    turn = await run_turn(_engine(dsl, server), query="life?")
    assert turn.text == "Forty two, of course."
    assert len(turn.of("message")) > 1, "streamed in pieces"
    order = [(e["event"], e["data"].get("component_id")) for e in turn.events
             if e["event"] in ("node_started", "node_finished", "message_end")]
    # ragflow: the LLM finishes only after the Message that streamed its answer ends [V].
    assert order == [("node_started", "begin"), ("node_finished", "begin"), ("node_started", "llm"),
                     ("node_started", "msg"), ("message_end", None), ("node_finished", "llm"),
                     ("node_finished", "msg")]
    assert _chat_messages(server.requests[-1])[-1] == {"role": "user", "content": "Q: life?"}
    assert server.requests[-1]["stream"] is True
    assert turn.output("llm", "content") == "Forty two, of course."
    assert turn.events[-1]["data"]["usage"]["calls"] == 1


async def test_case41_history_window(server: ScriptedModelServer) -> None:
    server.add(Rule("first answer", last_user_contains="t1", times=1))
    dsl = make_canvas({
        "begin": cpn("Begin", down=["llm"]),
        "llm": _llm({"message_history_window_size": 2}, down=["msg"]),
        "msg": cpn("Message", {"content": ["{llm@content}"]}),
    })
    first = await run_turn(_engine(dsl, server), query="t1")
    assert first.text == "first answer"
    await next_turn(first, query="t2")
    sent = _chat_messages(server.requests[-1])
    assert [m for m in sent if m["role"] != "system"] == [
        {"role": "user", "content": "t1"}, {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "t2"}]


async def test_case42_error_answers_then_the_default(server: ScriptedModelServer) -> None:
    server.add(Rule("**ERROR**: the model is sad"))
    dsl = make_canvas({
        "begin": cpn("Begin", down=["llm"]),
        "llm": _llm({"max_retries": 1, "delay_after_error": 0, "exception_method": "comment",
                     "exception_default_value": "sorry"}, down=["fmt"]),
        "fmt": cpn("StringTransform", {"method": "merge", "script": "said: {llm@content}"}, down=["msg"]),
        "msg": cpn("Message", {"content": ["{fmt@result}"]}),
    })
    turn = await run_turn(_engine(dsl, server), query="hi")
    assert len(server.requests) == 2, "one retry"
    assert turn.output("llm", "content") == "sorry"
    assert turn.text == "said: sorry"
    assert turn.status.value == "finished"


async def test_a_streamed_error_answer_says_the_default(server: ScriptedModelServer) -> None:
    server.add(Rule("**ERROR**: the model is sad"))
    dsl = make_canvas({
        "begin": cpn("Begin", down=["llm"]),
        "llm": _llm({"exception_method": "comment", "exception_default_value": "sorry"}, down=["msg"]),
        "msg": cpn("Message", {"content": ["{llm@content}"]}),
    })
    turn = await run_turn(_engine(dsl, server), query="hi")
    assert turn.text == "sorry"
    assert turn.status.value == "finished"


async def test_model_errors_fail_the_llm_clearly(server: ScriptedModelServer) -> None:
    server.add(Rule(Reply.fail(401)))
    dsl = make_canvas({"begin": cpn("Begin", down=["llm"]), "llm": _llm({"delay_after_error": 0})})
    turn = await run_turn(_engine(dsl, server), query="hi")
    assert turn.status.value == "failed"
    assert turn.error.startswith("**ERROR**: ")
    assert "test-key" not in turn.error


async def test_case43_structured_output(server: ScriptedModelServer) -> None:
    server.add(Rule('```json\n{"a": 1}\n```'))
    dsl = make_canvas({
        "begin": cpn("Begin", down=["llm"]),
        "llm": _llm({"outputs": {"structured": {"type": "object", "properties": {"a": {"type": "number"}}}}},
                    down=["msg"]),
        "msg": cpn("Message", {"content": ["a={llm@structured.a}"]}),
    })
    turn = await run_turn(_engine(dsl, server), query="give json")
    assert turn.output("llm", "structured") == {"a": 1}
    assert turn.text == "a=1"
    system = server.requests[-1]["messages"][0]
    assert system["role"] == "system" and '"properties"' in system["content"]
    assert not server.requests[-1].get("stream")


@pytest.mark.parametrize(("answer", "chosen"), [
    ("It is about Billing, not Tech", "Tech"),
    ("none of them", "Other"),
    ("tech tech billing", "Tech"),
    ("billing BILLING tech", "Billing"),
])
async def test_case44_categorize_counts_names(server: ScriptedModelServer, answer: str, chosen: str) -> None:
    server.add(Rule(answer))
    cats = {"Tech": {"description": "technical issues", "examples": ["my app\ncrashes"], "to": ["t"]},
            "Billing": {"to": ["b"]}, "Other": {"to": ["o"]}}
    dsl = make_canvas({
        "begin": cpn("Begin", down=["cat"]),
        "cat": cpn("Categorize", {"llm_id": "m", "category_description": cats}),
        "t": cpn("Message", {"content": ["tech"]}),
        "b": cpn("Message", {"content": ["billing"]}),
        "o": cpn("Message", {"content": ["other"]}),
    })
    turn = await run_turn(_engine(dsl, server), query="refund please")
    assert turn.output("cat", "category_name") == chosen
    assert turn.text == chosen.lower()
    request = server.requests[-1]
    assert request["messages"][-1] == {"role": "user", "content": '\n---- Real Data ----\nUSER: "refund please" →\n'}
    system = request["messages"][0]["content"]
    assert "Tech" in system and "technical issues" in system and 'USER: "my app    crashes" → Tech' in system


async def test_llm_ids_nothing_serves_fail_before_the_run() -> None:
    from taskcanvas.dsl.errors import DslError

    dsl = make_canvas({"begin": cpn("Begin", down=["llm"]), "llm": _llm()})
    engine = build(dsl)
    with pytest.raises(DslError) as err:
        engine.canvas.check_services({})
    assert "component 'llm'" in str(err.value) and "no models are configured" in str(err.value)


async def test_prompts_carry_the_references_and_system_prompt(server: ScriptedModelServer) -> None:
    dsl = make_canvas({
        "begin": cpn("Begin", {"inputs": {"name": {"type": "line", "name": "Name"}}}, down=["llm"]),
        "llm": _llm({"sys_prompt": "You greet {begin@name}. <REFLECTION>think hard</REFLECTION>",
                     "prompts": [{"role": "user", "content": "Say hi to {begin@name} about {sys.query}"}]}),
    })
    turn = await run_turn(_engine(dsl, server), query="cats", inputs={"name": {"value": "Ann"}})
    sent = _chat_messages(server.requests[-1])
    assert sent[0] == {"role": "system", "content": "You greet Ann. "}
    assert sent[-1] == {"role": "user", "content": "Say hi to Ann about cats"}
    assert turn.output("llm", "content") == "Say hi to Ann about cats"
    assert json.loads(json.dumps(turn.finished("llm")["inputs"])) == {"begin@name": "Ann", "sys.query": "cats"}
