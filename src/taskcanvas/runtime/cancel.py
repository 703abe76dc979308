"""Cooperative cancellation that stops a run within one await.

The engine registers the task it runs in while it is working (never while the consumer holds
an event); :meth:`CancelToken.cancel` then cancels that task, so whatever the run awaits —
a model, an HTTP call, a sleep between retries — stops at once. Between awaits the flag is
checked before every wave. Another process signals through whatever sets the token (the
execution layer listens on Redis and calls :meth:`cancel`).

A token has at most one interruption outstanding, and the engine takes it back
(:meth:`CancelToken.acknowledge`) before it hands the consumer the next event: the task that
consumes a cancelled run is never left with a cancellation pending.
"""

from __future__ import annotations

import asyncio


class CancelToken:
    """A flag that, once set, also interrupts the engine's current await."""

    __slots__ = ("_cancelled", "_fired", "_loop", "_task", "reason")

    def __init__(self) -> None:
        self._cancelled = False
        self._task: asyncio.Task[object] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fired: asyncio.Task[object] | None = None
        self.reason = "Task has been canceled"

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self, reason: str | None = None) -> None:
        """Ask the run to stop; safe to call from any thread, more than once."""
        if reason:
            self.reason = reason
        self._cancelled = True
        self._fire()

    def attach(self, task: asyncio.Task[object] | None) -> None:
        """Engine only: the task to interrupt while the engine is working, or ``None``."""
        self._task = task
        if task is not None:
            self._loop = task.get_loop()
            if self._cancelled:
                self._fire()

    def pending(self, task: asyncio.Task[object] | None) -> bool:
        """Engine only: whether this token interrupted ``task`` and nobody took it back yet."""
        return task is not None and self._fired is task

    def acknowledge(self, task: asyncio.Task[object] | None) -> bool:
        """Engine only: the interruption of ``task`` has been delivered; take it back (``Task.uncancel``).

        Returns whether the token had interrupted ``task``.
        """
        if task is None or self._fired is not task:
            return False
        self._fired = None
        task.uncancel()
        return True

    def _fire(self) -> None:
        task, loop = self._task, self._loop
        if task is None or loop is None or task.done() or self._fired is not None:
            return
        self._fired = task
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            task.cancel()
        else:
            loop.call_soon_threadsafe(task.cancel)
