"""docs/many-tenants.md: the documented command that builds the current-rows views.

`meltano invoke dbt-duckdb run --select current` (dbt-postgres alike) builds the views
current_users, current_role_memberships, current_tenants, tenant_current_versions and
offboarded_tenants (transform/models/current) beside the tap's tables. Here over a small
warehouse written by hand, on DuckDB and PostgreSQL, loaded by three jobs. The first job
(runs 1, 2, 3): tenants whose last run failed, one that never completed, and two offboarded
(a tenant that ran with them has run since without them). Two shards loading the same
schema: A = {a1, a2} (runs 10 and 30) and B = {b1, b2} (run 20); A ran again without a2, so
a2 is offboarded, and B, whose run is older than A's last, keeps b1 and b2; so does the
first job, older still. The views must show each tenant's rows of its last complete run,
the newest row per key, nothing of a tenant that never completed, and nothing of an
offboarded one; and the expected offboarded tenants are checked against the rule as the
contract states it (offboarded_by_definition). The dbt unit tests check the same rule
row by row (transform/models/current/current_unit_tests.yml); this runs the command.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb
import psycopg
import pytest

from bench.nightly import postgres_loader_env
from tests.warehouse import (
    FOREIGN_ENV_PREFIXES,
    PostgresServer,
    meltano,
    postgres,  # noqa: F401  # the fixture
    private_meltano_dir,
)

pytestmark = pytest.mark.e2e  # runs the documented command, a process of its own

ROOT = Path(__file__).resolve().parents[2]
CURRENT_VIEWS = (
    "current_users",
    "current_role_memberships",
    "current_tenants",
    "tenant_current_versions",
    "offboarded_tenants",
)

TABLES = [
    'CREATE TABLE users (tenant_id TEXT, "msId" TEXT, "userPrincipalName" TEXT, '
    "sync_version BIGINT)",
    'CREATE TABLE role_memberships (tenant_id TEXT, "roleId" TEXT, "msId" TEXT, '
    "sync_version BIGINT)",
    "CREATE TABLE tenants (tenant_id TEXT, users BIGINT, sync_version BIGINT)",
    "CREATE TABLE tenant_syncs (tenant_id TEXT, sync_version BIGINT, status TEXT)",
]
# The first job, runs 1, 2, 3. a: complete, complete, failed (its run-3 rows never came). b:
# complete, failed, complete. c: failed in run 1 only (never complete, and offboarded since).
# d: complete in runs 1 and 2, then no longer configured: offboarded. e: failed in run 3,
# its first (never complete, still configured).
# Shard A, runs 10 and 30: a1 complete in both; a2 complete in run 10, then no longer
# configured. Shard B, run 20: b1 complete, b2 complete.
SYNCS = [
    ("a", 1, "complete"),
    ("a", 2, "complete"),
    ("a", 3, "failed"),
    ("b", 1, "complete"),
    ("b", 2, "failed"),
    ("b", 3, "complete"),
    ("c", 1, "failed"),
    ("d", 1, "complete"),
    ("d", 2, "complete"),
    ("e", 3, "failed"),
    ("a1", 10, "complete"),
    ("a2", 10, "complete"),
    ("b1", 20, "complete"),
    ("b2", 20, "complete"),
    ("a1", 30, "complete"),
]
ROWS = [
    "INSERT INTO tenant_syncs VALUES "
    + ", ".join(f"('{tenant}', {version}, '{status}')" for tenant, version, status in SYNCS),
    # a: u1 in runs 1 and 2 (upserted to 2), u2 removed in run 2; b: u3 in runs 1 and 3
    # (appended twice), u4 only in run 1 (removed); c: u5 (its run failed part-way); d: u6 of
    # its last complete run; e: u7 (its run failed part-way). a1: u8 removed in run 30, u9;
    # a2: u10; b1: u11; b2: u12.
    "INSERT INTO users VALUES ('a', 'u1', 'one@a', 2), ('a', 'u2', 'two@a', 1), "
    "('b', 'u3', 'old@b', 1), ('b', 'u3', 'new@b', 3), ('b', 'u4', 'four@b', 1), "
    "('c', 'u5', 'five@c', 1), ('d', 'u6', 'six@d', 2), ('e', 'u7', 'seven@e', 3), "
    "('a1', 'u8', 'eight@a1', 10), ('a1', 'u9', 'nine@a1', 30), ('a2', 'u10', 'ten@a2', 10), "
    "('b1', 'u11', 'eleven@b1', 20), ('b2', 'u12', 'twelve@b2', 20)",
    "INSERT INTO role_memberships VALUES ('a', 'user', 'u1', 2), ('a', 'global_admin', 'u1', 1), "
    "('b', 'user', 'u3', 3), ('d', 'user', 'u6', 2), ('e', 'user', 'u7', 3), "
    "('a1', 'user', 'u8', 10), ('a1', 'user', 'u9', 30), ('a2', 'user', 'u10', 10), "
    "('b1', 'user', 'u11', 20), ('b2', 'user', 'u12', 20)",
    "INSERT INTO tenants VALUES ('a', 1, 2), ('b', 2, 1), ('b', 1, 3), ('c', 1, 1), "
    "('d', 1, 2), ('e', 1, 3), ('a1', 2, 10), ('a1', 1, 30), ('a2', 1, 10), ('b1', 1, 20), "
    "('b2', 1, 20)",
]
EXPECTED = {
    "current_users": [
        ("a", "u1", "one@a", 2),
        ("a1", "u9", "nine@a1", 30),
        ("b", "u3", "new@b", 3),
        ("b1", "u11", "eleven@b1", 20),
        ("b2", "u12", "twelve@b2", 20),
    ],
    "current_role_memberships": [
        ("a", "user", "u1", 2),
        ("a1", "user", "u9", 30),
        ("b", "user", "u3", 3),
        ("b1", "user", "u11", 20),
        ("b2", "user", "u12", 20),
    ],
    "current_tenants": [("a", 1, 2), ("a1", 1, 30), ("b", 1, 3), ("b1", 1, 20), ("b2", 1, 20)],
    # Each tenant's last complete run, unless offboarded; the offboarded, with their last run.
    "tenant_current_versions": [("a", 2), ("a1", 30), ("b", 3), ("b1", 20), ("b2", 20)],
    "offboarded_tenants": [("a2", 10), ("c", 1), ("d", 2)],
}


def offboarded_by_definition(syncs: Iterable[tuple[str, int]]) -> dict[str, int]:
    """The offboarded tenants of tenant_syncs rows (tenant_id, sync_version), each with its
    newest run, as the contract states the rule: with v_T the greatest sync_version of T,
    T is offboarded iff a tenant M != T has a row at v_T and a greatest sync_version > v_T."""
    rows = list(syncs)
    newest: dict[str, int] = {}
    for tenant, version in rows:
        newest[tenant] = max(version, newest.get(tenant, version))
    return {
        tenant: last
        for tenant, last in newest.items()
        if any(mate != tenant and version == last and newest[mate] > last for mate, version in rows)
    }


def build_current_views(tmp_path: Path, adapter: str, **connection: str) -> None:
    """The documented command, `meltano invoke dbt-<adapter> run --select current`, with the
    utility's connection settings (DBT_DUCKDB_PATH, DBT_POSTGRES_HOST, ...) and dbt's target
    and logs in tmp_path. For any test that reads the views of a warehouse it loaded."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith((*FOREIGN_ENV_PREFIXES, "DBT_"))
    }
    prefix = f"DBT_{adapter.upper()}_"
    env |= {prefix + name.upper(): value for name, value in connection.items()}
    env |= {
        "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path / 'meltano.db'}",
        "MELTANO_SYS_DIR_ROOT": str(private_meltano_dir(tmp_path / "meltano")),
        f"{prefix}TARGET_PATH": str(tmp_path / "dbt" / "target"),
        f"{prefix}LOG_PATH": str(tmp_path / "dbt" / "logs"),
    }
    run = meltano(env, "invoke", f"dbt-{adapter}", "run", "--select", "current")
    # The five views and nothing else (the on-run-start hook is no model).
    assert f"1 project hook, {len(CURRENT_VIEWS)} view models in" in run.output, run.output[-3000:]


def postgres_connection(url: str) -> dict[str, str]:
    """The dbt-postgres settings (host, port, user, database, password) of a PostgreSQL
    URL: the loader's, as the bench makes them, by their own names."""
    loader = postgres_loader_env(url, urlsplit(url).path.lstrip("/"))
    return {name.removeprefix("TARGET_POSTGRES_").lower(): value for name, value in loader.items()}


def assert_views(fetch: Callable[[str], list[Any]]) -> None:
    for view, rows in EXPECTED.items():
        assert sorted(fetch(f"SELECT * FROM {view}")) == rows, view


def test_the_expected_offboarded_tenants_are_the_rules() -> None:
    """Only a2 of the shards: the first job and shard B ran before A's last run, and are kept."""
    truth = offboarded_by_definition((tenant, version) for tenant, version, _ in SYNCS)
    assert sorted(truth.items()) == EXPECTED["offboarded_tenants"]


def test_the_duckdb_command_builds_views_that_follow_the_rule(tmp_path: Path) -> None:
    path = tmp_path / "spanning.duckdb"
    with duckdb.connect(str(path)) as db:
        for statement in TABLES + ROWS:
            db.execute(statement)
    build_current_views(tmp_path, "duckdb", path=str(path))
    with duckdb.connect(str(path), read_only=True) as db:
        assert_views(lambda query: db.execute(query).fetchall())


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


def test_the_postgres_command_builds_views_in_the_taps_schema(pg_url: str, tmp_path: Path) -> None:
    with psycopg.connect(pg_url, autocommit=True) as pg:
        pg.execute("CREATE SCHEMA spanning")
        pg.execute("SET search_path TO spanning")
        for statement in TABLES + ROWS:
            pg.execute(statement.encode())
    build_current_views(tmp_path, "postgres", **postgres_connection(pg_url))
    with psycopg.connect(pg_url, autocommit=True) as pg:
        pg.execute("SET search_path TO spanning")
        assert_views(lambda query: pg.execute(query.encode()).fetchall())
