"""The dbt marts (transform/) over the tap's tables written by hand, and their documentation.

A warehouse written by hand, on DuckDB and PostgreSQL, checks what the tap can no longer send
and how the marts read tenant_syncs: a stray user_backups row dated 2099 does not move a
tenant's last day, a tenant left out of its job's configuration is offboarded while a shard
loading the same schema after that job offboards none of the job's tenants (only its own
dropped one), the build makes the current-rows views (current_users, ...) beside the tap's
tables and staging keeps their rows, and a count out of range fails the build. Every model
and column is documented, and each mart is keyed by columns marts.yml gives it. The helpers
that build the marts (a private Meltano and dbt) and read them back are tests/mart_reading.py.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.test_current_views import offboarded_by_definition
from tests.mart_reading import (
    DECLARED_COLUMNS,
    GRAINS,
    ONE_ROW_MARTS,
    on_one_day,
    read_build,
    read_marts,
    require_utility,
    warehouse_for,
    with_private_dbt,
)
from tests.warehouse import (
    FOREIGN_ENV_PREFIXES,
    PG_SCHEMA,
    PROJECT_DIR,
    meltano,
    pg_database,
    postgres,
    private_meltano_dir,
)

__all__ = ["pg_database", "postgres"]  # fixtures, requested by name for PostgreSQL

pytestmark = pytest.mark.e2e


# ----------------------------------------------------------------------------- by hand


# The tap's tables as a loader could hold them, written by hand: what the tap can no longer
# send (a stray day, a count out of range) must still not mislead, or must fail the build;
# and two jobs (shards) loading them, the later of which must offboard none of the other's.
HAND_TABLES = [
    'CREATE TABLE users (tenant_id TEXT, "msId" TEXT, "userPrincipalName" TEXT, email TEXT, '
    '"displayName" TEXT, assigned BOOLEAN, "isAdmin" BOOLEAN, "isDeleted" BOOLEAN, '
    '"isArchive" BOOLEAN, tags TEXT, disabled BOOLEAN, sync_version BIGINT)',
    'CREATE TABLE role_memberships (tenant_id TEXT, "roleId" TEXT, "msId" TEXT, '
    '"userPrincipalName" TEXT, sync_version BIGINT)',
    "CREATE TABLE tenants (tenant_id TEXT, region TEXT, base_url TEXT, licenses BIGINT, "
    '"archivedLicenses" BIGINT, users BIGINT, assigned BIGINT, "assignedStandard" BIGINT, '
    '"assignedArchive" BIGINT, status TEXT, sync_version BIGINT, name TEXT)',
    "CREATE TABLE roles (id TEXT, name TEXT, description TEXT)",
    "CREATE TABLE tenant_syncs (tenant_id TEXT, sync_version BIGINT, started_at TIMESTAMP, "
    "finished_at TIMESTAMP, status TEXT, reason TEXT, users BIGINT, role_memberships BIGINT, "
    'requests BIGINT, retries BIGINT, backup_last_day TEXT, name TEXT, "day" TEXT, '
    "licenses BIGINT, archived_licenses BIGINT, assigned_standard BIGINT, "
    "assigned_archive BIGINT, role_set_sent BOOLEAN)",
    'CREATE TABLE role_membership_history (tenant_id TEXT, "roleId" TEXT, "msId" TEXT, '
    '"userPrincipalName" TEXT, sync_version BIGINT)',
    *(
        f"CREATE TABLE {table} (tenant_id TEXT, {user}date TEXT, type TEXT, total BIGINT, "
        "successful BIGINT, partial BIGINT, failed BIGINT, items_created BIGINT, "
        "items_deleted BIGINT, items_failed BIGINT, items_total BIGINT, attempts BIGINT, "
        "sync_version BIGINT)"
        for table, user in (
            ("backup_summaries", ""),
            ("user_backups", '"msId" TEXT, "userPrincipalName" TEXT, "userId" TEXT, '),
        )
    ),
]
# One job, runs 1, 2, 3. now: complete in each; its run 3 read no backups (backup_last_day
# null), so its last day is run 2's. gone: complete in runs 1 and 2, not configured in run 3.
# late: complete in run 1, then failed (run 3 after its window was known). Another shard,
# runs 4 and 5, both after the first job's: east complete in both, west complete in run 4,
# then not configured. Each has one user, failing on MAIL every day from June 6 to 10; now
# has a stray failed day in 2099.
HAND_SYNCS: dict[str, list[tuple[int, str, str | None]]] = {
    "now": [(1, "complete", "2024-06-08"), (2, "complete", "2024-06-10"), (3, "complete", None)],
    "gone": [(1, "complete", "2024-06-08"), (2, "complete", "2024-06-09")],
    "late": [(1, "complete", "2024-06-08"), (2, "failed", None), (3, "failed", "2024-06-10")],
    "east": [(4, "complete", "2024-06-10"), (5, "complete", "2024-06-10")],
    "west": [(4, "complete", "2024-06-10")],
}
HAND_DAYS = [f"2024-06-{d:02d}" for d in range(6, 11)]


def literal(text: str | None) -> str:
    return "NULL" if text is None else f"'{text}'"


def hand_rows() -> list[str]:
    rows = [
        f"INSERT INTO roles VALUES ('{role}', '{role}', 'held')"
        for role in ("user", "spanning_admin")
    ]
    for tenant, runs in HAND_SYNCS.items():
        for version, status, last_day in runs:
            rows.append(
                f"INSERT INTO tenant_syncs VALUES ('{tenant}', {version}, "
                f"'2024-06-10 0{version}:00:00', '2024-06-10 0{version}:30:00', '{status}', "
                f"{literal(None if status == 'complete' else 'HTTP 503')}, 1, 2, 2, 0, "
                f"{literal(last_day)}, NULL, '2024-06-10', NULL, NULL, NULL, NULL, NULL)"
            )
        version = max(v for v, status, _ in runs if status == "complete")
        user = f"'{tenant}', 'u-{tenant}'"
        rows += [
            f"INSERT INTO users VALUES ({user}, 'a@{tenant}', 'a@{tenant}', 'A', true, true, "
            f"false, false, NULL, false, {version})",
            f"INSERT INTO role_memberships VALUES ('{tenant}', 'user', 'u-{tenant}', "
            f"'a@{tenant}', {version}), ('{tenant}', 'spanning_admin', 'u-{tenant}', "
            f"'a@{tenant}', {version})",
            f"INSERT INTO tenants VALUES ('{tenant}', NULL, 'http://127.0.0.1', 10, 2, 1, 1, 1, "
            f"0, 'paid', {version}, NULL)",
        ]
        for date in [*HAND_DAYS, *(["2099-01-01"] if tenant == "now" else [])]:
            rows += [
                f"INSERT INTO backup_summaries VALUES ('{tenant}', '{date}', 'MAIL', 4, 2, 1, "
                f"1, 9, 0, 1, 10, 1, {version})",
                f"INSERT INTO user_backups VALUES ({user}, 'a@{tenant}', '7', '{date}', 'MAIL', "
                f"1, 0, 0, 1, NULL, NULL, NULL, NULL, NULL, {version})",
            ]
    return rows


# Counts the tap would never write (2^53 fits a BIGINT on both warehouses), and the staging
# tests that must fail on them.
BAD_ROWS = [
    "INSERT INTO backup_summaries VALUES ('now', '2024-06-01', 'MAIL', -1, 0, 0, 0, "
    "NULL, NULL, NULL, NULL, NULL, 3)",
    "INSERT INTO backup_summaries VALUES ('now', '2024-06-02', 'MAIL', 2, 3, 0, 0, "
    "NULL, NULL, NULL, 9007199254740992, NULL, 3)",
    "INSERT INTO user_backups VALUES ('now', 'u-now', 'a@now', '7', '2024-06-01', 'MAIL', "
    "1, 0, 2, 0, NULL, NULL, NULL, NULL, -1, 3)",
    "INSERT INTO user_backups VALUES ('now', 'u-now', 'a@now', '7', '2024-06-02', 'MAIL', "
    "NULL, 0, 0, 0, NULL, NULL, NULL, NULL, NULL, 3)",
    """UPDATE tenants SET "assignedArchive" = -1, "archivedLicenses" = 9007199254740992""",
]
BAD_TESTS = [
    "accepted_range_stg_spanning__backup_summaries_total__9007199254740991__0",
    "expression_is_true_stg_spanning__backup_summaries_successful___total",
    "accepted_range_stg_spanning__backup_summaries_items_total__9007199254740991__0",
    "expression_is_true_stg_spanning__user_backups_partial___total",
    "accepted_range_stg_spanning__user_backups_attempts__9007199254740991__0",
    "not_null_stg_spanning__user_backups_total",
    "accepted_range_stg_spanning__tenants_assigned_archive__9007199254740991__0",
    "accepted_range_stg_spanning__tenants_archived_licenses__9007199254740991__0",
]


@pytest.mark.parametrize("warehouse_name", ["duckdb", "postgres"])
def test_a_stray_day_or_a_later_shard_misleads_nobody_and_a_bad_count_fails_the_build(
    warehouse_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    warehouse = warehouse_for(warehouse_name, request, tmp_path)
    require_utility(warehouse.dbt)
    warehouse.execute([*HAND_TABLES, *hand_rows()])
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_ENV_PREFIXES)}
    env.update(
        MELTANO_DATABASE_URI=f"sqlite:///{tmp_path / 'meltano.db'}",
        MELTANO_SYS_DIR_ROOT=str(private_meltano_dir(tmp_path / "meltano")),
        **warehouse.loader_env,
    )
    env = with_private_dbt(env, tmp_path, warehouse)
    build = on_one_day(lambda: meltano(env, "invoke", f"{warehouse.dbt}:build"))
    staging = f"{'main' if warehouse.name == 'duckdb' else PG_SCHEMA}_staging"
    with warehouse.tables() as fetch:
        marts = read_marts(fetch)
        _, syncs = fetch("SELECT max(finished_at) FROM tenant_syncs")
        built_at, newest_sync_at = read_build(fetch)
        # The build made the current-rows views beside the tap's tables; staging keeps
        # their rows.
        for table, key in (("users", "ms_id"), ("role_memberships", "role_id, ms_id")):
            _, views = fetch(f"SELECT * FROM current_{table}")
            _, models = fetch(f"SELECT tenant_id, {key} FROM {staging}.stg_spanning__{table}")
            width = len(models[0])
            assert sorted(row[:width] for row in views) == sorted(models), table
        _, views = fetch("SELECT tenant_id FROM current_tenants")
        _, models = fetch(f"SELECT tenant_id FROM {staging}.stg_spanning__tenants")
        assert sorted(views) == sorted(models) == [("east",), ("late",), ("now",)]
        _, views = fetch("SELECT tenant_id FROM offboarded_tenants")
        offboarded = {tenant for (tenant,) in views}
    assert build.started <= built_at <= build.ended
    assert newest_sync_at == syncs[0][0]

    health = {
        key[0]: (row["is_current"], row["is_offboarded"], row["consecutive_failed_runs"])
        for key, row in marts["tenant_sync_health"].items()
    }
    assert health == {
        "now": (True, False, 0),
        "gone": (False, True, 0),
        "late": (False, False, 2),
        "east": (True, False, 0),
        "west": (False, True, 0),
    }
    # The marts, the views and the rule as the contract states it agree.
    by_rule = offboarded_by_definition(
        (tenant, version) for tenant, runs in HAND_SYNCS.items() for version, _, _ in runs
    )
    assert {tenant for tenant, (_, off, _) in health.items() if off} == offboarded == set(by_rule)
    overview = {
        key[0]: (row["is_offboarded"], row["users"], row["licenses"], row["spanning_admins"])
        for key, row in marts["fleet_overview"].items()
    }
    assert overview == {
        "now": (False, 1, 10, 1),
        "gone": (True, 0, None, 0),
        "late": (False, 1, 10, 1),
        "east": (False, 1, 10, 1),
        "west": (True, 0, None, 0),
    }
    # now: from June 6 to its last day asked, June 10 (not 2099); late: to June 8, its last
    # complete run's; east: to June 10; gone and west: none (offboarded).
    june = dt.date(2024, 6, 1)
    streaks = {
        key[0]: (row["streak_days"], row["first_day"], row["last_day"])
        for key, row in marts["failing_users"].items()
    }
    assert streaks == {
        "now": (5, june.replace(day=6), june.replace(day=10)),
        "late": (3, june.replace(day=6), june.replace(day=8)),
        "east": (5, june.replace(day=6), june.replace(day=10)),
    }
    assert {key[0] for key in marts["backup_health_daily"]} == set(HAND_SYNCS)

    warehouse.execute(BAD_ROWS)
    failed = meltano(env, "invoke", f"{warehouse.dbt}:build", succeed=False)
    failing = set(re.findall(r"FAIL \d+ (\w+)", failed.output))
    assert set(BAD_TESTS) <= failing, f"not failed: {sorted(set(BAD_TESTS) - failing)}"


def test_every_model_and_column_is_documented() -> None:
    """Every model of transform/ has a description, and so has each of its columns."""
    models = PROJECT_DIR / "transform" / "models"
    documented: dict[str, dict[str, Any]] = {}
    for path in models.rglob("*.yml"):
        for model in yaml.safe_load(path.read_text(encoding="utf-8")).get("models", []):
            documented[model["name"]] = model
    sql = sorted(path.stem for path in models.rglob("*.sql"))
    assert sorted(documented) == sql
    for name, model in documented.items():
        assert model.get("description"), f"{name}: no description"
        for column in model.get("columns", []):
            assert column.get("description"), f"{name}.{column['name']}: no description"
    # Every mart is keyed by columns it has, or is one row.
    marts = {path.stem for path in (models / "marts").glob("*.sql")}
    assert marts == set(GRAINS) | set(ONE_ROW_MARTS)
    for mart, grain in GRAINS.items():
        assert set(grain) <= set(DECLARED_COLUMNS[mart]), mart
