"""Run scripts on ragflow's sandbox executor (``agent/sandbox/executor_manager``) over HTTP.

The executor's API (spec §5.3): ``POST {base_url}/run`` with
``{"code_b64": <base64 of the code>, "language": "python" | "nodejs", "arguments": {...}}``;
the answer is ``{"status", "stdout", "stderr", "exit_code", "detail", "artifacts": [{"name",
"mime_type", "size", "content_b64"}], "result": {"present", "value", "type"}}``. The executor
wraps the code itself (Python ``main(**arguments)``, Node.js ``main(arguments)`` with
``module.exports = { main }`` appended), runs it in a gVisor container and takes the result line
out of stdout.

Requests go through taskcanvas's guarded HTTP client. The executor usually lives on a private
network (``http://sandbox-executor-manager:9385``); its host comes from the server's own
configuration, not from a canvas, so the client made here allows that one host and nothing else
that is not public.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

import httpx

from taskcanvas.tools.http import HttpPolicy, SsrfBlocked, create_client
from taskcanvas.tools.sandbox.protocol import (
    ARTIFACT_TYPES,
    Artifact,
    ExecutionResult,
    SandboxError,
    StructuredResult,
    extract_result,
    normalize_language,
)

__all__ = ["RemoteSandbox"]

_ERROR_BODY_CHARS = 500


class RemoteSandbox:
    """A client of ragflow's sandbox executor."""

    provider = "remote"

    def __init__(self, base_url: str, *, timeout: float = 30.0, client: httpx.AsyncClient | None = None) -> None:
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"base_url {base_url!r} is not an http(s) URL")
        if timeout <= 0:
            raise ValueError(f"timeout must be greater than 0, got {timeout!r}")
        self.base_url = str(base_url).rstrip("/")
        self.timeout = float(timeout)
        self._own_client = client is None
        self._client = client if client is not None else create_client(
            HttpPolicy(allowed_hosts=frozenset({url.host})))

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    async def run(self, code: str, language: str, arguments: Mapping[str, Any] | None = None,
                  timeout: float | None = None) -> ExecutionResult:
        lang = normalize_language(language)
        limit = self.timeout if timeout is None else min(float(timeout), self.timeout)
        body = {
            "code_b64": base64.b64encode(code.encode("utf-8")).decode("ascii"),
            "language": lang,
            "arguments": json.loads(json.dumps(dict(arguments or {}), ensure_ascii=False, default=str)),
        }
        url = f"{self.base_url}/run"
        try:
            resp = await self._client.post(url, json=body, timeout=limit)
        except SsrfBlocked as e:
            raise SandboxError(f"the sandbox executor at {self.base_url} cannot be reached: {e.reason}") from None
        except httpx.TimeoutException:
            raise SandboxError(f"the sandbox executor at {self.base_url} did not answer within {limit:g} seconds") \
                from None
        except httpx.HTTPError as e:
            raise SandboxError(f"the sandbox executor at {self.base_url} cannot be reached: "
                               f"{e or type(e).__name__}") from None
        if resp.status_code != 200:
            raise SandboxError(f"the sandbox executor answered HTTP {resp.status_code}: "
                               f"{resp.text[:_ERROR_BODY_CHARS]}")
        try:
            data = resp.json()
        except ValueError:
            raise SandboxError("the sandbox executor's answer is not JSON: "
                               f"{resp.text[:_ERROR_BODY_CHARS]}") from None
        if not isinstance(data, dict) or not data:
            raise SandboxError("There is no response from sandbox")
        return _result(data, lang, limit)


def _result(data: dict[str, Any], lang: str, limit: float) -> ExecutionResult:
    stdout = str(data.get("stdout") or "")
    structured = data.get("result")
    if isinstance(structured, Mapping):
        result = StructuredResult(present=structured.get("present") is True, value=structured.get("value"),
                                  type=str(structured.get("type") or "json"))
    else:
        # An older executor leaves the result line in stdout.
        stdout, result = extract_result(stdout)
    artifacts: list[Artifact] = []
    skipped: list[str] = []
    for item in data.get("artifacts") or []:
        if not isinstance(item, Mapping) or not item.get("name") or not item.get("content_b64"):
            continue
        name = str(item["name"])
        try:
            content = base64.b64decode(str(item["content_b64"]), validate=True)
        except (binascii.Error, ValueError):
            skipped.append(f"{name}: content is not base64")
            continue
        mime = str(item.get("mime_type") or ARTIFACT_TYPES.get(_ext(name)) or "application/octet-stream")
        artifacts.append(Artifact(name=name, content=content, mime_type=mime, size=len(content)))
    exit_code = data.get("exit_code")
    return ExecutionResult(
        stdout=stdout,
        stderr=str(data.get("stderr") or ""),
        exit_code=exit_code if isinstance(exit_code, int) and not isinstance(exit_code, bool) else 0,
        artifacts=artifacts,
        result=result,
        metadata={
            "provider": RemoteSandbox.provider,
            "language": lang,
            "timeout": limit,
            "status": data.get("status"),
            "detail": data.get("detail"),
            "resource_limit": data.get("resource_limit_type"),
            "elapsed": (data["time_used_ms"] / 1000 if isinstance(data.get("time_used_ms"), (int, float))
                        else None),
            "network_isolated": None,
            "network_note": "decided by the sandbox executor",
            "artifacts_skipped": skipped,
        },
    )


def _ext(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot >= 0 else ""
