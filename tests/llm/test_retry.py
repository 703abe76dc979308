"""The one retry policy of model calls: which errors, how often, how long between."""

from __future__ import annotations

import pytest

from taskcanvas.llm.errors import ContextTooLong, ModelRateLimited, ModelUnavailable
from taskcanvas.llm.retry import RetryPolicy, with_retries


class Script:
    """A call that fails with the given errors, then answers; records the waits."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.waits: list[float] = []

    async def call(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)


async def test_backoff_doubles_from_the_delay_and_is_capped() -> None:
    script = Script(*(ModelUnavailable("down") for _ in range(5)))
    policy = RetryPolicy(max_retries=5, delay=0.5, max_delay=3)
    assert await with_retries(script.call, policy, sleep=script.sleep) == "ok"
    assert script.waits == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert script.calls == 6


async def test_gives_up_after_max_retries_and_says_so() -> None:
    script = Script(*(ModelRateLimited("slow down") for _ in range(5)))
    with pytest.raises(ModelRateLimited, match=r"slow down \(gave up after 3 attempts\)"):
        await with_retries(script.call, RetryPolicy(max_retries=2, delay=1), sleep=script.sleep)
    assert script.calls == 3 and script.waits == [1, 2]


async def test_errors_that_a_retry_cannot_fix_are_raised_at_once() -> None:
    script = Script(ContextTooLong("too long"))
    with pytest.raises(ContextTooLong, match=r"^too long$"):
        await with_retries(script.call, RetryPolicy(max_retries=3), sleep=script.sleep)
    assert script.calls == 1 and script.waits == []


async def test_retry_after_is_honoured_within_the_cap() -> None:
    asked = ModelRateLimited("wait")
    asked.retry_after = 4.0
    too_long = ModelRateLimited("wait more")
    too_long.retry_after = 600.0
    script = Script(asked, too_long)
    await with_retries(script.call, RetryPolicy(max_retries=2, delay=0.1, max_delay=10), sleep=script.sleep)
    assert script.waits == [4.0, 10]


async def test_no_retries_means_one_attempt() -> None:
    script = Script(ModelUnavailable("down"))
    with pytest.raises(ModelUnavailable, match=r"^down$"):
        await with_retries(script.call, RetryPolicy(max_retries=0), sleep=script.sleep)
    assert script.calls == 1
