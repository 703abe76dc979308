"""Errors of the DSL layer: a canvas that cannot be loaded, with one issue per problem.

    TaskcanvasError
    └── DslError        .issues: list[DslIssue] (code, component id, field, line, message)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from taskcanvas.errors import TaskcanvasError

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class DslIssue:
    """One problem found in a canvas, precise enough to find and fix it."""

    code: str
    message: str
    component_id: str | None = None
    field: str | None = None
    line: int | None = None
    severity: Severity = "error"

    def __str__(self) -> str:
        where = []
        if self.component_id is not None:
            where.append(f"component {self.component_id!r}")
        if self.field:
            where.append(f"field {self.field!r}")
        if self.line is not None:
            where.append(f"line {self.line}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class DslError(TaskcanvasError):
    """A canvas that cannot be used; ``issues`` lists every problem found."""

    def __init__(self, issues: list[DslIssue], source: str | None = None) -> None:
        self.issues = issues
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        head = f"invalid canvas {self.source}" if self.source else "invalid canvas"
        errors = [i for i in self.issues if i.severity == "error"]
        if len(errors) == 1:
            return f"{head}: {errors[0]}"
        lines = [f"{head}: {len(errors)} problems"]
        lines.extend(f"  - {issue}" for issue in errors)
        return "\n".join(lines)
