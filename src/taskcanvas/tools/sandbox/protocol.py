"""What a code sandbox is to CodeExec: run a script's ``main`` and say what happened.

A :class:`Sandbox` runs ``code`` in ``language`` (``python`` or ``nodejs``; ``python3`` and
``javascript`` are accepted too) with ``arguments`` passed to the script's ``main`` and returns
an :class:`ExecutionResult`: what the script wrote, how it exited, the files it left in
``artifacts/`` and the value ``main`` returned.

The returned value travels the way ragflow's sandbox executor carries it (spec §5.3,
``agent/sandbox/result_protocol.py``): the script is wrapped so that ``main``'s return value is
printed as one line ``__RAGFLOW_RESULT__:<base64 of {"present": true, "value": ..., "type":
"json"}>``, and the sandbox takes that line out of stdout again. :func:`extract_result` is the
parser for a complete stdout.

A sandbox that cannot run the code at all (not configured, unreachable, a broken interpreter)
raises :class:`SandboxError`; a script that fails is a result with a non-zero ``exit_code``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from taskcanvas.errors import TaskcanvasError

__all__ = [
    "ARTIFACT_TYPES",
    "RESULT_MARKER",
    "Artifact",
    "ExecutionResult",
    "Sandbox",
    "SandboxError",
    "StructuredResult",
    "decode_result",
    "extract_result",
    "normalize_language",
]

RESULT_MARKER = "__RAGFLOW_RESULT__:"

ARTIFACT_TYPES: Mapping[str, str] = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".svg": "image/svg+xml",
    ".pdf": "application/pdf",
    ".csv": "text/csv",
    ".json": "application/json",
    ".html": "text/html",
}
"""The files collected from ``artifacts/`` (ragflow's ``ALLOWED_ARTIFACT_EXTENSIONS``), by extension."""

_LANGUAGES = {"python": "python", "python3": "python", "javascript": "nodejs", "nodejs": "nodejs"}


class SandboxError(TaskcanvasError):
    """The sandbox could not run the code (as opposed to code that ran and failed)."""


@dataclass(frozen=True)
class Artifact:
    """A file the script left in ``artifacts/``."""

    name: str
    content: bytes
    mime_type: str
    size: int


@dataclass(frozen=True)
class StructuredResult:
    """``main``'s return value, when the script got as far as returning one."""

    present: bool = False
    value: Any = None
    type: str = "json"


@dataclass
class ExecutionResult:
    """What one run of a script produced."""

    stdout: str
    """Standard output without the result line (and cut at the sandbox's output cap)."""
    stderr: str
    exit_code: int
    """0 on success; a negative number is the signal that ended the process."""
    artifacts: list[Artifact] = field(default_factory=list)
    result: StructuredResult = field(default_factory=StructuredResult)
    metadata: dict[str, Any] = field(default_factory=dict)
    """How it ran: provider, limits, whether the network was isolated, what limit was hit."""


@runtime_checkable
class Sandbox(Protocol):
    """Runs scripts; ``ctx.services["sandbox"]`` holds one."""

    async def run(self, code: str, language: str, arguments: Mapping[str, Any] | None = None,
                  timeout: float | None = None) -> ExecutionResult:
        """Run ``code``'s ``main(**arguments)`` (JavaScript: ``main(arguments)``).

        ``timeout`` is the caller's limit in seconds; the sandbox applies the smaller of it
        and its own.
        """
        ...

    async def aclose(self) -> None:
        """Release what the sandbox holds (HTTP connections)."""
        ...


def normalize_language(language: str) -> str:
    """``python`` or ``nodejs`` (ragflow's names); raises :class:`SandboxError` otherwise."""
    found = _LANGUAGES.get(str(language or "").strip().lower())
    if found is None:
        raise SandboxError(f"unsupported language {language!r}: use python or javascript")
    return found


def decode_result(payload: bytes | str) -> StructuredResult | None:
    """The result carried by one marker payload (the base64 text after the marker), or ``None``."""
    try:
        text = base64.b64decode(payload.strip(), validate=True).decode("utf-8")
        data = json.loads(text)
    except (binascii.Error, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    return StructuredResult(present=data.get("present") is True, value=data.get("value"),
                            type=str(data.get("type") or "json"))


def extract_result(stdout: str) -> tuple[str, StructuredResult]:
    """``stdout`` without its result lines, and the (last) result they carried.

    A marker that does not start its line (the script printed text without a newline before
    returning) is found too; a marker line that does not decode stays in the output.
    """
    if RESULT_MARKER not in stdout:
        return stdout, StructuredResult()
    kept: list[str] = []
    result = StructuredResult()
    for line in stdout.splitlines(keepends=True):
        at = line.find(RESULT_MARKER)
        if at >= 0:
            found = decode_result(line[at + len(RESULT_MARKER):])
            if found is not None:
                result = found
                if at:
                    kept.append(line[:at] + "\n")
                continue
        kept.append(line)
    return "".join(kept), result
