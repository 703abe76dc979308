"""Live fan-out of run events inside one process.

A run's events reach the store in batches, each with the checkpoint of the component that
produced them, so for a moment an event may exist only in memory. A :class:`RunChannel`
keeps those not yet stored; a subscriber joining late reads the store first, then this
buffer, then what comes live — the three together give every event once, in order.

Nothing here blocks a run: a subscriber whose queue is full is dropped (it reconnects with
``Last-Event-ID`` and reads what it missed from the store).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

_QUEUE_SIZE = 10_000


@dataclass(frozen=True)
class LiveEvent:
    seq: int
    event: dict[str, Any]


@dataclass
class Subscription:
    """What a subscriber saw at the moment it joined, and where later events arrive."""

    backlog: list[LiveEvent]
    """Events published but not yet stored, in order."""
    stored_upto: int
    """Every event up to this sequence number is in the store."""
    queue: asyncio.Queue[LiveEvent | None]
    """Events after the backlog; ``None`` when the run has ended (or this subscriber fell behind)."""
    closed: bool = False
    """The run had already ended when the subscriber joined."""


@dataclass
class RunChannel:
    run_id: uuid.UUID
    stored_upto: int
    pending: list[LiveEvent] = field(default_factory=list)
    subscribers: set[asyncio.Queue[LiveEvent | None]] = field(default_factory=set)


class EventHub:
    """Channels of the runs executing in this process, and a signal per session for new runs."""

    def __init__(self) -> None:
        self._channels: dict[uuid.UUID, RunChannel] = {}
        self._session_waiters: dict[uuid.UUID, list[asyncio.Future[None]]] = defaultdict(list)

    def open(self, run_id: uuid.UUID, session_id: uuid.UUID, stored_upto: int) -> RunChannel:
        channel = self._channels[run_id] = RunChannel(run_id, stored_upto)
        self.session_changed(session_id)
        return channel

    def publish(self, run_id: uuid.UUID, seq: int, event: dict[str, Any]) -> None:
        channel = self._channels[run_id]
        live = LiveEvent(seq, event)
        channel.pending.append(live)
        for queue in list(channel.subscribers):
            try:
                queue.put_nowait(live)
            except asyncio.QueueFull:
                channel.subscribers.discard(queue)
                _end(queue)

    def stored(self, run_id: uuid.UUID, upto: int) -> None:
        """Events up to ``upto`` are in the store now: the buffer lets them go."""
        channel = self._channels.get(run_id)
        if channel is None:
            return
        channel.stored_upto = max(channel.stored_upto, upto)
        channel.pending = [e for e in channel.pending if e.seq > channel.stored_upto]

    def close(self, run_id: uuid.UUID, session_id: uuid.UUID) -> None:
        channel = self._channels.pop(run_id, None)
        if channel is not None:
            for queue in channel.subscribers:
                _end(queue)
        self.session_changed(session_id)

    def is_live(self, run_id: uuid.UUID) -> bool:
        return run_id in self._channels

    def subscribe(self, run_id: uuid.UUID) -> Subscription:
        queue: asyncio.Queue[LiveEvent | None] = asyncio.Queue(_QUEUE_SIZE)
        channel = self._channels.get(run_id)
        if channel is None:
            return Subscription([], 0, queue, closed=True)
        channel.subscribers.add(queue)
        return Subscription(list(channel.pending), channel.stored_upto, queue)

    def unsubscribe(self, run_id: uuid.UUID, subscription: Subscription) -> None:
        channel = self._channels.get(run_id)
        if channel is not None:
            channel.subscribers.discard(subscription.queue)

    def session_changed(self, session_id: uuid.UUID) -> None:
        """A run of the session started or ended: wake whoever waits on it."""
        for waiter in self._session_waiters.pop(session_id, []):
            if not waiter.done():
                waiter.set_result(None)

    def listen(self, session_id: uuid.UUID) -> asyncio.Future[None]:
        """A future set when a run of the session next starts or ends: listening starts now, so a
        reader that listens before it looks misses nothing. :meth:`forget` it when done."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._session_waiters[session_id].append(waiter)
        return waiter

    async def wait(self, waiter: asyncio.Future[None], timeout: float) -> None:
        """Until ``waiter`` (from :meth:`listen`) is set, or ``timeout`` seconds pass."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(waiter), timeout)

    def forget(self, session_id: uuid.UUID, waiter: asyncio.Future[None]) -> None:
        waiters = self._session_waiters.get(session_id)
        if waiters and waiter in waiters:
            waiters.remove(waiter)
            if not waiters:
                del self._session_waiters[session_id]


def _end(queue: asyncio.Queue[LiveEvent | None]) -> None:
    try:
        queue.put_nowait(None)
    except asyncio.QueueFull:
        # A full queue's reader will find the channel gone once it drains; make room for the end.
        queue.get_nowait()
        queue.put_nowait(None)
