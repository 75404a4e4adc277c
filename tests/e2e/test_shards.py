"""Shards (docs/many-tenants.md, "Shards"): two shards of one fleet, side by side through
Meltano into one PostgreSQL schema, then one dbt build, as the document writes it (after a
first night that made the tables, one shard after the other, as it advises).

The same fleet is also loaded whole, in one run, into another database, with the same dbt
build. Every tenant must be current after the sharded night, and every mart must hold the
same rows as the whole run's, but for the columns that say when or which run (times and
sync versions, which differ between any two runs). Into DuckDB, one writer at a time, the
shards run one after the other.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import yaml
from spanning_emulator import FleetEmulator

from tests.documented import blocks_at
from tests.e2e.test_warehouse_fleet import fleet_env
from tests.warehouse import (
    PG_SCHEMA,
    PROJECT_DIR,
    PostgresServer,
    duckdb_tables,
    meltano,
    meltano_executable,
    pg_database,
    postgres,
    postgres_tables,
    small_tenant,
)

pytestmark = pytest.mark.e2e

__all__ = ["pg_database", "postgres"]  # fixtures used here

FLEET = (("acme", 18, 31), ("globex", 22, 32), ("initech", 14, 33), ("umbrella", 20, 34))
HOSTS = ("127.0.0.1", "127.0.0.2")
MARTS_DIR = PROJECT_DIR / "transform" / "models" / "marts"
# What differs between any two runs of the same fleet: when, and which run.
RUN_COLUMNS = ("sync_version", "last_sync_version", "last_complete_sync_version")
RUN_SUFFIXES = ("_at",)
PG_LOADER = "target-postgres"
DBT = (
    "dbt-postgres:build",
    "fleet-report:postgres",
    "fleet-report:alerts-postgres",
    "fleet-report:clients-postgres",
)


@pytest.fixture
def fleet() -> Iterator[FleetEmulator]:
    tenants = [
        small_tenant(name, size, seed, HOSTS[index % len(HOSTS)])
        for index, (name, size, seed) in enumerate(FLEET)
    ]
    with FleetEmulator(tenants) as emulator:
        yield emulator


@pytest.fixture
def second_database(postgres: PostgresServer) -> Iterator[str]:
    """Another database of this test's own (the whole run's), dropped afterwards."""
    name = f"tap_spanning_e2e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres.url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(postgres.url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def night_env(tmp_path: Path, fleet: FleetEmulator, **loader: str) -> dict[str, str]:
    """The fleet in the prod environment, dbt's files and the reports in tmp_path."""
    env = fleet_env(tmp_path, fleet, [t.tenant_id for t in fleet.tenants], **loader)
    for name in [name for name in env if name.startswith(("DBT_", "FLEET_REPORT_"))]:
        del env[name]
    env.update(
        DBT_POSTGRES_TARGET_PATH=str(tmp_path / "dbt" / "target"),
        DBT_POSTGRES_LOG_PATH=str(tmp_path / "dbt" / "logs"),
        FLEET_REPORT_OUTPUT=str(tmp_path / "fleet_report.html"),
        FLEET_REPORT_ALERTS_SENT_FILE=str(tmp_path / "alerts_sent.json"),
        FLEET_REPORT_CLIENT_OUTPUT_DIR=str(tmp_path / "clients"),
    )
    return env


def mart_names() -> list[str]:
    names: list[str] = []
    for path in sorted(MARTS_DIR.glob("*.yml")):
        document = yaml.safe_load(path.read_text("utf-8")) or {}
        names.extend(model["name"] for model in document.get("models", []))
    return [name for name in names if name != "marts_build"]


def mart_rows(url: str) -> dict[str, list[str]]:
    """Every mart's rows, without the run's columns, as sorted JSON lines."""
    found: dict[str, list[str]] = {}
    with postgres_tables(url) as fetch:
        for mart in mart_names():
            columns, rows = fetch(f'SELECT * FROM {PG_SCHEMA}."{mart}"')
            kept = [
                index
                for index, column in enumerate(columns)
                if column not in RUN_COLUMNS and not column.endswith(RUN_SUFFIXES)
            ]
            found[mart] = sorted(
                json.dumps([row[index] for index in kept], default=str) for row in rows
            )
    return found


def run_block(block: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The documented block, as written, by bash in the project, meltano on PATH."""
    bin_dir = str(meltano_executable().parent)
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=PROJECT_DIR,
        env={**env, "PATH": f"{bin_dir}:{env.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def failure_lines(output: str) -> str:
    """The lines of a failed run that say why (Meltano's log is long)."""
    said = [
        line for line in output.splitlines() if "error" in line.lower() and "METRIC" not in line
    ]
    return "\n".join(said[-40:]) or output[-4000:]


def test_two_shards_side_by_side_are_one_fleet_in_postgres(
    fleet: FleetEmulator,
    postgres: PostgresServer,
    pg_database: str,
    second_database: str,
    tmp_path: Path,
) -> None:
    (block,) = blocks_at("docs/many-tenants.md", "Shards", None)
    sharded = night_env(tmp_path / "sharded", fleet, **postgres.loader_env(pg_database))
    # The first night into a new schema, one shard after the other (the document's advice:
    # the loaders create the tables); it also makes the project's system database, which
    # meltano install makes in a real project (two first runs at once would both try to).
    for index in (0, 1):
        meltano(sharded, "--environment=prod", "run", f"tap-spanning--shard-{index}", PG_LOADER)
    done = run_block(block.body, sharded)
    assert done.returncode == 0, failure_lines(done.stdout + done.stderr)
    whole = night_env(tmp_path / "whole", fleet, **postgres.loader_env(second_database))
    meltano(whole, "--environment=prod", "run", "tap-spanning", PG_LOADER, *DBT)

    tenant_ids = sorted(t.tenant_id for t in fleet.tenants)
    with postgres_tables(postgres.url_for(pg_database)) as fetch:
        _, syncs = fetch("SELECT tenant_id, sync_version, status FROM tenant_syncs")
        _, health = fetch("SELECT tenant_id, is_current FROM tenant_sync_health")
    # Two nights of two runs, one per shard, with versions apart; a shard's runs hold the
    # same tenants; every tenant in one shard, every run complete.
    by_run: dict[int, set[str]] = {}
    for tenant_id, version, status in syncs:
        assert status == "complete", tenant_id
        by_run.setdefault(int(version), set()).add(tenant_id)
    assert sorted(version % 2 for version in by_run) == [0, 0, 1, 1]
    shards = [{frozenset(t) for v, t in by_run.items() if v % 2 == index} for index in (0, 1)]
    assert [len(found) for found in shards] == [1, 1]
    assert sorted(t for found in shards for tenants in found for t in tenants) == tenant_ids
    assert sorted(health) == [(tenant_id, True) for tenant_id in tenant_ids]
    assert mart_rows(postgres.url_for(pg_database)) == mart_rows(postgres.url_for(second_database))
    assert (tmp_path / "sharded" / "fleet_report.html").is_file()
    for index in (0, 1):  # each shard's own Singer state, under its own state ID
        state_id = f"prod:tap-spanning--shard-{index}-to-target-postgres"
        state = meltano(sharded, "state", "get", state_id)
        # stdout's JSON, then Meltano's log lines (stderr)
        shard_state, _ = json.JSONDecoder().raw_decode(state.output)
        bookmarks = shard_state["singer_state"]["bookmarks"]
        mine = next(tenants for version, tenants in by_run.items() if version % 2 == index)
        assert set(bookmarks["user_backups"]["sent_days"]) == mine, index


def test_two_shards_one_after_the_other_into_one_duckdb_file(
    fleet: FleetEmulator, tmp_path: Path
) -> None:
    """DuckDB takes one writer at a time (docs/many-tenants.md, "Shards"): its shards run one
    after the other, and the marts still see one fleet, every tenant current."""
    database = tmp_path / "warehouse" / "spanning.duckdb"
    database.parent.mkdir()
    env = night_env(tmp_path, fleet, TARGET_DUCKDB_PATH=str(database))
    env.update(
        DBT_DUCKDB_TARGET_PATH=str(tmp_path / "dbt" / "target"),
        DBT_DUCKDB_LOG_PATH=str(tmp_path / "dbt" / "logs"),
    )
    for index in (0, 1):
        meltano(env, "--environment=prod", "run", f"tap-spanning--shard-{index}", "target-duckdb")
    meltano(env, "--environment=prod", "run", "dbt-duckdb:build")
    with duckdb_tables(database) as fetch:
        _, health = fetch("SELECT tenant_id, is_current FROM tenant_sync_health")
        _, versions = fetch("SELECT DISTINCT sync_version % 2 FROM tenant_syncs")
    assert sorted(health) == sorted((t.tenant_id, True) for t in fleet.tenants)
    assert sorted(int(v) for (v,) in versions) == [0, 1]
