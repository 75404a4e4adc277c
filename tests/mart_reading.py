"""How a test builds the dbt marts (transform/) in a private Meltano and dbt, and reads them back.

A mart's columns are those the YAML files of transform/models/marts/ list (read by
spanning_reports.marts.mart_columns, the one reader of those files); its rows are keyed by its
grain (GRAINS), the one-row marts (ONE_ROW_MARTS) read on their own. A warehouse is DuckDB (a
file in the test's tmp_path) or a database of the private PostgreSQL (tests/warehouse.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from spanning_reports.marts import mart_columns
from spanning_reports.project import MARTS_YML

from tests.warehouse import (
    PG_SCHEMA,
    PROJECT_DIR,
    Fetch,
    MeltanoRun,
    PostgresServer,
    duckdb_tables,
    import_or_unavailable,
    postgres_tables,
    psycopg_module,
    unavailable,
)

DBT_ENV_PREFIX = "DBT_"

Row = dict[str, Any]
Key = tuple[Any, ...]


# Each mart's columns, in order, as this checkout's YAML files of the marts list them
# (marts.yml, alerts.yml).
DECLARED_COLUMNS = mart_columns(PROJECT_DIR / MARTS_YML.parent)


# ----------------------------------------------------------------------------- the marts


@dataclass
class Marts:
    """Every mart, as rows keyed by its grain."""

    rows: dict[str, dict[Key, Row]]

    def __getitem__(self, mart: str) -> dict[Key, Row]:
        return self.rows[mart]


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
    "tenant_names": ("tenant_id",),
    "user_protection": ("tenant_id", "ms_id", "workload"),
    "unprotected_users": ("tenant_id", "ms_id"),
    "license_history": ("tenant_id", "day"),
    "license_high_water": ("tenant_id", "month"),
    "role_changes": ("tenant_id", "sync_version", "role_id", "ms_id"),
    "alerts": ("alert_key",),
}
ONE_ROW_MARTS = ("marts_build", "attention_thresholds")
# Each mart's columns (marts.yml's) and grain.
MART_COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    mart: (tuple(DECLARED_COLUMNS[mart]), grain) for mart, grain in GRAINS.items()
}
BUILD_COLUMNS = tuple(DECLARED_COLUMNS["marts_build"])  # one row: checked on its own


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
