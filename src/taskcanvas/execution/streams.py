"""Reading a run's events from any point: the store first, then what the hub holds, then live.

:func:`follow` is what every stream face uses (SSE with ``Last-Event-ID``, ragflow's
completions, ``taskcanvas task logs --follow``): it yields each event of the run once, in
order, from after ``after``, and ends when the run stops executing. A client that goes away
only stops reading; the run goes on.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from taskcanvas.execution.hub import EventHub
from taskcanvas.store import Database
from taskcanvas.store.repositories import EventRepository, RunRepository

_PAGE = 500
_ACTIVE = frozenset({"queued", "running"})
_RECHECK = 1.0
"""Seconds between looks at a run that is queued but not executing here yet."""


async def follow(database: Database, hub: EventHub, run_id: uuid.UUID, session_id: uuid.UUID, *,
                 after: int = 0) -> AsyncIterator[tuple[int, dict[str, Any]]]:
    """``(seq, event)`` of the run after ``after``, until it stops executing."""
    last = after
    while True:
        subscription = hub.subscribe(run_id)
        try:
            if subscription.closed:
                # Listen before looking, and look at the status before the events: a run may start
                # and end while this reads (a fast one, writing alone, without yielding), and
                # what ended stored its events first.
                changed = hub.listen(session_id)
                try:
                    active = await _still_active(database, run_id)
                    async for seq, event in stored(database, run_id, last):
                        last = seq
                        yield seq, event
                    if not active:
                        return
                    # Queued, not started yet (or about to be picked up): wait for it to begin.
                    await hub.wait(changed, _RECHECK)
                finally:
                    hub.forget(session_id, changed)
                continue
            async for seq, event in stored(database, run_id, last, upto=subscription.stored_upto):
                last = seq
                yield seq, event
            for held in subscription.backlog:
                if held.seq > last:
                    last = held.seq
                    yield held.seq, held.event
            while (live := await subscription.queue.get()) is not None:
                if live.seq > last:
                    last = live.seq
                    yield live.seq, live.event
        finally:
            hub.unsubscribe(run_id, subscription)
        # The run ended (or this reader fell behind): the store has the rest.
        async for seq, event in stored(database, run_id, last):
            last = seq
            yield seq, event
        if not hub.is_live(run_id) and not await _still_active(database, run_id):
            return


async def stored(database: Database, run_id: uuid.UUID, after: int = 0,
                 upto: int | None = None) -> AsyncIterator[tuple[int, dict[str, Any]]]:
    """``(seq, event)`` of the run's stored events after ``after`` (up to ``upto``), page by page."""
    while upto is None or after < upto:
        async with database.session() as s:
            rows = await EventRepository(s).after(run_id, after, limit=_PAGE)
        for row in rows:
            if upto is not None and row.seq > upto:
                return
            after = row.seq
            yield row.seq, row.payload
        if len(rows) < _PAGE:
            return


async def _still_active(database: Database, run_id: uuid.UUID) -> bool:
    async with database.session() as s:
        run = await RunRepository(s).get(run_id)
    return run is not None and run.status in _ACTIVE
