"""Cooperative cancellation that stops a run within one await.

The engine registers the task it runs in while it is working (never while the consumer holds
an event); :meth:`CancelToken.cancel` then cancels that task, so whatever the run awaits —
a model, an HTTP call, a sleep between retries — stops at once. Between awaits the flag is
checked before every wave. Another process signals through whatever sets the token (the
execution layer listens on Redis and calls :meth:`cancel`).
"""

from __future__ import annotations

import asyncio


class CancelToken:
    """A flag that, once set, also interrupts the engine's current await."""

    __slots__ = ("_cancelled", "_loop", "_task", "reason")

    def __init__(self) -> None:
        self._cancelled = False
        self._task: asyncio.Task[object] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.reason = "Task has been canceled"

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self, reason: str | None = None) -> None:
        """Ask the run to stop; safe to call from any thread, more than once."""
        if reason:
            self.reason = reason
        self._cancelled = True
        task, loop = self._task, self._loop
        if task is None or loop is None or task.done():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            task.cancel()
        else:
            loop.call_soon_threadsafe(task.cancel)

    def attach(self, task: asyncio.Task[object] | None) -> None:
        """Engine only: the task to interrupt while the engine is working, or ``None``."""
        self._task = task
        if task is not None:
            self._loop = task.get_loop()
            if self._cancelled:
                task.cancel()
