"""Retrying model calls that failed for a passing reason (rate limit, unreachable endpoint).

The SDKs' own retries are switched off so that every provider follows one policy: a
:class:`~taskcanvas.llm.errors.ModelError` with ``retryable = True`` is tried again up to
``max_retries`` times, waiting ``delay``, ``2 * delay``, ``4 * delay`` ... seconds (never more
than ``max_delay``, and at least what the provider asked for with ``Retry-After`` when that is
within the cap). Anything else — bad credentials, a prompt that is too long, cancellation — is
raised at once, because trying again cannot help.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from taskcanvas.llm.errors import ModelError

T = TypeVar("T")

Sleep = Callable[[float], Awaitable[object]]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to try again."""

    max_retries: int = 2
    delay: float = 1.0
    """Seconds before the first retry; doubled for each further one."""
    max_delay: float = 30.0

    def backoff(self, attempt: int, error: ModelError) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (0-based)."""
        wait = min(self.delay * 2.0**attempt, self.max_delay)
        if error.retry_after is not None:
            wait = max(wait, min(error.retry_after, self.max_delay))
        return max(wait, 0.0)


async def with_retries(call: Callable[[], Awaitable[T]], policy: RetryPolicy, *,
                       sleep: Sleep = asyncio.sleep) -> T:
    """``await call()``, calling it again after retryable model errors as ``policy`` allows."""
    attempt = 0
    while True:
        try:
            return await call()
        except ModelError as e:
            if not e.retryable:
                raise
            if attempt >= policy.max_retries:
                if attempt:
                    e.args = (f"{e} (gave up after {attempt + 1} attempts)",)
                raise
            await sleep(policy.backoff(attempt, e))
            attempt += 1
