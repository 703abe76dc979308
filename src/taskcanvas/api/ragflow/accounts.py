"""ragflow's account routes: sign-up, login, API tokens (``user_api.py``, ``system_api.py``), and the
chat models (``models_api.py``).

A ragflow tenant is a user here. Tokens are taskcanvas's (``tc_<id>_<secret>``): only a hash is
stored, so a list shows each token masked (its id and last characters) — enough to delete it,
not to use it. Passwords travel in clear (over TLS); ragflow's web client RSA-encrypts them.
"""

from __future__ import annotations

import re
import secrets
import uuid
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from taskcanvas.api.deps import OriginDep, PrincipalDep, ServicesDep
from taskcanvas.api.ragflow._common import (
    http_date,
    ident,
    json_result,
    ms,
    read_json,
    refuse,
    refuse_json,
    require_fields,
    result,
    truthy,
)
from taskcanvas.llm.config import ModelRegistry, ModelRow
from taskcanvas.service.accounts import validate_email
from taskcanvas.service.errors import Conflict, Invalid, Unauthorized
from taskcanvas.service.services import Services
from taskcanvas.store.models import ApiToken, User
from taskcanvas.store.models.types import utcnow
from taskcanvas.store.repositories import SettingRepository
from taskcanvas.store.repositories.settings import default_models_key

router = APIRouter(tags=["ragflow: accounts"])

SIGNUP_ENV: Final = "TASKCANVAS_ALLOW_SIGNUP"
MODEL_TYPES: Final = ("chat", "embedding", "rerank", "asr", "vision", "tts", "ocr")
_EMAIL_RE: Final = re.compile(r"^[\w\._-]+@([\w_-]+\.)+[\w-]{2,}$")
_NICKNAME_RE: Final = re.compile(r"^[\w ._'-]+$")
_NICKNAME_MAX: Final = 100
_TOKEN_ID_RE: Final = re.compile(r"tc_([0-9a-f]{16})")
_PROVIDERS: Final = {"openai": "OpenAI-API-Compatible", "anthropic": "Anthropic"}
_CORS: Final = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Method": "*",
                "Access-Control-Allow-Headers": "*", "Access-Control-Expose-Headers": "Authorization"}


def user_json(user: User) -> dict[str, Any]:
    """ragflow's ``User.to_safe_dict(for_self=True)``, from what taskcanvas keeps."""
    return {
        "id": ident(user.id), "nickname": user.name or user.username, "username": user.username,
        "email": user.email, "avatar": None, "language": "English", "color_schema": "Bright", "timezone": "UTC",
        "is_superuser": user.site_role == "owner", "is_active": "1" if user.is_active else "0",
        "is_authenticated": "1", "is_anonymous": "0", "login_channel": "password", "status": "1",
        "create_time": ms(user.created_at), "create_date": http_date(user.created_at),
        "update_time": ms(user.updated_at), "update_date": http_date(user.updated_at),
    }


def _logged_in(user: User, token: str, message: str) -> JSONResponse:
    """ragflow's ``construct_response``: the session token in the ``Authorization`` header."""
    return JSONResponse({"code": 0, "message": message, "data": user_json(user)},
                        headers={"Authorization": token, **_CORS})


# ---------------------------------------------------------------------------- sign-up and login
@router.post("/users", summary="Register (only when TASKCANVAS_ALLOW_SIGNUP is true)")
async def register(request: Request, services: ServicesDep, origin: OriginDep) -> JSONResponse:
    body = await read_json(request)
    require_fields(body, "nickname", "email", "password")
    if not truthy(services.settings.env.get(SIGNUP_ENV, "")):
        raise refuse_json(103, "User registration is disabled!")
    email = str(body["email"] or "")
    if not _EMAIL_RE.match(email):
        raise refuse_json(103, f"Invalid email address: {email}!")
    if await services.accounts.user_by_login(email) is not None:
        raise refuse_json(103, f"Email: {email} has already registered!")
    nickname = body["nickname"]
    problem = _nickname_problem(nickname)
    if problem:
        raise refuse_json(101, problem)
    nickname = str(nickname).strip()
    password = body["password"]
    if not isinstance(password, str):
        raise refuse_json(101, "The password must be a string.")
    try:
        validate_email(email)
        user = await _create(services, email, nickname, password, origin.ip)
        login = await services.accounts.login(email, password, ip=origin.ip, user_agent=origin.user_agent)
    except Invalid as e:
        raise refuse_json(101, f"{e.message} {e.detail}" if e.detail else e.message) from None
    except Conflict:
        raise refuse_json(103, f"Email: {email} has already registered!") from None
    return _logged_in(user, login.token, f"{nickname}, welcome aboard!")


async def _create(services: Services, email: str, nickname: str, password: str, ip: str | None) -> User:
    base = _username(email)
    for attempt in range(20):
        name = base if attempt == 0 else f"{base[:27]}-{secrets.token_hex(2)}"
        try:
            return await services.accounts.create_user(name, email=email, password=password, role="member",
                                                       name=nickname, ip=ip)
        except Conflict as e:
            if "email" in e.message:
                raise
    raise Conflict("No free username could be made from the email address.")


def _username(email: str) -> str:
    """A username by taskcanvas's rules (letters, digits, single hyphens) from the email's local part."""
    local = re.sub(r"[^a-z0-9]+", "-", email.split("@")[0].lower()).strip("-")[:32].strip("-")
    return local if local and local not in ("new", "create") else "user"


def _nickname_problem(nickname: Any) -> str | None:
    if nickname is None:
        return "Nickname is required."
    if not isinstance(nickname, str):
        return "Nickname must be a string."
    text = nickname.strip()
    if not text:
        return "Nickname cannot be empty."
    if len(text) > _NICKNAME_MAX:
        return f"Nickname must be at most {_NICKNAME_MAX} characters."
    if not _NICKNAME_RE.fullmatch(text):
        return "Nickname contains invalid characters."
    return None


@router.post("/auth/login", summary="Log in with email (or username) and password; the token comes back "
                                    "in the Authorization header")
async def login(request: Request, services: ServicesDep, origin: OriginDep) -> JSONResponse:
    body = await read_json(request)
    if not body:
        raise refuse_json(109, "Unauthorized!")
    email, password = body.get("email"), body.get("password")
    if not isinstance(email, str) or not isinstance(password, str):
        raise refuse_json(109, "Email and password do not match!")
    try:
        done = await services.accounts.login(email, password, ip=origin.ip, user_agent=origin.user_agent)
    except Unauthorized:
        # ragflow says which of the two was wrong; taskcanvas does not tell who has an account.
        raise refuse_json(109, "Email and password do not match!") from None
    return _logged_in(done.user, done.token, "Welcome back!")


# ---------------------------------------------------------------------------- API tokens
def token_json(row: ApiToken, token: str | None = None) -> dict[str, Any]:
    return {
        "tenant_id": ident(row.user_id), "token": token or f"tc_{row.key_id}_…{row.hint}", "name": row.name,
        "beta": "", "dialog_id": None, "source": None,
        "create_time": ms(row.created_at), "create_date": http_date(row.created_at),
        "update_time": None, "update_date": None,
        "expire_time": ms(row.expires_at), "last_used_time": ms(row.last_used_at),
    }


@router.post("/system/tokens", summary="Make an API token (shown once)")
async def new_token(request: Request, services: ServicesDep, principal: PrincipalDep,
                    origin: OriginDep) -> JSONResponse:
    name = request.query_params.get("name") or f"ragflow-{utcnow():%Y%m%d%H%M%S}-{secrets.token_hex(3)}"
    try:
        row, token = await services.accounts.create_token(principal.user_id, name, actor=principal, ip=origin.ip)
    except Invalid as e:
        raise refuse(101, e.message) from None
    return json_result(token_json(row, token))


@router.get("/system/tokens", summary="The caller's API tokens (masked)")
async def list_tokens(services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
    return json_result([token_json(row) for row in await services.accounts.list_tokens(principal.user_id)])


@router.delete("/system/tokens/{token}", summary="Revoke an API token (the token, its masked form, id or name)")
async def delete_token(token: str, services: ServicesDep, principal: PrincipalDep, origin: OriginDep) -> JSONResponse:
    found = _TOKEN_ID_RE.search(token)
    await services.accounts.revoke_token(principal.user_id, found.group(1) if found else token, actor=principal,
                                         ip=origin.ip)
    return json_result(True)


# ---------------------------------------------------------------------------- models
def _registry(services: Services) -> ModelRegistry | None:
    registry = services.engine_services.get("models")
    return registry if isinstance(registry, ModelRegistry) else None


def _parts(row: ModelRow) -> tuple[str, str, str]:
    """(model name, instance, provider) of a configured id, ragflow's ``name@instance@provider``."""
    pieces = row.llm_id.rsplit("@", 2)
    if len(pieces) == 3:
        return pieces[0], pieces[1], pieces[2]
    if len(pieces) == 2:
        return pieces[0], "default", pieces[1]
    return row.llm_id or row.model, "default", _PROVIDERS.get(row.provider, row.provider)


def _model_rows(services: Services) -> list[ModelRow]:
    registry = _registry(services)
    if registry is None:
        return []
    rows = [r for r in registry.describe() if r.llm_id not in ("", "*")]
    known = {r.model for r in rows}
    rows += [ModelRow(r.model, r.provider, r.base_url, r.model, r.key) for r in registry.describe()
             if r.llm_id == "" and r.model not in known]
    return rows


def _model_json(row: ModelRow, principal_id: uuid.UUID) -> dict[str, Any]:
    name, instance, provider = _parts(row)
    return {"model_id": row.llm_id, "tenant_id": ident(principal_id), "model_type": ["chat"], "name": name,
            "model_name": name, "provider_id": "", "provider_name": provider, "model_provider": provider,
            "instance_id": "", "instance_name": instance, "model_instance": instance, "rank": 500, "enable": True}


@router.get("/models", summary="The chat models this server is configured with")
async def list_models(request: Request, services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
    kind = (request.query_params.get("type") or "").lower()
    rows = [] if kind and kind != "chat" else _model_rows(services)
    return result([_model_json(r, principal.user_id) for r in rows])


@router.get("/models/default", summary="The caller's default models")
async def default_models(services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
    async with services.database.session() as s:
        stored = await SettingRepository(s).get(default_models_key(principal.user_id), {})
    registry = _registry(services)
    chosen = dict(stored) if isinstance(stored, dict) else {}
    if "chat" not in chosen and registry is not None and registry.default:
        chosen["chat"] = registry.default
    models = []
    for kind, llm_id in chosen.items():
        if not llm_id:
            continue
        name, instance, provider = _parts(ModelRow(str(llm_id), "", "", str(llm_id), ""))
        models.append({"model_id": llm_id, "model_provider": provider, "model_instance": instance,
                       "model_name": name, "model_type": kind,
                       "enable": registry is not None and kind == "chat" and registry.serves(str(llm_id))})
    return result({"models": models})


@router.patch("/models/default", summary="Set or clear one of the caller's default models")
async def set_default_model(request: Request, services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
    body = await read_json(request)
    if not body or "model_type" not in body:
        raise refuse(101, "model_type is required")
    kind = str(body["model_type"])
    if kind not in MODEL_TYPES:
        raise refuse(102, f"model type '{kind}' is invalid")
    model_id = str(body.get("model_id") or "")
    provider, instance, name = (str(body.get(k) or "") for k in ("model_provider", "model_instance", "model_name"))
    configured = {r.llm_id for r in _model_rows(services)}
    registry = _registry(services)
    if model_id:
        if model_id not in configured:
            raise refuse(102, f"model_id '{model_id}' not found")
        chosen = model_id
    elif provider and instance and name:
        chosen = f"{name}@{instance}@{provider}"
        if kind != "chat" or registry is None or not registry.serves(chosen):
            raise refuse(102, f"Model '{name}' isn't available")
    else:
        chosen = ""
    if kind != "chat" and chosen:
        raise refuse(102, f"Model '{name or chosen}' isn't a {kind} model")
    async with services.database.session() as s:
        settings = SettingRepository(s)
        stored = await settings.get(default_models_key(principal.user_id), {})
        values = dict(stored) if isinstance(stored, dict) else {}
        values[kind] = chosen
        await settings.put(default_models_key(principal.user_id), values)
    return result()
