"""Which provider serves a ragflow ``llm_id``: the ``[models]`` section and the OpenAI env fallback.

    [models]
    default = "deepseek-chat@DeepSeek"        # where a canvas that leaves llm_id empty goes
    timeout = 600                             # seconds; also max_retries, delay_after_error

    [models."deepseek-chat@DeepSeek"]
    provider = "openai"                       # or "anthropic"
    base_url = "https://api.deepseek.com/v1"  # required for openai; anthropic defaults to its API
    model = "deepseek-chat"
    api_key_env = "DEEPSEEK_API_KEY"          # or api_key = "..."
    # timeout, max_retries, delay_after_error: per model; drop_options = ["temperature"]: never sent;
    # max_length = 65536: the context window in tokens, to fit prompts to

An ``llm_id`` is looked up exactly first; ragflow's three-part ids (``name@instance@Factory``)
then also match ``name@Factory``. With ``OPENAI_BASE_URL`` set (``OPENAI_API_KEY`` and
``OPENAI_MODEL`` optional), any other id goes to that endpoint with the name before the first
``@`` as the model, and an empty id without a ``default`` goes there with ``OPENAI_MODEL``.
An id nothing serves raises :class:`~taskcanvas.llm.errors.ModelNotConfigured` saying how to
configure it, so a canvas can be refused before it runs.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from taskcanvas.config import ConfigError, Settings
from taskcanvas.llm.errors import ModelNotConfigured
from taskcanvas.llm.protocol import ChatModel
from taskcanvas.llm.retry import RetryPolicy

PROVIDERS = ("openai", "anthropic")
FALLBACK_SOURCE = "OPENAI_BASE_URL"
DEFAULT_TIMEOUT = 600.0
DEFAULT_RETRY = RetryPolicy(max_retries=2, delay=1.0)
_DROPPABLE = ("temperature", "top_p", "max_tokens", "presence_penalty", "frequency_penalty")
_SECTION_KEYS = ("default", "timeout", "max_retries", "delay_after_error")
_MODEL_KEYS = ("provider", "base_url", "model", "api_key", "api_key_env", "timeout", "max_retries",
               "delay_after_error", "drop_options", "max_length")


@dataclass(frozen=True)
class ModelEntry:
    """Where one llm_id goes: a ``[models."<id>"]`` table, or the ``OPENAI_BASE_URL`` fallback."""

    source: str
    """``[models."<id>"]`` or ``OPENAI_BASE_URL``: what configured it, for messages."""
    provider: str
    model: str
    base_url: str | None
    """``None``: the provider's own (Anthropic)."""
    api_key: str | None = field(default=None, repr=False)
    key_source: str = "missing"
    """``direct``, ``env NAME``, ``env NAME (not set)`` or ``missing``."""
    unset_key_env: str | None = None
    """The variable ``api_key_env`` names when it is not set: the entry cannot be used."""
    timeout: float = DEFAULT_TIMEOUT
    retry: RetryPolicy = DEFAULT_RETRY
    drop_options: tuple[str, ...] = ()
    max_length: int = 0
    """The context window in tokens (``max_length``); 0 when not configured."""


@dataclass(frozen=True)
class ModelRow:
    """One line of ``taskcanvas models list``.

    ``llm_id`` is the configured id, ``""`` for where an empty llm_id goes, or ``"*"`` for the
    ``OPENAI_BASE_URL`` fallback (whose ``model`` then reads ``<name before @>``).
    """

    llm_id: str
    provider: str
    base_url: str
    model: str
    key: str


class ModelRegistry:
    """Resolves llm_ids to models and keeps one model object (one connection pool) per target.

    Implements :class:`~taskcanvas.llm.protocol.ModelProvider`. Model objects belong to the
    event loop that first uses them; :meth:`aclose` closes them all.
    """

    def __init__(self, entries: Mapping[str, ModelEntry], *, default: str | None = None,
                 fallback: ModelEntry | None = None, fallback_model: str | None = None,
                 config_path: Path | None = None) -> None:
        self._entries = dict(entries)
        self._default = default or None
        self._fallback = fallback
        self._fallback_model = fallback_model or None
        self._config_path = config_path
        self._models: dict[tuple[str, str], ChatModel] = {}
        if self._default is not None and self._find(self._default) is None:
            raise ConfigError(f"[models] default = {self._default!r}{self._in()} names no model: add "
                              f'[models."{self._default}"] or set {FALLBACK_SOURCE}')

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelRegistry:
        """The registry the ``[models]`` section and ``OPENAI_*`` variables of ``settings`` describe."""
        return _Loader(settings).registry()

    # ------------------------------------------------------------------ ModelProvider
    def resolve(self, llm_id: str) -> ModelEntry:
        """Where ``llm_id`` goes; raises :class:`ModelNotConfigured` with a hint when nowhere."""
        llm_id = llm_id.strip()
        entry = self._route(llm_id)
        if entry is None:
            raise ModelNotConfigured(llm_id, self._hint(llm_id))
        if entry.unset_key_env:
            raise ModelNotConfigured(llm_id, f"{entry.source}{self._in()} takes its API key from the environment "
                                             f"variable {entry.unset_key_env} (api_key_env), which is not set")
        return entry

    def serves(self, llm_id: str) -> bool:
        try:
            self.resolve(llm_id)
        except ModelNotConfigured:
            return False
        return True

    def get(self, llm_id: str) -> ChatModel:
        entry = self.resolve(llm_id)
        key = (entry.source, entry.model)
        model = self._models.get(key)
        if model is None:
            model = self._models[key] = self._build(entry)
        return model

    async def aclose(self) -> None:
        """Close the HTTP clients of every model handed out."""
        models, self._models = list(self._models.values()), {}
        for model in models:
            close = getattr(model, "aclose", None)
            if close is not None:
                await close()

    # ------------------------------------------------------------------ for the CLI
    @property
    def config_path(self) -> Path | None:
        return self._config_path

    @property
    def default(self) -> str | None:
        return self._default

    def with_default(self, llm_id: str) -> ModelRegistry:
        """The same models (and the same open clients) with another id for canvases that name none:
        a user's chosen default. An id this registry cannot serve changes nothing."""
        if not llm_id or self._find(llm_id) is None:
            return self
        view = copy.copy(self)
        view._default = llm_id
        return view

    @property
    def fallback_base_url(self) -> str | None:
        return self._fallback.base_url if self._fallback else None

    def describe(self) -> list[ModelRow]:
        """The configured ids in file order, then where an empty id goes, then the fallback."""
        rows = [_row(llm_id, entry) for llm_id, entry in self._entries.items()]
        empty = self._route("")
        if empty is not None:
            rows.append(_row("", empty))
        if self._fallback is not None:
            rows.append(_row("*", replace(self._fallback, model="<name before @>")))
        return rows

    # ------------------------------------------------------------------ resolution
    def _route(self, llm_id: str) -> ModelEntry | None:
        if llm_id:
            return self._find(llm_id)
        if self._default is not None:
            return self._find(self._default)
        if self._fallback is not None and self._fallback_model:
            return replace(self._fallback, model=self._fallback_model)
        return None

    def _find(self, llm_id: str) -> ModelEntry | None:
        entry = self._entries.get(llm_id)
        parts = llm_id.split("@")
        if entry is None and len(parts) >= 3:
            entry = self._entries.get(f"{'@'.join(parts[:-2])}@{parts[-1]}")
        if entry is None and self._fallback is not None:
            entry = replace(self._fallback, model=parts[0])
        return entry

    def _hint(self, llm_id: str) -> str:
        where = str(self._config_path) if self._config_path else "the configuration file"
        if llm_id:
            return f'add [models."{llm_id}"] to {where} or set {FALLBACK_SOURCE}'
        if self._fallback is not None:
            return f"the llm_id is empty: set default under [models] in {where}, or set OPENAI_MODEL"
        return (f'the llm_id is empty: set default = "<llm_id>" under [models] in {where}, '
                f"or set {FALLBACK_SOURCE} and OPENAI_MODEL")

    def _in(self) -> str:
        return f" in {self._config_path}" if self._config_path else ""

    def _build(self, entry: ModelEntry) -> ChatModel:
        hint = _auth_hint(entry, self._config_path)
        if entry.provider == "anthropic":
            from taskcanvas.llm.anthropic import AnthropicChatModel

            return AnthropicChatModel(entry.model, api_key=entry.api_key, base_url=entry.base_url,
                                      timeout=entry.timeout, retry=entry.retry, drop_options=entry.drop_options,
                                      auth_hint=hint, max_length=entry.max_length)
        from taskcanvas.llm.openai import OpenAIChatModel

        return OpenAIChatModel(entry.model, base_url=entry.base_url or "", api_key=entry.api_key,
                               timeout=entry.timeout, retry=entry.retry, drop_options=entry.drop_options,
                               auth_hint=hint, max_length=entry.max_length)


def _row(llm_id: str, entry: ModelEntry) -> ModelRow:
    from taskcanvas.llm.anthropic import DEFAULT_BASE_URL

    base_url = entry.base_url or (DEFAULT_BASE_URL if entry.provider == "anthropic" else "")
    return ModelRow(llm_id=llm_id, provider=entry.provider, base_url=base_url, model=entry.model,
                    key=entry.key_source)


def _auth_hint(entry: ModelEntry, path: Path | None) -> str:
    where = f"{entry.source} in {path}" if path and entry.source != FALLBACK_SOURCE else entry.source
    if entry.source == FALLBACK_SOURCE:
        return "check OPENAI_API_KEY" if entry.api_key else "OPENAI_API_KEY is not set"
    if entry.key_source == "direct":
        return f"check api_key of {where}"
    if entry.key_source.startswith("env "):
        return f"check the environment variable {entry.key_source[4:]} (api_key_env of {where})"
    return f"no API key is configured: set api_key or api_key_env in {where}"


class _Loader:
    """Reads and checks the ``[models]`` section; every complaint names the table and key."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._path = settings.config_file

    def registry(self) -> ModelRegistry:
        section = self._settings.section("models")
        tables = {k: v for k, v in section.items() if isinstance(v, Mapping)}
        for key in section:
            if key not in tables and key not in _SECTION_KEYS:
                raise self._error("[models]", key, "unknown setting (a model is a table: "
                                  f'[models."<llm_id>"]; settings here: {", ".join(_SECTION_KEYS)})')
        default = section.get("default")
        if default is not None and not isinstance(default, str):
            raise self._error("[models]", "default", "must be an llm_id (a string)")
        timeout = self._number(section, "[models]", "timeout", DEFAULT_TIMEOUT, positive=True)
        retry = self._retry(section, "[models]", DEFAULT_RETRY)
        entries = {str(llm_id): self._entry(str(llm_id), table, timeout, retry) for llm_id, table in tables.items()}
        env = self._settings.env
        fallback = None
        if env.get("OPENAI_BASE_URL"):
            api_key = env.get("OPENAI_API_KEY") or None
            fallback = ModelEntry(source=FALLBACK_SOURCE, provider="openai", model="",
                                  base_url=env["OPENAI_BASE_URL"].rstrip("/"), api_key=api_key,
                                  key_source="env OPENAI_API_KEY" if api_key else "missing",
                                  timeout=timeout, retry=retry)
        return ModelRegistry(entries, default=default, fallback=fallback, fallback_model=env.get("OPENAI_MODEL"),
                             config_path=self._path)

    def _entry(self, llm_id: str, table: Mapping[str, Any], timeout: float, retry: RetryPolicy) -> ModelEntry:
        name = f'[models."{llm_id}"]'
        for key in table:
            if key not in _MODEL_KEYS:
                raise self._error(name, key, f"unknown key (known: {', '.join(_MODEL_KEYS)})")
        provider = table.get("provider", "openai")
        if provider not in PROVIDERS:
            raise self._error(name, "provider", f"unknown provider {provider!r} (use {' or '.join(PROVIDERS)})")
        model = self._text(table, name, "model")
        base_url = self._text(table, name, "base_url", required=provider == "openai")
        if model is None:
            raise self._error(name, "model", "missing: the model name the provider knows (e.g. deepseek-chat)")
        drop = table.get("drop_options", [])
        if not isinstance(drop, list) or any(d not in _DROPPABLE for d in drop):
            raise self._error(name, "drop_options", f"must be a list of option names ({', '.join(_DROPPABLE)})")
        max_length = table.get("max_length", 0)
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 0:
            raise self._error(name, "max_length", "must be the context window in tokens (a whole number)")
        for key in ("api_key", "api_key_env"):
            if key in table and not isinstance(table[key], str):
                raise self._error(name, key, "must be a string")
        api_key = self._settings.secret(table, "api_key")
        key_env = table.get("api_key_env")
        if table.get("api_key"):
            key_source = "direct"
        elif key_env:
            key_source = f"env {key_env}" if api_key else f"env {key_env} (not set)"
        else:
            key_source = "missing"
        return ModelEntry(source=name, provider=provider, model=model,
                          base_url=base_url.rstrip("/") if base_url else None, api_key=api_key,
                          key_source=key_source, unset_key_env=str(key_env) if key_env and not api_key else None,
                          timeout=self._number(table, name, "timeout", timeout, positive=True),
                          retry=self._retry(table, name, retry), drop_options=tuple(drop), max_length=max_length)

    def _retry(self, table: Mapping[str, Any], name: str, inherited: RetryPolicy) -> RetryPolicy:
        retries = table.get("max_retries", inherited.max_retries)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise self._error(name, "max_retries", "must be a whole number, 0 or more")
        delay = self._number(table, name, "delay_after_error", inherited.delay)
        return replace(inherited, max_retries=retries, delay=delay)

    def _number(self, table: Mapping[str, Any], name: str, key: str, default: float, *,
                positive: bool = False) -> float:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or (positive and value == 0):
            raise self._error(name, key, f"must be a number of seconds{', more than 0' if positive else ''}")
        return float(value)

    def _text(self, table: Mapping[str, Any], name: str, key: str, *, required: bool = False) -> str | None:
        value = table.get(key)
        if value is None and required:
            raise self._error(name, key, "missing: the endpoint's URL up to /v1 (e.g. https://api.openai.com/v1)")
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise self._error(name, key, "must be a non-empty string")
        return value.strip() if isinstance(value, str) else None

    def _error(self, table: str, key: str, problem: str) -> ConfigError:
        where = f" in {self._path}" if self._path else ""
        return ConfigError(f"{table} {key}{where}: {problem}")
