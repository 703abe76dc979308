"""ragflow's agent webhooks (``agent_api.py _webhook_impl``): a Begin in ``Webhook`` mode makes
``/agents/<id>/webhook`` callable without a login, guarded by the Begin's own ``security``.

The call is checked in ragflow's order — method, security (body size, IP whitelist, rate limit,
then none/token/basic/jwt), content type, the ``schema`` of query, headers and body — and every
refusal is HTTP 400 ``{"code": 400, "message": ...}``. The canvas gets ``query``, ``headers`` and
``body`` as Begin outputs. ``execution_mode: "Immediately"`` answers at once with the configured
``response`` and runs in the background; anything else waits for the run and answers
``{"message": <the messages>, "success": true, "code": <status>}``.

``GET /agents/<id>/webhook/logs`` is ragflow's polling contract over the stored events of the
agent's webhook runs (ragflow keeps traces of ``/webhook/test`` calls in Redis for ten minutes).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import time
from collections.abc import Mapping
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from taskcanvas.api.deps import PrincipalDep, ServicesDep
from taskcanvas.api.ragflow._common import json_result, mapping, path_id, refuse_json, truthy
from taskcanvas.dsl.errors import DslError
from taskcanvas.dsl.load import load_canvas
from taskcanvas.execution import follow
from taskcanvas.service.agents import resource as agent_resource
from taskcanvas.service.errors import NotFound
from taskcanvas.service.rbac import Action, authorize
from taskcanvas.service.services import Services
from taskcanvas.service.sessions import Sessions
from taskcanvas.store.models import Agent, AgentVersion

router = APIRouter(tags=["ragflow: webhooks"])

METHODS: Final = ["POST", "GET", "PUT", "PATCH", "DELETE", "HEAD"]
MAX_BODY: Final = 10 * 1024 * 1024
_WINDOWS: Final = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RESERVED_CLAIMS: Final = frozenset({"exp", "sub", "aud", "iss", "nbf", "iat"})
_WEBHOOK_ID_SECRET: Final = b"webhook_id_secret"


class WebhookRefused(Exception):
    """A call the webhook refuses: HTTP 400 with ragflow's message."""


class _Buckets:
    """Token buckets per agent, in this process (ragflow keeps them in Redis)."""

    def __init__(self) -> None:
        self._state: dict[str, tuple[float, float]] = {}

    def take(self, key: str, capacity: int, per_second: float) -> bool:
        now = time.monotonic()
        tokens, last = self._state.get(key, (float(capacity), now))
        tokens = min(float(capacity), tokens + (now - last) * per_second)
        if tokens < 1:
            self._state[key] = (tokens, now)
            return False
        self._state[key] = (tokens - 1, now)
        return True


_BUCKETS = _Buckets()


def _bad(message: str) -> JSONResponse:
    return JSONResponse({"code": 400, "message": message}, status_code=400)


async def webhook(agent_id: str, request: Request, services: ServicesDep) -> Response:
    return await _webhook(agent_id, request, services, test=False)


async def webhook_test(agent_id: str, request: Request, services: ServicesDep, principal: PrincipalDep) -> Response:
    found = await services.sessions.webhook_target(path_id(agent_id))
    if found is None or not authorize(principal, Action.UPDATE, agent_resource(found[0])).allowed:
        raise refuse_json(103, "Only the owner of the agent is authorized for this operation.")
    return await _webhook(agent_id, request, services, test=True)


for _method in METHODS:
    # One route per method: each gets its own OpenAPI operation id.
    router.add_api_route("/agents/{agent_id}/webhook", webhook, methods=[_method],
                         operation_id=f"ragflow_webhook_{_method.lower()}",
                         summary="Trigger an agent whose Begin is a webhook")
    router.add_api_route("/agents/{agent_id}/webhook/test", webhook_test, methods=[_method],
                         operation_id=f"ragflow_webhook_test_{_method.lower()}",
                         summary="Trigger an agent's webhook as its owner (a test call)")


async def _webhook(agent_id: str, request: Request, services: Services, *, test: bool) -> Response:
    sessions = services.sessions
    found = await sessions.webhook_target(path_id(agent_id))
    if found is None:
        return _bad("Canvas not found.")
    agent, version = found
    if agent.category == "dataflow_canvas":
        return _bad("Dataflow can not be triggered by webhook.")
    config = webhook_config(version.dsl)
    if not config:
        return _bad("Webhook not configured for this agent.")
    methods = config.get("methods") or []
    if methods and request.method.upper() not in [str(m).upper() for m in methods]:
        return _bad(f"HTTP method '{request.method.upper()}' not allowed for this webhook.")
    try:
        check_security(config.get("security"), request, str(agent.id))
        parsed = await parse_request(request, config.get("content_types"))
        schema = mapping(config.get("schema"))
        cleaned = {part: extract(parsed[part], schema.get(part) or {}, part) for part in ("query", "headers", "body")}
    except WebhookRefused as e:
        return _bad(str(e))
    inputs = {name: {"value": value} for name, value in cleaned.items()}
    mode = config.get("execution_mode", "Immediately")
    response_cfg = mapping(config.get("response"))
    if mode == "Immediately":
        try:
            status = int(response_cfg.get("status", 200))
        except (TypeError, ValueError):
            return _bad(f"Invalid response status code: {response_cfg.get('status')}")
        if not 200 <= status <= 399:
            return _bad(f"Invalid response status code: {status}, must be between 200 and 399")
        await sessions.start_webhook_run(agent, version, inputs, test=test)
        return _template_response(str(response_cfg.get("body_template") or ""), status)
    return await _blocking(services, sessions, agent, version, inputs, test=test)


async def _blocking(services: Services, sessions: Sessions, agent: Agent, version: AgentVersion,
                    inputs: dict[str, Any], *, test: bool) -> Response:
    turn = await sessions.start_webhook_run(agent, version, inputs, test=test)
    contents: list[str] = []
    status = 200
    failure: str | None = None
    async for _, event in follow(services.database, services.hub, turn.run.id, turn.session.id):
        data = mapping(event.get("data"))
        if event.get("event") == "message":
            piece = "<think>" if data.get("start_to_think") else "</think>" if data.get("end_to_think") \
                else data.get("content")
            if isinstance(piece, str) and piece:
                contents.append(piece)
        elif event.get("event") == "message_end" and data.get("status") is not None:
            try:
                status = int(data["status"])
            except (TypeError, ValueError):
                failure = f"invalid status {data['status']!r} in the Message component"
        elif event.get("event") == "workflow_finished" and data.get("status") == "failed":
            failure = str(data.get("error") or "the run failed")
    if failure is not None:
        return JSONResponse({"code": 400, "message": failure, "success": False}, status_code=400)
    return JSONResponse({"message": "".join(contents), "success": True, "code": status}, status_code=status)


def _template_response(template: str, status: int) -> Response:
    if not template:
        return Response("null", status_code=status, media_type="application/json")
    try:
        body = json.loads(template)
    except ValueError:
        return Response(template, status_code=status, media_type="text/plain")
    return Response(json.dumps(body, ensure_ascii=False), status_code=status, media_type="application/json")


# ---------------------------------------------------------------------------- the configuration
def webhook_config(dsl: Mapping[str, Any]) -> dict[str, Any]:
    """The params of the Begin in ``Webhook`` mode (normalised from the editor's form); ``{}`` if none."""
    try:
        canvas = load_canvas(dsl)
    except DslError:
        return {}
    for spec in canvas.components.values():
        if spec.component_name == "Begin" and spec.params.get("mode") == "Webhook":
            return dict(spec.params)
    return {}


def check_security(security: Any, request: Request, agent_key: str) -> None:
    if not isinstance(security, Mapping) or not security:
        raise WebhookRefused("Webhook security is required. Set allow_anonymous to true to permit "
                             "unauthenticated webhooks.")
    _check_body_size(security, request)
    _check_ip(security, request)
    _check_rate(security, agent_key)
    auth_type = security.get("auth_type", "none")
    if auth_type == "none":
        if not truthy(security.get("allow_anonymous")):
            raise WebhookRefused("Anonymous webhook access requires allow_anonymous to be true")
    elif auth_type == "token":
        token = mapping(security.get("token"))
        header = str(token.get("token_header") or "")
        if not header or request.headers.get(header) != token.get("token_value"):
            raise WebhookRefused("Invalid token authentication")
    elif auth_type == "basic":
        _check_basic(security, request)
    elif auth_type == "jwt":
        _check_jwt(security, request)
    else:
        raise WebhookRefused(f"Unsupported auth_type: {auth_type}")


def _check_body_size(security: Mapping[str, Any], request: Request) -> None:
    text = str(security.get("max_body_size") or "10MB").lower()
    factors = {"kb": 1024, "mb": 1024 ** 2}
    limit = None
    for suffix, factor in factors.items():
        if text.endswith(suffix):
            try:
                limit = int(text[: -len(suffix)]) * factor
            except ValueError:
                limit = None
            break
    if limit is None:
        raise WebhookRefused("Invalid max_body_size format")
    if limit > MAX_BODY:
        raise WebhookRefused("max_body_size exceeds maximum allowed size (10MB)")
    try:
        length = int(request.headers.get("content-length") or 0)
    except ValueError:
        length = 0
    if length > limit:
        raise WebhookRefused(f"Request body too large: {length} > {limit}")


def _check_ip(security: Mapping[str, Any], request: Request) -> None:
    whitelist = security.get("ip_whitelist") or []
    if not whitelist:
        return
    client = request.client.host if request.client is not None else ""
    for rule in whitelist:
        rule = str(rule)
        try:
            if "/" in rule and ipaddress.ip_address(client) in ipaddress.ip_network(rule, strict=False):
                return
        except ValueError:
            continue
        if client == rule:
            return
    raise WebhookRefused(f"IP {client} is not allowed by whitelist")


def _check_rate(security: Mapping[str, Any], agent_key: str) -> None:
    rule = mapping(security.get("rate_limit")) or {"limit": 60, "per": "minute"}
    try:
        limit = int(rule.get("limit", 60))
    except (TypeError, ValueError):
        raise WebhookRefused("rate_limit.limit must be > 0") from None
    if limit <= 0:
        raise WebhookRefused("rate_limit.limit must be > 0")
    per = rule.get("per", "minute")
    window = _WINDOWS.get(str(per))
    if window is None:
        raise WebhookRefused(f"Invalid rate_limit.per: {per}")
    if not _BUCKETS.take(f"rl:tb:{agent_key}", limit, limit / window):
        raise WebhookRefused("Rate limit error: Too many requests (rate limit exceeded)")


def _check_basic(security: Mapping[str, Any], request: Request) -> None:
    wanted = mapping(security.get("basic_auth"))
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    try:
        user, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        user, password = "", ""
    if scheme.lower() != "basic" or not hmac.compare_digest(user, str(wanted.get("username") or "")) \
            or not hmac.compare_digest(password, str(wanted.get("password") or "")):
        raise WebhookRefused("Invalid Basic Auth credentials")


def _check_jwt(security: Mapping[str, Any], request: Request) -> None:
    import jwt

    config = mapping(security.get("jwt"))
    secret = config.get("secret")
    if not secret:
        raise WebhookRefused("JWT secret not configured")
    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer "):
        raise WebhookRefused("Missing Bearer token")
    token = header[len("Bearer "):].strip()
    if not token:
        raise WebhookRefused("Empty Bearer token")
    options: Any = {"verify_aud": bool(config.get("audience")), "verify_iss": bool(config.get("issuer"))}
    kwargs: dict[str, Any] = {}
    if config.get("audience"):
        kwargs["audience"] = config["audience"]
    if config.get("issuer"):
        kwargs["issuer"] = config["issuer"]
    try:
        decoded = jwt.decode(token, key=secret, algorithms=[str(config.get("algorithm") or "HS256").upper()],
                             options=options, **kwargs)
    except Exception as e:
        raise WebhookRefused(f"Invalid JWT: {e}") from None
    claims = config.get("required_claims") or []
    claims = [claims] if isinstance(claims, str) else [c for c in claims if isinstance(c, str) and c.strip()]
    for claim in claims:
        if claim in _RESERVED_CLAIMS:
            raise WebhookRefused(f"Reserved JWT claim cannot be required: {claim}")
    for claim in claims:
        if claim not in decoded:
            raise WebhookRefused(f"Missing JWT claim: {claim}")


# ---------------------------------------------------------------------------- the request
async def parse_request(request: Request, content_types: Any) -> dict[str, Any]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip()
    allowed = [content_types] if isinstance(content_types, str) else list(content_types or [])
    if ctype and allowed and ctype not in allowed:
        raise WebhookRefused(f"Invalid Content-Type: expect '{', '.join(map(str, allowed))}', got '{ctype}'")
    body: Any = {}
    try:
        if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
            form = await request.form()
            body = {k: (getattr(v, "filename", None) or "") if hasattr(v, "filename") else v
                    for k, v in form.items()}
        else:
            raw = await request.body()
            body = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except Exception:
        body = {}
    return {"query": dict(request.query_params), "headers": dict(request.headers),
            "body": body if isinstance(body, dict) else {}, "content_type": ctype}


def extract(data: Mapping[str, Any], schema: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The fields ``schema`` declares: required ones must be there, strings are cast, types checked."""
    properties = mapping(schema.get("properties"))
    required = schema.get("required") or []
    extracted: dict[str, Any] = {}
    for field, spec in properties.items():
        kind = str(spec.get("type") or "") if isinstance(spec, Mapping) else ""
        if field not in data:
            if field in required:
                raise WebhookRefused(f"{name} missing required field: {field}")
            extracted[field] = _default(kind)
            continue
        try:
            value = _cast(data[field], kind)
        except WebhookRefused as e:
            raise WebhookRefused(f"{name}.{field} auto-cast failed: {e}") from None
        if not _is_type(value, kind):
            raise WebhookRefused(f"{name}.{field} type mismatch: expected {kind}, got {type(value).__name__}")
        extracted[field] = value
    return extracted


def _default(kind: str) -> Any:
    return {"file": [], "object": {}, "boolean": False, "number": 0, "string": ""}.get(
        kind, [] if kind.startswith("array") else None)


def _cast(value: Any, kind: str) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    if kind == "boolean":
        if text.lower() in ("true", "1"):
            return True
        if text.lower() in ("false", "0"):
            return False
        raise WebhookRefused(f"Cannot convert '{value}' to boolean")
    if kind == "number":
        try:
            return int(text)
        except ValueError:
            pass
        try:
            return float(text)
        except ValueError:
            raise WebhookRefused(f"Cannot convert '{value}' to number") from None
    if kind == "object" or kind.startswith("array"):
        wanted = dict if kind == "object" else list
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if not isinstance(parsed, wanted):
            raise WebhookRefused(f"Cannot convert '{value}' to {'object' if kind == 'object' else 'array'}")
        return parsed
    return value


def _is_type(value: Any, kind: str) -> bool:
    if kind == "file":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "object":
        return isinstance(value, dict)
    if kind.startswith("array"):
        if not isinstance(value, list):
            return False
        if "<" in kind and ">" in kind:
            inner = kind[kind.find("<") + 1: kind.find(">")]
            return all(_is_type(item, inner) for item in value)
    return True


# ---------------------------------------------------------------------------- polling
def webhook_id(start_ts: str) -> str:
    """ragflow's opaque id of one call: base64url(HMAC-SHA256("webhook_id_secret", str(start_ts)))."""
    digest = hmac.new(_WEBHOOK_ID_SECRET, start_ts.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@router.get("/agents/{agent_id}/webhook/logs", summary="Poll the events of an agent's webhook calls")
async def webhook_logs(agent_id: str, request: Request, services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
    sessions = services.sessions
    try:
        calls = await sessions.webhook_runs(principal, path_id(agent_id))
    except NotFound:
        raise refuse_json(102, "Canvas not found.") from None
    try:
        since = float(request.query_params["since_ts"]) if request.query_params.get("since_ts") else None
    except ValueError:
        since = None
    wanted = request.query_params.get("webhook_id")
    if since is None:
        return json_result({"webhook_id": None, "events": [], "next_since_ts": time.time(), "finished": False})
    traces = {str(run.created_at.timestamp()): (run, events) for run, events in calls}
    if wanted is None:
        later = sorted(float(ts) for ts in traces if float(ts) > since)
        if not later:
            return json_result({"webhook_id": None, "events": [], "next_since_ts": since, "finished": False})
        return json_result({"webhook_id": webhook_id(str(later[0])), "events": [], "next_since_ts": later[0],
                            "finished": False})
    real = next((ts for ts in traces if webhook_id(ts) == wanted), None)
    if real is None:
        return json_result({"webhook_id": wanted, "events": [], "next_since_ts": since, "finished": True})
    run, events = traces[real]
    timeline = [{"ts": e.created_at.timestamp(), **e.payload} for e in events]
    if run.finished_at is not None:
        timeline.append({"ts": run.finished_at.timestamp(), "event": "finished",
                         "elapsed_time": (run.finished_at - run.created_at).total_seconds(),
                         "success": run.status == "finished"})
    fresh = [e for e in timeline if e["ts"] > since]
    return json_result({"webhook_id": wanted, "events": fresh,
                        "next_since_ts": max([since, *(e["ts"] for e in fresh)]),
                        "finished": any(e.get("event") == "finished" for e in fresh)})

