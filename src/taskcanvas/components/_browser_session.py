"""The browser a Browser component drives: Debian's Chromium through Playwright, guarded.

One :class:`BrowserSession` per invocation: it launches Chromium with a profile directory (kept
between runs when the canvas asks for it), sends every network request through the SSRF check
of :mod:`taskcanvas.tools.http`, saves what the pages download, and offers the few operations
the step loop needs (the page as text with numbered elements, click, type, navigate, ...).

Nothing is ever downloaded for the browser itself: Chromium must already be installed (no
Playwright browser download), extensions are off, and Chromium's own background traffic
(component updates, sync, field trials, first-run pings) is switched off by flags.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from taskcanvas.tools.http import HttpPolicy, SsrfBlocked, check_host

_log = logging.getLogger(__name__)

CHROMIUM_CANDIDATES = (
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
    "/usr/bin/google-chrome-stable",
    "/opt/chrome/chrome",
    "/usr/local/bin/chrome",
    "/usr/local/bin/google-chrome",
)
EXECUTABLE_VARIABLES = ("TASKCANVAS_BROWSER_EXECUTABLE", "BROWSER_USE_EXECUTABLE_PATH",
                        "BROWSER_USE_BROWSER_BINARY_PATH", "BROWSER_USE_CHROME_BINARY_PATH")
"""Variables naming the browser to use (ragflow reads the three ``BROWSER_USE_*`` ones)."""

QUIET_FLAGS = ("--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--no-first-run", "--no-default-browser-check", "--no-pings", "--disable-domain-reliability",
               "--disable-client-side-phishing-detection", "--disable-default-apps")
"""Chromium flags that stop it from calling home: the machine may have no network at all."""

PAGE_TEXT_LIMIT = 30_000
ELEMENT_LIMIT = 400
SCRIPT_TIMEOUT = 10.0
"""Seconds reading the page may take (evaluation waits for a navigation that is under way)."""
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")


class BrowserFailure(Exception):
    """Why the browser task cannot go on; the component's ``_ERROR``."""


class ActionError(Exception):
    """An action that did not work; told to the model, which may try something else."""


def find_chromium(env: Mapping[str, str], configured: str | None = None) -> str | None:
    """The Chromium (or Chrome) executable: configured, named by a variable, or a usual path."""
    for explicit in (configured, *(env.get(name) for name in EXECUTABLE_VARIABLES)):
        if explicit and os.path.isfile(explicit) and os.access(explicit, os.X_OK):
            return explicit
    for path in CHROMIUM_CANDIDATES:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass(frozen=True)
class LaunchOptions:
    executable: str
    profile_dir: Path
    downloads_dir: Path
    policy: HttpPolicy
    headless: bool = True
    sandbox: bool = False
    extensions: bool = False
    page_load_timeout: float = 30.0
    """Seconds a navigation may take before the action fails."""
    action_timeout: float = 15.0
    """Seconds a click, a keystroke or typing may take."""


@dataclass
class PageElement:
    index: int
    tag: str
    text: str
    attributes: dict[str, str] = field(default_factory=dict)

    def render(self) -> str:
        attrs = "".join(f' {k}="{v}"' for k, v in self.attributes.items() if v)
        return f"[{self.index}]<{self.tag}{attrs}>{self.text}</{self.tag}>"


@dataclass
class PageState:
    url: str
    title: str
    tabs: list[tuple[str, str, str]]
    """``(tab id, title, url)`` of every open tab."""
    elements: list[PageElement]
    text: str

    def render(self) -> str:
        lines = [f"Current URL: {self.url}", f"Title: {self.title}", "Open tabs:"]
        lines += [f"Tab {tab_id}: {title} - {url}" for tab_id, title, url in self.tabs]
        lines.append("Interactive elements:")
        lines += [e.render() for e in self.elements] or ["(none)"]
        lines += ["Page text:", self.text or "(empty page)"]
        return "\n".join(lines)


# Numbers the visible interactive elements (data-tc-index) and returns them with the page text.
_SNAPSHOT_JS = """
(limit) => {
  const selector = 'a[href], button, input:not([type=hidden]), select, textarea, summary, [onclick], '
    + '[contenteditable=""], [contenteditable=true], [role=button], [role=link], [role=checkbox], '
    + '[role=tab], [role=menuitem], [role=option], [role=switch], [role=radio]';
  document.querySelectorAll('[data-tc-index]').forEach(e => e.removeAttribute('data-tc-index'));
  const visible = (e) => {
    if (!e.getClientRects().length) return false;
    const style = getComputedStyle(e);
    return style.visibility !== 'hidden' && style.display !== 'none';
  };
  const clean = (s, n) => (s || '').replace(/\\s+/g, ' ').trim().slice(0, n);
  const found = [];
  for (const e of document.querySelectorAll(selector)) {
    if (found.length >= limit) break;
    if (!visible(e)) continue;
    const index = found.length + 1;
    e.setAttribute('data-tc-index', String(index));
    const attrs = {};
    for (const name of ['type', 'name', 'href', 'placeholder', 'aria-label', 'title', 'role', 'download']) {
      const v = e.getAttribute(name);
      if (v !== null) attrs[name] = clean(v, 120);
    }
    if ('value' in e && e.tagName !== 'BUTTON' && e.value) attrs['value'] = clean(String(e.value), 120);
    found.push({index, tag: e.tagName.toLowerCase(), text: clean(e.innerText || e.textContent, 120), attrs});
  }
  return {title: document.title, text: document.body ? document.body.innerText : '', elements: found};
}
"""


class BrowserSession:
    """A running Chromium with one persistent context; use ``async with``."""

    def __init__(self, options: LaunchOptions) -> None:
        self.options = options
        self.blocked: list[str] = []
        """Requests the SSRF guard refused since the last :meth:`take_blocked`."""
        self._playwright: Any = None
        self._context: Any = None
        self._page: Any = None
        self._downloads: list[asyncio.Task[None]] = []
        self._saved: list[Path] = []
        self._tab_ids: dict[int, str] = {}

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> BrowserSession:
        try:
            from playwright.async_api import Error as PlaywrightError
            from playwright.async_api import async_playwright
        except ImportError as e:  # pragma: no cover - a dependency of taskcanvas
            raise BrowserFailure(f"the Browser component needs the playwright package: {e}") from None
        opts = self.options
        self._playwright = await async_playwright().start()
        args = [*QUIET_FLAGS]
        if not opts.sandbox:
            args.append("--no-sandbox")
        if not opts.extensions:
            args.append("--disable-extensions")
        try:
            self._context = await self._playwright.chromium.launch_persistent_context(
                str(opts.profile_dir), executable_path=opts.executable, headless=opts.headless, args=args,
                chromium_sandbox=opts.sandbox, accept_downloads=True, downloads_path=str(opts.downloads_dir),
                service_workers="block", timeout=60_000)
        except PlaywrightError as e:
            await self._playwright.stop()
            raise BrowserFailure(f"Chromium ({opts.executable}) did not start: {_first_line(e)}") from None
        self._context.set_default_timeout(opts.action_timeout * 1000)
        self._context.set_default_navigation_timeout(opts.page_load_timeout * 1000)
        if not opts.policy.allow_private:
            await self._context.route("**/*", self._guard)
            await self._context.route_web_socket(re.compile(".*"), self._guard_websocket)
        self._context.on("page", self._watch)
        for page in self._context.pages:
            self._watch(page)
        self._page = self._context.pages[0] if self._context.pages else await self._context.new_page()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.finish_downloads()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._context.close(), 15)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._playwright.stop(), 15)

    # ------------------------------------------------------------------ guard and downloads
    async def _guard(self, route: Any) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("http", "https"):
            try:
                port = parts.port or (443 if parts.scheme == "https" else 80)
                await check_host(parts.hostname or "", self.options.policy, port)
            except (SsrfBlocked, ValueError) as e:
                self.blocked.append(f"{_display(url)} ({getattr(e, 'reason', e)})")
                await route.abort("blockedbyclient")
                return
        elif parts.scheme not in ("http", "https", "data", "blob", "about"):
            self.blocked.append(f"{_display(url)} (only http and https URLs may be opened)")
            await route.abort("blockedbyclient")
            return
        await route.continue_()

    async def _guard_websocket(self, ws: Any) -> None:
        parts = urlsplit(ws.url)
        try:
            port = parts.port or (443 if parts.scheme == "wss" else 80)
            await check_host(parts.hostname or "", self.options.policy, port)
        except (SsrfBlocked, ValueError) as e:
            self.blocked.append(f"{_display(ws.url)} ({getattr(e, 'reason', e)})")
            await ws.close(code=1008, reason="blocked")
            return
        ws.connect_to_server()

    def _watch(self, page: Any) -> None:
        page.on("download", lambda download: self._downloads.append(asyncio.ensure_future(self._save(download))))

    async def _save(self, download: Any) -> None:
        name = _SAFE_NAME.sub("_", os.path.basename(download.suggested_filename or "")).strip(" .") or "download"
        target = self.options.downloads_dir / name
        stem, suffix = os.path.splitext(name)
        n = 1
        while target.exists() or target in self._saved:
            target = self.options.downloads_dir / f"{stem}_{n}{suffix}"
            n += 1
        self._saved.append(target)
        try:
            await download.save_as(str(target))
        except Exception as e:
            _log.warning("Browser download %s failed: %s", download.url, e)

    async def finish_downloads(self) -> list[Path]:
        """Wait for the downloads under way; the files saved so far."""
        pending, self._downloads = self._downloads, []
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        return [p for p in self._saved if p.is_file()]

    def take_blocked(self) -> list[str]:
        blocked, self.blocked = self.blocked, []
        return blocked

    # ------------------------------------------------------------------ the page
    @property
    def page(self) -> Any:
        if self._page is None or self._page.is_closed():
            open_pages = [p for p in self._context.pages if not p.is_closed()]
            self._page = open_pages[-1] if open_pages else None
        return self._page

    def _tab_id(self, page: Any) -> str:
        key = id(page)
        if key not in self._tab_ids:
            self._tab_ids[key] = f"{len(self._tab_ids) + 1:04d}"
        return self._tab_ids[key]

    async def state(self) -> PageState:
        page = self.page
        if page is None:
            page = self._page = await self._context.new_page()
        tabs = []
        for p in self._context.pages:
            with contextlib.suppress(Exception):
                tabs.append((self._tab_id(p), await asyncio.wait_for(p.title(), SCRIPT_TIMEOUT), p.url))
        try:
            snap = await asyncio.wait_for(page.evaluate(_SNAPSHOT_JS, ELEMENT_LIMIT), SCRIPT_TIMEOUT)
        except Exception as e:  # a page still loading, or one that forbids scripts
            _log.debug("page snapshot failed: %s", e)
            snap = {"title": "", "text": "", "elements": []}
        text = str(snap.get("text") or "")
        if len(text) > PAGE_TEXT_LIMIT:
            text = text[:PAGE_TEXT_LIMIT] + f"\n... ({len(text) - PAGE_TEXT_LIMIT} more characters)"
        elements = [PageElement(int(e["index"]), str(e["tag"]), str(e.get("text") or ""),
                                {str(k): str(v) for k, v in (e.get("attrs") or {}).items()})
                    for e in snap.get("elements") or []]
        return PageState(page.url, str(snap.get("title") or ""), tabs, elements, text.strip())

    async def navigate(self, url: str, *, new_tab: bool = False) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ActionError(f"cannot open {url!r}: only http and https URLs may be opened")
        page = await self._context.new_page() if new_tab else self.page
        if page is None:
            page = await self._context.new_page()
        self._page = page
        await self._goto(page.goto(url, wait_until="domcontentloaded"), url)
        return f"Navigated to {url}" + (" in a new tab" if new_tab else "")

    async def _goto(self, navigation: Any, url: str) -> None:
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import TimeoutError as PlaywrightTimeout

        try:
            await navigation
        except PlaywrightTimeout:
            await self._stop_loading()
            raise ActionError(f"the page {_display(url)} did not load within "
                              f"{self.options.page_load_timeout:g} seconds") from None
        except PlaywrightError as e:
            message = _first_line(e)
            if "Download is starting" in message:
                await self.finish_downloads_soon()
                return
            blocked = self.take_blocked()
            if blocked:
                raise ActionError(f"blocked by the SSRF guard: {'; '.join(blocked)}") from None
            raise ActionError(f"could not open {_display(url)}: {message}") from None
        with contextlib.suppress(Exception):
            await self.page.wait_for_load_state("load", timeout=min(self.options.page_load_timeout, 5) * 1000)

    async def _stop_loading(self) -> None:
        """Abandon a navigation that timed out, so the page answers scripts again (a pending
        navigation would hold every later evaluation until the server gives up)."""
        page = self.page
        if page is None:
            return
        with contextlib.suppress(Exception):
            cdp = await self._context.new_cdp_session(page)
            try:
                await asyncio.wait_for(cdp.send("Page.stopLoading"), 5)
            finally:
                await asyncio.wait_for(cdp.detach(), 5)

    async def finish_downloads_soon(self) -> None:
        """Give a download that just started a moment to be noticed."""
        for _ in range(20):
            if self._downloads:
                return
            await asyncio.sleep(0.05)

    async def go_back(self) -> str:
        page = self.page
        await self._goto(page.go_back(wait_until="domcontentloaded"), page.url)
        return f"Went back to {self.page.url}"

    def _element(self, index: int) -> Any:
        return self.page.locator(f'[data-tc-index="{int(index)}"]').first

    async def _require(self, index: int) -> Any:
        element = self._element(index)
        if not await element.count():
            raise ActionError(f"there is no element with index {index} on the page")
        return element

    async def click(self, index: int) -> str:
        from playwright.async_api import Error as PlaywrightError

        element = await self._require(index)
        pages_before = len(self._context.pages)
        try:
            await element.click()
        except PlaywrightError as e:
            raise ActionError(f"could not click element {index}: {_first_line(e)}") from None
        await asyncio.sleep(0.2)
        with contextlib.suppress(Exception):
            await self.page.wait_for_load_state("domcontentloaded",
                                                timeout=self.options.page_load_timeout * 1000)
        if len(self._context.pages) > pages_before:
            self._page = self._context.pages[-1]
            return f"Clicked element {index}; it opened a new tab"
        return f"Clicked element {index}"

    async def type_text(self, index: int, text: str, *, clear: bool = True) -> str:
        from playwright.async_api import Error as PlaywrightError

        element = await self._require(index)
        try:
            if clear:
                await element.fill(text)
            else:
                await element.press_sequentially(text)
        except PlaywrightError as e:
            raise ActionError(f"could not type into element {index}: {_first_line(e)}") from None
        return f"Typed {text!r} into element {index}"

    async def send_keys(self, keys: str) -> str:
        from playwright.async_api import Error as PlaywrightError

        try:
            await self.page.keyboard.press(keys)
        except PlaywrightError as e:
            raise ActionError(f"could not press {keys!r}: {_first_line(e)}") from None
        await asyncio.sleep(0.2)
        return f"Pressed {keys}"

    async def scroll(self, *, down: bool = True, pages: float = 1.0) -> str:
        await self.page.evaluate("(d) => window.scrollBy(0, d * window.innerHeight)", (1 if down else -1) * pages)
        return f"Scrolled {'down' if down else 'up'} {pages:g} page(s)"

    async def upload(self, index: int, path: str) -> str:
        from playwright.async_api import Error as PlaywrightError

        element = await self._require(index)
        try:
            await element.set_input_files(path)
        except PlaywrightError as e:
            raise ActionError(f"could not upload to element {index}: {_first_line(e)}") from None
        return f"Uploaded {os.path.basename(path)} to element {index}"

    async def dropdown_options(self, index: int) -> str:
        element = await self._require(index)
        options = await element.evaluate("(e) => Array.from(e.options || []).map(o => o.text)")
        if not options:
            raise ActionError(f"element {index} is not a dropdown")
        return f"Options of element {index}: " + ", ".join(repr(o) for o in options)

    async def select_option(self, index: int, text: str) -> str:
        from playwright.async_api import Error as PlaywrightError

        element = await self._require(index)
        try:
            await element.select_option(label=text)
        except PlaywrightError:
            try:
                await element.select_option(value=text)
            except PlaywrightError as e:
                raise ActionError(f"could not select {text!r} in element {index}: {_first_line(e)}") from None
        return f"Selected {text!r} in element {index}"

    async def switch(self, tab_id: str) -> str:
        for page in self._context.pages:
            if self._tab_id(page) == tab_id:
                self._page = page
                await page.bring_to_front()
                return f"Switched to tab {tab_id}"
        raise ActionError(f"there is no tab {tab_id}")

    async def close_tab(self, tab_id: str) -> str:
        for page in self._context.pages:
            if self._tab_id(page) == tab_id:
                await page.close()
                return f"Closed tab {tab_id}"
        raise ActionError(f"there is no tab {tab_id}")


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "message", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _display(url: str) -> str:
    """A URL without credentials or query, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else url
