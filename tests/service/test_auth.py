from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from taskcanvas.service import auth
from taskcanvas.service.auth import (
    API_TOKEN_LIFETIME,
    SESSION_LIFETIME,
    Credentials,
    PasswordHasher,
    Principal,
    TokenKind,
    TokenParts,
    check_token,
    credentials_from_headers,
    hash_token_secret,
    mint_api_token,
    mint_session_token,
    mint_token,
    parse_token,
    refreshed_expiry,
    require_credentials,
    revoke,
    validate_new_password,
)
from taskcanvas.service.errors import SIGNED_OUT_MESSAGE, Invalid, Unauthorized
from taskcanvas.service.rbac import OrgRole, SiteRole

NOW = datetime(2026, 8, 1, 12, 0, tzinfo=UTC)
USER = uuid4()


def fast_hasher(**overrides: int) -> PasswordHasher:
    """Tiny argon2 parameters: the tests check behaviour, not cost."""
    params = {"time_cost": 1, "memory_cost": 8, "parallelism": 1} | overrides
    return PasswordHasher(**params)


# -- passwords ------------------------------------------------------------------------------


def test_password_hash_is_argon2id_salted_and_verifies() -> None:
    hasher = fast_hasher()
    first, second = hasher.hash("correct horse"), hasher.hash("correct horse")
    assert first.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert first != second  # a fresh salt each time
    assert hasher.verify(first, "correct horse")
    assert not hasher.verify(first, "wrong horse")
    assert not hasher.verify("not a hash", "correct horse")
    assert not hasher.verify("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$broken", "correct horse")


def test_default_parameters_are_rfc_9106_low_memory() -> None:
    default = PasswordHasher()
    assert default.hash("x" * 8).startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert default.needs_rehash(fast_hasher().hash("x" * 8))
    assert not fast_hasher().needs_rehash(fast_hasher().hash("x" * 8))


def test_login_rehashes_a_password_hashed_with_old_parameters() -> None:
    old = fast_hasher().hash("correct horse")
    stronger = fast_hasher(time_cost=2)
    assert stronger.needs_rehash(old)
    check = stronger.check(old, "correct horse")
    assert check.ok and check.new_hash is not None
    assert check.new_hash.startswith("$argon2id$v=19$m=8,t=2,p=1$")
    assert stronger.verify(check.new_hash, "correct horse")
    # Up to date: nothing to store. Wrong password: no new hash either.
    assert stronger.check(check.new_hash, "correct horse") == auth.PasswordCheck(ok=True)
    assert stronger.check(old, "wrong") == auth.PasswordCheck(ok=False)


def test_unknown_user_still_pays_for_a_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    hasher = fast_hasher()
    calls: list[str] = []
    real_verify = hasher.verify

    def spy(stored_hash: str, password: str) -> bool:
        calls.append(stored_hash)
        return real_verify(stored_hash, password)

    monkeypatch.setattr(hasher, "verify", spy)
    assert hasher.check(None, "anything") == auth.PasswordCheck(ok=False)
    assert len(calls) == 1 and calls[0].startswith("$argon2id$")


def test_new_password_rules() -> None:
    validate_new_password("eight ch")
    with pytest.raises(Invalid) as caught:
        validate_new_password("short")
    assert caught.value.field == "password" and caught.value.status_code == 400
    assert str(caught.value) == "password: Password must be at least 8 characters."
    with pytest.raises(Invalid):
        validate_new_password("x" * 1025)


# -- tokens ---------------------------------------------------------------------------------


def test_token_round_trip() -> None:
    minted = mint_session_token(USER, now=NOW)
    prefix, token_id, secret = minted.token.split("_")
    assert prefix == "tc" and len(token_id) == 16 and len(secret) == 43 and secret.isalnum()
    record = minted.record
    assert (record.id, record.user_id, record.kind) == (token_id, USER, TokenKind.SESSION)
    assert record.expires_at == NOW + SESSION_LIFETIME
    # Only the hash is kept, and it is the SHA-256 of the secret.
    assert secret not in repr(record)
    assert record.secret_hash == hashlib.sha256(secret.encode()).hexdigest() == hash_token_secret(secret)

    parts = parse_token(minted.token)
    assert parts == TokenParts(token_id, secret)
    assert check_token(parts, record, now=NOW + timedelta(hours=1)) == record


def test_tokens_are_unique() -> None:
    tokens = {mint_session_token(USER, now=NOW).token for _ in range(200)}
    assert len(tokens) == 200


def test_api_tokens_are_named_and_expire_in_30_days_unless_told() -> None:
    minted = mint_api_token(USER, " ci runner ", now=NOW)
    assert minted.record.kind is TokenKind.API and minted.record.name == "ci runner"
    assert minted.record.expires_at == NOW + API_TOKEN_LIFETIME
    forever = mint_api_token(USER, "forever", now=NOW, lifetime=None)
    assert forever.record.expires_at is None
    assert check_token(parse_token(forever.token), forever.record, now=NOW + timedelta(days=3650))
    with pytest.raises(Invalid, match="name"):
        mint_api_token(USER, "  ", now=NOW)
    with pytest.raises(Invalid) as caught:
        mint_token(USER, TokenKind.API, now=NOW, lifetime=timedelta(0))
    assert caught.value.field == "lifetime"
    with pytest.raises(ValueError, match="timezone-aware"):
        mint_session_token(USER, now=datetime(2026, 8, 1))


def test_secrets_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    minted = mint_session_token(USER, now=NOW)
    compared: list[tuple[str, str]] = []

    def spy(a: str, b: str) -> bool:
        compared.append((a, b))
        return a == b

    monkeypatch.setattr(auth, "_compare_digest", spy)
    check_token(parse_token(minted.token), minted.record, now=NOW)
    assert compared == [(minted.record.secret_hash, minted.record.secret_hash)]
    # An unknown id still costs one comparison, against a dummy.
    with pytest.raises(Unauthorized):
        check_token(parse_token(minted.token), None, now=NOW)
    assert len(compared) == 2 and compared[1][1] != minted.record.secret_hash


@pytest.mark.parametrize("token", [
    "", "tc_", "tc_0123456789abcdef", "xx_0123456789abcdef_" + "a" * 43, "tc_0123456789ABCDEF_" + "a" * 43,
    "tc_0123456789abcdef_" + "a" * 42, "tc_0123456789abcdef_" + "a" * 42 + "-", "ragflow-abc",
    "eyJhbGciOiJIUzI1NiJ9.e30.sig",
])
def test_malformed_tokens_are_unauthorized(token: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        parse_token(token)
    assert caught.value.status_code == 401
    assert caught.value.message == SIGNED_OUT_MESSAGE
    assert caught.value.detail == "Invalid API key format."


def test_bad_tokens_say_which_check_failed() -> None:
    minted = mint_session_token(USER, now=NOW)
    parts = parse_token(minted.token)

    def detail(parts: TokenParts, record: auth.TokenRecord | None, now: datetime = NOW) -> str | None:
        with pytest.raises(Unauthorized) as caught:
            check_token(parts, record, now=now)
        return caught.value.detail

    assert detail(parts, None) == "API key is invalid."
    assert detail(parts, replace(minted.record, id="f" * 16)) == "API key is invalid."
    wrong_secret = TokenParts(parts.id, ("b" if parts.secret[0] == "a" else "a") + parts.secret[1:])
    assert detail(wrong_secret, minted.record) == "API key secret is invalid."
    assert detail(parts, revoke(minted.record, now=NOW)) == "API key has been revoked."
    expiry = NOW + SESSION_LIFETIME
    assert detail(parts, minted.record, now=expiry) == f"API key expired at {expiry.isoformat()}."
    # Revocation and expiry are only told to someone holding the right secret.
    assert detail(wrong_secret, revoke(minted.record, now=NOW)) == "API key secret is invalid."


def test_revoke_keeps_the_first_time() -> None:
    record = mint_api_token(USER, "x", now=NOW).record
    assert record.is_active(NOW)
    revoked = revoke(record, now=NOW)
    assert revoked.revoked_at == NOW and not revoked.is_active(NOW)
    assert revoke(revoked, now=NOW + timedelta(days=1)).revoked_at == NOW


def test_sessions_slide_at_most_hourly_and_api_tokens_never() -> None:
    session = mint_session_token(USER, now=NOW).record
    assert refreshed_expiry(session, now=NOW + timedelta(minutes=59)) is None
    later = NOW + timedelta(hours=2)
    assert refreshed_expiry(session, now=later) == later + SESSION_LIFETIME
    assert refreshed_expiry(mint_api_token(USER, "x", now=NOW).record, now=later) is None


# -- request credentials --------------------------------------------------------------------


@pytest.mark.parametrize(("headers", "expected"), [
    ({"Coder-Session-Token": "tc_a_b"}, Credentials("tc_a_b", "coder-session-token")),
    ({"coder-session-token": " tc_a_b "}, Credentials("tc_a_b", "coder-session-token")),
    ({"Authorization": "Bearer tc_a_b"}, Credentials("tc_a_b", "bearer")),
    ({"authorization": "bearer   tc_a_b"}, Credentials("tc_a_b", "bearer")),
    ({"Authorization": "tc_a_b"}, Credentials("tc_a_b", "authorization")),
    ({"Coder-Session-Token": "one", "Authorization": "Bearer two"}, Credentials("one", "coder-session-token")),
    ({"Coder-Session-Token": "", "Authorization": "Bearer two"}, Credentials("two", "bearer")),
    ({}, None),
    ({"Authorization": "  "}, None),
    ({"X-Other": "tc_a_b"}, None),
])
def test_credentials_from_headers(headers: dict[str, str], expected: Credentials | None) -> None:
    assert credentials_from_headers(headers) == expected


@pytest.mark.parametrize("value", ["Bearer", "Basic dXNlcjpwYXNz", "Bearer a b"])
def test_unusable_authorization_header(value: str) -> None:
    with pytest.raises(Unauthorized, match="Bearer <token>"):
        credentials_from_headers({"Authorization": value})


def test_require_credentials() -> None:
    assert require_credentials({"Authorization": "x"}).token == "x"
    with pytest.raises(Unauthorized) as caught:
        require_credentials({})
    assert caught.value.detail == 'Header "Coder-Session-Token" or "Authorization: Bearer <token>" must be provided.'


def test_starlette_style_headers_work_too() -> None:
    class Headers(dict[str, str]):
        """Lower-cased keys, as Starlette keeps them."""

    assert credentials_from_headers(Headers({"authorization": "Bearer t"})) == Credentials("t", "bearer")


def test_full_request_path_from_header_to_record() -> None:
    minted = mint_api_token(USER, "cli", now=NOW)
    for headers in ({"Coder-Session-Token": minted.token}, {"Authorization": f"Bearer {minted.token}"},
                    {"Authorization": minted.token}):
        credentials = require_credentials(headers)
        assert check_token(parse_token(credentials.token), minted.record, now=NOW) == minted.record


# -- principal ------------------------------------------------------------------------------


def test_principal_is_immutable() -> None:
    roles = {uuid4(): OrgRole.MEMBER}
    principal = Principal(USER, site_role=SiteRole.AUDITOR, org_roles=roles)
    roles.clear()
    assert len(principal.org_roles) == 1
    org = next(iter(principal.org_roles))
    assert principal.role_in(org) is OrgRole.MEMBER and principal.role_in(uuid4()) is None
    with pytest.raises(TypeError):
        principal.org_roles[org] = OrgRole.ADMIN  # type: ignore[index]
    assert hash(principal) == hash(Principal(USER, site_role=SiteRole.AUDITOR))
