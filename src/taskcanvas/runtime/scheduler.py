"""Pure decisions of ragflow's execution model: no I/O, no events, tested on plain data.

- which components follow a finished one (:func:`successors`, spec §3.3 step 4);
- whether a component that reads text must wait for an upstream (:func:`must_wait`);
- whether a form field has its answer (:func:`field_satisfied`, spec §3.9).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from taskcanvas.runtime.canvas import Canvas

LOOP_TYPES = frozenset({"Iteration", "Loop"})
ITEM_TYPES = frozenset({"IterationItem", "LoopItem"})
FORM_TYPES = frozenset({"Begin", "UserFillUp"})


def after_loop(canvas: Canvas, loop_id: str) -> list[str]:
    """Where the run goes when the Loop/Iteration ``loop_id`` is done.

    Its downstream; or, for a loop with no downstream nested in another loop, back to the
    outer loop's start (ragflow stops the whole run there, which no author means).
    """
    loop = canvas.components[loop_id]
    if loop.spec.downstream:
        return list(loop.spec.downstream)
    outer = loop.spec.parent_id
    start = canvas.start_of(outer) if outer else None
    return [start] if start else []


def successors(canvas: Canvas, cid: str, *, loop_ended: bool, next_ids: Sequence[str] | None) -> list[str]:
    """The ids appended to the path after ``cid`` finished (without exception routing).

    ``loop_ended``: for an IterationItem/LoopItem, whether its loop is over.
    ``next_ids``: for a Switch/Categorize, the branch it chose (its ``_next`` output).
    """
    cpn = canvas.components[cid]
    ctype = cpn.component_name
    spec = cpn.spec
    if ctype in ITEM_TYPES and loop_ended and spec.parent_id:
        return after_loop(canvas, spec.parent_id)
    if ctype in ("Categorize", "Switch"):
        return list(next_ids or [])
    if ctype in LOOP_TYPES:
        start = canvas.start_of(cid)
        return [start] if start else []
    if ctype == "ExitLoop" and spec.parent_id and canvas.component_type(spec.parent_id) == "Loop":
        return after_loop(canvas, spec.parent_id)
    if not spec.downstream and spec.parent_id:
        start = canvas.start_of(spec.parent_id)
        return [start] if start else []
    return list(spec.downstream)


def must_wait(canvas: Canvas, cid: str, done: set[str], frontier: Sequence[str]) -> bool:
    """Whether ``cid`` must step aside until a component its text refers to has run.

    ragflow defers a text-reading component while any referenced component is not yet on
    the path before it, and re-runs it when that upstream extends the path. A reference to a
    component that can no longer run this turn (a branch not taken) would drop the component
    silently; here it runs with what is there.
    """
    pending = [r for r in canvas.components[cid].upstream_refs if r not in done and r in canvas.components]
    if not pending:
        return False
    reach: set[str] = set()
    for other in frontier:
        if other != cid:
            reach.add(other)
            reach.update(canvas.reachable(other))
    return any(r in reach for r in pending)


def field_satisfied(field: Any) -> bool:
    """Whether a form field has its answer (ragflow's ``_is_input_field_satisfied``)."""
    if not isinstance(field, Mapping):
        return field is not None
    value = field.get("value")
    if "file" in str(field.get("type", "")).lower():
        if field.get("optional") and value is None:
            return True
        return value not in (None, [], "")
    return value is not None
