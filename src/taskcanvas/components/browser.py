"""Browser: a chat model drives a real Chromium to do a task on the web (ragflow ``browser.py``, spec §4.17).

ragflow hands the task to the ``browser-use`` library. taskcanvas runs its own step loop
(:mod:`taskcanvas.components._browser_agent`) that speaks browser-use's protocol, on Debian's
Chromium through Playwright (:mod:`taskcanvas.components._browser_session`): browser-use's
releases pin ``anthropic<1`` and ``openai<3`` (0.11, ragflow's) or ``mcp==2.1.1`` (0.13), which
would break the SDK versions taskcanvas runs on. ``docs/browser.md`` has the details.

Outputs as ragflow's: ``content`` is the text of the model's ``done`` action (browser-use's
``final_result``), ``downloaded_files`` one ``{file_id, name, size, parent_id, mime_type}`` per
file the pages downloaded, stored in the blob store (``ctx.services["files"]``). Failing to
finish — no Chromium, the model failing, ``max_steps`` spent, too many failed steps, the time
limit — is the component's ``_ERROR``.

The browser's requests pass the SSRF rules of :mod:`taskcanvas.tools.http`: private and
loopback hosts are refused unless the settings allow them (``[http] allow_private`` /
``allowed_hosts``), as for every other tool.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlparse

import httpx
from pydantic import field_validator

from taskcanvas.components._browser_agent import StepLoop
from taskcanvas.components._browser_session import BrowserFailure, BrowserSession, LaunchOptions, find_chromium
from taskcanvas.components.llm import LLMParams, add_usage, models
from taskcanvas.dsl.errors import DslIssue
from taskcanvas.llm.errors import ModelError
from taskcanvas.runtime.component import Component, ComponentParams, RunContext
from taskcanvas.runtime.state import RunState
from taskcanvas.runtime.stream import TextStream
from taskcanvas.runtime.templates import string_format
from taskcanvas.tools.http import SsrfBlocked, run_policy

_log = logging.getLogger(__name__)

UPLOAD_URL_MAX_BYTES = 100 * 1024 * 1024
"""Largest file an ``upload_sources`` URL may bring (ragflow's default)."""
_SEGMENT = re.compile(r"[^A-Za-z0-9._-]+")
_profiles_in_use: set[Path] = set()
_profiles_lock = threading.Lock()


class BrowserParams(LLMParams):
    prompts: Any = "{sys.query}"
    max_steps: int = 30
    headless: bool = True
    enable_default_extensions: bool = False
    chromium_sandbox: bool = False
    persist_session: bool = True
    upload_sources: Any = []
    page_load_timeout: float = 30.0
    """taskcanvas: seconds a page may take to load before that navigation fails (browser-use: 30)."""

    @field_validator("prompts", mode="before")
    @classmethod
    def _prompts_list(cls, v: Any) -> Any:  # replaces LLMParams's: the task is one text here
        if v is None or (isinstance(v, (str, list, dict)) and not v):
            raise ValueError("must not be empty (the task for the browser)")
        return v

    @field_validator("max_steps")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v <= 0:
            raise ValueError("must be a whole number greater than 0")
        return v

    @field_validator("page_load_timeout")
    @classmethod
    def _seconds(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("must be a number of seconds greater than 0")
        return v


class Browser(Component):
    component_name = "Browser"
    Params: ClassVar[type[ComponentParams]] = BrowserParams
    timeout: ClassVar[float | None] = 1200.0
    reads_text = True

    def browser_params(self) -> BrowserParams:
        params = self.params
        assert isinstance(params, BrowserParams)
        return params

    def text_inputs(self) -> list[str]:
        params = self.browser_params()
        return [_as_text(params.prompts), json.dumps(params.upload_sources, ensure_ascii=False)]

    def thoughts(self, state: RunState) -> str:
        return "Planning and executing browser actions..."

    def requirements(self, services: Mapping[str, Any]) -> list[DslIssue]:
        provider = services.get("models")
        llm_id = self.browser_params().llm_id
        if provider is None:
            return [DslIssue("no_model", "needs a chat model, but no models are configured", self.id,
                             "params.llm_id")]
        try:
            provider.get(llm_id)
        except ModelError as e:
            return [DslIssue("no_model", str(e), self.id, "params.llm_id")]
        return []

    # ------------------------------------------------------------------ running
    async def invoke(self, ctx: RunContext) -> None:
        state = ctx.state
        params = self.browser_params()
        try:
            task = await self._task_text(state)
            settings = ctx.services.get("settings")
            env: Mapping[str, str] = getattr(settings, "env", {}) or {}
            executable = find_chromium(env, _browser_setting(settings, "executable"))
            if executable is None:
                raise BrowserFailure("no Chromium found: install it (Debian: apt-get install chromium) or name it "
                                     "with [browser] executable in the configuration or TASKCANVAS_BROWSER_EXECUTABLE")
            model = models(ctx).get(params.llm_id)
            with tempfile.TemporaryDirectory(prefix="taskcanvas_browser_") as scratch:
                uploads_dir, downloads_dir = Path(scratch, "uploads"), Path(scratch, "downloads")
                uploads_dir.mkdir()
                downloads_dir.mkdir()
                uploads = await self._prepare_uploads(ctx, uploads_dir)
                if uploads:
                    task += ("\n\nYou can upload files from these local paths when operating web pages:\n"
                             + "\n".join(f"- file_id={u['file_id']}, name={u['name']}, local_path={u['local_path']}"
                                         for u in uploads))
                with self._profile(ctx, settings, Path(scratch, "profile")) as profile_dir:
                    options = LaunchOptions(executable=executable, profile_dir=profile_dir,
                                            downloads_dir=downloads_dir, policy=run_policy(ctx),
                                            headless=params.headless, sandbox=_sandbox(params.chromium_sandbox),
                                            extensions=params.enable_default_extensions,
                                            page_load_timeout=params.page_load_timeout)
                    async with BrowserSession(options) as session:
                        loop = StepLoop(session, model, task, max_steps=params.max_steps,
                                        options=params.options(),
                                        available_files=[str(u["local_path"]) for u in uploads],
                                        on_response=lambda r: add_usage(ctx, r),
                                        should_stop=lambda: _check_cancel(ctx))
                        outcome = await loop.run()
                        downloaded = await session.finish_downloads()
                files = await self._store_downloads(ctx, downloaded)
        except BrowserFailure as e:
            state.set_output(self.id, "_ERROR", f"Browser: {e}")
            return
        state.set_output(self.id, "content", outcome.text)
        state.set_output(self.id, "downloaded_files", files)

    async def _task_text(self, state: RunState) -> str:
        """The prompt with its references filled in (ragflow ``_resolve_text``)."""
        params = self.browser_params()
        raw = params.prompts
        if isinstance(raw, str) and _is_direct_ref(raw, state):
            raw = await _read(state.get_variable_value(raw.strip()[1:-1]))
        text = _as_text(raw)
        values: dict[str, str] = {}
        for name, target in {**self.text_refs_of(text), **self.text_refs()}.items():
            try:
                value = await _read(state.get_variable_value(target))
            except Exception:
                continue
            value = "" if value is None else value
            values[name] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            state.set_input(self.id, name, values[name])
        return string_format(text, values)

    @contextlib.contextmanager
    def _profile(self, ctx: RunContext, settings: Any, scratch: Path) -> Iterator[Path]:
        """The profile directory: kept per user, canvas and component when ``persist_session``
        (ragflow keys it by tenant, canvas and node), else a fresh one for this run. A kept
        profile another run is using gives this run a fresh one (Chromium locks its profile)."""
        if not self.browser_params().persist_session:
            yield scratch
            return
        root = Path(settings.data_dir) / "browser" / "profiles" if settings is not None else (
            Path(tempfile.gettempdir()) / "taskcanvas_browser_profiles")
        user = _segment(ctx.state.globals.get("sys.user_id"))
        shape = {cid: [c.component_name, c.params, c.downstream] for cid, c in self.canvas.dsl.components.items()}
        canvas = "canvas_" + hashlib.sha1(
            json.dumps(shape, sort_keys=True, default=str).encode("utf-8")).hexdigest()[:12]
        path = root / user / canvas / _segment(self.id)
        with _profiles_lock:
            busy = path in _profiles_in_use
            if not busy:
                _profiles_in_use.add(path)
        if busy:
            _log.warning("Browser profile %s is in use by another run; this run uses a fresh one", path)
            yield scratch
            return
        try:
            path.mkdir(parents=True, exist_ok=True)
            yield path
        finally:
            with _profiles_lock:
                _profiles_in_use.discard(path)

    # ------------------------------------------------------------------ files
    async def _prepare_uploads(self, ctx: RunContext, folder: Path) -> list[dict[str, Any]]:
        """``upload_sources`` as local files: blob ids from the file store, or http(s) URLs
        fetched through the guarded client. What cannot be had is skipped with a warning, as in ragflow."""
        prepared: list[dict[str, Any]] = []
        for ref in _source_refs(self.browser_params().upload_sources, ctx.state):
            if _is_http_url(ref):
                item = await _fetch_upload(ctx, ref, folder)
            else:
                item = await _blob_upload(ctx, ref, folder)
            if item is not None:
                prepared.append(item)
        return prepared

    async def _store_downloads(self, ctx: RunContext, paths: list[Path]) -> list[dict[str, Any]]:
        paths = [p for p in paths if p.is_file() and p.stat().st_size > 0]
        if not paths:
            return []
        store = ctx.services.get("files")
        if store is None:
            raise BrowserFailure(f"the pages downloaded {len(paths)} file(s) but no file store is configured "
                                 "to keep them")
        stored = []
        for path in paths:
            blob = await store.put(path.read_bytes(), filename=path.name)
            stored.append({"file_id": blob.id, "name": blob.filename, "size": blob.size, "parent_id": "",
                           "mime_type": blob.mime_type})
        return stored


# --------------------------------------------------------------------------- helpers
async def _check_cancel(ctx: RunContext) -> None:
    if ctx.cancel.cancelled:
        raise asyncio.CancelledError



def _sandbox(requested: bool) -> bool:
    """Chromium's sandbox cannot run as root; asking for it there would only stop Chromium starting."""
    import os

    if requested and hasattr(os, "geteuid") and os.geteuid() == 0:
        _log.warning("Browser: chromium_sandbox is ignored when running as root")
        return False
    return requested


def _browser_setting(settings: Any, key: str) -> str | None:
    if settings is None:
        return None
    table = settings.section("browser")
    value = table.get(key) if isinstance(table, Mapping) else None
    return str(value) if value else None


def _segment(value: Any) -> str:
    token = _SEGMENT.sub("_", str(value or "").strip()).strip("._-")
    return token or "anonymous"


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # an LLM-style prompt list: the user contents
        return "\n".join(str(p.get("content", "")) if isinstance(p, dict) else str(p) for p in value)
    return json.dumps(value, ensure_ascii=False)


async def _read(value: Any) -> Any:
    return await value.read() if isinstance(value, TextStream) else value


def _is_direct_ref(text: str, state: RunState) -> bool:
    token = text.strip()
    return token.startswith("{") and token.endswith("}") and state.is_ref(token)


def _is_http_url(value: str) -> bool:
    parsed = urlparse(value.strip())
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def _source_refs(value: Any, state: RunState) -> list[str]:
    """File ids and URLs named by ``upload_sources`` (ragflow ``_extract_ids``): references,
    JSON lists, comma-separated text, ``{file_id|id|url|value}`` objects, lists of any of these."""
    found: list[str] = []

    def collect(item: Any, depth: int = 0) -> None:
        if item is None or depth > 20:
            return
        if isinstance(item, TextStream):
            item = item.text
        if isinstance(item, str):
            token = item.strip()
            if not token:
                return
            if _is_direct_ref(token, state):
                with contextlib.suppress(Exception):
                    collect(state.get_variable_value(token[1:-1]), depth + 1)
                return
            if token.startswith("[") and token.endswith("]"):
                with contextlib.suppress(ValueError):
                    collect(json.loads(token), depth + 1)
                    return
            if _is_http_url(token):
                found.append(token)
            elif "," in token:
                for part in token.split(","):
                    collect(part, depth + 1)
            else:
                found.append(token)
            return
        if isinstance(item, dict):
            for key in ("file_id", "id", "url", "value"):
                if key in item:
                    collect(item[key], depth + 1)
                    return
            for v in item.values():
                collect(v, depth + 1)
            return
        if isinstance(item, (list, tuple, set)):
            for v in item:
                collect(v, depth + 1)
            return
        token = str(item).strip()
        if token:
            found.append(token)

    collect(value)
    return list(dict.fromkeys(found))


def _unique(folder: Path, name: str) -> Path:
    name = Path(name).name or "file"
    target = folder / name
    n = 1
    while target.exists():
        target = folder / f"{Path(name).stem}_{n}{Path(name).suffix}"
        n += 1
    return target


async def _blob_upload(ctx: RunContext, file_id: str, folder: Path) -> dict[str, Any] | None:
    store = ctx.services.get("files")
    if store is None:
        _log.warning("Browser upload %s skipped: no file store is configured", file_id)
        return None
    try:
        info = await store.info(file_id)
        content = await store.get(file_id)
    except LookupError:
        _log.warning("Browser upload file_id not found: %s", file_id)
        return None
    target = _unique(folder, info.filename or f"{file_id}.bin")
    target.write_bytes(content)
    return {"file_id": info.id, "name": info.filename, "size": info.size, "local_path": str(target)}


async def _fetch_upload(ctx: RunContext, url: str, folder: Path) -> dict[str, Any] | None:
    client = ctx.http
    if client is None:
        _log.warning("Browser upload url %s skipped: no HTTP client is configured", url)
        return None
    try:
        async with client.stream("GET", url, headers={"User-Agent": "taskcanvas-browser/1.0"},
                                 timeout=30) as response:
            response.raise_for_status()
            target = _unique(folder, _url_filename(url, response.headers))
            size = 0
            with target.open("wb") as f:
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > UPLOAD_URL_MAX_BYTES:
                        raise ValueError(f"larger than {UPLOAD_URL_MAX_BYTES} bytes")
                    f.write(chunk)
    except (httpx.HTTPError, SsrfBlocked, OSError, ValueError) as e:
        _log.warning("Browser failed to fetch upload url %s: %s", url, e)
        return None
    if size == 0:
        target.unlink(missing_ok=True)
        _log.warning("Browser upload url returned empty content: %s", url)
        return None
    return {"file_id": "", "name": target.name, "size": size, "local_path": str(target), "source_url": url}


def _url_filename(url: str, headers: Mapping[str, str]) -> str:
    disposition = headers.get("content-disposition", "")
    for pattern in (r"filename\*\s*=\s*(?:UTF-8''|utf-8'')?([^;]+)", r'filename\s*=\s*"([^"]+)"',
                    r"filename\s*=\s*([^;]+)"):
        m = re.search(pattern, disposition)
        if m:
            name = Path(unquote(m.group(1).strip().strip('"'))).name
            if name:
                return name
    name = unquote(Path(urlparse(url).path).name).strip()
    return name or "url_file.bin"
