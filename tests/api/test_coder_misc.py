"""The rest of coder's API that task clients use on /api/v2: templates, sign-in, users, tokens, audit."""

from __future__ import annotations

import uuid

from tests.api.test_coder_tasks import ECHO, NOT_FOUND, QUICKSTART, create, settled, version_of
from tests.support.server import PASSWORD, LiveServer

# ---------------------------------------------------------------------------- templates


def test_agents_are_templates_with_their_versions(sqlite_server: LiveServer) -> None:
    echo = sqlite_server.agents[ECHO]
    with sqlite_server.client("alice") as c:
        listed = c.get("/api/v2/templates")
        one = c.get(f"/api/v2/templates/{echo['id']}")
        versions = c.get(f"/api/v2/templates/{echo['id']}/versions")
        version = c.get(f"/api/v2/templateversions/{echo['version_id']}")
        presets = c.get(f"/api/v2/templateversions/{echo['version_id']}/presets")
        by_name = c.get("/api/v2/templates", params={"q": "exact_name:quickstart-topics has-ai-task:true"})
        none = c.get("/api/v2/templates", params={"q": "has-ai-task:false"})
        bad_query = c.get("/api/v2/templates", params={"q": "colour:blue"})
        bad_id = c.get("/api/v2/templates/not-a-uuid")
        missing = c.get(f"/api/v2/templateversions/{uuid.uuid4()}")
        missing_presets = c.get(f"/api/v2/templateversions/{uuid.uuid4()}/presets")

    assert listed.status_code == 200
    assert [t["name"] for t in listed.json()] == ["echo", "quickstart-topics"]
    template = one.json()
    assert template == next(t for t in listed.json() if t["id"] == echo["id"])
    assert template["display_name"] == ECHO and template["active_version_id"] == echo["version_id"]
    assert template["organization_name"] == "default" and uuid.UUID(template["organization_id"])
    assert template["created_by_name"] == "admin" and template["created_by_id"] == sqlite_server.user_ids["admin"]
    assert template["description"].startswith("Says back what you tell it")
    assert template["provisioner"] == "terraform" and template["deprecated"] is False

    assert [v["id"] for v in versions.json()] == [echo["version_id"]]
    shown = version.json()
    assert shown == versions.json()[0]
    assert shown["template_id"] == echo["id"] and shown["name"] == "v1"
    assert shown["job"]["status"] == "succeeded" and shown["has_ai_task"] is True
    assert shown["created_by"]["username"] == "admin" and shown["created_at"].endswith("Z")
    assert presets.status_code == 200 and presets.json() == []

    assert [t["display_name"] for t in by_name.json()] == [QUICKSTART]
    assert none.json() == []
    assert bad_query.status_code == 400 and bad_query.json()["message"] == "Invalid template search query."
    assert bad_id.status_code == 400
    assert bad_id.json() == {"message": 'Invalid UUID "not-a-uuid".', "detail": "invalid UUID length: 10"}
    assert missing.status_code == 404 and missing.json() == {"message": NOT_FOUND}
    assert missing_presets.status_code == 404

    # A task made from the template reports the version the template calls active.
    task = create(sqlite_server, "bob", "which version", agent=QUICKSTART)
    quickstart = next(t for t in listed.json() if t["display_name"] == QUICKSTART)
    assert task["template_id"] == quickstart["id"]
    assert task["template_version_id"] == quickstart["active_version_id"] == version_of(sqlite_server, QUICKSTART)


# ---------------------------------------------------------------------------- sign-in, users


def test_a_password_login_gives_a_session_token_that_logout_ends(sqlite_server: LiveServer) -> None:
    with sqlite_server.client() as c:
        by_email = c.post("/api/v2/users/login", json={"email": "alice@example.com", "password": PASSWORD})
        by_name = c.post("/api/v2/users/login", json={"email": "alice", "password": PASSWORD})
        wrong = c.post("/api/v2/users/login", json={"email": "alice", "password": "not it at all"})
        nobody = c.post("/api/v2/users/login", json={"email": "nobody", "password": PASSWORD})
    assert by_email.status_code == 201 and by_name.status_code == 201
    assert wrong.status_code == 401 and nobody.status_code == 401
    assert wrong.json() == nobody.json()

    token = by_email.json()["session_token"]
    with sqlite_server.client(headers={"Coder-Session-Token": token}) as c:
        me = c.get("/api/v2/users/me")
        assert me.status_code == 200 and me.json()["username"] == "alice"
        assert c.get("/api/v2/tasks").status_code == 200
        out = c.post("/api/v2/users/logout")
        assert out.status_code == 200 and out.json() == {"message": "Logged out!"}
        assert c.get("/api/v2/users/me").status_code == 401
    with sqlite_server.client(headers={"Authorization": f"Bearer {by_name.json()['session_token']}"}) as c:
        assert c.get("/api/v2/users/me").json()["username"] == "alice"


def test_users_read_as_coder_users(sqlite_server: LiveServer) -> None:
    with sqlite_server.client("admin") as c:
        admin = c.get("/api/v2/users/me").json()
        alice_by_name = c.get("/api/v2/users/alice")
        alice_by_id = c.get(f"/api/v2/users/{sqlite_server.user_ids['alice']}")
    with sqlite_server.client("alice") as c:
        alice = c.get("/api/v2/users/me").json()
        bob = c.get("/api/v2/users/bob")
    with sqlite_server.client("audrey") as c:
        audrey = c.get("/api/v2/users/me").json()
    with sqlite_server.client() as c:
        anonymous = c.get("/api/v2/users/me")
        info = c.get("/api/v2/buildinfo")

    assert admin["id"] == sqlite_server.user_ids["admin"] and admin["email"] == "admin@example.com"
    assert admin["status"] == "active" and admin["login_type"] == "password"
    assert [r["name"] for r in admin["roles"]] == ["owner", "organization-admin"]
    assert len(admin["organization_ids"]) == 1 and admin["roles"][1]["organization_id"] == admin["organization_ids"][0]
    assert alice_by_name.json() == alice_by_id.json() == alice
    assert [r["name"] for r in alice["roles"]] == ["organization-member"]
    assert [r["name"] for r in audrey["roles"]] == ["auditor", "organization-auditor"]
    assert bob.status_code == 404
    assert anonymous.status_code == 401
    assert info.status_code == 200  # the one route that needs no sign-in
    assert info.json()["version"].startswith("v") and info.json()["external_url"] == sqlite_server.url




# ---------------------------------------------------------------------------- tokens


def test_tokens_are_created_listed_and_revoked(sqlite_server: LiveServer) -> None:
    with sqlite_server.client("alice") as c:
        made = c.post("/api/v2/users/me/keys/tokens", json={"token_name": "ci", "lifetime": 3600 * 10**9})
        unnamed = c.post("/api/v2/users/alice/keys/tokens", json={})
        taken = c.post("/api/v2/users/me/keys/tokens", json={"token_name": "ci"})
        negative = c.post("/api/v2/users/me/keys/tokens", json={"token_name": "x", "lifetime": -1})
        listed = c.get("/api/v2/users/me/keys/tokens").json()
        others = c.get("/api/v2/users/bob/keys/tokens")
    assert made.status_code == 201 and unnamed.status_code == 201
    assert taken.status_code == 409 and negative.status_code == 400
    mine = {t["token_name"]: t for t in listed}
    assert {"tests", "ci"} <= set(mine) and len(mine) == 3
    assert mine["ci"]["lifetime_seconds"] == 3600 and mine["ci"]["user_id"] == sqlite_server.user_ids["alice"]
    assert others.status_code == 404

    key = made.json()["key"]
    with sqlite_server.client(headers={"Coder-Session-Token": key}) as c:
        assert c.get("/api/v2/users/me").json()["username"] == "alice"
    with sqlite_server.client("admin") as c:
        assert {t["token_name"] for t in c.get("/api/v2/users/alice/keys/tokens").json()} == set(mine)
    with sqlite_server.client("alice") as c:
        assert c.delete("/api/v2/users/me/keys/tokens/ci").status_code == 204
        assert c.delete("/api/v2/users/me/keys/tokens/ci").status_code == 404
        assert c.delete(f"/api/v2/users/me/keys/{mine[next(n for n in mine if n not in ('ci', 'tests'))]['id']}"
                        ).status_code == 204
    with sqlite_server.client(headers={"Coder-Session-Token": key}) as c:
        assert c.get("/api/v2/users/me").status_code == 401


# ---------------------------------------------------------------------------- audit


def test_the_audit_log_is_for_owners_and_auditors(sqlite_server: LiveServer) -> None:
    task = create(sqlite_server, "alice", "audit me")
    settled(sqlite_server, "alice", task["id"], "complete")
    with sqlite_server.client("admin") as c:
        everything = c.get("/api/v2/audit")
        page = c.get("/api/v2/audit", params={"limit": 1, "offset": 1})
        creates = c.get("/api/v2/audit", params={"q": "action:create resource_type:task"})
        bad = c.get("/api/v2/audit", params={"limit": "many"})
    with sqlite_server.client("audrey") as c:
        audited = c.get("/api/v2/audit")
    with sqlite_server.client("alice") as c:
        refused = c.get("/api/v2/audit")

    assert everything.status_code == 200 and audited.status_code == 200
    logs = everything.json()["audit_logs"]
    assert everything.json()["count"] >= len(logs) >= 2
    assert audited.json()["count"] == everything.json()["count"]
    assert [e["time"] for e in logs] == sorted((e["time"] for e in logs), reverse=True)
    assert page.json()["audit_logs"] == logs[1:2] and page.json()["count"] == everything.json()["count"]

    created = creates.json()["audit_logs"]
    assert creates.json()["count"] == 1 and len(created) == 1
    entry = created[0]
    assert entry["resource_id"] == task["id"] and entry["resource_target"] == task["name"]
    assert entry["user"]["username"] == "alice" and entry["status_code"] == 200
    assert entry["additional_fields"]["workspace_owner"] == "alice"
    assert entry["description"] == "{user} created task {target}"
    assert entry["organization"]["name"] == "default"

    assert refused.status_code == 403
    assert bad.status_code == 400 and bad.json()["message"] == "Query parameters have invalid values."
