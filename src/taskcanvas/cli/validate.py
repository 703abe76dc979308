"""``taskcanvas validate``: every problem of a canvas, without running it.

It builds the canvas exactly as ``run`` does (graph checks, component types, parameters,
references), so a canvas that validates cleanly is one ``run`` accepts.
"""

from __future__ import annotations

import sys

from taskcanvas.cli.render import describe_error, issue_line, print_error
from taskcanvas.components import builtin_registry
from taskcanvas.dsl.errors import DslError, DslIssue
from taskcanvas.dsl.load import load_canvas_file
from taskcanvas.runtime.canvas import Canvas

EXIT_OK = 0
EXIT_INVALID = 2


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def validate_command(canvas_file: str) -> int:
    """Print each issue on its own line and a summary; 0 without errors, 2 with any."""
    issues: list[DslIssue]
    components = 0
    try:
        canvas = Canvas.build(load_canvas_file(canvas_file), builtin_registry(), source=canvas_file)
    except DslError as e:
        issues = list(e.issues)
    except Exception as e:  # anything else the loader raises: one message, never a traceback
        print_error(describe_error(e, canvas_file))
        return EXIT_INVALID
    else:
        issues = list(canvas.warnings)
        components = len(canvas.components)
    out = sys.stdout
    for issue in issues:
        out.write(issue_line(issue) + "\n")
    errors = sum(1 for i in issues if i.severity == "error")
    warnings = len(issues) - errors
    if errors:
        out.write(f"{canvas_file}: invalid, {_count(errors, 'error')}, {_count(warnings, 'warning')}\n")
        return EXIT_INVALID
    out.write(f"{canvas_file}: valid, {_count(components, 'component')}, {_count(warnings, 'warning')}\n")
    return EXIT_OK
