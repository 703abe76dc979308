"""Where the engine hands what each component changed (DESIGN.md, "Checkpoints").

A sink receives a :class:`~taskcanvas.runtime.state.Delta` after every component and the
whole state when a run ends; the store layer keeps deltas plus periodic snapshots. The
in-memory sink here is the reference implementation and what tests replay.
"""

from __future__ import annotations

from typing import Any, Protocol

from taskcanvas.runtime.state import Delta


class CheckpointSink(Protocol):
    async def put_delta(self, delta: Delta) -> None: ...

    async def put_snapshot(self, state: dict[str, Any], status: str) -> None: ...


class MemoryCheckpointSink:
    """Keeps every delta and the last snapshot in memory."""

    def __init__(self) -> None:
        self.deltas: list[dict[str, Any]] = []
        self.snapshot: dict[str, Any] | None = None
        self.status: str | None = None

    async def put_delta(self, delta: Delta) -> None:
        self.deltas.append(delta.to_json())

    async def put_snapshot(self, state: dict[str, Any], status: str) -> None:
        self.snapshot = state
        self.status = status
