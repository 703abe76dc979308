"""Run events with ragflow's names and payloads (spec §6.1).

Each event is the dict ragflow yields: ``{event, message_id, created_at, task_id, data}``.
taskcanvas adds fields, never renames or drops them: a failed run also ends with
``workflow_finished``, whose ``data`` carries ``status`` and ``error``.
"""

from __future__ import annotations

from typing import Any, Literal

Event = dict[str, Any]
EventName = Literal[
    "workflow_started", "node_started", "node_finished", "message", "message_end",
    "user_inputs", "workflow_finished",
]


def make_event(name: EventName, data: Any, *, message_id: str, created_at: int, task_id: str) -> Event:
    return {"event": name, "message_id": message_id, "created_at": created_at, "task_id": task_id, "data": data}
