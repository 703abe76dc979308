"""Task names: coder's NameValid table, the display-name limit, and every naming strategy.

The Anthropic strategy runs against the replay server on 127.0.0.1 speaking the Messages API
(non-streamed JSON answers), so the real SDK and HTTP stack are exercised.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import pytest

from taskcanvas.service.errors import Invalid
from taskcanvas.service.naming import (
    DEFAULT_ANTHROPIC_MODEL,
    TaskName,
    check_display_name,
    check_task_name,
    generate,
    generate_seed_name,
    name_error,
)
from tests.support.replay import ReplayServer, Reply

KEY = "sk-ant-naming-4242"
MESSAGES = "/v1/messages"
SUFFIX = r"-[0-9a-f]{4}"


def anthropic_env(server: ReplayServer, **extra: str) -> dict[str, str]:
    return {"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": server.base, **extra}


def message(text: str) -> dict[str, Any]:
    """A Messages API answer whose one text block is ``text``."""
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 5}}


def answers(server: ReplayServer, text: str, **reply: Any) -> None:
    server.route("POST", MESSAGES, Reply(200, message(text), **reply))


def assert_named(named: TaskName, stem: str, display: str) -> None:
    assert re.fullmatch(re.escape(stem) + SUFFIX, named.name), named
    assert name_error(named.name) is None
    assert named.display_name == display


def assert_random(named: TaskName) -> None:
    """The last-resort strategy: ``adjective-surname-xxxx``, display name made of the same words."""
    assert re.fullmatch(r"[a-z]+-[a-z]+" + SUFFIX, named.name), named
    assert name_error(named.name) is None
    stem = named.name[:-5]
    assert named.display_name == stem.replace("-", " ").capitalize()


# ---------------------------------------------------------------------------- NameValid
@pytest.mark.parametrize("name, reason", [
    ("a-valid-task-name", None),
    ("a", None),
    ("A1-b2-C3", None),
    ("New", None),  # the reserved words are matched exactly, as coder does
    ("x" * 32, None),
    ("x" * 33, "must be <= 32 characters"),
    ("ü" * 17, "must be <= 32 characters"),  # bytes, not characters
    ("", "must be >= 1 character"),
    ("new", 'cannot use "new" as a name'),
    ("create", 'cannot use "create" as a name'),
    ("this is not a valid task name", "must be alphanumeric with hyphens"),
    ("-leading", "must be alphanumeric with hyphens"),
    ("trailing-", "must be alphanumeric with hyphens"),
    ("double--hyphen", "must be alphanumeric with hyphens"),
    ("under_score", "must be alphanumeric with hyphens"),
    ("café", "must be alphanumeric with hyphens"),
    ("name\n", "must be alphanumeric with hyphens"),
])
def test_name_error_is_coders_name_valid(name: str, reason: str | None) -> None:
    assert name_error(name) == reason


def test_a_chosen_name_coder_refuses_is_invalid_with_the_reason_as_detail() -> None:
    check_task_name("a-valid-task-name")
    with pytest.raises(Invalid) as caught:
        check_task_name("this is not a valid task name")
    error = caught.value
    assert (error.status_code, error.message, error.field) == (400, "Unable to create a Task with the provided name.",
                                                               "name")
    assert error.detail == "must be alphanumeric with hyphens"


@pytest.mark.parametrize("given, kept", [
    ("  Fix the login page  ", "Fix the login page"),
    ("x" * 64, "x" * 64),
    ("   ", ""),
    ("", ""),
])
def test_display_names_are_trimmed(given: str, kept: str) -> None:
    assert check_display_name(given) == kept


@pytest.mark.parametrize("given", ["x" * 65, "é" * 33, " " + "y" * 65 + " "])
def test_display_names_over_64_bytes_are_refused(given: str) -> None:
    with pytest.raises(Invalid) as caught:
        check_display_name(given)
    assert (caught.value.message, caught.value.field) == ("Display name must be 64 characters or less.",
                                                          "display_name")


# ---------------------------------------------------------------------------- from the prompt (§7.1, §11 case 51)
@pytest.mark.parametrize("prompt, stem, display", [
    ("BUILD MY APP", "build-my-app", "BUILD MY APP"),
    ("fix user's dashboard", "fix-users-dashboard", "Fix user's dashboard"),
    ("build    my    app", "build-my-app", "Build    my    app"),
    ("build\nmy\napp", "build-my-app", "Build my app"),
    ("a" * 100, "a" * 27, "A" + "a" * 62 + "…"),
    ("implement real-time notifications dashboard", "implement-real-time",
     "Implement real-time notifications dashboard"),
    ("  Fix -- the _bug_ in auth!  ", "fix-the-bug-in", "Fix -- the _bug_ in auth!"),  # 29 bytes: cut at 27
    ("Refactor the payment service so that every retry is idempotent and logged",
     "refactor-the-payment", "Refactor the payment service so that every retry is idempotent…"),
])
async def test_without_a_model_the_name_comes_from_the_prompt(prompt: str, stem: str, display: str) -> None:
    assert_named(await generate(prompt, environ={}), stem, display)


@pytest.mark.parametrize("prompt", ["", "     ", "!@#$%^&*()", "修复登录页面", "\n\t\r"])
async def test_a_prompt_without_usable_words_gets_a_random_name(prompt: str) -> None:
    assert_random(await generate(prompt, environ={}))


async def test_random_names_are_always_valid() -> None:
    for _ in range(300):
        assert_random(await generate("", environ={}))


async def test_two_tasks_with_one_prompt_rarely_share_a_name() -> None:
    names = {(await generate("build my app", environ={})).name for _ in range(20)}
    assert len(names) > 1


# ---------------------------------------------------------------------------- from Anthropic
@pytest.mark.parametrize("answer", [
    '{"display_name": "Fix bug", "task_name": "fix-bug"}',
    '```json\n{"display_name": "Fix bug", "task_name": "fix-bug"}\n```',
    '```\n{"display_name": "Fix bug", "task_name": "fix-bug"}\n```',
    '  \n```json {"display_name": " Fix bug ", "task_name": " fix-bug "}```\n',
    '{"display_name": "fix bug", "task_name": "fix-bug"}',
])
async def test_the_model_names_the_task_when_a_key_is_set(replay: ReplayServer, answer: str) -> None:
    answers(replay, answer)
    named = await generate("There is a bug in the login form, please fix it", environ=anthropic_env(replay))
    assert_named(named, "fix-bug", "Fix bug")
    sent = replay.only()
    body = sent.json()
    assert KEY in (sent.headers.get("x-api-key"), sent.headers.get("authorization", "").removeprefix("Bearer "))
    assert (body["model"], body["max_tokens"]) == (DEFAULT_ANTHROPIC_MODEL, 100)
    assert "task_name" in body["system"] and "display_name" in body["system"]
    assert body["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "There is a bug in the login form, please fix it"}]}]


async def test_the_model_can_be_chosen(replay: ReplayServer) -> None:
    answers(replay, '{"display_name": "Fix bug", "task_name": "fix-bug"}')
    await generate("fix the bug", environ=anthropic_env(replay, ANTHROPIC_MODEL="claude-test-model"))
    assert replay.only().json()["model"] == "claude-test-model"


async def test_a_long_model_name_is_cut_to_27_bytes_without_a_trailing_hyphen(replay: ReplayServer) -> None:
    answers(replay, '{"display_name": "Long", "task_name": "refactor-payment-service-x-retries"}')
    named = await generate("refactor it", environ=anthropic_env(replay))
    assert_named(named, "refactor-payment-service-x", "Long")  # 27 bytes end in "-", which is dropped


@pytest.mark.parametrize("answer", [
    '{"display_name": "Task Unnamed", "task_name": "task-unnamed"}',
    '{"display_name": "Fix bug", "task_name": ""}',
    '{"display_name": "", "task_name": "fix-bug"}',
    '{"display_name": "Fix bug", "task_name": "fix_bug"}',
    '{"display_name": "Fix bug"}',
    '["fix-bug"]',
    "Sure! Here is a name: fix-bug",
    "",
])
async def test_an_unusable_answer_falls_back_to_the_prompt(replay: ReplayServer, answer: str,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    answers(replay, answer)
    with caplog.at_level(logging.WARNING, logger="taskcanvas.service.naming"):
        named = await generate("fix the login form", environ=anthropic_env(replay))
    assert_named(named, "fix-the-login-form", "Fix the login form")
    assert "unable to generate task name and display name from Anthropic" in caplog.text


async def test_a_failing_server_falls_back_to_the_prompt_once_without_leaking_the_key(
        replay: ReplayServer, caplog: pytest.LogCaptureFixture) -> None:
    replay.route("POST", MESSAGES, Reply(500, {"type": "error", "error": {"type": "api_error",
                                                                          "message": f"boom for {KEY}"}}))
    with caplog.at_level(logging.INFO, logger="taskcanvas.service.naming"):
        named = await generate("fix the login form", environ=anthropic_env(replay))
    assert_named(named, "fix-the-login-form", "Fix the login form")
    assert len(replay.requests) == 1  # no retries: naming must not hold up a create
    assert "unable to generate task name and display name from Anthropic" in caplog.text
    assert KEY not in caplog.text


async def test_a_hanging_server_falls_back_to_the_prompt_in_time(replay: ReplayServer) -> None:
    answers(replay, '{"display_name": "Fix bug", "task_name": "fix-bug"}', delay=3.0)
    started = time.monotonic()
    named = await generate("fix the login form", environ=anthropic_env(replay), timeout=0.3)
    assert time.monotonic() - started < 2.0
    assert_named(named, "fix-the-login-form", "Fix the login form")


async def test_an_unreachable_server_falls_back_to_the_prompt(replay: ReplayServer) -> None:
    replay.route("POST", MESSAGES, Reply(hang_up=True))
    named = await generate("fix the login form", environ=anthropic_env(replay))
    assert_named(named, "fix-the-login-form", "Fix the login form")


async def test_no_key_or_no_prompt_means_no_model_call(replay: ReplayServer) -> None:
    answers(replay, '{"display_name": "Fix bug", "task_name": "fix-bug"}')
    env = anthropic_env(replay, ANTHROPIC_API_KEY="")
    assert_named(await generate("fix the login form", environ=env), "fix-the-login-form", "Fix the login form")
    assert_random(await generate("   ", environ=anthropic_env(replay)))
    assert replay.requests == []


# ---------------------------------------------------------------------------- seed era
SEED_NAME = r"task-[a-z]+(-[a-z]+)?" + SUFFIX


async def test_the_seed_era_name_is_task_random_hex() -> None:
    for _ in range(200):
        name = await generate_seed_name("fix the login form", environ={})
        assert re.fullmatch(SEED_NAME, name), name
        assert name_error(name) is None


async def test_the_seed_era_asks_the_model_for_a_task_name(replay: ReplayServer) -> None:
    answers(replay, "task-python-debug")
    name = await generate_seed_name("Help me debug a Python script", environ=anthropic_env(replay))
    assert re.fullmatch(r"task-python-debug" + SUFFIX, name), name
    body = replay.only().json()
    assert (body["model"], body["max_tokens"]) == (DEFAULT_ANTHROPIC_MODEL, 24)
    assert "task-unnamed" in body["system"]


async def test_the_seed_era_cuts_a_long_model_name_to_27_bytes(replay: ReplayServer) -> None:
    answers(replay, "task-analyze-quarterly-sales-figures")
    name = await generate_seed_name("analyze the numbers", environ=anthropic_env(replay))
    assert re.fullmatch(r"task-analyze-quarterly-sale" + SUFFIX, name), name


@pytest.mark.parametrize("reply", [
    Reply(200, message("task-unnamed")),
    Reply(200, message("Task: Python Debug")),
    Reply(500, {"type": "error", "error": {"type": "api_error", "message": "boom"}}),
])
async def test_the_seed_era_keeps_the_random_name_when_the_model_fails(replay: ReplayServer, reply: Reply) -> None:
    replay.route("POST", MESSAGES, reply)
    name = await generate_seed_name("Help me debug a Python script", environ=anthropic_env(replay))
    assert re.fullmatch(SEED_NAME, name), name
    assert name_error(name) is None


async def test_the_seed_era_gives_up_on_a_hanging_model_in_time(replay: ReplayServer) -> None:
    answers(replay, "task-python-debug", delay=3.0)
    started = time.monotonic()
    name = await generate_seed_name("debug it", environ=anthropic_env(replay), timeout=0.3)
    assert time.monotonic() - started < 2.0
    assert re.fullmatch(SEED_NAME, name), name
