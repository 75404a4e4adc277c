"""README "Many tenants": the documented commands that create the current-rows views.

A small warehouse written by hand, on DuckDB and PostgreSQL: two tenants, one whose last
run failed. The views must show each tenant's rows of its last complete run, the newest
row per key, and nothing of a tenant that never completed.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest

from tests.test_warehouse import (
    PostgresServer,
    postgres,  # noqa: F401  # the fixture
)

pytestmark = pytest.mark.e2e  # runs the documented command, a process of its own

ROOT = Path(__file__).resolve().parent.parent

TABLES = [
    'CREATE TABLE users (tenant_id TEXT, "msId" TEXT, "userPrincipalName" TEXT, '
    "sync_version BIGINT)",
    'CREATE TABLE role_memberships (tenant_id TEXT, "roleId" TEXT, "msId" TEXT, '
    "sync_version BIGINT)",
    "CREATE TABLE tenants (tenant_id TEXT, users BIGINT, sync_version BIGINT)",
    "CREATE TABLE tenant_syncs (tenant_id TEXT, sync_version BIGINT, status TEXT)",
]
# Runs 1, 2, 3. a: complete, complete, failed (its run-3 rows never came). b: complete,
# failed, complete. c: never complete.
ROWS = [
    "INSERT INTO tenant_syncs VALUES ('a', 1, 'complete'), ('a', 2, 'complete'), "
    "('a', 3, 'failed'), ('b', 1, 'complete'), ('b', 2, 'failed'), ('b', 3, 'complete'), "
    "('c', 1, 'failed')",
    # a: u1 in runs 1 and 2 (upserted to 2), u2 removed in run 2; b: u3 in runs 1 and 3
    # (appended twice), u4 only in run 1 (removed); c: u5 (its run failed part-way).
    "INSERT INTO users VALUES ('a', 'u1', 'one@a', 2), ('a', 'u2', 'two@a', 1), "
    "('b', 'u3', 'old@b', 1), ('b', 'u3', 'new@b', 3), ('b', 'u4', 'four@b', 1), "
    "('c', 'u5', 'five@c', 1)",
    "INSERT INTO role_memberships VALUES ('a', 'user', 'u1', 2), ('a', 'global_admin', 'u1', 1), "
    "('b', 'user', 'u3', 3)",
    "INSERT INTO tenants VALUES ('a', 1, 2), ('b', 2, 1), ('b', 1, 3), ('c', 1, 1)",
]
EXPECTED = {
    "current_users": [("a", "u1", "one@a", 2), ("b", "u3", "new@b", 3)],
    "current_role_memberships": [("a", "user", "u1", 2), ("b", "user", "u3", 3)],
    "current_tenants": [("a", 1, 2), ("b", 1, 3)],
}


def command(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "scripts/current_views.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "current_users, current_role_memberships, current_tenants: created" in done.stdout


def test_the_duckdb_command_creates_views_that_follow_the_rule(tmp_path: Path) -> None:
    path = tmp_path / "spanning.duckdb"
    with duckdb.connect(str(path)) as db:
        for statement in TABLES + ROWS:
            db.execute(statement)
    command("--duckdb", str(path))
    with duckdb.connect(str(path), read_only=True) as db:
        for view, rows in EXPECTED.items():
            assert sorted(db.execute(f"SELECT * FROM {view}").fetchall()) == rows, view


@pytest.fixture
def pg_url(postgres: PostgresServer) -> Iterator[str]:  # noqa: F811
    name = f"tap_spanning_views_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres.url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres.url_for(name)
    finally:
        with psycopg.connect(postgres.url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_postgres_command_creates_views_in_the_taps_schema(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as pg:
        pg.execute("CREATE SCHEMA spanning")
        pg.execute("SET search_path TO spanning")
        for statement in TABLES + ROWS:
            pg.execute(statement.encode())
    command("--postgres", pg_url)
    with psycopg.connect(pg_url, autocommit=True) as pg:
        pg.execute("SET search_path TO spanning")
        for view, rows in EXPECTED.items():
            found: list[Any] = pg.execute(f"SELECT * FROM {view}".encode()).fetchall()
            assert sorted(found) == rows, view
