"""``taskcanvas users`` and ``taskcanvas tokens`` as a person runs them: the real command in a subprocess.

The test process keeps its own connection to the same SQLite file open throughout, as a
running server would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from taskcanvas.service.accounts import Accounts
from taskcanvas.service.errors import Unauthorized
from taskcanvas.store import Database
from taskcanvas.store.repositories import AuditRepository

PASSWORD = "correct horse battery"


class Taskcanvas:
    """The ``taskcanvas`` command with its own data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TASKCANVAS_")}
        self.env["TASKCANVAS_DATA_DIR"] = str(data_dir)
        self.cwd = data_dir

    def __call__(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "taskcanvas.cli.app", *args], input=stdin, env=self.env,
                              text=True, capture_output=True, timeout=120, cwd=self.cwd)
        assert "Traceback" not in done.stderr, done.stderr
        return done


@pytest.fixture
def taskcanvas(tmp_path: Path) -> Taskcanvas:
    return Taskcanvas(tmp_path)


@pytest.fixture
async def database(tmp_path: Path, taskcanvas: Taskcanvas) -> AsyncIterator[Database]:
    """The server's connection to the same database (opened after the CLI has created it)."""
    done = taskcanvas("users", "list")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("No users yet: create one with `taskcanvas users create")
    database = Database(f"sqlite:///{tmp_path / 'taskcanvas.db'}")
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def accounts(database: Database) -> Accounts:
    return Accounts(database)


def only_line(text: str) -> str:
    lines = text.splitlines()
    assert len(lines) == 1, text
    return lines[0]


async def test_a_user_made_with_a_password_can_log_in(taskcanvas: Taskcanvas, accounts: Accounts) -> None:
    done = taskcanvas("users", "create", "--username", "ada", "--email", "ada@example.com", "--name", "Ada L",
                      "--role", "owner", "--password-stdin", stdin=PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    assert only_line(done.stdout) == "Created user ada <ada@example.com> as owner in organization default."
    result = await accounts.login("ada@example.com", PASSWORD)
    assert result.user.username == "ada" and result.user.name == "Ada L"

    done = taskcanvas("users", "create", "--username", "bot", "--email", "bot@example.com")
    assert done.returncode == 0, done.stderr
    assert "no password: give it a token with `taskcanvas tokens create --username bot`" in done.stdout

    done = taskcanvas("users", "list")
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split() == ["USERNAME", "EMAIL", "NAME", "ROLE", "STATUS", "CREATED"]
    assert [row.split()[:2] for row in rows] == [["ada", "ada@example.com"], ["bot", "bot@example.com"]]
    assert "owner" in rows[0] and "member" in rows[1] and all("active" in row for row in rows)

    done = taskcanvas("users", "list", "--output", "json")
    users = json.loads(done.stdout)
    assert [(u["username"], u["role"], u["has_password"]) for u in users] == [("ada", "owner", True),
                                                                              ("bot", "member", False)]


async def test_refusals_are_one_line_with_the_right_status(taskcanvas: Taskcanvas, accounts: Accounts) -> None:
    assert taskcanvas("users", "create", "--username", "ada", "--email", "ada@example.com").returncode == 0
    refusals = [
        (["users", "create", "--username", "ADA", "--email", "other@example.com"], 1,
         "error: A user with this username already exists."),
        (["users", "create", "--username", "bob", "--email", "Ada@example.com"], 1,
         "error: A user with this email address already exists."),
        (["users", "create", "--username", "bob_b", "--email", "bob@example.com"], 1,
         "error: username: Validation failed. A username may hold only letters, digits and single hyphens"),
        (["users", "create", "--username", "bob", "--email", "bob@example.com", "--role", "root"], 2,
         "error: --role must be one of owner, admin, member, auditor, not 'root'"),
        (["users", "create", "--username", "bob", "--email", "bob@example.com", "--password-stdin"], 2,
         "error: --password-stdin: standard input held no password"),
        (["tokens", "create", "--username", "nobody"], 1, "error: no user 'nobody': see `taskcanvas users list`"),
        (["tokens", "create", "--username", "ada", "--lifetime", "soon"], 2,
         "error: --lifetime 'soon': expected a duration such as 30d, 12h, 90m or 2w, or 0"),
        (["tokens", "revoke", "--username", "ada", "nope"], 1, "error: ada has no active token 'nope'"),
        (["users", "list", "--output", "yaml"], 2, "error: --output must be table or json, not 'yaml'"),
    ]
    for args, status, message in refusals:
        done = taskcanvas(*args)
        assert done.returncode == status, (args, done.stderr)
        assert only_line(done.stderr).startswith(message), (args, done.stderr)
    done = taskcanvas("users", "create", "--username", "bob", "--email", "bob@example.com", "--password-stdin",
                      stdin="short\n")
    assert done.returncode == 1 and only_line(done.stderr) == "error: password: Password must be at least 8 characters."
    assert await accounts.user_count() == 1, "nothing refused was stored"


async def test_a_created_token_authenticates_until_revoked(
        taskcanvas: Taskcanvas, database: Database, accounts: Accounts) -> None:
    assert taskcanvas("users", "create", "--username", "ada", "--email", "ada@example.com").returncode == 0

    done = taskcanvas("tokens", "create", "--username", "ada")
    assert done.returncode == 0 and done.stderr == ""
    token = done.stdout.strip()
    assert done.stdout == token + "\n" and token.startswith("tc_")
    ada = await accounts.user_by_login("ada")
    assert ada is not None
    assert (await accounts.authenticate({"Authorization": f"Bearer {token}"})).user_id == ada.id

    done = taskcanvas("tokens", "create", "--username", "ada@example.com", "--name", "ci", "--lifetime", "0")
    ci_token = done.stdout.strip()
    assert done.returncode == 0 and (await accounts.authenticate({"Coder-Session-Token": ci_token})).user_id == ada.id
    done = taskcanvas("tokens", "create", "--username", "ada", "--name", "ci")
    assert done.returncode == 1 and only_line(done.stderr).startswith("error: A token with that name already exists.")

    done = taskcanvas("tokens", "list", "--username", "ada")
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split() == ["NAME", "ID", "CREATED", "EXPIRES", "LAST", "USED"]
    assert [row.split()[:2] for row in rows] == [["cli", token.split("_")[1]], ["ci", ci_token.split("_")[1]]]
    assert "never" in rows[1]
    listed = json.loads(taskcanvas("tokens", "list", "--username", "ada", "-o", "json").stdout)
    assert [(t["name"], t["expires_at"] is None) for t in listed] == [("cli", False), ("ci", True)]
    assert listed[0]["last_used_at"] is not None, "the authentication above was recorded"
    assert token not in json.dumps(listed)

    done = taskcanvas("tokens", "revoke", "--username", "ada", "cli")
    assert done.returncode == 0 and only_line(done.stdout) == "Revoked token cli of ada."
    with pytest.raises(Unauthorized, match="revoked"):
        await accounts.authenticate({"Authorization": token})
    done = taskcanvas("tokens", "revoke", "--username", "ada", ci_token.split("_")[1])  # by id
    assert done.returncode == 0, done.stderr
    assert "has no API tokens" in taskcanvas("tokens", "list", "--username", "ada").stdout

    async with database.session() as s:
        entries = await AuditRepository(s).find(resource_type="token")
    assert sorted(e.action for e in entries) == ["create", "create", "delete", "delete"]
