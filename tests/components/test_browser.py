"""Browser: a scripted model drives Debian's Chromium over pages served on loopback."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from taskcanvas.components import _browser_session
from taskcanvas.config import Settings
from taskcanvas.files import LocalBlobStore
from taskcanvas.llm.retry import RetryPolicy
from taskcanvas.runtime.engine import Limits
from taskcanvas.testing.model_server import Reply, Rule, ScriptedModelServer
from tests.support.canvas import build, cpn, make_canvas, run_turn
from tests.support.models import ServerModels

needs_chromium = pytest.mark.skipif(
    not os.path.exists("/usr/bin/chromium") and not os.environ.get("CI"),
    reason="Debian's Chromium is not installed (apt-get install chromium); CI installs it (.ci/services.sh)")

PAGES: dict[str, tuple[int, dict[str, str], bytes]] = {
    "/": (200, {"Content-Type": "text/html"}, b"""<html><head><title>Start</title></head><body>
        <h1>Welcome</h1><p>The secret word is <b>pineapple</b>.</p>
        <a href="/next">Next page</a>
        <button onclick="document.getElementById('out').textContent = 'Button pressed: 42'">Press me</button>
        <div id="out"></div></body></html>"""),
    "/next": (200, {"Content-Type": "text/html"},
              b"<html><body><p>Second page says: the answer is forty-two.</p></body></html>"),
    "/downloads": (200, {"Content-Type": "text/html"},
                   b'<html><body><a href="/report.csv">Get the report</a></body></html>'),
    "/report.csv": (200, {"Content-Type": "text/csv", "Content-Disposition": 'attachment; filename="report.csv"'},
                    b"name,score\nada,42\n"),
    "/mixed": (200, {"Content-Type": "text/html"}, b"""<html><body><p>Allowed page</p>
        <img src="http://127.0.0.2:9/pixel.png"><script>new WebSocket("ws://127.0.0.2:9/socket");</script>
        </body></html>"""),
    "/upload": (200, {"Content-Type": "text/html"}, b"""<html><body>
        <input type="file" id="f" onchange="document.getElementById('got').textContent = 'Chosen: ' + this.files[0].name
          + ' (' + this.files[0].size + ' bytes)'"><div id="got"></div></body></html>"""),
}


class _Site(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.release = threading.Event()
        self.hits: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: _Site

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.hits.append(self.path)
        if self.path == "/hang":  # a page that never answers (until the test ends)
            self.server.release.wait(60)
            return
        status, headers, body = PAGES.get(self.path, (404, {"Content-Type": "text/plain"}, b"not found"))
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def site() -> Iterator[_Site]:
    server = _Site()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as srv:
        yield srv


def step(*actions: dict[str, Any], goal: str = "") -> Reply:
    """A browser-use style answer: the step's thoughts and its actions."""
    return Reply(text=json.dumps({"thinking": "", "evaluation_previous_goal": "ok", "memory": "",
                                  "next_goal": goal, "action": list(actions)}))


def done(text: str, success: bool = True) -> Reply:
    return step({"done": {"text": text, "success": success}})


def click(label: str) -> Any:
    """A reply clicking the element whose text is ``label``, by the index the prompt shows."""
    def reply(request: dict[str, Any]) -> Reply:
        page = request["messages"][-1]["content"]
        found = re.search(r"\[(\d+)\]<\w+[^>]*>" + re.escape(label) + "<", page)
        assert found, f"no element {label!r} in the prompt:\n{page}"
        return step({"click": {"index": int(found.group(1))}})
    return reply


def user_text(request: dict[str, Any]) -> str:
    return str(request["messages"][-1]["content"])


def engine(model: ScriptedModelServer, tmp_path: Path, params: dict[str, Any] | None = None, *,
           allow_private: bool = True, allowed_hosts: tuple[str, ...] = (), message: bool = False,
           limits: Limits | None = None) -> Any:
    comps = {"begin": cpn("Begin", down=["browser"]),
             "browser": cpn("Browser", {"llm_id": "m", "page_load_timeout": 5, **(params or {})},
                            down=["msg"] if message else [])}
    if message:
        comps["msg"] = cpn("Message", {"content": ["{browser@content}"]})
    services = {"models": ServerModels(model, retry=RetryPolicy(max_retries=0)),
                "settings": Settings(data_dir=tmp_path, http_allow_private=allow_private,
                                     http_allowed_hosts=allowed_hosts),
                "files": LocalBlobStore(tmp_path / "files")}
    return build(make_canvas(comps), services=services, limits=limits or Limits())


# --------------------------------------------------------------------------- with Chromium
@needs_chromium
async def test_the_model_reads_clicks_and_reports_what_the_pages_said(
        model: ScriptedModelServer, site: _Site, tmp_path: Path) -> None:
    model.add(Rule(done("The answer is forty-two; the button said 42; the secret is pineapple."),
                   last_user_contains="Second page says"))
    model.add(Rule(click("Next page"), last_user_contains="Button pressed: 42"))
    model.add(Rule(click("Press me"), last_user_contains="Press me"))
    model.add(Rule(step({"navigate": {"url": site.url + "/"}}), times=1))
    turn = await run_turn(engine(model, tmp_path, message=True), query=f"Visit {site.url}/ and tell me the answer")
    assert turn.state.error("browser") is None
    content = turn.output("browser", "content")
    assert content == "The answer is forty-two; the button said 42; the secret is pineapple."
    assert turn.text == content
    assert turn.output("browser", "downloaded_files") == []
    assert len(model.requests) == 4
    first, second = user_text(model.requests[0]), user_text(model.requests[1])
    assert f"Visit {site.url}/ and tell me the answer" in first
    assert "Step 1 of 30" in first
    assert "The secret word is pineapple." in second and "Navigated to" in second
    assert "Second page says: the answer is forty-two." in user_text(model.requests[3])
    assert model.requests[0]["messages"][0]["role"] == "system"
    assert '"action"' in model.requests[0]["messages"][0]["content"]


@needs_chromium
async def test_a_downloaded_file_lands_in_the_store(model: ScriptedModelServer, site: _Site, tmp_path: Path) -> None:
    model.add(Rule(done("Downloaded the report."), last_user_contains="Action 1/1: Clicked"))
    model.add(Rule(click("Get the report"), last_user_contains="Get the report"))
    model.add(Rule(step({"navigate": {"url": site.url + "/downloads"}}), times=1))
    turn = await run_turn(engine(model, tmp_path), query="Download the report")
    assert turn.state.error("browser") is None
    assert turn.output("browser", "content") == "Downloaded the report."
    files = turn.output("browser", "downloaded_files")
    assert len(files) == 1
    entry = files[0]
    assert entry["name"] == "report.csv" and entry["size"] == len(b"name,score\nada,42\n")
    assert set(entry) >= {"file_id", "name", "size", "parent_id"}
    store = LocalBlobStore(tmp_path / "files")
    assert await store.get(entry["file_id"]) == b"name,score\nada,42\n"
    assert (await store.info(entry["file_id"])).mime_type == "text/csv"


@needs_chromium
async def test_a_stored_file_is_uploaded_into_a_form(model: ScriptedModelServer, site: _Site, tmp_path: Path) -> None:
    blob = await LocalBlobStore(tmp_path / "files").put(b"hello upload", filename="note.txt")

    def upload(request: dict[str, Any]) -> Reply:
        page = user_text(request)
        path = re.search(r"local_path=(\S+)", page)
        index = re.search(r'\[(\d+)\]<input type="file"', page)
        assert path and index, page
        return step({"upload_file": {"index": int(index.group(1)), "path": path.group(1)}})

    model.add(Rule(done("Uploaded note.txt."), last_user_contains="Chosen: note.txt (12 bytes)"))
    model.add(Rule(upload, last_user_contains='type="file"'))
    model.add(Rule(step({"navigate": {"url": site.url + "/upload"}}), times=1))
    turn = await run_turn(engine(model, tmp_path, {"upload_sources": [{"file_id": blob.id}]}), query="Upload it")
    assert turn.state.error("browser") is None
    assert turn.output("browser", "content") == "Uploaded note.txt."
    assert f"file_id={blob.id}, name=note.txt" in user_text(model.requests[0])


@needs_chromium
async def test_a_page_that_never_loads_fails_the_component(
        model: ScriptedModelServer, site: _Site, tmp_path: Path) -> None:
    model.add(Rule(step({"navigate": {"url": site.url + "/hang"}})))
    turn = await run_turn(engine(model, tmp_path, {"page_load_timeout": 1}), query="Open the slow page")
    error = turn.state.error("browser")
    assert error is not None
    assert error.startswith("Browser: stopped after 5 failed steps in a row")
    assert f"the page {site.url}/hang did not load within 1 seconds" in error
    assert "did not load within 1 seconds" in user_text(model.requests[1]), "the model is told each time"
    assert turn.output("browser", "content") in (None, "")


@needs_chromium
async def test_the_time_limit_stops_the_browser(model: ScriptedModelServer, site: _Site, tmp_path: Path) -> None:
    model.add(Rule(step({"navigate": {"url": site.url + "/hang"}})))
    turn = await run_turn(engine(model, tmp_path, {"page_load_timeout": 60}, limits=Limits(timeouts={"Browser": 4})),
                          query="Open the slow page")
    assert turn.state.error("browser") == "timed out after 4 seconds"
    assert len(model.requests) == 1, "the step that was under way was the last"


@needs_chromium
async def test_max_steps_is_honoured(model: ScriptedModelServer, site: _Site, tmp_path: Path) -> None:
    model.add(Rule(step({"navigate": {"url": site.url + "/"}})))
    turn = await run_turn(engine(model, tmp_path, {"max_steps": 2}), query="Never finish")
    assert len(model.requests) == 2
    assert "Step 2 of 2" in user_text(model.requests[1])
    assert "this is your last step" in user_text(model.requests[1])
    assert turn.state.error("browser") == "Browser: the task was not done within max_steps (2 steps)"


@needs_chromium
async def test_loopback_pages_are_refused_unless_private_hosts_are_allowed(
        model: ScriptedModelServer, site: _Site, tmp_path: Path) -> None:
    model.add(Rule(done("The page was blocked.", success=False), last_user_contains="blocked by the SSRF guard"))
    model.add(Rule(step({"navigate": {"url": site.url + "/next"}}), times=1))
    turn = await run_turn(engine(model, tmp_path, allow_private=False), query="Open the local page")
    assert turn.output("browser", "content") == "The page was blocked."
    assert "127.0.0.1 is not a public address" in user_text(model.requests[1])
    assert "/next" not in site.hits


@needs_chromium
async def test_an_allowed_page_cannot_reach_other_private_hosts(
        model: ScriptedModelServer, site: _Site, tmp_path: Path) -> None:
    model.add(Rule(done("Seen."), last_user_contains="Step 3 of"))
    model.add(Rule(step({"wait": {"seconds": 1}}), last_user_contains="Allowed page"))
    model.add(Rule(step({"navigate": {"url": site.url + "/mixed"}}), times=1))
    turn = await run_turn(engine(model, tmp_path, allow_private=False, allowed_hosts=("127.0.0.1",)),
                          query="Open the page")
    assert turn.output("browser", "content") == "Seen."
    told = "\n".join(user_text(r) for r in model.requests)
    assert "http://127.0.0.2:9/pixel.png (127.0.0.2 is not a public address)" in told
    assert "ws://127.0.0.2:9/socket (127.0.0.2 is not a public address)" in told


@needs_chromium
async def test_the_model_failing_fails_the_component(model: ScriptedModelServer, tmp_path: Path) -> None:
    model.add(Rule(Reply.fail(500, "the model is down")))
    turn = await run_turn(engine(model, tmp_path), query="Anything")
    error = turn.state.error("browser")
    assert error is not None and error.startswith("Browser: the model failed:") and "the model is down" in error


@needs_chromium
async def test_answers_that_are_not_actions_are_told_to_the_model(
        model: ScriptedModelServer, tmp_path: Path) -> None:
    model.add(Rule(done("Recovered."), last_user_contains="not a JSON object"))
    model.add(Rule("I will browse now.", times=1))
    turn = await run_turn(engine(model, tmp_path), query="Anything")
    assert turn.output("browser", "content") == "Recovered."


# --------------------------------------------------------------------------- without Chromium
async def test_no_chromium_is_a_clear_error(model: ScriptedModelServer, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_browser_session, "CHROMIUM_CANDIDATES", ())
    monkeypatch.setenv("PATH", str(tmp_path))
    turn = await run_turn(engine(model, tmp_path), query="Anything")
    error = turn.state.error("browser")
    assert error is not None and error.startswith("Browser: no Chromium found: install it")
    assert model.requests == []


async def test_a_chromium_that_does_not_start_is_a_clear_error(model: ScriptedModelServer, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[browser]\nexecutable = "/bin/false"\n', encoding="utf-8")
    settings = Settings.load({"TASKCANVAS_DATA_DIR": str(tmp_path), "TASKCANVAS_CONFIG": str(config)})
    dsl = make_canvas({"begin": cpn("Begin", down=["browser"]), "browser": cpn("Browser", {"llm_id": "m"})})
    run = build(dsl, services={"models": ServerModels(model), "settings": settings})
    turn = await run_turn(run, query="Anything")
    error = turn.state.error("browser")
    assert error is not None and error.startswith("Browser: Chromium (/bin/false) did not start")


def test_params_are_checked() -> None:
    from taskcanvas.dsl.errors import DslError

    for bad in ({"max_steps": 0}, {"prompts": ""}, {"page_load_timeout": 0}):
        dsl = make_canvas({"begin": cpn("Begin", down=["b"]), "b": cpn("Browser", {"llm_id": "m", **bad})})
        with pytest.raises(DslError):
            build(dsl)


def test_upload_sources_are_read_as_ragflow_reads_them() -> None:
    from taskcanvas.components.browser import _source_refs
    from taskcanvas.runtime.state import RunState

    state = RunState(components={}, globals={"sys.files": ["f1", "https://example.com/a.pdf"]})
    assert _source_refs("{sys.files}", state) == ["f1", "https://example.com/a.pdf"]
    assert _source_refs('["a", {"file_id": "b"}, {"url": "https://x.test/c"}]', state) == ["a", "b", "https://x.test/c"]
    assert _source_refs("a, b,a", state) == ["a", "b"]
    assert _source_refs([{"name": "n", "other": "z"}], state) == ["n", "z"]


def test_the_example_canvas_builds() -> None:
    from taskcanvas.components.browser import BrowserParams

    example = Path(__file__).resolve().parents[2] / "examples" / "browser.json"
    engine = build(json.loads(example.read_text(encoding="utf-8")))
    params = engine.canvas.components["Browser:Web"].params
    assert isinstance(params, BrowserParams) and params.prompts == "{sys.query}" and params.max_steps == 15
