"""The dbt unit tests of transform/ (`unit_tests:` in the models' yml files), on DuckDB.

Each unit test feeds a model rows written in its yml and compares what the model returns
with the rows expected there: the current-rows rule, offboarding, failing streaks, every
"needs attention" flag at and around its threshold. dbt needs the parents of each tested
model to exist (it reads their columns), so the tap's tables are created empty, as
target-duckdb types them, in a throwaway DuckDB file, `dbt run --empty` builds every model
over them without rows, and `dbt test --select test_type:unit` runs the unit tests. No
PostgreSQL, emulator or Meltano command: the dbt Meltano installed (`make meltano-install`).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import duckdb
import yaml

PROJECT_DIR = Path(__file__).resolve().parents[2]
TRANSFORM = PROJECT_DIR / "transform"
DBT = PROJECT_DIR / ".meltano" / "utilities" / "dbt-duckdb" / "venv" / "bin" / "dbt"

# The tap's tables as target-duckdb creates them (text dates and days, JSON tags), empty.
SOURCE_TABLES = (
    'CREATE TABLE users (tenant_id VARCHAR, "msId" VARCHAR, "userPrincipalName" VARCHAR, '
    'email VARCHAR, "displayName" VARCHAR, assigned BOOLEAN, "isAdmin" BOOLEAN, '
    '"isDeleted" BOOLEAN, "isArchive" BOOLEAN, tags JSON, disabled BOOLEAN, '
    "sync_version BIGINT)",
    'CREATE TABLE role_memberships (tenant_id VARCHAR, "roleId" VARCHAR, "msId" VARCHAR, '
    '"userPrincipalName" VARCHAR, sync_version BIGINT)',
    "CREATE TABLE tenants (tenant_id VARCHAR, name VARCHAR, region VARCHAR, base_url VARCHAR, "
    'licenses BIGINT, "archivedLicenses" BIGINT, users BIGINT, assigned BIGINT, '
    '"assignedStandard" BIGINT, "assignedArchive" BIGINT, status VARCHAR, sync_version BIGINT)',
    "CREATE TABLE roles (id VARCHAR, name VARCHAR, description VARCHAR, sync_version BIGINT)",
    "CREATE TABLE tenant_syncs (tenant_id VARCHAR, sync_version BIGINT, "
    "started_at TIMESTAMP, finished_at TIMESTAMP, status VARCHAR, reason VARCHAR, "
    "users BIGINT, role_memberships BIGINT, requests BIGINT, retries BIGINT, "
    'backup_last_day VARCHAR, name VARCHAR, "day" VARCHAR, licenses BIGINT, '
    "archived_licenses BIGINT, assigned_standard BIGINT, assigned_archive BIGINT, "
    "role_set_sent BOOLEAN)",
    'CREATE TABLE role_membership_history (tenant_id VARCHAR, "roleId" VARCHAR, '
    '"msId" VARCHAR, "userPrincipalName" VARCHAR, sync_version BIGINT)',
    'CREATE TABLE backup_summaries (tenant_id VARCHAR, "date" VARCHAR, "type" VARCHAR, '
    "total BIGINT, successful BIGINT, partial BIGINT, failed BIGINT, items_created BIGINT, "
    "items_deleted BIGINT, items_failed BIGINT, items_total BIGINT, attempts BIGINT, "
    "sync_version BIGINT)",
    'CREATE TABLE user_backups (tenant_id VARCHAR, "msId" VARCHAR, "userPrincipalName" VARCHAR, '
    '"userId" VARCHAR, "date" VARCHAR, "type" VARCHAR, total BIGINT, successful BIGINT, '
    "partial BIGINT, failed BIGINT, items_created BIGINT, items_deleted BIGINT, "
    "items_failed BIGINT, items_total BIGINT, attempts BIGINT, sync_version BIGINT)",
)


def declared_unit_tests() -> dict[str, str]:
    """Every unit test of the project's yml files: its name -> the model it tests."""
    declared: dict[str, str] = {}
    for path in sorted((TRANSFORM / "models").rglob("*.yml")):
        document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for unit_test in document.get("unit_tests", []):
            assert unit_test["name"] not in declared, f"{unit_test['name']} declared twice"
            declared[unit_test["name"]] = unit_test["model"]
    return declared


def dbt(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The Meltano-installed dbt on the throwaway file, with every path of its own."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DBT_", "TARGET_DUCKDB_", "MELTANO_"))
    }
    env |= {
        "DBT_PROJECT_DIR": str(TRANSFORM),
        "DBT_PROFILES_DIR": str(TRANSFORM / "profiles" / "duckdb"),
        "DBT_DUCKDB_PATH": str(tmp_path / "unit.duckdb"),
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "DBT_LOG_PATH": str(tmp_path / "logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    return subprocess.run(
        [str(DBT), *args],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_every_declared_unit_test_runs_and_passes(tmp_path: Path) -> None:
    assert DBT.exists(), f"{DBT} missing: run `make meltano-install` (make check does)"
    declared = declared_unit_tests()
    marts = {path.stem for path in (TRANSFORM / "models" / "marts").glob("*.sql")} | {
        path.stem for path in (TRANSFORM / "models" / "current").glob("*.sql")
    }
    untested = marts - set(declared.values())
    assert not untested, f"models of marts/ and current/ without a unit test: {sorted(untested)}"

    with duckdb.connect(str(tmp_path / "unit.duckdb")) as connection:
        for statement in SOURCE_TABLES:
            connection.execute(statement)
    built = dbt(tmp_path, "run", "--empty")
    assert built.returncode == 0, built.stdout[-4000:]

    tested = dbt(tmp_path, "test", "--select", "test_type:unit")
    assert tested.returncode == 0, tested.stdout[-8000:]
    results = json.loads((tmp_path / "target" / "run_results.json").read_text(encoding="utf-8"))
    ran = {
        result["unique_id"].rsplit(".", 1)[1]: result["status"]
        for result in results["results"]
        if result["unique_id"].startswith("unit_test.")
    }
    assert ran == dict.fromkeys(declared, "pass")
    # The newer dbt prints no deprecation for this project.
    for done in (built, tested):
        assert "deprecat" not in done.stdout.lower(), done.stdout[-4000:]
