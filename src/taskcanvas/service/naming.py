"""Task names: coder's ``NameValid`` rule, the display-name limit, and names made from a prompt.

A task's name doubles as its runtime's (coder: workspace's) name, so it must satisfy the same
rule as every coder name; the display name is free text with a length cap. When a request
leaves either out, :func:`generate` fills it in the way coder's ``taskname.Generate`` does
(spec §7.1), and :func:`generate_seed_name` reproduces the earlier, single-name behaviour of
the ``/api/experimental`` era (§7.2). Generation never fails a request: every failure of one
strategy is logged and the next one is tried, down to a random name that is always valid.

Configuration comes in as ``environ`` (``ANTHROPIC_API_KEY``, ``ANTHROPIC_MODEL``,
``ANTHROPIC_BASE_URL``), as coder reads it from the server's environment; this module never
reads ``os.environ`` itself, so callers and tests decide what it sees.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from taskcanvas.llm.anthropic import AnthropicChatModel
from taskcanvas.llm.protocol import GenerationOptions
from taskcanvas.llm.retry import RetryPolicy
from taskcanvas.service.errors import Invalid

NAME_MAX_BYTES = 32
DISPLAY_NAME_MAX_BYTES = 64
DEFAULT_ANTHROPIC_MODEL = "claude-haiku-4-5"
NAMING_TIMEOUT = 10.0
"""Seconds the model may take, in all, before naming falls back to the prompt."""

_STEM_MAX = NAME_MAX_BYTES - len("-ffff")
"""A generated name is a stem plus ``-<4 hex>``: the stem gets what the suffix leaves."""
_SEED_STEM_MAX = _STEM_MAX - len("task-")
_NAME_PATTERN = re.compile(r"[a-zA-Z0-9]+(?:-[a-zA-Z0-9]+)*")
_RESERVED = ("new", "create")
"""Names that would collide with routes such as ``/templates/new`` (coder refuses them too)."""
_UNNAMED = ("task-unnamed", "Task Unnamed")
_FENCE = re.compile(r"\A```[\w-]*[ \t]*\n?(?P<body>.*?)\n?```\Z", re.DOTALL)
_log = logging.getLogger(__name__)

_SYSTEM_PROMPT = """\
You name tasks for a coding-agent service. Read the user's task prompt, find its core action \
and subject, and answer with one JSON object and nothing else:
{"display_name": "<display name>", "task_name": "<task name>"}

display_name: a short human-readable summary of the task, at most 64 characters. Write it first.
task_name: derived from display_name and as close to it as possible; lowercase letters, digits \
and hyphens only (no spaces, no underscores), at most 27 characters.

Examples:
"Help me debug a Python script" -> {"display_name": "Debug Python script", "task_name": "python-debug"}
"Work on https://github.com/coder/coder/issues/1234" -> \
{"display_name": "Work on coder/coder #1234", "task_name": "coder-1234"}
"Fix https://github.com/org/repo/pull/567" -> {"display_name": "Fix org/repo PR #567", "task_name": "repo-pr-567"}

If no sensible name can be made, answer exactly:
{"display_name": "Task Unnamed", "task_name": "task-unnamed"}"""

_SEED_SYSTEM_PROMPT = """\
Make a short workspace name for the AI task the user describes. Answer with the name alone: \
lowercase letters, digits and hyphens only, starting with "task-", at most 27 characters, \
saying what the task is about (e.g. "Help me debug a Python script" -> task-python-debug). \
If no sensible name can be made, answer task-unnamed."""

_ADJECTIVES = (
    "agile", "amber", "bold", "brave", "bright", "calm", "clever", "cosmic", "crisp", "daring",
    "eager", "early", "fancy", "fearless", "gentle", "golden", "happy", "honest", "jolly", "keen",
    "kind", "lively", "lucky", "mellow", "merry", "nimble", "noble", "patient", "polite", "proud",
    "quick", "quiet", "rapid", "serene", "sharp", "steady", "sunny", "swift", "tidy", "vivid",
)
_SURNAMES = (
    "babbage", "bardeen", "bohr", "boole", "cerf", "curie", "darwin", "dijkstra", "einstein", "euler",
    "faraday", "fermi", "feynman", "franklin", "galileo", "gauss", "goodall", "hamilton", "hawking", "hopper",
    "hypatia", "johnson", "kepler", "knuth", "lamarr", "liskov", "lovelace", "maxwell", "meitner", "newton",
    "noether", "pascal", "planck", "ritchie", "sagan", "shannon", "tesla", "thompson", "turing", "wozniak",
)


@dataclass(frozen=True)
class TaskName:
    """A task's name (URL-safe, unique per owner) and the free-text name people read."""

    name: str
    display_name: str


# ---------------------------------------------------------------------------- validation
def name_error(name: str) -> str | None:
    """Why coder's ``NameValid`` refuses ``name`` (its words, checked in its order), or ``None``."""
    size = len(name.encode())
    if size > NAME_MAX_BYTES:
        return f"must be <= {NAME_MAX_BYTES} characters"
    if size < 1:
        return "must be >= 1 character"
    if name in _RESERVED:
        return f'cannot use "{name}" as a name'
    if not _NAME_PATTERN.fullmatch(name):
        return "must be alphanumeric with hyphens"
    return None


def check_task_name(name: str) -> None:
    """Refuse a name the caller chose that coder would refuse (the reason goes in ``detail``)."""
    reason = name_error(name)
    if reason is not None:
        raise Invalid("Unable to create a Task with the provided name.", field="name", detail=reason)


def check_display_name(display_name: str) -> str:
    """The caller's display name, trimmed; over 64 bytes it is refused. Empty means "generate one"."""
    trimmed = display_name.strip()
    if len(trimmed.encode()) > DISPLAY_NAME_MAX_BYTES:
        raise Invalid(f"Display name must be {DISPLAY_NAME_MAX_BYTES} characters or less.", field="display_name")
    return trimmed


# ---------------------------------------------------------------------------- generation (current era)
async def generate(prompt: str, *, environ: Mapping[str, str], timeout: float = NAMING_TIMEOUT) -> TaskName:
    """A name and display name for a task started with ``prompt``; never raises.

    Tried in turn: the Anthropic model (when ``ANTHROPIC_API_KEY`` is set), the prompt's own
    words, a random ``adjective-surname``. Every name ends in ``-<4 hex>`` so that two tasks
    started with the same words rarely collide. Unlike coder, a blank prompt skips the model (the
    API refuses an empty message anyway) and the model's display name is cut to 64 characters as
    the prompt's is, so a chatty answer cannot exceed what a caller may set.
    """
    key = environ.get("ANTHROPIC_API_KEY", "")
    if key and prompt.strip():
        try:
            answer = await _ask_anthropic(_SYSTEM_PROMPT, prompt, key=key, environ=environ,
                                          max_tokens=100, timeout=timeout)
            return _parse_model_answer(answer)
        except Exception as e:  # any failure only means "use the next strategy"
            _log.warning("unable to generate task name and display name from Anthropic: %s", _scrub(e, key))
    named = _from_prompt(prompt)
    if named is not None:
        return named
    _log.info("the task prompt has no words to make a task name of; using a random name")
    return _random_name()


def _parse_model_answer(text: str) -> TaskName:
    """The model's JSON answer as a valid :class:`TaskName`; ``ValueError`` when it is unusable."""
    text = text.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced["body"].strip()
    data: Any = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"the model answered {type(data).__name__}, not a JSON object")
    name, display = (str(data.get(k) or "").strip() for k in ("task_name", "display_name"))
    if not name or name == _UNNAMED[0]:
        raise ValueError(f"the model gave no usable task name: {name!r}")
    if not display or display == _UNNAMED[1]:
        raise ValueError(f"the model gave no usable display name: {display!r}")
    candidate = _suffixed(_cut_bytes(name, _STEM_MAX).rstrip("-"))
    return TaskName(candidate, _capitalise(_truncate(display, DISPLAY_NAME_MAX_BYTES, ellipsis=True)))


def _from_prompt(prompt: str) -> TaskName | None:
    """coder's ``generateFromPrompt``: the prompt's first words as a slug; ``None`` if none survive."""
    text = re.sub(r"[\n\r\t]+", " ", prompt)
    head = _truncate(text, _STEM_MAX) if len(text.encode()) > _STEM_MAX else text
    slug = re.sub(r"[\t\n\f\r ]+", "-", head.lower())  # the whitespace Go's \s matches
    slug = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]+", "", slug)).strip("-")
    if not slug:
        return None
    display = _truncate(text, DISPLAY_NAME_MAX_BYTES, ellipsis=True).strip() or slug.replace("-", " ")
    return TaskName(f"{slug}-{_suffix()}", _capitalise(display))


def _random_name() -> TaskName:
    """The last resort: ``adjective-surname-<4 hex>``, valid by construction."""
    stem = _cut_bytes(f"{random.choice(_ADJECTIVES)}-{random.choice(_SURNAMES)}", _STEM_MAX).rstrip("-")
    return TaskName(f"{stem}-{_suffix()}", _capitalise(stem.replace("-", " ")))


# ---------------------------------------------------------------------------- generation (seed era)
async def generate_seed_name(prompt: str, *, environ: Mapping[str, str], timeout: float = NAMING_TIMEOUT) -> str:
    """The name the ``/api/experimental`` era gave a task created without one; never raises.

    As the seed's ``tasksCreate`` did: start from ``task-<random>-<4 hex>``; when
    ``ANTHROPIC_API_KEY`` is set, ask the model for a ``task-...`` name instead and keep the
    random one if that fails. Always passes :func:`name_error`.
    """
    name = _seed_fallback()
    key = environ.get("ANTHROPIC_API_KEY", "")
    if key and prompt.strip():
        try:
            answer = await _ask_anthropic(_SEED_SYSTEM_PROMPT, prompt, key=key, environ=environ,
                                          max_tokens=24, timeout=timeout)
            name = _parse_seed_answer(answer)
        except Exception as e:  # the random name stands
            _log.warning("unable to generate task name: %s", _scrub(e, key))
    return name


def _parse_seed_answer(text: str) -> str:
    name = text.strip()
    if not name or name == _UNNAMED[0]:
        raise ValueError(f"the model gave no usable task name: {name!r}")
    return _suffixed(_cut_bytes(name, _STEM_MAX))


def _suffixed(stem: str) -> str:
    """``stem`` with coder's 4-hex suffix, if that makes a valid name (a model's answer may not)."""
    candidate = f"{stem}-{_suffix()}"
    reason = name_error(candidate)
    if reason is not None:
        raise ValueError(f"the model's task name {candidate!r} is not valid: {reason}")
    return candidate


def _seed_fallback() -> str:
    middle = _cut_bytes(f"{random.choice(_ADJECTIVES)}-{random.choice(_SURNAMES)}", _SEED_STEM_MAX).rstrip("-")
    return f"task-{middle}-{_suffix()}"


# ---------------------------------------------------------------------------- helpers
async def _ask_anthropic(system: str, prompt: str, *, key: str, environ: Mapping[str, str], max_tokens: int,
                         timeout: float) -> str:
    """The model's text answer; one attempt, bounded by ``timeout`` in all (naming must not stall a create)."""
    model = AnthropicChatModel(environ.get("ANTHROPIC_MODEL") or DEFAULT_ANTHROPIC_MODEL, api_key=key,
                               base_url=environ.get("ANTHROPIC_BASE_URL") or None, timeout=timeout,
                               retry=RetryPolicy(max_retries=0))
    try:
        async with asyncio.timeout(timeout):
            answer = await model.chat([{"role": "system", "content": system}, {"role": "user", "content": prompt}],
                                      options=GenerationOptions(max_tokens=max_tokens))
    except TimeoutError:
        raise TimeoutError(f"no answer within {timeout:g} seconds") from None
    finally:
        await model.aclose()
    return answer.content


def _truncate(text: str, limit: int, *, ellipsis: bool = False) -> str:
    """coder's ``Truncate`` with full words: at most ``limit`` characters, cut at the last space."""
    if len(text) <= limit:
        return text
    cut = text[:limit - 1 if ellipsis else limit]
    boundary = max((i for i, ch in enumerate(cut) if ch.isspace()), default=-1)
    if boundary >= 0:
        cut = cut[:boundary]
    return cut + "…" if ellipsis else cut


def _cut_bytes(text: str, limit: int) -> str:
    """At most ``limit`` UTF-8 bytes of ``text`` (a character cut in half is dropped)."""
    return text.encode()[:limit].decode(errors="ignore")


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _suffix() -> str:
    """Four hex digits against collisions; not a secret, so ``random`` is enough."""
    return f"{random.randrange(0x10000):04x}"


def _scrub(error: BaseException, key: str) -> str:
    """The error's text with the API key masked, should any layer below have quoted it."""
    return str(error).replace(key, "***") if len(key) >= 4 else str(error)
