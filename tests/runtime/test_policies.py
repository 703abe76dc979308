"""Timeouts, retries with delay and exception handling, as the engine applies them to any component."""

import asyncio
import time

from taskcanvas.components import builtin_registry
from taskcanvas.runtime.component import Component, ComponentParams, RunContext
from taskcanvas.runtime.engine import Limits
from tests.support.canvas import build, cpn, make_canvas, run_turn


class SleepParams(ComponentParams):
    seconds: float = 0.0
    fail_times: int = 0


class Sleepy(Component):
    """Test-only: sleeps, and fails its first ``fail_times`` attempts."""

    component_name = "Sleepy"
    Params = SleepParams
    timeout = 0.2

    async def invoke(self, ctx: RunContext) -> None:
        params = self.params
        assert isinstance(params, SleepParams)
        attempts = ctx.services.setdefault("attempts", [])
        attempts.append(time.perf_counter())
        if len(attempts) <= params.fail_times:
            raise RuntimeError(f"flaky failure {len(attempts)}")
        await asyncio.sleep(params.seconds)
        ctx.state.set_output(self.id, "result", "slept")


def _registry():
    r = builtin_registry()
    r.register(Sleepy)
    return r


def _canvas(**params) -> dict:
    return make_canvas({
        "begin": cpn("Begin", down=["s"]),
        "s": cpn("Sleepy", params, down=["m"]),
        "m": cpn("Message", {"content": ["got {s@result}"]}),
    })


async def test_a_component_past_its_time_limit_fails_the_run() -> None:
    started = time.perf_counter()
    turn = await run_turn(build(_canvas(seconds=30), _registry()))
    assert time.perf_counter() - started < 5
    assert turn.status.value == "failed"
    assert turn.error == "timed out after 0.2 seconds"
    assert turn.finished("s")["error"] == "timed out after 0.2 seconds"
    assert turn.events[-1]["event"] == "workflow_finished"
    assert turn.events[-1]["data"]["status"] == "failed"
    assert turn.events[-1]["data"]["component_id"] == "s"


async def test_time_limits_are_configurable_per_type_and_globally() -> None:
    per_type = await run_turn(build(_canvas(seconds=0.3), _registry(), limits=Limits(timeouts={"Sleepy": 5})))
    assert per_type.text == "got slept"
    everywhere = await run_turn(build(_canvas(seconds=0.3), _registry(), limits=Limits(timeout=0.05)))
    assert everywhere.error == "timed out after 0.05 seconds"
    unenforced = await run_turn(build(_canvas(seconds=0.3), _registry(), limits=Limits(enforce_timeouts=False)))
    assert unenforced.text == "got slept"


async def test_retries_with_delay_then_success() -> None:
    engine = build(_canvas(fail_times=2, max_retries=2, delay_after_error=0.05), _registry())
    turn = await run_turn(engine)
    assert turn.text == "got slept"
    attempts = engine.services["attempts"]
    assert len(attempts) == 3
    assert attempts[1] - attempts[0] >= 0.05 and attempts[2] - attempts[1] >= 0.05


async def test_retries_exhausted_is_the_last_error() -> None:
    engine = build(_canvas(fail_times=5, max_retries=1, delay_after_error=0), _registry())
    turn = await run_turn(engine)
    assert len(engine.services["attempts"]) == 2
    assert turn.error == "flaky failure 2"


async def test_exception_comment_with_default_value_continues() -> None:
    dsl = _canvas(fail_times=1, exception_method="comment", exception_default_value="DEF")
    turn = await run_turn(build(dsl, _registry()))
    assert turn.status.value == "finished"
    assert turn.output("s", "result") == "DEF"
    assert turn.text == "got DEF"


async def test_exception_goto_runs_the_handler_instead() -> None:
    dsl = make_canvas({
        "begin": cpn("Begin", down=["s"]),
        "s": cpn("Sleepy", {"fail_times": 1, "exception_method": "goto", "exception_goto": ["h"]}, down=["m"]),
        "m": cpn("Message", {"content": ["not shown"]}),
        "h": cpn("Message", {"content": ["handled: {s@_ERROR}"]}),
    })
    turn = await run_turn(build(dsl, _registry()))
    assert turn.status.value == "finished"
    assert turn.text == "handled: flaky failure 1"
    assert "m" not in [d["component_id"] for d in turn.of("node_started")]
