"""``taskcanvas db upgrade`` and ``db current``, invoked through their typer sub-app."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL
from typer.testing import CliRunner

from taskcanvas.cli import db
from taskcanvas.store.migrations import head
from tests.store.databases import admin, postgres_url, run_blocking

__all__ = ["postgres_url"]

UNSET = {"TASKCANVAS_DATABASE_URL": None, "TASKCANVAS_CONFIG": None, "TASKCANVAS_DATA_DIR": None}


def invoke(*args: str, **env: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(db.app, list(args), env={**UNSET, **env})


def test_upgrade_creates_the_sqlite_database_in_the_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = invoke("current", "--data-dir", str(data))
    assert result.exit_code == 0, result.output
    assert "No database yet at" in result.output
    assert not data.exists(), "looking creates nothing"

    result = invoke("upgrade", "--data-dir", str(data))
    assert result.exit_code == 0, result.output
    assert f"from an empty schema to revision {head()} (head)" in result.output
    assert (data / "taskcanvas.db").exists()

    result = invoke("upgrade", "--data-dir", str(data))
    assert result.exit_code == 0, result.output
    assert f"is up to date: revision {head()} (head)" in result.output

    result = invoke("current", "--data-dir", str(data))
    assert result.exit_code == 0, result.output
    assert f"is at revision {head()} (head)" in result.output


def test_the_option_overrides_the_variable(tmp_path: Path) -> None:
    result = invoke("upgrade", "--data-dir", str(tmp_path / "option"), TASKCANVAS_DATA_DIR=str(tmp_path / "env"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "option" / "taskcanvas.db").exists()
    assert not (tmp_path / "env").exists()


def test_current_on_a_database_without_the_schema(tmp_path: Path) -> None:
    (tmp_path / "taskcanvas.db").write_bytes(b"")
    result = invoke("current", "--data-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "has no taskcanvas schema: run `taskcanvas db upgrade`" in result.output


@pytest.fixture
def fresh_postgres(postgres_url: URL) -> Iterator[URL]:
    name = f"taskcanvas_cli_{uuid.uuid4().hex[:12]}"
    run_blocking(admin(postgres_url, f'CREATE DATABASE "{name}"'))
    try:
        yield postgres_url.set(database=name)
    finally:
        run_blocking(admin(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_upgrade_postgres_named_by_the_variable(tmp_path: Path, fresh_postgres: URL) -> None:
    url = fresh_postgres.render_as_string(hide_password=False)
    result = invoke("upgrade", "--data-dir", str(tmp_path), TASKCANVAS_DATABASE_URL=url)
    assert result.exit_code == 0, result.output
    assert "Upgraded the database postgresql+asyncpg://" in result.output
    result = invoke("current", TASKCANVAS_DATABASE_URL=url)
    assert f"is at revision {head()} (head)" in result.output
    assert not list(tmp_path.iterdir()), "no SQLite file when PostgreSQL is configured"


def test_an_unreachable_database_is_one_line_without_the_password(tmp_path: Path) -> None:
    result = invoke("upgrade", TASKCANVAS_DATABASE_URL="postgresql://tc:s3cret@127.0.0.1:1/tc")
    assert result.exit_code == db.EXIT_DATABASE
    assert result.output.startswith("error: cannot reach the database postgresql+asyncpg://tc:***@127.0.0.1:1/tc")
    assert "s3cret" not in result.output and "Traceback" not in result.output


def test_an_unusable_url_is_a_configuration_error(tmp_path: Path) -> None:
    for command in ("upgrade", "current"):
        result = invoke(command, "--data-dir", str(tmp_path), TASKCANVAS_DATABASE_URL="mysql://root@db/tc")
        assert result.exit_code == db.EXIT_CONFIG
        assert "cannot use the database driver 'mysql'" in result.output
