"""The checkpoint hook: after every component the sink gets the delta it changed.

Replaying the deltas, in order, onto the state the run started from must give exactly the
state the run ended with — what a worker in another process would rebuild.
"""

import json

from taskcanvas.runtime.checkpoint import MemoryCheckpointSink
from taskcanvas.runtime.state import RunState
from tests.support.canvas import build, cpn, make_canvas, run_turn


def _loop_canvas() -> dict:
    return make_canvas({
        "begin": cpn("Begin", down=["loop"]),
        "loop": cpn("Loop", {"loop_variables": [], "loop_termination_condition": [], "logical_operator": "or",
                             "maximum_loop_count": 3}, down=["after"]),
        "item": cpn("LoopItem", {}, down=["body"], parent="loop"),
        "body": cpn("Message", {"content": ["pass {sys.query}"], "stream": False}, parent="loop"),
        "after": cpn("Message", {"content": ["done"]}),
    })


async def test_replaying_deltas_rebuilds_the_final_state() -> None:
    sink = MemoryCheckpointSink()
    engine = build(_loop_canvas(), checkpoint=sink)
    state = engine.new_session()
    start = json.loads(json.dumps(state.to_json()))
    turn = await run_turn(engine, state=state, query="q")
    assert turn.text == "pass qpass qpass qdone"

    replay = RunState.from_json(start, engine.canvas.components)
    assert len(sink.deltas) >= 9, "one delta per finished component"
    for delta in sink.deltas:
        replay.apply_delta(json.loads(json.dumps(delta)))
    final = turn.state.to_json()
    rebuilt = replay.to_json()
    for key in ("outputs", "inputs", "path", "counters", "globals", "waiting"):
        assert rebuilt[key] == final[key], key
    assert sink.snapshot == final
    assert sink.status == "finished"
    # A state rebuilt from checkpoints holds only JSON values: copying its containers is enough.
    assert replay.to_json(convert=False) == rebuilt
    before = json.loads(json.dumps(replay.to_json(convert=False)))
    snapshot = replay.to_json(convert=False)
    replay.apply_delta({"component_id": "x", "outputs": {"after": {"content": "changed"}},
                        "globals": {"sys.query": "changed"}, "session": {"history": []}})
    assert snapshot == before, "replaying more does not change a copy taken before"


async def test_deltas_stay_small_in_a_long_loop() -> None:
    dsl = _loop_canvas()
    dsl["components"]["loop"]["obj"]["params"]["maximum_loop_count"] = 200
    sink = MemoryCheckpointSink()
    await run_turn(build(dsl, checkpoint=sink), query="q")
    sizes = [len(json.dumps(d)) for d in sink.deltas]
    # The path grows with every pass; a delta carries only its new tail, not the whole path.
    assert max(sizes[-50:]) < 2 * max(sizes[10:60])


def test_damaged_or_foreign_state_is_refused_clearly() -> None:
    import pytest

    from taskcanvas.runtime.errors import StateError

    ids = ["begin", "m"]
    good = RunState(components={"begin": {}, "m": {}}).to_json()
    assert RunState.from_json(good, ids).path == []
    for damaged, needle in (({**good, "outputs": [1]}, "'outputs' must be a JSON object"),
                            ({**good, "outputs": {"begin": 3}}, "outputs must be a JSON object"),
                            ({**good, "path": "begin"}, "'path' must be a JSON array"),
                            ({**good, "version": 99}, "not a taskcanvas state"),
                            ({**good, "outputs": {"other": {}}}, "belongs to another canvas")):
        with pytest.raises(StateError, match=needle):
            RunState.from_json(damaged, ids)
