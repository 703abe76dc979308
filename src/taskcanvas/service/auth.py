"""Authentication without I/O: passwords, tokens, request credentials, and the principal.

Passwords are hashed with argon2id (argon2-cffi, RFC 9106 low-memory profile); a hash made with
older parameters verifies and is replaced on the next login (:meth:`PasswordHasher.check`).

Tokens — login sessions and API tokens alike — are opaque: ``tc_<id>_<secret>``. The id
(16 hex digits) is stored in clear and finds the row; only the SHA-256 of the secret (43
base62 characters, ~256 random bits) is stored, and it is compared in constant time. No JWT:
every request loads the token row anyway (to honour revocation and the user's current roles),
so a signature would add key management and buy nothing. A slow hash (argon2) is for guessable
secrets such as passwords; a 256-bit random secret cannot be guessed from its SHA-256, and a
fast hash keeps per-request checks cheap instead of handing every caller a CPU-burning lever.

A request carries its token in ``Coder-Session-Token: <t>`` (coder), ``Authorization: Bearer
<t>``, or ``Authorization: <t>`` (ragflow accepts the bare token): :func:`credentials_from_headers`.

The store keeps :class:`TokenRecord` rows and the users' roles; the HTTP face wires it up::

    parts = parse_token(credentials.token)
    record = check_token(parts, await tokens.get(parts.id), now=now)   # raises Unauthorized
    principal = Principal(record.user_id, site_role=..., org_roles=..., token_id=record.id)
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from hmac import compare_digest as _compare_digest
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Literal
from uuid import UUID

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from taskcanvas.service.errors import Invalid, Unauthorized
from taskcanvas.service.rbac import OrgRole, SiteRole

if TYPE_CHECKING:
    from taskcanvas.store.models import User

SESSION_TOKEN_HEADER: Final = "Coder-Session-Token"
TOKEN_PREFIX: Final = "tc"
SESSION_LIFETIME: Final = timedelta(hours=24)
"""How long a login session lasts without use (coder's default); use slides it (:func:`refreshed_expiry`)."""
SESSION_REFRESH_AFTER: Final = timedelta(hours=1)
"""A session's expiry is pushed forward at most this often (so not every request writes)."""
API_TOKEN_LIFETIME: Final = timedelta(days=30)
"""An API token's lifetime unless its creator picks another (coder's default)."""
PASSWORD_MIN_LENGTH: Final = 8
PASSWORD_MAX_LENGTH: Final = 1024

_ID_BYTES = 8
_SECRET_LENGTH = 43  # 43 base62 characters: log2(62) * 43 ≈ 256 bits
_BASE62 = string.digits + string.ascii_letters
_TOKEN_RE = re.compile(
    rf"{TOKEN_PREFIX}_(?P<id>[0-9a-f]{{{_ID_BYTES * 2}}})_(?P<secret>[0-9A-Za-z]{{{_SECRET_LENGTH}}})"
)
_DUMMY_HASH = hashlib.sha256(b"taskcanvas: no such token").hexdigest()


# -- passwords ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PasswordCheck:
    """The outcome of checking a password; ``new_hash`` is set when the stored one should be replaced."""

    ok: bool
    new_hash: str | None = None


class PasswordHasher:
    """argon2id hashing with rehash-on-login when the parameters change.

    The defaults are argon2-cffi's (RFC 9106 low-memory: t=3, m=64 MiB, p=4); pass smaller
    ones only in tests.
    """

    def __init__(self, *, time_cost: int | None = None, memory_cost: int | None = None,
                 parallelism: int | None = None) -> None:
        profile = argon2.profiles.RFC_9106_LOW_MEMORY
        self._hasher = argon2.PasswordHasher(
            time_cost=profile.time_cost if time_cost is None else time_cost,
            memory_cost=profile.memory_cost if memory_cost is None else memory_cost,
            parallelism=profile.parallelism if parallelism is None else parallelism,
            hash_len=profile.hash_len,
            salt_len=profile.salt_len,
            type=argon2.Type.ID,
        )
        self._dummy_hash: str | None = None

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str, password: str) -> bool:
        """True if ``password`` matches; False for a wrong password or a hash that is not argon2."""
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True

    def check(self, stored_hash: str | None, password: str) -> PasswordCheck:
        """Check a login attempt. ``stored_hash`` is None for an unknown user (or one without a
        password): a dummy hash is verified anyway so that the answer takes as long either way."""
        if stored_hash is None:
            if self._dummy_hash is None:
                self._dummy_hash = self.hash(secrets.token_urlsafe(16))
            self.verify(self._dummy_hash, password)
            return PasswordCheck(ok=False)
        if not self.verify(stored_hash, password):
            return PasswordCheck(ok=False)
        return PasswordCheck(ok=True, new_hash=self.hash(password) if self.needs_rehash(stored_hash) else None)


def validate_new_password(password: str) -> None:
    """Raise :class:`Invalid` (field ``password``) for a password too short or too long to accept."""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise Invalid(f"Password must be at least {PASSWORD_MIN_LENGTH} characters.", field="password")
    if len(password) > PASSWORD_MAX_LENGTH:
        raise Invalid(f"Password must be at most {PASSWORD_MAX_LENGTH} characters.", field="password")


# -- tokens ---------------------------------------------------------------------------------


class TokenKind(StrEnum):
    SESSION = "session"
    """Made by a login; expires after :data:`SESSION_LIFETIME` without use."""
    API = "api"
    """Made by a user for scripts and clients; named, listed, revoked."""


@dataclass(frozen=True)
class TokenRecord:
    """What the store keeps for a token. Never the token itself: only the hash of its secret."""

    id: str
    user_id: UUID
    kind: TokenKind
    secret_hash: str
    """Hex SHA-256 of the secret part."""
    created_at: datetime
    expires_at: datetime | None
    """None: never expires (an API token made with ``lifetime=None``)."""
    name: str = ""
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    def is_active(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True)
class MintedToken:
    """A new token: ``token`` goes to the user once, ``record`` to the store."""

    token: str
    record: TokenRecord


@dataclass(frozen=True)
class TokenParts:
    id: str
    secret: str


def hash_token_secret(secret: str) -> str:
    """Hex SHA-256 of a token's secret (a 256-bit random secret needs no slow hash or salt)."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def mint_token(user_id: UUID, kind: TokenKind, *, now: datetime, lifetime: timedelta | None,
               name: str = "") -> MintedToken:
    """A new random token for ``user_id``; ``lifetime=None`` means it never expires."""
    _require_aware(now)
    if lifetime is not None and lifetime <= timedelta(0):
        raise Invalid("Token lifetime must be positive.", field="lifetime")
    token_id = secrets.token_hex(_ID_BYTES)
    secret = "".join(secrets.choice(_BASE62) for _ in range(_SECRET_LENGTH))
    record = TokenRecord(
        id=token_id,
        user_id=user_id,
        kind=kind,
        secret_hash=hash_token_secret(secret),
        created_at=now,
        expires_at=None if lifetime is None else now + lifetime,
        name=name,
    )
    return MintedToken(token=f"{TOKEN_PREFIX}_{token_id}_{secret}", record=record)


def mint_session_token(user_id: UUID, *, now: datetime, lifetime: timedelta = SESSION_LIFETIME) -> MintedToken:
    return mint_token(user_id, TokenKind.SESSION, now=now, lifetime=lifetime)


def mint_api_token(user_id: UUID, name: str, *, now: datetime,
                   lifetime: timedelta | None = API_TOKEN_LIFETIME) -> MintedToken:
    name = name.strip()
    if not name:
        raise Invalid("Token name is required.", field="name")
    if len(name) > 64:
        raise Invalid("Token name must be 64 characters or less.", field="name")
    return mint_token(user_id, TokenKind.API, now=now, lifetime=lifetime, name=name)


def parse_token(token: str) -> TokenParts:
    """Split ``tc_<id>_<secret>``; anything else is :class:`Unauthorized`."""
    match = _TOKEN_RE.fullmatch(token.strip())
    if match is None:
        raise Unauthorized("Invalid API key format.")
    return TokenParts(id=match["id"], secret=match["secret"])


def check_token(parts: TokenParts, record: TokenRecord | None, *, now: datetime) -> TokenRecord:
    """The record behind a presented token, or :class:`Unauthorized`.

    ``record`` is what the store found for ``parts.id`` (None if nothing). The secret's hash is
    compared in constant time, and compared (against a dummy) even when there is no record.
    Revocation and expiry are told only to a caller who holds the right secret.
    """
    _require_aware(now)
    expected = record.secret_hash if record is not None and record.id == parts.id else _DUMMY_HASH
    secret_ok = _compare_digest(hash_token_secret(parts.secret), expected)
    if record is None or record.id != parts.id:
        raise Unauthorized("API key is invalid.")
    if not secret_ok:
        raise Unauthorized("API key secret is invalid.")
    if record.revoked_at is not None:
        raise Unauthorized("API key has been revoked.")
    if record.expires_at is not None and now >= record.expires_at:
        raise Unauthorized(f"API key expired at {record.expires_at.isoformat()}.")
    return record


def refreshed_expiry(record: TokenRecord, *, now: datetime, lifetime: timedelta = SESSION_LIFETIME) -> datetime | None:
    """A session's new expiry if it is due to slide forward (at most every
    :data:`SESSION_REFRESH_AFTER`), else None. API tokens keep the expiry they were given."""
    if record.kind is not TokenKind.SESSION or record.expires_at is None:
        return None
    new_expiry = now + lifetime
    return new_expiry if new_expiry - record.expires_at >= SESSION_REFRESH_AFTER else None


def revoke(record: TokenRecord, *, now: datetime) -> TokenRecord:
    """The record as revoked at ``now`` (revoking twice keeps the first time)."""
    return record if record.revoked_at is not None else replace(record, revoked_at=now)


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("token times must be timezone-aware")


# -- request credentials --------------------------------------------------------------------

CredentialSource = Literal["coder-session-token", "bearer", "authorization"]


@dataclass(frozen=True)
class Credentials:
    """The token a request presented, and where it found it (for the audit log)."""

    token: str
    source: CredentialSource


def credentials_from_headers(headers: Mapping[str, str]) -> Credentials | None:
    """The token in a request's headers, or None if it carries none.

    ``Coder-Session-Token`` wins over ``Authorization``; header names are matched without regard
    to case (a plain dict works as well as a Starlette ``Headers``). An ``Authorization`` header
    that is neither ``Bearer <token>`` nor a bare token raises :class:`Unauthorized`.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    session = lowered.get(SESSION_TOKEN_HEADER.lower(), "").strip()
    if session:
        return Credentials(session, "coder-session-token")
    authorization = lowered.get("authorization", "").strip()
    if not authorization:
        return None
    parts = authorization.split()
    if len(parts) == 2 and parts[0].lower() == "bearer":
        return Credentials(parts[1], "bearer")
    if len(parts) == 1 and parts[0].lower() != "bearer":
        return Credentials(parts[0], "authorization")
    raise Unauthorized('The Authorization header must be "Bearer <token>" or the token alone.')


def require_credentials(headers: Mapping[str, str]) -> Credentials:
    """:func:`credentials_from_headers`, raising :class:`Unauthorized` when there are none."""
    credentials = credentials_from_headers(headers)
    if credentials is None:
        raise Unauthorized(f'Header "{SESSION_TOKEN_HEADER}" or "Authorization: Bearer <token>" must be provided.')
    return credentials


# -- the principal --------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """Who is asking: the user, their site role (if any) and their role in each organization."""

    user_id: UUID
    site_role: SiteRole | None = None
    org_roles: Mapping[UUID, OrgRole] = field(default_factory=dict, hash=False)
    token_id: str | None = None
    """The token that authenticated this request (so "revoke the current session" can find it)."""
    user: User | None = field(default=None, compare=False, repr=False)
    """The user's row as read with the grants (so acting as "me" needs no second read)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "org_roles", MappingProxyType(dict(self.org_roles)))

    def role_in(self, org_id: UUID) -> OrgRole | None:
        return self.org_roles.get(org_id)
