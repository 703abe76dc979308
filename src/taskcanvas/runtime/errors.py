"""Errors of a run, and the outcomes that are not errors.

    TaskcanvasError
    └── RunError                    a run could not go on; ``component_id`` says where
        ├── VariableNotFound        a reference names a component or global that does not exist
        ├── ComponentFailed         a component ended with an error nobody handled
        ├── ComponentTimedOut       a component ran past its time limit
        └── StateError              a saved session that cannot be used with this canvas

Waiting for input and being cancelled are outcomes of a run (:class:`RunStatus`), not errors.
"""

from __future__ import annotations

from enum import StrEnum

from taskcanvas.errors import TaskcanvasError


class RunStatus(StrEnum):
    """How a run ended."""

    FINISHED = "finished"
    WAITING = "waiting"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RunError(TaskcanvasError):
    """A run could not go on."""

    def __init__(self, message: str, component_id: str | None = None) -> None:
        self.component_id = component_id
        super().__init__(message)


class VariableNotFound(RunError):
    """A reference to a component or global that the canvas does not have."""

    def __init__(self, ref: str) -> None:
        self.ref = ref
        super().__init__(f"Can't find variable: '{ref}'")


class ComponentFailed(RunError):
    """A component ended with an error and no exception handling took it."""

    def __init__(self, component_id: str, error: str) -> None:
        self.error = error
        super().__init__(f"{component_id}: {error}", component_id)


class ComponentTimedOut(RunError):
    """A component ran past its time limit."""

    def __init__(self, component_id: str, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"{component_id} timed out after {seconds:g} seconds", component_id)


class StateError(RunError):
    """A saved session that cannot be used with this canvas."""
