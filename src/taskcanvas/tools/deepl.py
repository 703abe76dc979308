"""DeepL: translate text (ragflow ``agent/tools/deepl.py``, spec §5.2).

DeepL's REST API through the run's guarded client, as the ``deepl`` library (ragflow's pin,
1.18) calls it: ``POST {deepl}/v2/translate`` with ``Authorization: DeepL-Auth-Key <key>`` and
the JSON body ``{"target_lang", "source_lang", "text": [text]}``; a key ending in ``:fx`` (a
free account) goes to ``{deepl_free}`` instead. The base URLs come from ``[endpoints] deepl`` and
``deepl_free`` (defaults ``https://api.deepl.com``, ``https://api-free.deepl.com``). The key is
the node's ``auth_key`` unless it is empty or ragflow's placeholder ``xxx``; then
``[tools.deepl] api_key`` (or ``api_key_env``) of the settings.

As in ragflow: ``formalized_content`` is the translation; an empty text translates to ``""``; a
failure is not retried and sets ``_ERROR`` to ``"DeepL error: <the library's message>"``
("Authorization failure, check auth_key", "Quota for this billing period has been exceeded", ...),
which is also what the model is told. The library's own backoff on 429/5xx is not reproduced.
"""

from __future__ import annotations

import asyncio
import http
import json
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
from pydantic import field_validator

from taskcanvas.runtime.component import RunContext
from taskcanvas.runtime.state import RunState
from taskcanvas.runtime.stream import TextStream
from taskcanvas.runtime.templates import stringify
from taskcanvas.tools._endpoints import USER_AGENT, ServiceError, WebTool, endpoint, tool_secret
from taskcanvas.tools.base import ToolMeta, ToolParams

__all__ = ["DeepL", "DeepLParams"]

_META: ToolMeta = {
    "name": "deepl_translate",
    "description": "DeepL translates text into a target language using the DeepL translation service.",
    "parameters": {
        "query": {"type": "string", "description": "The text to translate.", "default": "{sys.query}",
                  "required": True},
    },
}

SOURCE_LANGS = ("AR", "BG", "CS", "DA", "DE", "EL", "EN", "ES", "ET", "FI", "FR", "HU", "ID", "IT", "JA", "KO", "LT",
                "LV", "NB", "NL", "PL", "PT", "RO", "RU", "SK", "SL", "SV", "TR", "UK", "ZH")
TARGET_LANGS = ("AR", "BG", "CS", "DA", "DE", "EL", "EN-GB", "EN-US", "ES", "ET", "FI", "FR", "HU", "ID", "IT", "JA",
                "KO", "LT", "LV", "NB", "NL", "PL", "PT-BR", "PT-PT", "RO", "RU", "SK", "SL", "SV", "TR", "UK", "ZH")
_QUOTA_EXCEEDED = 456
_PLACEHOLDER = "xxx"


class DeepLParams(ToolParams):
    query: Any = "{sys.query}"
    auth_key: str | None = _PLACEHOLDER
    source_lang: str = "ZH"
    target_lang: str = "EN-GB"

    @field_validator("source_lang", mode="before")
    @classmethod
    def _source(cls, v: Any) -> Any:
        if v not in SOURCE_LANGS:
            raise ValueError(f"source_lang {v!r} is not supported: use one of {', '.join(SOURCE_LANGS)}")
        return v

    @field_validator("target_lang", mode="before")
    @classmethod
    def _target(cls, v: Any) -> Any:
        if v not in TARGET_LANGS:
            raise ValueError(f"target_lang {v!r} is not supported: use one of {', '.join(TARGET_LANGS)}")
        return v


class DeepL(WebTool):
    component_name = "DeepL"
    Params = DeepLParams
    meta: ClassVar[ToolMeta] = _META
    timeout = 12.0
    service = "DeepL"

    def thoughts(self, state: RunState) -> str:
        params = self.params
        assert isinstance(params, DeepLParams)
        return f"Translating into {params.target_lang}: {self._shown(state, 'query')}"

    async def call(self, ctx: RunContext, **args: Any) -> Any:
        params = self.params
        assert isinstance(params, DeepLParams)
        state = ctx.state
        text = args.get("query")
        if isinstance(text, TextStream):
            text = await text.read()
        if not text:
            return self.empty(state)
        try:
            translated = await self._translate(ctx, params, text if isinstance(text, str) else stringify(text))
        except asyncio.CancelledError:
            raise
        except Exception as e:
            message = f"DeepL error: {e}"
            state.set_output(self.id, "_ERROR", message)
            return message
        state.set_output(self.id, "formalized_content", translated)
        return translated

    async def _translate(self, ctx: RunContext, params: DeepLParams, text: str) -> str:
        key = params.auth_key if params.auth_key and params.auth_key != _PLACEHOLDER else tool_secret(ctx, "deepl")
        if not key:
            raise ServiceError("DeepL needs an auth key: set auth_key in the component, or api_key_env in "
                               "[tools.deepl] of the taskcanvas settings")
        if ctx.http is None:
            raise ServiceError("DeepL needs an HTTP client (none was configured)")
        base = endpoint(ctx, "deepl_free" if key.endswith(":fx") else "deepl")
        body = {"target_lang": params.target_lang, "source_lang": params.source_lang, "text": [text]}
        try:
            response: httpx.Response = await ctx.http.post(
                base + "/v2/translate", json=body, timeout=self.timeout,
                headers={"Authorization": f"DeepL-Auth-Key {key}", "User-Agent": USER_AGENT})
        except httpx.TimeoutException:
            raise ServiceError(f"Request timed out after {self.timeout:g} seconds") from None
        except httpx.TransportError as e:
            raise ServiceError(f"Connection failure: {e or type(e).__name__}") from None
        _raise_for_status(response)
        try:
            translations = response.json()["translations"]
            return str(translations[0]["text"])
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, IndexError, TypeError):
            raise ServiceError(f"Unexpected response: {response.text[:200]}") from None



def _raise_for_status(response: httpx.Response) -> None:
    """The deepl library's messages for an error status."""
    status = response.status_code
    if 200 <= status < 400:
        return
    message = ""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, Mapping):
        if "message" in body:
            message += f", message: {body['message']}"
        if "detail" in body:
            message += f", detail: {body['detail']}"
    if status == http.HTTPStatus.FORBIDDEN:
        raise ServiceError(f"Authorization failure, check auth_key{message}")
    if status == _QUOTA_EXCEEDED:
        raise ServiceError(f"Quota for this billing period has been exceeded{message}")
    if status == http.HTTPStatus.NOT_FOUND:
        raise ServiceError(f"Not found, check server_url{message}")
    if status == http.HTTPStatus.BAD_REQUEST:
        raise ServiceError(f"Bad request{message}")
    if status == http.HTTPStatus.TOO_MANY_REQUESTS:
        raise ServiceError(f"Too many requests, DeepL servers are currently experiencing high load{message}")
    if status == http.HTTPStatus.SERVICE_UNAVAILABLE:
        raise ServiceError(f"Service unavailable{message}")
    name = http.HTTPStatus(status).phrase if status in http.HTTPStatus._value2member_map_ else "Unknown"
    raise ServiceError(f"Unexpected status code: {status} {name}, content: {response.text}.")
