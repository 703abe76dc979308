"""Where the engine hands what each component changed (DESIGN.md, "Checkpoints").

A sink receives a :class:`~taskcanvas.runtime.state.Delta` after every component and, when a
run ends, its last delta (the run's own changes: history, waiting) with the whole state in one
call, so a store can keep the ending as one write. The store layer keeps deltas plus periodic
snapshots; the in-memory sink here is the reference implementation and what tests replay.
"""

from __future__ import annotations

from typing import Any, Protocol

from taskcanvas.runtime.state import Delta


class CheckpointSink(Protocol):
    async def put_delta(self, delta: Delta) -> None: ...

    async def put_end(self, delta: Delta, state: dict[str, Any], status: str) -> None:
        """The run ended with ``status``: its changes since the last delta, and its whole state."""
        ...


class MemoryCheckpointSink:
    """Keeps every delta and the last snapshot in memory."""

    def __init__(self) -> None:
        self.deltas: list[dict[str, Any]] = []
        self.snapshot: dict[str, Any] | None = None
        self.status: str | None = None

    async def put_delta(self, delta: Delta) -> None:
        self.deltas.append(delta.to_json())

    async def put_end(self, delta: Delta, state: dict[str, Any], status: str) -> None:
        self.deltas.append(delta.to_json())
        self.snapshot = state
        self.status = status
