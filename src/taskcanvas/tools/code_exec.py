"""CodeExec: run a Python or JavaScript ``main`` in a sandbox and keep what it returns (spec §5.3).

ragflow's ``agent/tools/code_exec.py`` with its result contract:

- **arguments**: each ``arguments[name]`` is a reference resolved in the run (a value the
  caller passes under that name wins, as in ragflow);
- **one business output**: among ``outputs``, leaving out the system keys (``content``,
  ``actual_type``, ``attachments``, ``_ERROR``, ...), exactly one output receives ``main``'s return
  value; a single declared output must not be a system name nor contain ``.``;
- **types**: the declared ``type`` (``string|number|boolean|object|null|any|array<T>``, any case,
  nested) is checked without coercion; a mismatch leaves the business output ``None`` and says
  ``CodeExec contract mismatch at <path>: expected type X, got Y`` in ``_ERROR``;
- ``actual_type``, ``raw_result`` and ``content`` (the value as canonical text) are always set;
- a script that only wrote to stderr failed: ``_ERROR`` is its stderr; otherwise stderr is a
  warning;
- files left in ``artifacts/`` are stored in the run's blob store (``ctx.services["artifacts"]``, an
  :class:`~taskcanvas.tools.sandbox.ArtifactStore`) and listed in ``_ARTIFACTS`` (name, url,
  mime_type, size), ``attachments`` (markdown) and ``_ATTACHMENT_CONTENT`` (their text, also
  appended to ``content``).

The sandbox is ``ctx.services["sandbox"]`` (:mod:`taskcanvas.tools.sandbox`). A script that fails
is an outcome (``_ERROR``); a sandbox that cannot run it at all raises, so the engine's retries
and exception handling apply.

Differences from ragflow, each where ragflow's result is plainly unintended: a script that exits
with an error code fails even when it wrote to stdout before (ragflow's executor drops that
stdout too, its local provider does not) and one that exits with an error code without a word
on stderr gets ``_ERROR`` "The script exited with code N" instead of an empty success.
"""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import os
from collections.abc import Callable, Mapping
from html.parser import HTMLParser
from typing import Any, ClassVar

from pydantic import field_validator

from taskcanvas.files import FileStoreError
from taskcanvas.runtime.component import RunContext
from taskcanvas.runtime.state import RunState, jsonable
from taskcanvas.runtime.stream import TextStream
from taskcanvas.tools.base import Tool, ToolMeta, ToolParams
from taskcanvas.tools.sandbox.artifacts import ArtifactStore, artifact_url
from taskcanvas.tools.sandbox.protocol import (
    Artifact,
    ExecutionResult,
    Sandbox,
    SandboxError,
    StructuredResult,
    normalize_language,
)

__all__ = [
    "SYSTEM_OUTPUT_KEYS",
    "CodeExec",
    "CodeExecParams",
    "ContractError",
    "build_code_exec_contract",
    "deserialize_stdout",
    "infer_actual_type",
    "normalize_output_value",
    "render_canonical_content",
    "select_business_output",
]

_log = logging.getLogger(__name__)

SYSTEM_OUTPUT_KEYS = frozenset({
    "content", "actual_type", "attachments", "_ERROR", "_ARTIFACTS", "_ATTACHMENT_CONTENT", "raw_result",
    "_created_time", "_elapsed_time",
})
_LANGS = ("python", "python3", "nodejs", "javascript")
_MAX_ATTACHMENT_TEXT = 100_000
_TIMING_KEYS = ("_created_time", "_elapsed_time")

_DESCRIPTION = """
This tool has a sandbox that can execute code written in 'Python'/'Javascript'. It receives a piece of code and return a Json string.

Here's a code example for Python(`main` function MUST be included):
def main() -> dict:
    \"\"\"
    Generate Fibonacci numbers within 100.
    \"\"\"
    def fibonacci_recursive(n):
        if n <= 1:
            return n
        else:
            return fibonacci_recursive(n-1) + fibonacci_recursive(n-2)
    return {
        "result": fibonacci_recursive(100),
    }

To generate charts or files (images, PDFs, CSVs, etc.), save them to the `artifacts/` directory (relative to the working directory). The sandbox will automatically collect these files and return them. Example:
def main() -> dict:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.DataFrame({"x": [1, 2, 3, 4], "y": [10, 20, 25, 30]})
    fig, ax = plt.subplots()
    ax.plot(df["x"], df["y"])
    ax.set_title("Sample Chart")
    fig.savefig("artifacts/chart.png", dpi=150, bbox_inches="tight")
    plt.close(fig)
    return {"summary": "Chart saved to artifacts/chart.png"}

Available Python packages: pandas, numpy, matplotlib, requests.
Supported artifact file types: .png, .jpg, .jpeg, .svg, .pdf, .csv, .json, .html

Collected artifacts are also parsed automatically and appended to the stable text output `content`. The content includes sections like `attachment1 (image): ...`, `attachment2 (pdf): ...`, so downstream nodes can consume a single text output without depending on unstable attachment-specific variables.

Here's a code example for Javascript(`main` function MUST be included and exported):
const axios = require('axios');
async function main(args) {
  try {
    const response = await axios.get('https://github.com/infiniflow/ragflow');
    console.log('Body:', response.data);
  } catch (error) {
    console.error('Error:', error.message);
  }
}
module.exports = { main };
            """  # noqa: E501  (ragflow's text, verbatim: it is what the model reads)


# --------------------------------------------------------------------------- the contract
class ContractError(ValueError):
    """The script's value does not fit the declared output."""


def _validate_business_output_name(name: str) -> None:
    if not name or not name.strip():
        raise ContractError("CodeExec business output name must not be empty")
    if name in SYSTEM_OUTPUT_KEYS:
        raise ContractError(f"CodeExec reserved output name is not allowed: {name}")
    if "." in name:
        raise ContractError(f"CodeExec business output name must not contain '.': {name}")


def select_business_output(outputs: Mapping[str, Any]) -> tuple[str, Any]:
    """The one output that receives ``main``'s value, and its declaration."""
    if len(outputs) == 1:
        only_name, only_meta = next(iter(outputs.items()))
        _validate_business_output_name(only_name)
        return only_name, only_meta
    business = [(name, meta) for name, meta in outputs.items() if name not in SYSTEM_OUTPUT_KEYS]
    if len(business) != 1:
        raise ContractError(f"CodeExec contract must contain exactly one business output, got {len(business)}")
    _validate_business_output_name(business[0][0])
    return business[0]


def normalize_output_value(value: Any) -> Any:
    """Tuples become lists, recursively (JSON's view of a value)."""
    if isinstance(value, (tuple, list)):
        return [normalize_output_value(item) for item in value]
    if isinstance(value, dict):
        return {key: normalize_output_value(item) for key, item in value.items()}
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def infer_actual_type(value: Any) -> str:
    """``String``, ``Number``, ``Boolean``, ``Object``, ``Null``, ``Array<T>`` (``Array<Any>`` when mixed or empty)."""
    value = normalize_output_value(value)
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "Boolean"
    if _is_number(value):
        return "Number"
    if isinstance(value, str):
        return "String"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        if not value:
            return "Array<Any>"
        inferred = {infer_actual_type(item) for item in value}
        return f"Array<{inferred.pop()}>" if len(inferred) == 1 else "Array<Any>"
    return "Any"


def render_canonical_content(value: Any) -> str:
    """The value as text: strings as they are, objects and arrays as sorted, indented JSON."""
    value = normalize_output_value(value)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True)
    return str(value)


def _validate_top_level_value_domain(value: Any) -> None:
    if not (value is None or isinstance(value, (bool, str, dict, list)) or _is_number(value)):
        raise ContractError(f"CodeExec unsupported top-level result type: {type(value).__name__}. Allowed top-level "
                            "values are String, Number, Boolean, Object, Array, or Null.")


_SIMPLE_TYPES = {"string": "String", "number": "Number", "boolean": "Boolean", "object": "Object", "null": "Null",
                 "any": "Any"}


def _normalize_expected_type(expected_type: str) -> str:
    etype = expected_type.strip()
    low = etype.lower()
    if low in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[low]
    if low.startswith("array<") and low.endswith(">"):
        inner = etype[etype.find("<") + 1:-1].strip()
        if not inner:
            raise ContractError(f"Unsupported expected type: {expected_type}")
        return f"Array<{_normalize_expected_type(inner)}>"
    return etype


def _validate_expected_type(expected_type: str, value: Any, path: str = "") -> None:
    etype = _normalize_expected_type(expected_type)
    if not etype or etype.lower() == "any":
        return
    value = normalize_output_value(value)
    if etype.startswith("Array<") and etype.endswith(">"):
        inner = etype[6:-1].strip()
        if not isinstance(value, list):
            raise ContractError(f"CodeExec contract mismatch at {path or 'value'}: expected type {etype}, "
                                f"got {infer_actual_type(value)}")
        for index, item in enumerate(value):
            _validate_expected_type(inner, item, f"{path}[{index}]" if path else f"[{index}]")
        return
    checks: dict[str, Callable[[Any], bool]] = {
        "String": lambda v: isinstance(v, str),
        "Number": _is_number,
        "Boolean": lambda v: isinstance(v, bool),
        "Object": lambda v: isinstance(v, dict),
        "Null": lambda v: v is None,
    }
    check = checks.get(etype)
    if check is None:
        raise ContractError(f"Unsupported expected type: {expected_type}")
    if not check(value):
        raise ContractError(f"CodeExec contract mismatch at {path or 'value'}: expected type {etype}, "
                            f"got {infer_actual_type(value)}")


def build_code_exec_contract(outputs: Mapping[str, Any], raw_result: Any) -> dict[str, Any]:
    """Check ``raw_result`` against the declared outputs; raises :class:`ContractError`."""
    business_name, business_meta = select_business_output(outputs)
    expected_type = str(business_meta.get("type") or "") if isinstance(business_meta, Mapping) else ""
    value = normalize_output_value(raw_result)
    _validate_top_level_value_domain(value)
    _validate_expected_type(expected_type, value)
    return {
        "business_output": business_name,
        "value": value,
        "actual_type": infer_actual_type(value),
        "content": render_canonical_content(value),
    }


def deserialize_stdout(stdout: str) -> Any:
    """ragflow's fallback when no result line came back: JSON, then a Python literal, then the text."""
    text = str(stdout).strip()
    if not text:
        return ""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except Exception:  # literal_eval raises about anything on arbitrary text
        return text


# --------------------------------------------------------------------------- the tool
class CodeExecParams(ToolParams):
    lang: str = "python"
    script: str = 'def main(arg1: str, arg2: str) -> dict: return {"result": arg1 + arg2}'
    arguments: dict[str, str | None] = {}
    """``{argument name: reference}`` (``"begin@file"``, ``"sys.query"``); empty for ``None``."""
    outputs: dict[str, Any] = {
        "result": {"value": "", "type": "object"},
        "attachments": {"value": [], "type": "Array<String>"},
    }

    @field_validator("lang", mode="before")
    @classmethod
    def _supported_lang(cls, v: Any) -> Any:
        if v not in _LANGS:
            raise ValueError(f"language {v!r} is not supported: use one of {', '.join(_LANGS)}")
        return v

    @field_validator("script", mode="before")
    @classmethod
    def _script_not_empty(cls, v: Any) -> Any:
        if not isinstance(v, str) or not v.strip():
            raise ValueError("the script must not be empty: it needs a main function")
        return v

    @field_validator("arguments", mode="before")
    @classmethod
    def _arguments_are_refs(cls, v: Any) -> Any:
        if v is None:
            return {}
        if not isinstance(v, Mapping):
            raise ValueError("arguments must be an object {argument name: reference}")
        for name, ref in v.items():
            if ref is not None and not isinstance(ref, str):
                raise ValueError(f"argument {name!r} must be a reference like 'begin@file', got {ref!r}")
        return v


class CodeExec(Tool):
    """Runs a script's ``main`` in the sandbox; its return value is the one business output."""

    component_name = "CodeExec"
    Params = CodeExecParams
    timeout = 600.0
    meta: ClassVar[ToolMeta] = {
        "name": "execute_code",
        "description": _DESCRIPTION,
        "parameters": {
            "lang": {
                "type": "string",
                "description": "The programming language of this piece of code.",
                "enum": ["python", "javascript"],
                "required": True,
            },
            "script": {
                "type": "string",
                "description": "A piece of code in right format. There MUST be main function.",
                "required": True,
            },
        },
    }

    def thoughts(self, state: RunState) -> str:
        return "Running a short script to process data."

    async def call(self, ctx: RunContext, **args: Any) -> Any:
        params = self.params
        assert isinstance(params, CodeExecParams)
        state = ctx.state
        lang = args.get("lang", params.lang)
        script = args.get("script", params.script)
        arguments: dict[str, Any] = {}
        for name, ref in params.arguments.items():
            if args.get(name):
                arguments[name] = args[name]
                continue
            arguments[name] = await _plain(state.get_variable_value(ref)) if ref else None
        sandbox = ctx.services.get("sandbox")
        if sandbox is None:
            raise SandboxError("no code sandbox is configured: CodeExec needs one ([sandbox] in the configuration, "
                               "or services={'sandbox': ...} when embedding the engine)")
        if not isinstance(sandbox, Sandbox):
            raise SandboxError(f"services['sandbox'] is not a sandbox: {type(sandbox).__name__}")
        language = normalize_language(str(lang))
        result = await sandbox.run(str(script or ""), language, jsonable(arguments), timeout=self.timeout)
        await self.apply_result(ctx, result)
        return self.outputs_for_model(state)

    def outputs_for_model(self, state: RunState) -> dict[str, Any]:
        """What the model is told: the outputs (ragflow returns ``self.output()``), without timings."""
        return {k: jsonable(v) for k, v in state.output_values(self.id).items() if k not in _TIMING_KEYS}

    # ------------------------------------------------------------------ ragflow's _process_execution_result
    async def apply_result(self, ctx: RunContext, result: ExecutionResult) -> None:
        """Write the outputs for one execution result (the §5.3 contract)."""
        state = ctx.state
        stdout, stderr = result.stdout, result.stderr
        artifacts = result.artifacts
        structured = result.result
        if result.exit_code != 0:
            # A failed script returned nothing: its output is no result (ragflow's executor sends none).
            stdout, artifacts = "", []
            structured = StructuredResult()
            if not stderr.strip():
                stderr = f"The script exited with code {result.exit_code}"
        value = structured.value if structured.present else deserialize_stdout(stdout)
        if stderr and not structured.present and not artifacts and not stdout.strip():
            self.set_output(state, "_ERROR", stderr)
            return
        self.set_output(state, "_ERROR", "")
        if stderr:
            _log.warning("CodeExec %s: stderr (non-fatal): %s", self.id, stderr[:500])
        parts = [self._apply_business_output(state, value)]
        if artifacts:
            stored = await self._store_artifacts(ctx, artifacts)
            self.set_output(state, "_ARTIFACTS", stored or None)
            attachment_text = await asyncio.to_thread(_attachment_content, artifacts, stored)
            self.set_output(state, "_ATTACHMENT_CONTENT", attachment_text)
            self.set_output(state, "attachments", _attachment_markdown(stored))
            parts.append(attachment_text)
        else:
            self.set_output(state, "_ARTIFACTS", None)
            self.set_output(state, "_ATTACHMENT_CONTENT", "")
            self.set_output(state, "attachments", [])
        self.set_output(state, "content", "\n\n".join(p for p in parts if p).strip())

    def _apply_business_output(self, state: RunState, value: Any) -> str:
        outputs = self.params.outputs
        normalized = normalize_output_value(value)
        self.set_output(state, "raw_result", normalized)
        try:
            contract = build_code_exec_contract(outputs, normalized)
        except ContractError as e:
            for name in outputs:
                if name not in SYSTEM_OUTPUT_KEYS:
                    self.set_output(state, name, None)
            self.set_output(state, "actual_type", infer_actual_type(normalized))
            self.set_output(state, "_ERROR", str(e))
            return render_canonical_content(normalized)
        self.set_output(state, "actual_type", contract["actual_type"])
        self.set_output(state, contract["business_output"], contract["value"])
        return str(contract["content"])

    async def _store_artifacts(self, ctx: RunContext, artifacts: list[Artifact]) -> list[dict[str, Any]]:
        store = ctx.services.get("artifacts")
        if not isinstance(store, ArtifactStore) and ctx.services.get("files") is not None:
            store = ArtifactStore(ctx.services["files"])  # the run's blob store keeps them
        if not isinstance(store, ArtifactStore):
            _log.warning("CodeExec %s: the script made %d artifact(s) but no file store is configured "
                         "(services['files']); they are not kept", self.id, len(artifacts))
            return []
        session = str(getattr(ctx, "task_id", None) or "")
        stored: list[dict[str, Any]] = []
        for art in artifacts:
            try:
                name = await store.put(art.name, art.content, mime_type=art.mime_type or None)
            except (OSError, FileStoreError) as e:
                _log.warning("CodeExec %s: could not store artifact %s: %s", self.id, art.name, e)
                continue
            stored.append({"name": art.name, "url": artifact_url(name, session), "mime_type": art.mime_type,
                           "size": art.size})
        return stored


async def _plain(value: Any) -> Any:
    if isinstance(value, TextStream):
        if not value.done:
            async for _ in value:
                pass
        return value.text
    return value


# --------------------------------------------------------------------------- attachments
def _attachment_type(name: str, mime_type: str) -> str:
    mime = str(mime_type or "").strip().lower()
    if mime.startswith("image/"):
        return "image"
    known = {"application/pdf": "pdf", "text/csv": "csv", "application/json": "json", "text/html": "html"}
    if mime in known:
        return known[mime]
    return os.path.splitext(name or "")[1].lower().lstrip(".") or "file"


def _attachment_markdown(stored: list[dict[str, Any]]) -> list[str]:
    items = []
    for art in stored:
        name, url = art.get("name"), art.get("url")
        mime = str(art.get("mime_type") or "").strip().lower()
        if not name:
            continue
        if mime.startswith("image/") and url:
            items.append(f"![{name}]({url})")
        elif url:
            items.append(f"[Download {name}]({url})")
        else:
            items.append(str(name))
    return items


def _attachment_content(artifacts: list[Artifact], stored: list[dict[str, Any]]) -> str:
    sections = []
    urls = {art["name"]: art.get("url", "") for art in stored}
    for idx, art in enumerate(artifacts, start=1):
        kind = _attachment_type(art.name, art.mime_type)
        title = f"attachment{idx} ({kind})" + (f": {art.name}" if art.name else "")
        try:
            text = _parse_artifact(art, kind)
        except Exception as e:  # a broken file must not fail the script's result
            _log.warning("could not read artifact %s: %s", art.name, e)
            text = "Artifact generated but parse failed."
            if urls.get(art.name):
                text += f" Download: {urls[art.name]}"
        if len(text) > _MAX_ATTACHMENT_TEXT:
            text = text[:_MAX_ATTACHMENT_TEXT] + f"\n[... {len(text) - _MAX_ATTACHMENT_TEXT} more characters]"
        sections.append(f"{title}\n{text}".strip())
    return f"attachment_count: {len(sections)}\n\n" + "\n\n".join(sections) if sections else "attachment_count: 0"


def _parse_artifact(art: Artifact, kind: str) -> str:
    """The text of an artifact (ragflow parses it with its document parsers; images have none here)."""
    if kind in ("csv", "json"):
        return art.content.decode("utf-8", "replace")
    if kind == "html":
        parser = _HtmlText()
        parser.feed(art.content.decode("utf-8", "replace"))
        parser.close()
        return parser.text()
    if kind == "pdf":
        return _pdf_text(art.content)
    return ""


def _pdf_text(data: bytes) -> str:
    try:
        import io

        from pypdf import PdfReader
    except ImportError:
        return ""
    reader = PdfReader(io.BytesIO(data))
    return "\n".join((page.extract_text() or "").strip() for page in reader.pages).strip()


class _HtmlText(HTMLParser):
    _SKIP = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self._SKIP:
            self._skipping += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self._skipping and data.strip():
            self._parts.append(data.strip())

    def text(self) -> str:
        return "\n".join(self._parts)
