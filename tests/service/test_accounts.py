"""Accounts against real SQLite and PostgreSQL: users and roles, logins, request authentication, tokens, audit."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import datetime, timedelta

import pytest

from taskcanvas.service.accounts import LOGIN_FAILED, AccountRole, Accounts, account_role
from taskcanvas.service.auth import SESSION_LIFETIME, PasswordHasher
from taskcanvas.service.errors import Conflict, Invalid, NotFound, Unauthorized
from taskcanvas.service.rbac import OrgRole, SiteRole
from taskcanvas.store import Database
from taskcanvas.store.models import AuditEntry
from taskcanvas.store.models.types import utcnow
from taskcanvas.store.repositories import AuditRepository, OrganizationRepository, TokenRepository, UserRepository
from tests.store.databases import database, postgres_url

__all__ = ["database", "postgres_url"]

PASSWORD = "correct horse battery"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = utcnow().replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now


def fast_hasher(time_cost: int = 1) -> PasswordHasher:
    """Tiny argon2 parameters: the tests check behaviour, not cost."""
    return PasswordHasher(time_cost=time_cost, memory_cost=8, parallelism=1)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def accounts(database: Database, clock: Clock) -> Accounts:
    accounts = Accounts(database, hasher=fast_hasher(), clock=clock)
    await accounts.ensure_defaults()
    return accounts


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def audit_log(database: Database, **filters: str) -> list[AuditEntry]:
    async with database.session() as s:
        return list(reversed(await AuditRepository(s).find(**filters)))  # type: ignore[arg-type]


# -- set-up ---------------------------------------------------------------------------------


async def test_defaults_are_made_once_even_by_two_processes_starting_together(database: Database) -> None:
    first, second = await asyncio.gather(Accounts(database).ensure_defaults(), Accounts(database).ensure_defaults())
    again = await Accounts(database).ensure_defaults()
    assert first.id == second.id == again.id and first.name == "default"
    async with database.session() as s:
        roles = await OrganizationRepository(s).roles()
    assert sorted((r.name, r.built_in) for r in roles) == [("admin", True), ("auditor", True), ("member", True)]


# -- users ----------------------------------------------------------------------------------


async def test_each_account_role_becomes_site_and_organization_grants(accounts: Accounts) -> None:
    org = await accounts.ensure_defaults()
    expected = {
        "owner": (SiteRole.OWNER, OrgRole.ADMIN),
        "admin": (None, OrgRole.ADMIN),
        "member": (None, OrgRole.MEMBER),
        "auditor": (SiteRole.AUDITOR, OrgRole.AUDITOR),
    }
    for role, (site_role, org_role) in expected.items():
        user = await accounts.create_user(f"user-{role}", email=f"{role}@example.com", role=role)
        principal = await accounts.principal_for(user.id)
        assert (principal.user_id, principal.site_role, dict(principal.org_roles)) == (
            user.id, site_role, {org.id: org_role}), role
        assert account_role(principal, org.id) is AccountRole(role)
    assert await accounts.user_count() == 4
    assert [u.username for u in await accounts.list_users()] == [
        "user-admin", "user-auditor", "user-member", "user-owner"]
    with pytest.raises(NotFound):
        await accounts.principal_for(uuid.UUID(int=0))


async def test_new_users_are_validated_like_coders(accounts: Accounts) -> None:
    for username, words in [("", "required"), ("x" * 33, "32 characters"), ("new", "reserved"),
                            ("ada_lovelace", "letters, digits and single hyphens"), ("-ada", "hyphens"),
                            ("ada--l", "hyphens"), ("ada lovelace", "hyphens")]:
        with pytest.raises(Invalid) as caught:
            await accounts.create_user(username)
        assert caught.value.field == "username" and words in str(caught.value), username
    with pytest.raises(Invalid) as caught:
        await accounts.create_user("ada", email="not an email")
    assert caught.value.field == "email"
    with pytest.raises(Invalid) as caught:
        await accounts.create_user("ada", password="short")
    assert caught.value.field == "password" and "at least 8 characters" in str(caught.value)
    with pytest.raises(Invalid) as caught:
        await accounts.create_user("ada", role="superuser")
    assert caught.value.field == "role" and "owner, admin, member, auditor" in str(caught.value)
    assert await accounts.user_count() == 0, "nothing is stored for a refused user"
    assert (await accounts.create_user("Ada-Lovelace-42", email="")).email is None


async def test_a_taken_username_or_email_is_a_conflict_in_any_case(accounts: Accounts) -> None:
    await accounts.create_user("ada", email="ada@example.com")
    with pytest.raises(Conflict, match=re.escape("A user with this username already exists.")):
        await accounts.create_user("ADA")
    with pytest.raises(Conflict, match=re.escape("A user with this email address already exists.")):
        await accounts.create_user("bob", email="Ada@Example.com")
    assert await accounts.user_count() == 1


async def test_creating_a_user_is_audited_with_its_actor(accounts: Accounts, database: Database) -> None:
    owner = await accounts.create_user("root", role="owner")
    actor = await accounts.principal_for(owner.id)
    ada = await accounts.create_user("ada", email="ada@example.com", password=PASSWORD, role="admin",
                                     actor=actor, ip="203.0.113.7")
    first, second = await audit_log(database, action="create", resource_type="user")
    assert (first.resource_id, first.actor_id, first.actor_name) == (str(owner.id), None, "")
    assert (second.resource_id, second.actor_id, second.actor_name) == (str(ada.id), owner.id, "root")
    assert (second.status_code, second.ip) == (201, "203.0.113.7")
    assert second.details == {"username": "ada", "email": "ada@example.com", "role": "admin"}
    assert PASSWORD not in json.dumps(second.details) and ada.password_hash not in json.dumps(second.details)


# -- logins ---------------------------------------------------------------------------------


async def test_login_by_username_or_email_gives_a_session_that_authenticates(
        accounts: Accounts, database: Database, clock: Clock) -> None:
    ada = await accounts.create_user("Ada", email="ada@example.com", password=PASSWORD, role="owner")
    for login in ("Ada", "ada", " ADA@example.COM "):
        result = await accounts.login(login, PASSWORD, ip="198.51.100.1", user_agent="curl/8")
        assert result.user.id == ada.id and result.token.startswith("tc_")
        assert result.expires_at == clock.now + SESSION_LIFETIME
        principal = await accounts.authenticate(bearer(result.token))
        assert principal.user_id == ada.id and principal.site_role is SiteRole.OWNER
    async with database.session() as s:
        sessions = await TokenRepository(s).list_for_user(ada.id, kind="session")
    assert len(sessions) == 3 and all(t.name == f"session-{t.key_id}" for t in sessions)
    assert await accounts.list_tokens(ada.id) == [], "sessions are not API tokens"
    entries = await audit_log(database, action="login")
    assert [(e.status_code, e.actor_id, e.actor_name) for e in entries] == [(200, ada.id, "Ada")] * 3
    assert entries[0].ip == "198.51.100.1" and entries[0].user_agent == "curl/8"
    assert entries[0].resource_type == "token" and entries[0].resource_id == str(sessions[0].id)


async def test_failed_logins_all_look_the_same_and_are_audited(accounts: Accounts, database: Database) -> None:
    ada = await accounts.create_user("ada", password=PASSWORD)
    tokens_only = await accounts.create_user("tokens-only")
    sue = await accounts.create_user("sue", password=PASSWORD)
    async with database.session() as s:
        await UserRepository(s).set_active(sue.id, False)
    attempts = [("ada", "wrong password", "wrong password"), ("nobody", PASSWORD, "unknown login"),
                ("tokens-only", PASSWORD, "no password set"), ("sue", PASSWORD, "account suspended")]
    for login, password, _ in attempts:
        with pytest.raises(Unauthorized) as caught:
            await accounts.login(login, password, ip="192.0.2.9")
        assert str(caught.value) == LOGIN_FAILED == "Incorrect login or password."
        assert caught.value.status_code == 401
    entries = await audit_log(database, action="login")
    assert [(e.actor_name, e.status_code, e.details["reason"]) for e in entries] == [
        (login, 401, reason) for login, _, reason in attempts]
    assert [e.actor_id for e in entries] == [ada.id, None, tokens_only.id, sue.id]
    assert all(e.ip == "192.0.2.9" and e.resource_id is None for e in entries)
    assert not any(PASSWORD in json.dumps(e.details) for e in entries)


async def test_a_hash_with_old_parameters_is_replaced_at_login(database: Database, clock: Clock) -> None:
    old = Accounts(database, hasher=fast_hasher(time_cost=1), clock=clock)
    ada = await old.create_user("ada", password=PASSWORD)
    assert ada.password_hash is not None and "t=1" in ada.password_hash
    new = Accounts(database, hasher=fast_hasher(time_cost=2), clock=clock)
    await new.login("ada", PASSWORD)
    stored = await new.get_user(ada.id)
    assert stored is not None and stored.password_hash is not None and "t=2" in stored.password_hash
    await new.login("ada", PASSWORD)  # the new hash verifies


async def test_logout_ends_the_session(accounts: Accounts, database: Database) -> None:
    await accounts.create_user("ada", password=PASSWORD)
    kept = await accounts.login("ada", PASSWORD)
    ended = await accounts.login("ada", PASSWORD)
    principal = await accounts.authenticate(bearer(ended.token))
    assert await accounts.logout(principal)
    assert not await accounts.logout(principal)
    with pytest.raises(Unauthorized, match="API key has been revoked"):
        await accounts.authenticate(bearer(ended.token))
    await accounts.authenticate(bearer(kept.token))  # only the session that logged out ends
    assert [e.status_code for e in await audit_log(database, action="logout")] == [200]


# -- authenticating requests ----------------------------------------------------------------


async def test_every_header_style_authenticates(accounts: Accounts) -> None:
    org = await accounts.ensure_defaults()
    ada = await accounts.create_user("ada", role="member")
    row, token = await accounts.create_token(ada.id, "cli")
    for headers in ({"Coder-Session-Token": token}, {"authorization": f"Bearer {token}"},
                    {"Authorization": token}):
        principal = await accounts.authenticate(headers)
        assert principal.user_id == ada.id and principal.site_role is None
        assert dict(principal.org_roles) == {org.id: OrgRole.MEMBER}
        assert principal.token_id == str(row.id)


async def test_bad_credentials_are_unauthorized(accounts: Accounts) -> None:
    ada = await accounts.create_user("ada")
    _, token = await accounts.create_token(ada.id, "cli")
    other_secret = token[:-1] + ("A" if token[-1] != "A" else "B")
    unknown_id = "tc_" + "0" * 16 + token[-44:]
    cases = [({}, "must be provided"), (bearer("hunter2"), "Invalid API key format"),
             (bearer(other_secret), "API key secret is invalid"), (bearer(unknown_id), "API key is invalid"),
             ({"Authorization": "Basic a b"}, "Bearer <token>")]
    for headers, words in cases:
        with pytest.raises(Unauthorized, match=words):
            await accounts.authenticate(headers)


async def test_revoked_expired_and_suspended_are_unauthorized(
        accounts: Accounts, database: Database, clock: Clock) -> None:
    ada = await accounts.create_user("ada")
    _, revoked = await accounts.create_token(ada.id, "revoked")
    _, short = await accounts.create_token(ada.id, "short", lifetime=timedelta(hours=1))
    assert await accounts.revoke_token(ada.id, "revoked")
    with pytest.raises(Unauthorized, match="API key has been revoked"):
        await accounts.authenticate(bearer(revoked))
    await accounts.authenticate(bearer(short), now=clock.now + timedelta(minutes=59))
    with pytest.raises(Unauthorized, match="API key expired at"):
        await accounts.authenticate(bearer(short), now=clock.now + timedelta(hours=1))
    async with database.session() as s:
        await UserRepository(s).set_active(ada.id, False)
    _, fresh = await accounts.create_token(ada.id, "fresh")
    with pytest.raises(Unauthorized, match="suspended"):
        await accounts.authenticate(bearer(fresh))


async def test_a_session_slides_while_used_and_expires_when_not(
        accounts: Accounts, database: Database, clock: Clock) -> None:
    await accounts.create_user("ada", password=PASSWORD)
    start = clock.now
    token = (await accounts.login("ada", PASSWORD)).token

    async def expiry() -> datetime | None:
        async with database.session() as s:
            row = await TokenRepository(s).by_key_id(token.split("_")[1])
        assert row is not None
        return row.expires_at

    await accounts.authenticate(bearer(token), now=start + timedelta(minutes=30))
    assert await expiry() == start + SESSION_LIFETIME, "not moved for less than an hour's gain"
    await accounts.authenticate(bearer(token), now=start + timedelta(hours=20))
    assert await expiry() == start + timedelta(hours=20) + SESSION_LIFETIME
    await accounts.authenticate(bearer(token), now=start + timedelta(hours=30))  # past the first expiry
    with pytest.raises(Unauthorized, match="expired"):
        await accounts.authenticate(bearer(token), now=start + timedelta(hours=30) + SESSION_LIFETIME)


async def test_api_tokens_do_not_slide_and_use_is_recorded_at_most_once_a_minute(
        accounts: Accounts, clock: Clock) -> None:
    ada = await accounts.create_user("ada")
    row, token = await accounts.create_token(ada.id, "cli", lifetime=timedelta(days=2))
    assert row.expires_at == clock.now + timedelta(days=2)

    async def used() -> tuple[datetime | None, datetime | None]:
        [listed] = await accounts.list_tokens(ada.id)
        return listed.last_used_at, listed.expires_at

    start = clock.now
    await accounts.authenticate(bearer(token), now=start)
    assert await used() == (start, row.expires_at)
    await accounts.authenticate(bearer(token), now=start + timedelta(seconds=30))
    assert await used() == (start, row.expires_at)
    await accounts.authenticate(bearer(token), now=start + timedelta(hours=3))
    assert await used() == (start + timedelta(hours=3), row.expires_at)


# -- API tokens -----------------------------------------------------------------------------


async def test_tokens_are_created_listed_and_revoked(accounts: Accounts, database: Database) -> None:
    ada = await accounts.create_user("ada")
    bob = await accounts.create_user("bob")
    ci, ci_token = await accounts.create_token(ada.id, " ci ")
    forever, _ = await accounts.create_token(ada.id, "forever", lifetime=None)
    bobs, _ = await accounts.create_token(bob.id, "ci")  # names are per user
    assert ci.name == "ci" and forever.expires_at is None and ci.kind == "api"
    assert ci_token.startswith(f"tc_{ci.key_id}_") and ci.hint == ci_token[-4:]
    with pytest.raises(Conflict, match=re.escape("A token with that name already exists.")):
        await accounts.create_token(ada.id, "ci")
    with pytest.raises(Invalid, match="Token name is required"):
        await accounts.create_token(ada.id, "  ")
    with pytest.raises(NotFound):
        await accounts.create_token(ci.id, "no such user")
    assert [t.name for t in await accounts.list_tokens(ada.id)] == ["ci", "forever"]

    assert not await accounts.revoke_token(ada.id, "nope")
    assert not await accounts.revoke_token(ada.id, str(bobs.id)), "another user's token is not yours to revoke"
    assert await accounts.revoke_token(ada.id, "ci")
    assert not await accounts.revoke_token(ada.id, "ci")
    assert await accounts.revoke_token(ada.id, forever.key_id)
    assert [t.name for t in await accounts.list_tokens(ada.id)] == []
    assert [t.name for t in await accounts.list_tokens(bob.id)] == ["ci"]

    again, again_token = await accounts.create_token(ada.id, "ci")  # a revoked token's name is free again
    assert (await accounts.authenticate(bearer(again_token))).user_id == ada.id
    assert await accounts.revoke_token(ada.id, str(again.id))


async def test_token_changes_are_audited_without_the_secret(accounts: Accounts, database: Database) -> None:
    owner = await accounts.create_user("root", role="owner")
    ada = await accounts.create_user("ada")
    actor = await accounts.principal_for(owner.id)
    row, token = await accounts.create_token(ada.id, "ci", actor=actor, ip="192.0.2.1")
    await accounts.revoke_token(ada.id, "ci", actor=actor, ip="192.0.2.1")
    created, deleted = await audit_log(database, resource_type="token")
    assert (created.action, created.status_code, deleted.action, deleted.status_code) == ("create", 201, "delete", 204)
    for entry in (created, deleted):
        assert (entry.resource_id, entry.actor_id, entry.actor_name, entry.ip) == (
            str(row.id), owner.id, "root", "192.0.2.1")
        assert entry.details["name"] == "ci" and entry.details["user_id"] == str(ada.id)
        secret = token.split("_")[2]
        assert secret not in json.dumps(entry.details) and row.token_hash not in json.dumps(entry.details)
