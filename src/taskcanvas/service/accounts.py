"""Accounts: users, their roles, password logins, tokens, and who a request is.

:mod:`.auth` decides without I/O; this module is where those decisions meet the store. One
method is one transaction, short on purpose: the CLI runs these against the SQLite file a
server is using at the same moment. Password hashing (tens of milliseconds of argon2) runs in
a worker thread, outside any transaction, so it neither stalls the event loop nor holds a lock.

Every change to an account or token is written to the audit log in the transaction that makes
it; a failed login has nothing else to write, so it gets a transaction of its own.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from taskcanvas.service.auth import (
    API_TOKEN_LIFETIME,
    MintedToken,
    PasswordHasher,
    Principal,
    TokenKind,
    TokenRecord,
    check_token,
    mint_api_token,
    mint_session_token,
    parse_token,
    refreshed_expiry,
    require_credentials,
    validate_new_password,
)
from taskcanvas.service.errors import Conflict, Invalid, NotFound, Unauthorized
from taskcanvas.service.rbac import OrgRole, SiteRole
from taskcanvas.store import Database, StoreConflict
from taskcanvas.store.models import ApiToken, Membership, Organization, User
from taskcanvas.store.models.types import utcnow
from taskcanvas.store.repositories import AuditRepository, OrganizationRepository, TokenRepository, UserRepository

DEFAULT_ORGANIZATION: Final = "default"
LOGIN_FAILED: Final = "Incorrect login or password."
TOUCH_EVERY: Final = timedelta(minutes=1)
"""``last_used_at`` is written at most this often per token: a busy client must not write per request."""

_USERNAME_RE = re.compile(r"[a-zA-Z0-9]+(?:-[a-zA-Z0-9]+)*")
_USERNAME_MAX = 32
_RESERVED_USERNAMES = frozenset({"new", "create"})  # coder's: they would shadow /users/new-style routes
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+")
_EMAIL_MAX = 320
_ACTOR_NAME_MAX = 255  # AuditEntry.actor_name
_ORG_ROLE_NAMES = frozenset(role.value for role in OrgRole)
_SITE_ROLE_NAMES = frozenset(role.value for role in SiteRole)
_ROLE_DESCRIPTIONS: Final[Mapping[OrgRole, str]] = {
    OrgRole.ADMIN: "Everything inside the organization except deleting it.",
    OrgRole.MEMBER: "Own tasks; reads the organization's agents.",
    OrgRole.AUDITOR: "Reads everything in the organization, changes nothing.",
}


class AccountRole(StrEnum):
    """The role a person is given when their account is made (``taskcanvas users create --role``)."""

    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    AUDITOR = "auditor"


_GRANTS: Final[Mapping[AccountRole, tuple[SiteRole | None, OrgRole]]] = {
    AccountRole.OWNER: (SiteRole.OWNER, OrgRole.ADMIN),
    AccountRole.ADMIN: (None, OrgRole.ADMIN),
    AccountRole.MEMBER: (None, OrgRole.MEMBER),
    AccountRole.AUDITOR: (SiteRole.AUDITOR, OrgRole.AUDITOR),
}
"""An account role as a site role and a role in the default organization (site roles still need a
membership: the organization-scoped pages list its members)."""


@dataclass(frozen=True)
class LoginResult:
    user: User
    token: str
    """The session token: shown to the client once, never stored."""
    expires_at: datetime


async def user_of(s: AsyncSession, principal: Principal) -> User | None:
    """The principal's user row: the one read with its grants, or (a principal made without it) read now."""
    return principal.user or await UserRepository(s).get(principal.user_id)


def account_role(principal: Principal, organization_id: uuid.UUID) -> AccountRole | None:
    """The account role ``principal`` was given, read back from its grants (for listings)."""
    if principal.site_role is not None:
        return AccountRole(principal.site_role.value)
    org_role = principal.role_in(organization_id)
    return None if org_role is None else AccountRole(org_role.value)


class Accounts:
    """Users, logins and tokens on one database."""

    def __init__(self, database: Database, *, hasher: PasswordHasher | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self._db = database
        self._hasher = hasher or PasswordHasher()
        self._now = clock or utcnow
        self._default_org: Organization | None = None

    # -- set-up -----------------------------------------------------------------------------

    async def ensure_defaults(self) -> Organization:
        """The built-in roles and the default organization, created if missing.

        Every process calls this on start; two starting together both try to insert, and the
        loser's unique violation only means the rows are there now, so it tries again and reads them.
        """
        for _ in range(2):
            try:
                return await self._ensure_defaults_once()
            except StoreConflict:
                pass  # another process inserted them a moment ago: the next pass finds them
        return await self._ensure_defaults_once()

    async def _ensure_defaults_once(self) -> Organization:
        async with self._db.session() as s:
            orgs = OrganizationRepository(s)
            for role in OrgRole:
                await orgs.ensure_role(role.value, description=_ROLE_DESCRIPTIONS[role], built_in=True)
            org = await orgs.by_name(DEFAULT_ORGANIZATION)
            if org is None:
                org = await orgs.create(DEFAULT_ORGANIZATION, display_name="Default")
        self._default_org = org
        return org

    async def _default_organization(self) -> Organization:
        return self._default_org or await self.ensure_defaults()

    # -- users ------------------------------------------------------------------------------

    async def create_user(self, username: str, *, email: str | None = None, password: str | None = None,
                          role: str = AccountRole.MEMBER, name: str = "", actor: Principal | None = None,
                          ip: str | None = None) -> User:
        """A new account in the default organization. Without a password it can only use tokens."""
        username = validate_username(username)
        email = validate_email(email)
        account = _account_role(role)
        if password is not None:
            validate_new_password(password)
        password_hash = None if password is None else await asyncio.to_thread(self._hasher.hash, password)
        org = await self._default_organization()
        site_role, org_role = _GRANTS[account]
        try:
            async with self._db.session() as s:
                users = UserRepository(s)
                await _refuse_taken(users, username, email)
                user = await users.create(username, email=email, name=name.strip(), password_hash=password_hash,
                                          site_role=None if site_role is None else site_role.value)
                orgs = OrganizationRepository(s)
                role_row = await orgs.ensure_role(org_role.value, description=_ROLE_DESCRIPTIONS[org_role],
                                                  built_in=True)
                await orgs.add_member(org.id, user.id, role_row.id)
                await _audit(s, "create", "user", user.id, actor=actor, organization_id=org.id, status_code=201,
                             ip=ip, details={"username": username, "email": email, "role": account.value})
        except StoreConflict:
            raise Conflict("User already exists.",
                           detail="Another account with this username or email was created at the same moment."
                           ) from None
        return user

    async def get_user(self, user_id: uuid.UUID) -> User | None:
        async with self._db.session() as s:
            return await UserRepository(s).get(user_id)

    async def user_by_login(self, login: str) -> User | None:
        """The user with this username or email, in any letter case."""
        async with self._db.session() as s:
            return await UserRepository(s).by_login(login)

    async def list_users(self) -> list[User]:
        async with self._db.session() as s:
            return await UserRepository(s).find(limit=None)

    async def user_count(self) -> int:
        async with self._db.session() as s:
            return await UserRepository(s).count()

    async def principal_for(self, user_id: uuid.UUID) -> Principal:
        """The user's current grants (for a request made on their behalf, or a listing)."""
        async with self._db.session() as s:
            user = await UserRepository(s).get(user_id)
            if user is None:
                raise NotFound()
            memberships = await OrganizationRepository(s).memberships_of(user_id)
        return _principal(user, memberships, token_id=None)

    # -- logins -----------------------------------------------------------------------------

    async def login(self, login: str, password: str, *, ip: str | None = None,
                    user_agent: str | None = None) -> LoginResult:
        """A new session for a username or email and password.

        Unknown user, suspended user and wrong password get the same answer after the same
        argon2 work, so the answer does not tell which accounts exist.
        """
        now = self._now()
        async with self._db.session() as s:
            user = await UserRepository(s).by_login(login)
        stored_hash = user.password_hash if user is not None and user.is_active else None
        check = await asyncio.to_thread(self._hasher.check, stored_hash, password)
        if user is None or not user.is_active or not check.ok:
            reason = ("unknown login" if user is None else "account suspended" if not user.is_active
                      else "no password set" if user.password_hash is None else "wrong password")
            async with self._db.session() as s:
                await AuditRepository(s).record(
                    "login", "token", actor_id=None if user is None else user.id,
                    actor_name=login.strip()[:_ACTOR_NAME_MAX], status_code=401, ip=ip, user_agent=user_agent,
                    details={"reason": reason})
            raise Unauthorized(message=LOGIN_FAILED)
        minted = mint_session_token(user.id, now=now)
        async with self._db.session() as s:
            if check.new_hash is not None:
                await UserRepository(s).set_password_hash(user.id, check.new_hash)
            row = await _store_token(TokenRepository(s), minted)
            await AuditRepository(s).record(
                "login", "token", resource_id=row.id, actor_id=user.id, actor_name=user.username, status_code=200,
                ip=ip, user_agent=user_agent, details={"key_id": row.key_id})
        assert minted.record.expires_at is not None  # a session always expires
        return LoginResult(user=user, token=minted.token, expires_at=minted.record.expires_at)

    async def logout(self, principal: Principal, *, ip: str | None = None) -> bool:
        """Revoke the token the principal authenticated with; whether it was still active.

        Like coder's logout, this ends whatever token made the request: a script that logs out
        with an API token loses that token.
        """
        if principal.token_id is None:
            return False
        token_id = uuid.UUID(principal.token_id)
        async with self._db.session() as s:
            revoked = await TokenRepository(s).revoke(token_id, self._now())
            if revoked:
                await _audit(s, "logout", "token", token_id, actor=principal, status_code=200, ip=ip)
        return revoked

    async def authenticate(self, headers: Mapping[str, str], *, now: datetime | None = None) -> Principal:
        """Who is making a request, from its ``Coder-Session-Token`` or ``Authorization`` header.

        Roles are read afresh on every request, so a role change or a suspension applies at once.
        """
        now = now or self._now()
        parts = parse_token(require_credentials(headers).token)
        async with self._db.session() as s:
            tokens = TokenRepository(s)
            row = await tokens.by_key_id(parts.id)
            record = check_token(parts, None if row is None else _record(row), now=now)
            assert row is not None  # check_token refuses a missing record
            if not row.user.is_active:
                raise Unauthorized("The account is suspended; ask an administrator to reactivate it.")
            if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
                await tokens.touch(row.id, now)
            new_expiry = refreshed_expiry(record, now=now)
            if new_expiry is not None:
                await tokens.set_expiry(row.id, new_expiry)
            memberships = await OrganizationRepository(s).memberships_of(row.user_id)
        return _principal(row.user, memberships, token_id=str(row.id))

    # -- API tokens -------------------------------------------------------------------------

    async def create_token(self, user_id: uuid.UUID, name: str, *,
                           lifetime: timedelta | None = API_TOKEN_LIFETIME, actor: Principal | None = None,
                           ip: str | None = None) -> tuple[ApiToken, str]:
        """A new named API token; the token string is returned once and never stored.

        ``lifetime=None`` never expires. A revoked token's name may be used again: the revoked
        row gives way (its holder is then told the key is invalid rather than revoked).
        """
        minted = mint_api_token(user_id, name, now=self._now(), lifetime=lifetime)
        name = minted.record.name
        try:
            async with self._db.session() as s:
                if await UserRepository(s).get(user_id) is None:
                    raise NotFound()
                tokens = TokenRepository(s)
                existing = await tokens.by_name(user_id, name)
                if existing is not None and existing.revoked_at is None:
                    raise _token_name_taken(name)
                if existing is not None:
                    await tokens.delete(existing.id)
                row = await _store_token(tokens, minted)
                await _audit(s, "create", "token", row.id, actor=actor, status_code=201, ip=ip,
                             details={"name": name, "key_id": row.key_id, "user_id": str(user_id),
                                      "expires_at": None if row.expires_at is None else row.expires_at.isoformat()})
        except StoreConflict:
            raise _token_name_taken(name) from None
        return row, minted.token

    async def list_tokens(self, user_id: uuid.UUID) -> list[ApiToken]:
        """A user's API tokens that are not revoked (expired ones included: they still hold their names)."""
        async with self._db.session() as s:
            return await TokenRepository(s).list_for_user(user_id, kind=TokenKind.API.value)

    async def revoke_token(self, user_id: uuid.UUID, name_or_id: str, *, actor: Principal | None = None,
                           ip: str | None = None) -> bool:
        """Revoke one of the user's tokens, named by its name, its key id or its row id; whether one was."""
        async with self._db.session() as s:
            tokens = TokenRepository(s)
            row = await tokens.by_name(user_id, name_or_id) or await tokens.by_key_id(name_or_id)
            if row is None:
                try:
                    row = await tokens.get(uuid.UUID(name_or_id))
                except ValueError:
                    row = None
            if row is None or row.user_id != user_id or not await tokens.revoke(row.id, self._now()):
                return False
            await _audit(s, "delete", "token", row.id, actor=actor, status_code=204, ip=ip,
                         details={"name": row.name, "key_id": row.key_id, "user_id": str(user_id)})
        return True


# -- validation -----------------------------------------------------------------------------


def validate_username(username: str) -> str:
    """The username, or :class:`Invalid` saying what coder's rules (which we follow) want instead."""
    username = username.strip()
    reason = None
    if not username:
        reason = "A username is required."
    elif len(username) > _USERNAME_MAX:
        reason = f"A username must be {_USERNAME_MAX} characters or fewer."
    elif username.lower() in _RESERVED_USERNAMES:
        reason = f'"{username}" is reserved; pick another username.'
    elif not _USERNAME_RE.fullmatch(username):
        reason = "A username may hold only letters, digits and single hyphens between them (e.g. ada-lovelace)."
    if reason is not None:
        raise Invalid("Validation failed.", field="username", detail=reason)
    return username


def validate_email(email: str | None) -> str | None:
    """The email address (None or blank: none), checked only for its shape; nothing is ever sent to it."""
    if email is None or not email.strip():
        return None
    email = email.strip()
    if len(email) > _EMAIL_MAX or not _EMAIL_RE.fullmatch(email):
        raise Invalid("Validation failed.", field="email", detail="An email address looks like ada@example.com.")
    return email


def _account_role(role: str) -> AccountRole:
    try:
        return AccountRole(role)
    except ValueError:
        choices = ", ".join(r.value for r in AccountRole)
        raise Invalid("Validation failed.", field="role",
                      detail=f'"{role}" is not a role; choose one of {choices}.') from None


async def _refuse_taken(users: UserRepository, username: str, email: str | None) -> None:
    """Refuse a username or email already in use, in any letter case (logins ignore case)."""
    if await users.by_login(username) is not None:
        raise Conflict("A user with this username already exists.")
    if email is not None and await users.by_login(email) is not None:
        raise Conflict("A user with this email address already exists.")


def _token_name_taken(name: str) -> Conflict:
    return Conflict("A token with that name already exists.",
                    detail=f'Revoke "{name}" first, or choose another name.')


# -- rows -----------------------------------------------------------------------------------


async def _store_token(tokens: TokenRepository, minted: MintedToken) -> ApiToken:
    record = minted.record
    return await tokens.create(record.user_id, record.id, record.name, record.secret_hash, kind=record.kind.value,
                               hint=minted.token[-4:], expires_at=record.expires_at)


def _record(row: ApiToken) -> TokenRecord:
    return TokenRecord(id=row.key_id, user_id=row.user_id, kind=TokenKind(row.kind), secret_hash=row.token_hash,
                       created_at=row.created_at, expires_at=row.expires_at, name=row.name,
                       last_used_at=row.last_used_at, revoked_at=row.revoked_at)


def _principal(user: User, memberships: list[Membership], *, token_id: str | None) -> Principal:
    """Grants from rows; a role name the rules do not know (a custom role, later) grants nothing."""
    org_roles = {m.organization_id: OrgRole(m.role.name) for m in memberships if m.role.name in _ORG_ROLE_NAMES}
    site_role = SiteRole(user.site_role) if user.site_role in _SITE_ROLE_NAMES else None
    return Principal(user.id, site_role=site_role, org_roles=org_roles, token_id=token_id, user=user)


async def _audit(s: AsyncSession, action: str, resource_type: str, resource_id: uuid.UUID, *,
                 actor: Principal | None, status_code: int, ip: str | None,
                 organization_id: uuid.UUID | None = None, details: Mapping[str, Any] | None = None) -> None:
    """An audit entry naming the actor by username as well as id, so it reads right after they are gone."""
    actor_name = ""
    if actor is not None:
        actor_user = await user_of(s, actor)
        actor_name = "" if actor_user is None else actor_user.username
    await AuditRepository(s).record(action, resource_type, resource_id=resource_id,
                                    actor_id=None if actor is None else actor.user_id, actor_name=actor_name,
                                    organization_id=organization_id, status_code=status_code, ip=ip,
                                    details=details)
