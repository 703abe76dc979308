"""The Browser component's step loop: the model looks at the page and answers with actions.

It speaks browser-use's protocol (the library ragflow's Browser runs), so a model prompted for
one behaves the same with the other: each step the model gets the task, the history of its
earlier steps and the page (URL, tabs, numbered interactive elements, text), and answers with
one JSON object — ``thinking``, ``evaluation_previous_goal``, ``memory``, ``next_goal`` and an
``action`` list such as ``[{"navigate": {"url": "..."}}, {"click": {"index": 3}}]``. The task
ends with the ``done`` action, whose ``text`` is the result (browser-use's ``final_result``).

The loop ends with a :class:`BrowserFailure` when the model fails, when ``max_failures`` steps
in a row went wrong, or when ``max_steps`` pass without ``done``.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import json_repair

from taskcanvas.components._browser_session import ActionError, BrowserFailure, BrowserSession
from taskcanvas.llm.errors import ModelError
from taskcanvas.llm.protocol import ChatModel, ChatResponse, GenerationOptions, Message

_log = logging.getLogger(__name__)

MAX_ACTIONS_PER_STEP = 5
MAX_FAILURES = 5
"""Steps in a row that may go wrong (browser-use's ``max_failures``)."""

_ALIASES = {
    "go_to_url": "navigate", "open_tab": "navigate", "click_element_by_index": "click", "click_element": "click",
    "input_text": "input", "switch_tab": "switch", "close_tab": "close", "extract_content": "extract",
    "extract_structured_data": "extract", "get_dropdown_options": "dropdown_options",
    "select_dropdown_option": "select_dropdown", "scroll_down": "scroll", "scroll_up": "scroll",
}

_ACTIONS = """\
- navigate: {"url": string, "new_tab": bool = false} — open a URL.
- click: {"index": int} — click the element with this index.
- input: {"index": int, "text": string, "clear": bool = true} — type into a field.
- send_keys: {"keys": string} — press keys (Enter, Escape, PageDown, Control+a).
- scroll: {"down": bool = true, "pages": number = 1} — scroll the page.
- go_back: {} — go back in history.
- wait: {"seconds": int = 3} — wait for the page.
- extract: {"query": string} — read the whole page text (shown in the next step).
- search: {"query": string, "engine": "duckduckgo" | "google" | "bing"} — search the web.
- switch: {"tab_id": string} / close: {"tab_id": string} — change or close a tab.
- dropdown_options: {"index": int} / select_dropdown: {"index": int, "text": string}.
- upload_file: {"index": int, "path": string} — upload one of the available files.
- done: {"text": string, "success": bool = true} — finish and give the user the result."""

SYSTEM_PROMPT = f"""\
You are a browser agent. You reach the goal in <user_request> by acting on a web browser, step \
by step. Each step you get <agent_history> (your earlier steps and what their actions did), \
<agent_state> (the request, files you may upload, the step count) and <browser_state> (the \
current URL, the open tabs, the interactive elements as [index]<tag>text</tag>, and the page text).

Rules:
- Only use element indexes that <browser_state> shows; they change when the page changes.
- Actions run in order; after an action that changes the page the rest of the list is skipped.
- If the page has not loaded yet, use wait. If an action fails, try another way.
- Call done when the request is fulfilled, when it cannot be, or at the last step; put everything \
the user asked for in its text and set success to false if anything is missing.

Actions (one key per action object):
{_ACTIONS}

Always answer with one valid JSON object and nothing else:
{{
  "thinking": "your reasoning",
  "evaluation_previous_goal": "did the last action work: success, failure or uncertain",
  "memory": "what to remember about progress so far",
  "next_goal": "the next immediate goal",
  "action": [{{"navigate": {{"url": "https://example.com"}}}}]
}}
The action list must never be empty."""

LAST_STEP = ("You reached max_steps - this is your last step. Your only available action is done: "
             "report what you found, with success false if the request is not complete.")


@dataclass
class StepRecord:
    number: int
    evaluation: str = ""
    memory: str = ""
    next_goal: str = ""
    results: list[str] = field(default_factory=list)
    error: str | None = None

    def render(self) -> str:
        lines = [f"<step_{self.number}>"]
        if self.error and not self.results:
            lines.append(f"Error: {self.error}")
        else:
            lines += [f"Evaluation of Previous Step: {self.evaluation}", f"Memory: {self.memory}",
                      f"Next Goal: {self.next_goal}", "Action Results:", *self.results]
        lines.append(f"</step_{self.number}>")
        return "\n".join(lines)


@dataclass
class Outcome:
    """How the task ended: the ``done`` text, whether the model called it a success, the steps taken."""

    text: str
    success: bool
    steps: list[StepRecord]


class StepLoop:
    """Runs one browser task; see the module docstring."""

    def __init__(self, session: BrowserSession, model: ChatModel, task: str, *, max_steps: int,
                 options: GenerationOptions | None = None, available_files: list[str] | None = None,
                 on_response: Callable[[ChatResponse], None] | None = None,
                 should_stop: Callable[[], Awaitable[None]] | None = None) -> None:
        self.session = session
        self.model = model
        self.task = task
        self.max_steps = max_steps
        self.options = options or GenerationOptions()
        self.available_files = list(available_files or [])
        self.on_response = on_response
        self.should_stop = should_stop
        self.steps: list[StepRecord] = []
        self._read_state = ""

    async def run(self) -> Outcome:
        failures = 0
        last_error = ""
        for number in range(1, self.max_steps + 1):
            if self.should_stop is not None:
                await self.should_stop()
            record = StepRecord(number)
            self.steps.append(record)
            last = number == self.max_steps
            reply = await self._ask(await self._messages(number, last))
            try:
                decision = _parse(reply)
                record.evaluation = str(decision.get("evaluation_previous_goal") or "")
                record.memory = str(decision.get("memory") or "")
                record.next_goal = str(decision.get("next_goal") or "")
                actions = _actions(decision)
                if last and any(name != "done" for name, _ in actions):
                    raise BrowserFailure(f"the task was not done within max_steps ({self.max_steps} steps)")
                outcome = await self._act(record, actions)
            except ActionError as e:
                record.error = str(e)
                outcome = None
            if outcome is not None:
                return outcome
            if record.error:
                failures += 1
                last_error = record.error
                if failures >= MAX_FAILURES:
                    raise BrowserFailure(f"stopped after {failures} failed steps in a row; the last: {last_error}")
            else:
                failures = 0
        detail = f" (the last error: {last_error})" if last_error and failures else ""
        raise BrowserFailure(f"the task was not done within max_steps ({self.max_steps} steps){detail}")

    async def _ask(self, messages: list[Message]) -> str:
        try:
            response = await self.model.chat(messages, options=self.options)
        except ModelError as e:
            raise BrowserFailure(f"the model failed: {e}") from None
        if self.on_response is not None:
            self.on_response(response)
        if "**ERROR**" in response.content:
            raise BrowserFailure(f"the model failed: {response.content}")
        return response.content

    async def _messages(self, number: int, last: bool) -> list[Message]:
        state = await self.session.state()
        history = "\n".join(s.render() for s in self.steps[:-1]) or "(no steps yet)"
        files = "\n".join(self.available_files)
        now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
        parts = [f"<agent_history>\n{history}\n</agent_history>",
                 "<agent_state>", f"<user_request>\n{self.task}\n</user_request>"]
        if files:
            parts.append(f"<available_file_paths>\n{files}\n</available_file_paths>")
        parts += [f"<step_info>Step {number} of {self.max_steps} max possible steps\nCurrent date and time: {now}"
                  "</step_info>", "</agent_state>", f"<browser_state>\n{state.render()}\n</browser_state>"]
        if self._read_state:
            parts.append(f"<read_state>\n{self._read_state}\n</read_state>")
            self._read_state = ""
        if last:
            parts.append(LAST_STEP)
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n".join(parts)}]

    async def _act(self, record: StepRecord, actions: list[tuple[str, dict[str, Any]]]) -> Outcome | None:
        total = len(actions)
        for i, (name, args) in enumerate(actions, 1):
            url_before = self.session.page.url if self.session.page is not None else ""
            if name == "done":
                text = str(args.get("text") or "")
                record.results.append(f"Action {i}/{total}: done")
                return Outcome(text.strip(), bool(args.get("success", True)), self.steps)
            try:
                result = await self._run(name, args)
            except ActionError as e:
                record.results.append(f"Action {i}/{total}: {name} failed: {e}")
                record.error = str(e)
                return None
            blocked = self.session.take_blocked()
            if blocked:
                result += f" (requests blocked by the SSRF guard: {'; '.join(blocked)})"
            record.results.append(f"Action {i}/{total}: {result}")
            page = self.session.page
            if i < total and page is not None and page.url != url_before:
                record.results.append(f"The page changed: the remaining {total - i} action(s) were skipped")
                return None
        return None

    async def _run(self, name: str, args: Mapping[str, Any]) -> str:
        s = self.session
        try:
            if name == "navigate":
                return await s.navigate(str(args["url"]), new_tab=bool(args.get("new_tab", False)))
            if name == "search":
                return await s.navigate(_search_url(str(args["query"]), str(args.get("engine") or "duckduckgo")))
            if name == "click":
                return await s.click(int(args["index"]))
            if name == "input":
                return await s.type_text(int(args["index"]), str(args["text"]), clear=bool(args.get("clear", True)))
            if name == "send_keys":
                return await s.send_keys(str(args["keys"]))
            if name == "scroll":
                return await s.scroll(down=bool(args.get("down", True)), pages=float(args.get("pages", 1.0)))
            if name == "go_back":
                return await s.go_back()
            if name == "wait":
                seconds = min(max(int(args.get("seconds", 3)), 0), 30)
                await asyncio.sleep(seconds)
                return f"Waited {seconds} seconds"
            if name == "extract":
                state = await s.state()
                self._read_state = f"Page text of {state.url} for {args.get('query', '')!r}:\n{state.text}"
                return "Read the page text (shown in <read_state>)"
            if name == "switch":
                return await s.switch(str(args["tab_id"]))
            if name == "close":
                return await s.close_tab(str(args["tab_id"]))
            if name == "dropdown_options":
                return await s.dropdown_options(int(args["index"]))
            if name == "select_dropdown":
                return await s.select_option(int(args["index"]), str(args["text"]))
            if name == "upload_file":
                path = str(args["path"])
                if path not in self.available_files:
                    raise ActionError(f"{path} is not one of the available files")
                return await s.upload(int(args["index"]), path)
        except (KeyError, TypeError, ValueError) as e:
            raise ActionError(f"invalid parameters for {name}: {e!r}") from None
        raise ActionError(f"unknown action {name!r}")


def _parse(reply: str) -> dict[str, Any]:
    from taskcanvas.components.llm import clean_json_answer

    text = clean_json_answer(reply).strip()
    if not text:
        raise ActionError("the answer was empty; answer with the JSON object")
    try:
        data = json.loads(text)
    except ValueError:
        try:
            data = json_repair.loads(text)
        except Exception:
            data = None
    if not isinstance(data, dict):
        raise ActionError("the answer was not a JSON object with an action list")
    return data


def _actions(decision: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    raw = decision.get("action")
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise ActionError("the action list was missing or empty")
    actions: list[tuple[str, dict[str, Any]]] = []
    for item in raw[:MAX_ACTIONS_PER_STEP]:
        if not isinstance(item, dict) or len(item) != 1:
            raise ActionError(f"each action is an object with one key, not {json.dumps(item)[:200]}")
        ((key, args),) = item.items()
        name = str(key)
        canonical = _ALIASES.get(name, name)
        params = dict(args) if isinstance(args, dict) else {}
        if name == "scroll_up":
            params.setdefault("down", False)
        actions.append((canonical, params))
    return actions


def _search_url(query: str, engine: str) -> str:
    from urllib.parse import quote_plus

    q = quote_plus(query)
    if engine == "google":
        return f"https://www.google.com/search?q={q}&udm=14"
    if engine == "bing":
        return f"https://www.bing.com/search?q={q}"
    return f"https://duckduckgo.com/?q={q}"
