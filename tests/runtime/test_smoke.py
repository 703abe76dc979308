from tests.support.canvas import cpn, make_canvas, next_turn, run_turn


async def test_begin_message_non_streaming() -> None:
    dsl = make_canvas({
        "begin": cpn("Begin", down=["m"]),
        "m": cpn("Message", {"content": ["{sys.query}"], "stream": False}),
    })
    turn = await run_turn(dsl, query="hello")
    assert turn.text == "hello"
    assert turn.names == ["workflow_started", "node_started", "node_finished", "node_started", "message",
                          "message_end", "node_finished", "workflow_finished"]
    assert turn.state.path == ["begin", "m"]
    again = await next_turn(turn, query="again")
    assert again.text == "again"
    assert again.state.globals["sys.conversation_turns"] == 2
