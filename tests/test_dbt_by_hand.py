"""The dbt marts (transform/) over the tap's tables written by hand, and how any test reads them.

A warehouse written by hand, on DuckDB and PostgreSQL, checks what the tap can no longer send
and how the marts read tenant_syncs: a stray user_backups row dated 2099 does not move a
tenant's last day, a tenant left out of its job's configuration is offboarded while a shard
loading the same schema after that job offboards none of the job's tenants (only its own
dropped one), the build makes the current-rows views (current_users, ...) beside the tap's
tables and staging keeps their rows, and a count out of range fails the build. Every model
and column is documented, and each mart's columns are those of marts.yml. The helpers that build the
marts (a private Meltano and dbt) and read them back are here, for tests/test_dbt.py too.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_current_views import offboarded_by_definition
from tests.warehouse import (
    FOREIGN_ENV_PREFIXES,
    PG_SCHEMA,
    PROJECT_DIR,
    Fetch,
    MeltanoRun,
    PostgresServer,
    duckdb_tables,
    import_or_unavailable,
    meltano,
    pg_database,
    postgres,
    postgres_tables,
    private_meltano_dir,
    psycopg_module,
    unavailable,
)

__all__ = ["pg_database", "postgres"]  # fixtures, requested by name for PostgreSQL

pytestmark = pytest.mark.e2e

DBT_ENV_PREFIX = "DBT_"
MARTS_YML = PROJECT_DIR / "transform" / "models" / "marts" / "marts.yml"

Row = dict[str, Any]
Key = tuple[Any, ...]


# ----------------------------------------------------------------------------- the marts


@dataclass
class Marts:
    """Every mart, as rows keyed by its grain."""

    rows: dict[str, dict[Key, Row]]

    def __getitem__(self, mart: str) -> dict[Key, Row]:
        return self.rows[mart]


def mart_columns() -> dict[str, list[str]]:
    """Each mart's columns, in order, as transform/models/marts/marts.yml lists them (the
    one list of them)."""
    document = yaml.safe_load(MARTS_YML.read_text(encoding="utf-8"))
    return {
        model["name"]: [column["name"] for column in model["columns"]]
        for model in document["models"]
    }


# Each mart's grain; one-row marts (marts_build, attention_thresholds) have none and are
# checked on their own.
GRAINS: dict[str, tuple[str, ...]] = {
    "fleet_overview": ("tenant_id",),
    "access_review": ("tenant_id", "ms_id", "role_id"),
    "license_waste": ("tenant_id", "ms_id"),
    "backup_health_daily": ("tenant_id", "date", "type"),
    "failing_users": ("tenant_id", "ms_id", "type"),
    "tenant_sync_health": ("tenant_id",),
    "tenant_roles": ("tenant_id", "role_id"),
}
ONE_ROW_MARTS = ("marts_build", "attention_thresholds")
# Each mart's columns (marts.yml's) and grain.
MART_COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    mart: (tuple(mart_columns()[mart]), grain) for mart, grain in GRAINS.items()
}
BUILD_COLUMNS = tuple(mart_columns()["marts_build"])  # one row: checked on its own


def normal(value: Any) -> Any:
    """Numbers compared by value (a double's last digits, integers from any driver type)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float | Decimal):
        return round(float(value), 9)
    return value


def keyed(mart: str, rows: Sequence[Row], *, partial: bool = False) -> dict[Key, Row]:
    """Rows by grain. A row read has every column of the mart; an expected one (`partial`)
    may hold some: the columns a test knows the truth of, the others left to the dbt unit
    tests (the "needs attention" flags)."""
    columns, grain = MART_COLUMNS[mart]
    table: dict[Key, Row] = {}
    for row in rows:
        if partial:
            assert set(grain) <= set(row) <= set(columns), f"{mart}: columns {sorted(row)}"
        else:
            assert set(row) == set(columns), f"{mart}: columns {sorted(row)}"
        key = tuple(row[column] for column in grain)
        assert key not in table, f"{mart}: {key} twice"
        table[key] = {column: normal(value) for column, value in row.items()}
    return table


def quoted(column: str) -> str:
    return f'"{column}"'


def read_marts(fetch: Fetch) -> Marts:
    found = {}
    for mart, (columns, _) in MART_COLUMNS.items():
        names, values = fetch(f"SELECT {', '.join(map(quoted, columns))} FROM {mart}")
        found[mart] = keyed(mart, [dict(zip(names, row, strict=True)) for row in values])
    return Marts(found)


def assert_marts_equal(found: Marts, wanted: Marts, when: str) -> None:
    """Every mart of `wanted`: the same rows, and each expected column's values."""
    for mart in wanted.rows:
        actual, expected = found[mart], wanted[mart]
        missing = sorted(set(expected) - set(actual), key=str)[:5]
        extra = sorted(set(actual) - set(expected), key=str)[:5]
        assert not missing, f"{when}: {mart} lacks rows, e.g. {missing}"
        assert not extra, f"{when}: {mart} has rows it should not, e.g. {extra}"
        wrong = [
            (key, column, actual[key][column], expected[key][column])
            for key in expected
            for column in expected[key]
            if actual[key][column] != expected[key][column]
        ]
        assert not wrong, f"{when}: {mart} differs (key, column, found, expected): {wrong[:8]}"
    print(f"{when}: marts match: " + ", ".join(f"{m} {len(found[m])}" for m in wanted.rows))


# ----------------------------------------------------------------------------- the warehouse
@dataclass
class Warehouse:
    name: str  # duckdb or postgres
    loader_env: dict[str, str]
    tables: Callable[[], AbstractContextManager[Fetch]]
    execute: Callable[[Sequence[str]], None]  # statements run in the tap's schema

    @property
    def loader(self) -> str:
        return f"target-{self.name}"

    @property
    def dbt(self) -> str:
        return f"dbt-{self.name}"


def warehouse_for(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Warehouse:
    if name == "duckdb":
        path = tmp_path / "warehouse" / "spanning.duckdb"
        path.parent.mkdir()

        def on_duckdb(statements: Sequence[str]) -> None:
            with import_or_unavailable("duckdb", "duckdb==1.0.0").connect(str(path)) as db:
                for statement in statements:
                    db.execute(statement)

        loader = {"TARGET_DUCKDB_PATH": str(path)}
        return Warehouse(name, loader, lambda: duckdb_tables(path), on_duckdb)
    server: PostgresServer = request.getfixturevalue("postgres")
    database: str = request.getfixturevalue("pg_database")
    url = server.url_for(database)

    def on_postgres(statements: Sequence[str]) -> None:
        with psycopg_module().connect(url, autocommit=True) as pg:
            pg.execute(f"CREATE SCHEMA IF NOT EXISTS {PG_SCHEMA}")
            pg.execute(f"SET search_path TO {PG_SCHEMA}")
            for statement in statements:
                pg.execute(statement.encode())

    return Warehouse(name, server.loader_env(database), lambda: postgres_tables(url), on_postgres)


def require_utility(name: str) -> None:
    if not (PROJECT_DIR / ".meltano" / "utilities" / name / "venv" / "bin" / "dbt").exists():
        unavailable(f"{name} is not installed in .meltano/: run `make meltano-install`")


def with_private_dbt(env: dict[str, str], tmp_path: Path, warehouse: Warehouse) -> dict[str, str]:
    """No DBT_* of the caller's; dbt's target and logs in tmp_path."""
    for name in [name for name in env if name.startswith(DBT_ENV_PREFIX)]:
        del env[name]
    # The utility's settings (meltano.yml), each read from DBT_<ADAPTER>_<SETTING>.
    prefix = f"DBT_{warehouse.name.upper()}_"
    env[f"{prefix}TARGET_PATH"] = str(tmp_path / "dbt" / "target")
    env[f"{prefix}LOG_PATH"] = str(tmp_path / "dbt" / "logs")
    return env


def utc_now() -> dt.datetime:
    """Naive, as the warehouses' UTC timestamps come back."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


@dataclass
class Step:
    run: MeltanoRun
    started: dt.datetime  # UTC
    ended: dt.datetime

    @property
    def day(self) -> dt.date:
        """The UTC day it ran on: the marts' current_date, the tap's last backup day."""
        return self.started.date()


def on_one_day(step: Callable[[], MeltanoRun]) -> Step:
    """Run a step of the tap or dbt, within one UTC day."""
    started = utc_now()
    run = step()
    ended = utc_now()
    if ended.date() != started.date():
        pytest.skip("the step ran across midnight UTC: yesterday moved under it")
    return Step(run, started, ended)


def read_build(fetch: Fetch) -> tuple[dt.datetime, dt.datetime | None]:
    _, rows = fetch(f"SELECT {', '.join(BUILD_COLUMNS)} FROM marts_build")
    assert len(rows) == 1, f"marts_build holds {len(rows)} rows"
    built_at, newest_sync_at = rows[0]
    return built_at, newest_sync_at


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
    '"assignedArchive" BIGINT, status TEXT, sync_version BIGINT)',
    "CREATE TABLE roles (id TEXT, name TEXT, description TEXT)",
    "CREATE TABLE tenant_syncs (tenant_id TEXT, sync_version BIGINT, started_at TIMESTAMP, "
    "finished_at TIMESTAMP, status TEXT, reason TEXT, users BIGINT, role_memberships BIGINT, "
    "requests BIGINT, retries BIGINT, backup_last_day TEXT)",
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
                f"{literal(last_day)})"
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
            f"0, 'paid', {version})",
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
        assert set(grain) <= set(mart_columns()[mart]), mart
