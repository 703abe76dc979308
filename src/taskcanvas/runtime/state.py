"""The mutable state of a session: the only thing a run changes.

A :class:`RunState` holds component outputs and inputs, ``sys.*``/``env.*`` globals, the
path, the history between turns and loop counters. It is plain JSON (:meth:`to_json`,
:meth:`from_json`), so a run paused for input, or between turns, resumes in another process.
Every write is tracked so the engine can hand a checkpoint sink the :class:`Delta` of each
component instead of the whole state.
"""

from __future__ import annotations

import copy
import datetime
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from taskcanvas.dsl.models import CanvasDsl
from taskcanvas.runtime.errors import StateError, VariableNotFound
from taskcanvas.runtime.references import add_to_store
from taskcanvas.runtime.refs import strip_ref
from taskcanvas.runtime.stream import TextStream

STATE_VERSION = 1


class _NoValue:
    """A declared output that has never had a value: reads as ``""`` (ragflow's rule)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "None"

    def __bool__(self) -> bool:
        return False


NO_VALUE: Any = _NoValue()
_SESSION_FIELDS = ("history", "retrieval", "memory", "waiting", "turn")


def now_text() -> str:
    return datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def default_globals() -> dict[str, Any]:
    return {
        "sys.query": "",
        "sys.user_id": "",
        "sys.conversation_turns": 0,
        "sys.files": [],
        "sys.history": [],
        "sys.date": now_text(),
    }


def jsonable(value: Any) -> Any:
    """``value`` with everything JSON cannot hold replaced (streams by their text)."""
    # Exact types first: every checkpoint converts what changed, and the abstract Mapping
    # check below costs several times a type comparison.
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if kind is dict:
        return {k if type(k) is str else str(k): jsonable(v) for k, v in value.items()}
    if kind is list:
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)):
        return value
    if value is NO_VALUE:
        return None
    if isinstance(value, TextStream):
        return value.text if value.done else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return str(value)


def walk_path(value: Any, path: str) -> Any:
    """Follow ``a.b.0`` into ``value`` the way ragflow does (JSON strings are decoded on the way)."""
    cur = value
    for key in path.split("."):
        if cur is None:
            return None
        if isinstance(cur, str):
            try:
                cur = json.loads(cur)
            except ValueError:
                return None
        if isinstance(cur, dict):
            cur = cur.get(key)
        elif isinstance(cur, (list, tuple)):
            try:
                cur = cur[int(key)]
            except (ValueError, IndexError):
                return None
        else:
            cur = getattr(cur, key, None)
    return cur


def _zero(value: Any) -> Any:
    if isinstance(value, str):
        return ""
    if isinstance(value, (bool, int, float)):
        return 0
    if isinstance(value, list):
        return []
    if isinstance(value, dict):
        return {}
    return None


def _declared_value(variable: Any) -> Any:
    if not isinstance(variable, Mapping):
        return ""
    if variable.get("value") is not None:
        return copy.deepcopy(variable["value"])
    kind = str(variable.get("type", ""))
    if kind == "number":
        return 0
    if kind == "boolean":
        return False
    if kind == "object":
        return {}
    if kind.startswith("array"):
        return []
    return ""


@dataclass
class Delta:
    """What one component changed: enough to rebuild the state from the deltas in order."""

    component_id: str
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    globals: dict[str, Any] = field(default_factory=dict)
    path_from: int | None = None
    path_tail: list[str] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    session: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"component_id": self.component_id}
        for name in ("outputs", "inputs", "globals", "counters", "session"):
            value = getattr(self, name)
            if value:
                out[name] = value
        if self.path_from is not None:
            out["path_from"] = self.path_from
            out["path_tail"] = self.path_tail
        return out


class RunState:
    """Outputs, inputs, globals, path and history of one session."""

    def __init__(
        self,
        *,
        components: Mapping[str, Mapping[str, Any]],
        globals: dict[str, Any] | None = None,
        variables: dict[str, Any] | None = None,
        inputs: Mapping[str, Mapping[str, Any]] | None = None,
        path: list[str] | None = None,
        history: list[Any] | None = None,
        retrieval: list[Any] | None = None,
        memory: list[Any] | None = None,
        counters: dict[str, int] | None = None,
        waiting: list[str] | None = None,
        turn: dict[str, Any] | None = None,
    ) -> None:
        self.outputs: dict[str, dict[str, Any]] = {cid: dict(v) for cid, v in components.items()}
        self.inputs: dict[str, dict[str, Any]] = {cid: dict((inputs or {}).get(cid, {})) for cid in components}
        self.globals: dict[str, Any] = globals if globals is not None else default_globals()
        self.variables: dict[str, Any] = variables or {}
        self.path: list[str] = path or []
        self.history: list[Any] = history or []
        self.retrieval: list[Any] = retrieval or []
        self.memory: list[Any] = memory or []
        self.counters: dict[str, int] = counters or {}
        self.waiting: list[str] | None = waiting
        self.turn: dict[str, Any] | None = turn
        """The turn in progress (``None`` between turns): how far it got, so a run cut short
        by a crash can go on from its last finished component (:meth:`Engine.recover`)."""
        self._dirty_outputs: set[str] = set()
        self._dirty_inputs: set[str] = set()
        self._dirty_globals: set[str] = set()
        self._dirty_counters: set[str] = set()
        self._dirty_session: set[str] = set()
        self._path_mark: int | None = None

    # ----------------------------------------------------------------- building
    @classmethod
    def from_dsl(cls, dsl: CanvasDsl, declared: Mapping[str, Mapping[str, Any]] | None = None) -> RunState:
        """The state a canvas was stored with (output values kept in its component params).

        ``declared``: each component's output declarations when they differ from the DSL's
        (a type's defaults); outputs are kept in declaration order, as ragflow reports them.
        """
        outputs: dict[str, dict[str, Any]] = {}
        inputs: dict[str, dict[str, Any]] = {}
        for cid, spec in dsl.components.items():
            decl = declared[cid] if declared is not None and cid in declared else spec.params.get("outputs")
            outputs[cid] = {
                k: copy.deepcopy(v["value"]) if isinstance(v, Mapping) and "value" in v else NO_VALUE
                for k, v in (decl.items() if isinstance(decl, Mapping) else ())
            }
            given = spec.params.get("inputs")
            inputs[cid] = {
                k: copy.deepcopy(v["value"])
                for k, v in (given.items() if isinstance(given, Mapping) else ())
                if isinstance(v, Mapping) and "value" in v
            }
        glob = copy.deepcopy(dict(dsl.globals)) if dsl.globals else default_globals()
        glob.setdefault("sys.history", [])
        glob.setdefault("sys.date", now_text())
        return cls(
            components=outputs,
            inputs=inputs,
            globals=glob,
            variables=copy.deepcopy(dict(dsl.variables)),
            path=list(dsl.path),
            history=copy.deepcopy(list(dsl.history)),
            retrieval=copy.deepcopy(list(dsl.retrieval)),
            memory=copy.deepcopy(list(dsl.memory)),
        )

    def to_json(self, *, convert: bool = True) -> dict[str, Any]:
        """The state as JSON values. ``convert=False`` is for a state that holds nothing else (one
        rebuilt from checkpoints, which only replaces what it holds): the containers are copied,
        the values in them shared."""
        if not convert:
            return {
                "version": STATE_VERSION,
                "globals": dict(self.globals),
                "variables": dict(self.variables),
                "outputs": dict(self.outputs),
                "inputs": dict(self.inputs),
                "path": list(self.path),
                "history": list(self.history),
                "retrieval": list(self.retrieval),
                "memory": list(self.memory),
                "counters": dict(self.counters),
                "waiting": self.waiting,
                "turn": self.turn,
            }
        return {
            "version": STATE_VERSION,
            "globals": jsonable(self.globals),
            "variables": jsonable(self.variables),
            "outputs": jsonable(self.outputs),
            "inputs": jsonable(self.inputs),
            "path": list(self.path),
            "history": jsonable(self.history),
            "retrieval": jsonable(self.retrieval),
            "memory": jsonable(self.memory),
            "counters": dict(self.counters),
            "waiting": self.waiting,
            "turn": self.turn,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], component_ids: Any) -> RunState:
        """Rebuild a saved state for a canvas whose components are ``component_ids``."""
        if not isinstance(data, Mapping) or data.get("version") != STATE_VERSION:
            raise StateError("the session state is not a taskcanvas state (or from an incompatible version)")
        for key, kind in (("globals", dict), ("variables", dict), ("outputs", dict), ("inputs", dict),
                          ("path", list), ("history", list), ("retrieval", list), ("memory", list),
                          ("counters", dict)):
            value = data.get(key)
            if value is not None and not isinstance(value, kind):
                raise StateError(f"the session state is damaged: '{key}' must be a JSON "
                                 f"{'object' if kind is dict else 'array'}")
        outputs = data.get("outputs") or {}
        if not all(isinstance(v, dict) for v in outputs.values()):
            raise StateError("the session state is damaged: each component's outputs must be a JSON object")
        known = set(component_ids)
        # An Agent's tools keep their outputs under "<agent id>--><tool name>".
        unknown = sorted(cid for cid in outputs if cid.split("-->")[0] not in known)
        if unknown:
            raise StateError(f"the session state belongs to another canvas: it has components {unknown} "
                             "that this canvas does not")
        comps = {cid: dict(outputs.get(cid) or {}) for cid in component_ids}
        comps.update({cid: dict(v) for cid, v in outputs.items() if cid not in comps})
        return cls(
            components=comps,
            inputs=data.get("inputs") or {},
            globals=dict(data.get("globals") or default_globals()),
            variables=dict(data.get("variables") or {}),
            path=list(data.get("path") or []),
            history=list(data.get("history") or []),
            retrieval=list(data.get("retrieval") or []),
            memory=list(data.get("memory") or []),
            counters=dict(data.get("counters") or {}),
            waiting=data.get("waiting"),
            turn=data.get("turn") if isinstance(data.get("turn"), dict) else None,
        )

    def reset(self, *, keep_memory: bool = False) -> None:
        """ragflow's ``Canvas.reset``: a session back to its start (spec §3.15).

        Outputs and inputs become ``None``; path, waiting and counters are cleared; unless
        ``keep_memory``, so are history, retrieval and memory. ``sys.*`` globals are zeroed by
        type (str "", numbers and bools 0, list [], dict {}); ``env.*`` globals take their
        declared value, or the zero of their declared type.
        """
        for cid in self.outputs:
            self.reset_component(cid)
        self.path_replace([])
        self.waiting = None
        self.turn = None
        self.touch("turn")
        self.counters.clear()
        self._dirty_counters.clear()
        self.touch("waiting")
        if not keep_memory:
            self.history, self.retrieval, self.memory = [], [], []
            for name in ("history", "retrieval", "memory"):
                self.touch(name)
        for key, value in list(self.globals.items()):
            if key.startswith("sys."):
                self.set_global(key, _zero(value))
            elif key.startswith("env."):
                self.set_global(key, _declared_value(self.variables.get(key[4:])))

    # ----------------------------------------------------------------- outputs
    def has_component(self, cid: str) -> bool:
        return cid in self.outputs

    def output(self, cid: str, name: str) -> Any:
        """A component's output; ``""`` when it has none by that name (ragflow's rule)."""
        value = self.outputs[cid].get(name, "")
        return "" if value is NO_VALUE else value

    def output_values(self, cid: str) -> dict[str, Any]:
        """All outputs of a component, as ragflow's ``output()`` lists them."""
        return {k: None if v is NO_VALUE else v for k, v in self.outputs[cid].items()}

    def set_output(self, cid: str, name: str, value: Any) -> None:
        outs = self.outputs.get(cid)
        if outs is None:
            # An Agent's tools write outputs under "<agent id>--><tool name>".
            outs = self.outputs[cid] = {}
            self.inputs.setdefault(cid, {})
        outs[name] = value
        self._dirty_outputs.add(cid)

    def error(self, cid: str) -> str | None:
        err = self.outputs[cid].get("_ERROR")
        return str(err) if err else None

    def set_input(self, cid: str, name: str, value: Any) -> None:
        self.inputs.setdefault(cid, {})[name] = value
        self._dirty_inputs.add(cid)

    def reset_component(self, cid: str, *, only_output: bool = False) -> None:
        """Every output (and input) value back to ``None``, keeping the names."""
        outs = self.outputs[cid]
        for k in outs:
            outs[k] = None
        self._dirty_outputs.add(cid)
        if not only_output:
            ins = self.inputs[cid]
            for k in ins:
                ins[k] = None
            self._dirty_inputs.add(cid)

    def add_reference(self, chunks: Sequence[Mapping[str, Any]], doc_aggs: Sequence[Mapping[str, Any]]) -> None:
        """Record retrieved chunks in this run's reference store (cited in ``message_end``)."""
        if not self.retrieval or not isinstance(self.retrieval[-1], dict):
            self.retrieval.append({"chunks": {}, "doc_aggs": {}})
        add_to_store(self.retrieval[-1], chunks, doc_aggs)
        self.touch("retrieval")

    def reference(self) -> dict[str, Any]:
        """This run's reference store."""
        last = self.retrieval[-1] if self.retrieval else None
        return last if isinstance(last, dict) else {"chunks": {}, "doc_aggs": {}}

    # ----------------------------------------------------------------- globals
    def set_global(self, name: str, value: Any) -> None:
        self.globals[name] = value
        self._dirty_globals.add(name)

    def touch_global(self, name: str) -> None:
        """Mark a global changed in place (a list appended to)."""
        self._dirty_globals.add(name)

    def set_counter(self, cid: str, value: int) -> None:
        self.counters[cid] = value
        self._dirty_counters.add(cid)

    def touch(self, name: str) -> None:
        """Mark a session field (history, retrieval, memory, waiting) as changed."""
        self._dirty_session.add(name)

    # ----------------------------------------------------------------- references
    def get_variable_value(self, exp: str) -> Any:
        """Resolve ``cpn@var.path``, ``sys.x`` or ``env.x`` exactly as ragflow does."""
        exp = strip_ref(exp)
        cpn_id, sep, var = exp.partition("@")
        if not sep:
            try:
                return self.globals[exp]
            except KeyError:
                raise VariableNotFound(exp) from None
        outs = self.outputs.get(cpn_id)
        if outs is None:
            raise VariableNotFound(exp)
        root, dot, rest = var.partition(".")
        value = outs.get(root, "")
        if value is NO_VALUE:
            value = ""
        return walk_path(value, rest) if dot else value

    def is_ref(self, exp: str) -> bool:
        exp = exp.strip("{").strip("}")
        if "@" not in exp:
            return exp in self.globals
        parts = exp.split("@")
        return len(parts) == 2 and parts[0] in self.outputs

    def set_variable_value(self, exp: str, value: Any) -> None:
        exp = strip_ref(exp)
        cpn_id, sep, var = exp.partition("@")
        if not sep:
            self.set_global(exp, value)
            return
        if cpn_id not in self.outputs:
            raise VariableNotFound(exp)
        root, dot, rest = var.partition(".")
        if not dot:
            self.set_output(cpn_id, root, value)
            return
        current = self.output(cpn_id, root)
        obj: dict[str, Any] = current if isinstance(current, dict) and current else {}
        cur = obj
        keys = rest.split(".")
        for key in keys[:-1]:
            nxt = cur.get(key)
            if not isinstance(nxt, dict):
                nxt = cur[key] = {}
            cur = nxt
        cur[keys[-1]] = value
        self.set_output(cpn_id, root, obj)

    def get_history(self, window: int) -> list[dict[str, Any]]:
        """The last ``window`` exchanges as chat messages (ragflow's ``get_history``)."""
        if window <= 0:
            return []
        out = []
        for role, payload in self.history[window * -2:]:
            content = payload.get("content", "") if isinstance(payload, dict) else str(payload)
            out.append({"role": role, "content": content})
        return out

    # ----------------------------------------------------------------- deltas
    def take_delta(self, component_id: str) -> Delta:
        """What changed since the last call, as a :class:`Delta`; clears the tracking."""
        delta = Delta(component_id)
        for cid in self._dirty_outputs:
            delta.outputs[cid] = jsonable(self.outputs[cid])
        for cid in self._dirty_inputs:
            delta.inputs[cid] = jsonable(self.inputs[cid])
        for name in self._dirty_globals:
            delta.globals[name] = jsonable(self.globals[name])
        for cid in self._dirty_counters:
            delta.counters[cid] = self.counters[cid]
        for name in self._dirty_session:
            delta.session[name] = jsonable(getattr(self, name))
        if self._path_mark is not None:
            start = min(self._path_mark, len(self.path))
            delta.path_from = start
            delta.path_tail = self.path[start:]
        self._dirty_outputs.clear()
        self._dirty_inputs.clear()
        self._dirty_globals.clear()
        self._dirty_counters.clear()
        self._dirty_session.clear()
        self._path_mark = None
        return delta

    # ----------------------------------------------------------------- path
    def _path_changed(self, index: int) -> None:
        self._path_mark = index if self._path_mark is None else min(self._path_mark, index)

    def path_append(self, cid: str) -> None:
        self._path_changed(len(self.path))
        self.path.append(cid)

    def path_pop(self, index: int) -> None:
        self._path_changed(index)
        del self.path[index]

    def path_replace(self, path: list[str]) -> None:
        self._path_changed(0)
        self.path = path

    def path_truncate(self, length: int) -> None:
        if length < len(self.path):
            self._path_changed(length)
            del self.path[length:]

    def apply_delta(self, delta: Mapping[str, Any]) -> None:
        """Replay a delta (as produced by :meth:`Delta.to_json`) onto this state."""
        for cid, outs in (delta.get("outputs") or {}).items():
            self.outputs[cid] = dict(outs)
        for cid, ins in (delta.get("inputs") or {}).items():
            self.inputs[cid] = dict(ins)
        self.globals.update(delta.get("globals") or {})
        self.counters.update(delta.get("counters") or {})
        for name, value in (delta.get("session") or {}).items():
            if name in _SESSION_FIELDS:
                setattr(self, name, value)
        if "path_from" in delta:
            self.path = self.path[: delta["path_from"]] + list(delta["path_tail"])
