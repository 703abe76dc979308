"""ExcelProcessor: read, merge, reshape and write spreadsheets (xlsx, csv) (spec §4.16).

Files arrive as ragflow file values (``{"id", "name", ...}``, or lists of them), stored file ids
or ``data:`` URLs, through the references in ``input_files``; their bytes come from the blob
store in ``ctx.services["files"]``, and files this component writes go there too.

Tables are pandas DataFrames read with openpyxl, as in ragflow, so the same sheet gives the same
rows, summary and markdown. Where ragflow skips a file it cannot read (silently), this component
fails naming the file; see ``docs/spreadsheets.md`` for the list of differences.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import datetime as dt
import io
import math
import re
import zipfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationInfo, field_validator

from taskcanvas.components.fillup import UserFillUp
from taskcanvas.errors import TaskcanvasError
from taskcanvas.files import BlobNotFound, BlobStore
from taskcanvas.runtime.component import Component, ComponentParams, RunContext
from taskcanvas.runtime.refs import split_ref, strip_ref
from taskcanvas.runtime.state import RunState

if TYPE_CHECKING:
    import pandas as pd

OPERATIONS = ("read", "merge", "transform", "output")
FORMATS = ("xlsx", "csv")
DEFAULT_MAX_BYTES = 20 * 2**20
"""Largest input file when the settings do not say (``[files] max_size_mb``); the param may say less."""
_MAX_EXPANSION = 25
"""An xlsx (a zip) may unpack to this many times the file limit; beyond that it is a zip bomb."""
_ID_LIKE = re.compile(r"[A-Za-z0-9_.:/-]{1,200}")
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MIME = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "csv": "text/csv"}
_THOUGHTS = {"read": "Reading Excel files...", "merge": "Merging Excel data...",
             "transform": "Transforming data...", "output": "Generating Excel output..."}


class SpreadsheetError(TaskcanvasError):
    """A spreadsheet input that cannot be used: missing, too large, unreadable, or lacking a column."""


class ExcelProcessorParams(ComponentParams):
    input_files: list[str] = []
    """References to file values (``{begin@sheet}``, ``sys.files``)."""
    operation: str = "read"
    sheet_selection: str = "all"
    """``all``, ``first``, or comma-separated sheet names."""
    merge_strategy: str = "concat"
    join_on: str = ""
    transform_instructions: str = ""
    """Kept for ragflow's DSL; ragflow does not use it either."""
    transform_data: str = ""
    """Reference to the data that ``transform`` and ``output`` work on."""
    output_format: str = "xlsx"
    output_filename: str = "output"
    max_file_mb: float | None = None
    """taskcanvas: a lower size limit for this component's input files (the setting still caps it)."""
    outputs: dict[str, Any] = {"data": {"type": "object", "value": {}}, "summary": {"type": "str", "value": ""},
                               "markdown": {"type": "str", "value": ""}}

    @field_validator("input_files", mode="before")
    @classmethod
    def _files_list(cls, v: Any) -> Any:
        if v is None or v == "":
            return []
        return [v] if isinstance(v, str) else v

    @field_validator("sheet_selection", "merge_strategy", "join_on", "transform_instructions", "transform_data",
                     mode="before")
    @classmethod
    def _none_is_default(cls, v: Any, info: ValidationInfo) -> Any:
        if v is None:
            return {"sheet_selection": "all", "merge_strategy": "concat"}.get(info.field_name or "", "")
        return v

    @field_validator("operation")
    @classmethod
    def _known_operation(cls, v: str) -> str:
        if v not in OPERATIONS:
            raise ValueError(f"operation {v!r} is not supported; use one of {', '.join(OPERATIONS)}")
        return v

    @field_validator("output_format")
    @classmethod
    def _known_format(cls, v: str) -> str:
        if v not in FORMATS:
            raise ValueError(f"output_format {v!r} is not supported; use one of {', '.join(FORMATS)}")
        return v

    @field_validator("max_file_mb")
    @classmethod
    def _positive_limit(cls, v: float | None) -> float | None:
        if v is not None and v <= 0:
            raise ValueError("must be more than 0")
        return v


# --------------------------------------------------------------------------- tables (pure, run in a thread)
def _read_tables(content: bytes, filename: str, selection: str, max_unpacked: int) -> dict[str, pd.DataFrame]:
    """The selected sheets of a workbook (a CSV file is one sheet, ``Sheet1``), by sheet name."""
    import pandas as pd

    if filename.lower().endswith(".csv"):
        try:
            return {"Sheet1": pd.read_csv(io.BytesIO(content))}
        except UnicodeDecodeError:
            raise SpreadsheetError(f"cannot read '{filename}' as CSV: it is not UTF-8 text") from None
        except Exception as e:
            raise SpreadsheetError(f"cannot read '{filename}' as CSV: {e}") from None
    if content.startswith(_OLE2):
        raise SpreadsheetError(f"cannot read '{filename}': it is an Excel 97-2003 (.xls) workbook; "
                               "only .xlsx and .csv files are supported")
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            unpacked = sum(member.file_size for member in archive.infolist())
        if unpacked > max_unpacked:
            raise SpreadsheetError(f"cannot read '{filename}': it unpacks to {_size(unpacked)}, "
                                   f"over the {_size(max_unpacked)} allowed")
        with pd.ExcelFile(io.BytesIO(content), engine="openpyxl") as book:
            names = [str(n) for n in book.sheet_names]
            if selection == "all":
                chosen = names
            elif selection == "first":
                chosen = names[:1]
            else:
                # Names that the workbook does not have are skipped, as in ragflow.
                chosen = [s for s in (s.strip() for s in selection.split(",")) if s in names]
            return {sheet: pd.read_excel(book, sheet_name=sheet) for sheet in chosen}
    except SpreadsheetError:
        raise
    except Exception as e:
        raise SpreadsheetError(f"cannot read '{filename}' as an xlsx workbook: {e or type(e).__name__}") from None


def _cell(value: Any) -> Any:
    """A cell as JSON holds it: missing → ``None``, dates as ISO text, numpy scalars as Python's."""
    if isinstance(value, (str, bool, int)) or value is None:
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    import pandas as pd

    if value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, (dt.datetime, dt.date, dt.time)):  # pd.Timestamp is a datetime
        return value.isoformat()
    if isinstance(value, pd.Timedelta):
        return str(value)
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        return _cell(item())
    return value


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): _cell(v) for k, v in row.items()} for row in df.to_dict(orient="records")]


def _markdown(df: pd.DataFrame) -> str:
    return df.to_markdown(index=False)


def _columns(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns.tolist()]
    return ", ".join(cols[:5]) + ("..." if len(cols) > 5 else "")


def _is_sheets(data: Mapping[str, Any]) -> bool:
    """``{"sheet": [rows], ...}``: every value a list (an empty dict counts, as in ragflow)."""
    return all(isinstance(v, list) for v in data.values())


def _transformed(data: Any) -> tuple[Any, str]:
    """ragflow's normalisation of ``transform_data``: the data and its markdown."""
    import pandas as pd

    if isinstance(data, dict):
        if _is_sheets(data):
            parts = [f"### {name}\n\n{_markdown(pd.DataFrame(rows))}" for name, rows in data.items()]
            return copy.deepcopy(data), "\n\n".join(parts)
        df = pd.DataFrame([data])
        return _records(df), _markdown(df)
    if isinstance(data, list):
        df = pd.DataFrame(data)
        return _records(df), _markdown(df)
    return {"raw": str(data)}, str(data)


def _output_frames(data: Any) -> dict[str, pd.DataFrame] | None:
    import pandas as pd

    if isinstance(data, dict):
        if _is_sheets(data):
            return {str(k): pd.DataFrame(v) for k, v in data.items()}
        return {"Sheet1": pd.DataFrame([data])}
    if isinstance(data, list):
        return {"Sheet1": pd.DataFrame(data)}
    return None


def _render(frames: dict[str, pd.DataFrame], fmt: str) -> bytes:
    import pandas as pd

    if fmt == "csv":
        # ragflow writes the first sheet only (none at all: IndexError, reported in the summary);
        # "\n" ends lines whatever the platform.
        first = list(frames.values())[0]  # noqa: RUF015
        return first.to_csv(index=False, lineterminator="\n").encode("utf-8")
    out = io.BytesIO()
    with pd.ExcelWriter(out, engine="openpyxl") as writer:
        for name, df in frames.items():
            df.to_excel(writer, sheet_name=name[:31].replace("/", "_").replace("\\", "_"), index=False)
    return out.getvalue()


# --------------------------------------------------------------------------- the component
class ExcelProcessor(Component):
    component_name = "ExcelProcessor"
    Params = ExcelProcessorParams

    def thoughts(self, state: RunState) -> str:
        return _THOUGHTS.get(self._params.operation, "Processing Excel...")

    @property
    def _params(self) -> ExcelProcessorParams:
        params = self.params
        assert isinstance(params, ExcelProcessorParams)
        return params

    async def invoke(self, ctx: RunContext) -> None:
        op = self._params.operation
        if op == "read":
            await self._read(ctx)
        elif op == "merge":
            await self._merge(ctx)
        elif op == "transform":
            await self._transform(ctx)
        else:
            await self._output(ctx)

    # ----------------------------------------------------------------- operations
    async def _read(self, ctx: RunContext) -> None:
        data, summary, markdown = await asyncio.to_thread(_read_outputs, await self._sheets(ctx))
        self.set_output(ctx.state, "data", data)
        self.set_output(ctx.state, "summary", summary)
        self.set_output(ctx.state, "markdown", markdown)

    async def _merge(self, ctx: RunContext) -> None:
        params = self._params
        sources = [(f"{name}_{sheet}" if len(frames) > 1 else name, df)
                   for name, frames in await self._sheets(ctx) for sheet, df in frames.items()]
        if not sources:
            self.set_output(ctx.state, "data", {})
            self.set_output(ctx.state, "summary", "No data to merge")
            return
        merged = await asyncio.to_thread(_merged, sources, params.merge_strategy, params.join_on)
        records, table = await asyncio.to_thread(lambda: (_records(merged), _markdown(merged.head(20))))
        self.set_output(ctx.state, "data", {"merged": records})
        self.set_output(ctx.state, "summary", f"Merged {len(sources)} sources into {len(merged)} rows, "
                                              f"{len(merged.columns)} columns")
        self.set_output(ctx.state, "markdown", table)

    async def _transform(self, ctx: RunContext) -> None:
        state, ref = ctx.state, self._params.transform_data
        if not ref:
            self.set_output(state, "summary", "No transform data reference provided")
            return
        data = state.get_variable_value(ref)
        state.set_input(self.id, ref, str(data)[:300] if data else "")
        if data is None:
            self.set_output(state, "summary", "Transform data is empty")
            return
        result, table = await asyncio.to_thread(_transformed, data)
        self.set_output(state, "data", result)
        self.set_output(state, "markdown", table)
        self.set_output(state, "summary", "Transformed data ready for processing")

    async def _output(self, ctx: RunContext) -> None:
        state, params = ctx.state, self._params
        ref = params.transform_data
        if not ref:
            self.set_output(state, "summary", "No data reference for output")
            return
        data = state.get_variable_value(ref)
        state.set_input(self.id, ref, str(data)[:300] if data else "")
        if data is None:
            self.set_output(state, "summary", "No data to output")
            return
        store = _store(ctx)
        fmt = params.output_format
        filename = f"{params.output_filename}.{fmt}"
        try:
            frames = await asyncio.to_thread(_output_frames, data)
            if frames is None:
                self.set_output(state, "summary", "Invalid data format for Excel output")
                return
            content = await asyncio.to_thread(_render, frames, fmt)
            blob = await store.put(content, filename=filename, mime_type=_MIME[fmt])
            records = await asyncio.to_thread(lambda: {k: _records(df) for k, df in frames.items()})
        except Exception as e:
            # ragflow reports a table it cannot write in the summary; the run goes on.
            self.set_output(state, "summary", f"Error generating output: {e}")
            return
        self.set_output(state, "attachment", {"doc_id": blob.id, "format": fmt, "file_name": filename})
        total = sum(len(df) for df in frames.values())
        self.set_output(state, "summary", f"Generated {filename} with {len(frames)} sheet(s), {total} total rows")
        self.set_output(state, "data", records)

    # ----------------------------------------------------------------- input files
    async def _sheets(self, ctx: RunContext) -> list[tuple[str, dict[str, pd.DataFrame]]]:
        """Every input file's selected sheets, in ``input_files`` order, with the file's name."""
        params = self._params
        limit = _size_limit(ctx, params.max_file_mb)
        found: list[tuple[str, dict[str, pd.DataFrame]]] = []
        for ref in params.input_files:
            value = ctx.state.get_variable_value(ref)
            ctx.state.set_input(self.id, ref, str(value)[:200] if value else "")
            if value is None:
                continue
            uploaded = self._uploaded_files(ctx, ref)
            if uploaded is not None:
                value = uploaded
            # ragflow reads only a list's first item (and in fact fails on it); every file is read here.
            for item in value if isinstance(value, list) else [value]:
                if item is None or item == "":
                    continue
                filename, content = await _file_content(ctx, ref, item, limit)
                frames = await asyncio.to_thread(_read_tables, content, filename, params.sheet_selection,
                                                 limit * _MAX_EXPANSION)
                found.append((filename, frames))
        return found

    def _uploaded_files(self, ctx: RunContext, ref: str) -> list[Any] | None:
        """The file values submitted in this run for a Begin/UserFillUp file field that ``ref`` names.

        Those components hand on the *text* of an uploaded document (ragflow's ``get_files``), so
        ``{begin@sheet}`` alone never reaches the file; ragflow then finds no spreadsheet at all.
        The bytes are what a spreadsheet needs, and this run's inputs still hold the file values.
        """
        cpn_id, var = split_ref(strip_ref(ref))
        form_cpn = self.canvas.components.get(cpn_id) if cpn_id else None
        if not isinstance(form_cpn, UserFillUp):
            return None
        spec = form_cpn.form().get(var)
        if not isinstance(spec, Mapping) or "file" not in str(spec.get("type", "")).lower():
            return None
        submitted = ctx.inputs.get(var)
        raw = submitted.get("value") if isinstance(submitted, Mapping) else submitted
        files = raw if isinstance(raw, list) else [raw]
        if not files or not all(isinstance(f, Mapping) and (f.get("id") or f.get("file_id")) for f in files):
            return None
        return files


def _read_outputs(found: list[tuple[str, dict[str, pd.DataFrame]]]) -> tuple[dict[str, Any], str, str]:
    """``data``, ``summary`` and ``markdown`` of a read: one entry per sheet, keyed ``file`` or ``file_sheet``."""
    data: dict[str, Any] = {}
    summaries: list[str] = []
    tables: list[str] = []
    for filename, frames in found:
        for sheet, df in frames.items():
            key = f"{filename}_{sheet}" if len(frames) > 1 else filename
            data[key] = _records(df)
            summaries.append(f"**{key}**: {len(df)} rows, {len(df.columns)} columns ({_columns(df)})")
            tables.append(f"### {key}\n\n{_markdown(df.head(10))}\n")
    return (data, "\n".join(summaries) if summaries else "No Excel files found",
            "\n\n".join(tables) if tables else "No data")


def _merged(sources: list[tuple[str, pd.DataFrame]], strategy: str, join_on: str) -> pd.DataFrame:
    import pandas as pd

    frames = [df for _, df in sources]
    if strategy != "join" or not join_on:
        # Any other strategy, or a join without a column, concatenates (ragflow's fallback).
        return pd.concat(frames, ignore_index=True)
    for name, df in sources:
        if join_on not in df.columns:
            have = ", ".join(str(c) for c in df.columns) or "none"
            raise SpreadsheetError(f"cannot join on column '{join_on}': '{name}' has no such column "
                                   f"(its columns: {have})")
    merged = frames[0]
    for df in frames[1:]:
        merged = merged.merge(df, on=join_on, how="outer")
    return merged


def _store(ctx: RunContext) -> BlobStore:
    store: BlobStore | None = ctx.services.get("files")
    if store is None:
        raise SpreadsheetError("no file store is configured (services['files'])")
    return store


def _size_limit(ctx: RunContext, own_mb: float | None) -> int:
    """Bytes an input file may have: the run's file limit (``[files] max_size_mb``), or the param's when lower."""
    settings = ctx.services.get("settings")
    limit = int(getattr(settings, "files_max_bytes", DEFAULT_MAX_BYTES))
    if own_mb is not None:
        limit = min(limit, int(own_mb * 2**20))
    return limit


def _size(n: int) -> str:
    for unit, scale in (("MB", 2**20), ("KB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


def _too_large(filename: str, size: int, limit: int) -> SpreadsheetError:
    return SpreadsheetError(f"file '{filename}' is {_size(size)}, over the {_size(limit)} limit for spreadsheets")


async def _file_content(ctx: RunContext, ref: str, value: Any, limit: int) -> tuple[str, bytes]:
    """``(filename, bytes)`` of one file value: a file object, a stored file id, or a ``data:`` URL."""
    if isinstance(value, str) and value.startswith("data:"):
        header, _, encoded = value.partition(",")
        filename = "uploaded.csv" if header[5:].split(";")[0].strip().lower() == "text/csv" else "uploaded.xlsx"
        if len(encoded) * 3 // 4 > limit:
            raise _too_large(filename, len(encoded) * 3 // 4, limit)
        try:
            # Lenient, as ragflow decodes: characters outside the alphabet are dropped.
            return filename, base64.b64decode(encoded)
        except (binascii.Error, ValueError):
            raise SpreadsheetError(f"the data: URL in {ref} is not valid base64") from None
    if isinstance(value, Mapping):
        file_id = value.get("id") or value.get("file_id")
        name = value.get("name") or value.get("filename")
        if not isinstance(file_id, str) or not file_id:
            raise SpreadsheetError(f"{ref} holds an object that is not a file (it has no 'id')")
    elif isinstance(value, str) and _ID_LIKE.fullmatch(value.strip()):
        file_id, name = value.strip(), None
    else:
        shown = str(value) if len(str(value)) <= 60 else str(value)[:57] + "..."
        raise SpreadsheetError(f"{ref} holds {type(value).__name__} {shown!r}, not a file: expected a file "
                               "value, a stored file id or a data: URL")
    store = _store(ctx)
    try:
        blob = await store.info(file_id)
        filename = str(name or blob.filename or "unknown.xlsx")
        if blob.size > limit:
            raise _too_large(filename, blob.size, limit)
        content = await store.get(file_id)
    except BlobNotFound:
        what = f"file '{name}' ({file_id})" if name else f"'{file_id[:60]}'"
        raise SpreadsheetError(f"{what} from {ref} is not a stored file") from None
    if len(content) > limit:
        raise _too_large(filename, len(content), limit)
    return filename, content
