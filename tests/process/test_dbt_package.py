"""transform/ as a dbt package: transform/integration_tests/ depends on it and builds it.

The integration project is what an MSP's own dbt project would be: packages.yml names the
package (`local: ../`), the seeds are the tap's tables with the columns target-duckdb writes,
in another database (a second DuckDB file attached as `raw`) and schema than the marts, and
the vars `spanning_database` / `spanning_schema` point the package at them. `dbt deps`,
`dbt seed` and `dbt build` run with the dbt Meltano installed (`make meltano-install`), on a
copy of transform/ in tmp_path, so that nothing (dbt_packages/, package-lock.yml, target/,
logs/) is written in the checkout; then with groups of marts turned off by their vars
(transform/README.md, section As a package): their models absent, the others built.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import duckdb
import pytest

pytestmark = pytest.mark.process

PROJECT_DIR = Path(__file__).resolve().parents[2]
TRANSFORM = PROJECT_DIR / "transform"
DBT = PROJECT_DIR / ".meltano" / "utilities" / "dbt-duckdb" / "venv" / "bin" / "dbt"
SEEDS = TRANSFORM / "integration_tests" / "seeds"

# The models each group var disables (transform/dbt_project.yml, vars); a model in two
# groups goes with either.
GROUP_MODELS = {
    "backups": {
        "stg_spanning__backup_summaries",
        "stg_spanning__user_backups",
        "backup_health_daily",
        "int_spanning__failing_streaks",
        "failing_users",
        "user_protection",
        "unprotected_users",
        "int_spanning__alert_backup_below_target",
        "int_spanning__alert_user_backup_failing",
        "int_spanning__alert_user_unprotected",
    },
    "alerts": {
        "alerts",
        "int_spanning__alert_tenants",
        "int_spanning__alert_sync_failing",
        "int_spanning__alert_global_admins",
        "int_spanning__alert_seats_over_licenses",
        "int_spanning__alert_backup_below_target",
        "int_spanning__alert_user_backup_failing",
        "int_spanning__alert_user_unprotected",
        "int_spanning__alert_new_global_admin",
    },
    "history": {
        "license_history",
        "license_high_water",
        "role_changes",
        "int_spanning__alert_new_global_admin",
    },
}
PACKAGE_MODELS = {path.stem for path in (TRANSFORM / "models").rglob("*.sql")}
MARTS = {path.stem for path in (TRANSFORM / "models" / "marts").glob("*.sql")}


def seeded_tenants() -> set[str]:
    with (SEEDS / "tenant_syncs.csv").open(encoding="utf-8", newline="") as seed:
        return {row["tenant_id"] for row in csv.DictReader(seed)}


@pytest.fixture(scope="module")
def integration_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of transform/ with its integration project's package installed (`dbt deps`)."""
    assert DBT.exists(), f"{DBT} missing: run `make meltano-install` (make test does)"
    copy = tmp_path_factory.mktemp("package") / "transform"
    shutil.copytree(
        TRANSFORM,
        copy,
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", "package-lock.yml"),
    )
    project = copy / "integration_tests"
    installed = dbt(project, project / "deps.duckdb", "deps")
    assert installed.returncode == 0, installed.stdout[-4000:]
    assert (project / "dbt_packages" / "spanning" / "dbt_project.yml").exists()
    return project


def dbt(project: Path, warehouse: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The Meltano-installed dbt in the integration project, on the files of `warehouse`."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DBT_", "TARGET_DUCKDB_", "MELTANO_"))
    }
    env |= {
        "DBT_PROFILES_DIR": str(project),
        "DBT_DUCKDB_PATH": str(warehouse),
        "DBT_DUCKDB_RAW_PATH": str(warehouse.with_name(f"{warehouse.stem}_raw.duckdb")),
        "DBT_TARGET_PATH": str(warehouse.with_name(f"{warehouse.stem}_target")),
        "DBT_LOG_PATH": str(warehouse.with_name(f"{warehouse.stem}_logs")),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    return subprocess.run(
        [str(DBT), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def build(project: Path, warehouse: Path, *args: str) -> dict[str, str]:
    """Seed and build into a fresh warehouse: each node's status, by its name."""
    seeded = dbt(project, warehouse, "seed")
    assert seeded.returncode == 0, seeded.stdout[-4000:]
    built = dbt(project, warehouse, "build", *args)
    assert built.returncode == 0, built.stdout[-8000:]
    results_path = warehouse.with_name(f"{warehouse.stem}_target") / "run_results.json"
    results = json.loads(results_path.read_text(encoding="utf-8"))["results"]
    statuses = {result["unique_id"]: result["status"] for result in results}
    not_passed = {
        node: status for node, status in statuses.items() if status not in {"success", "pass"}
    }
    # The one warning the seeds earn: globex uses more seats than it bought (a warn-level test).
    assert set(not_passed.values()) <= {"warn"}, not_passed
    assert all("seat_use_pct" in node for node in not_passed), not_passed
    return statuses


def connect(warehouse: Path) -> duckdb.DuckDBPyConnection:
    """The models' file, read-only, with the tap's tables attached as `raw` (as dbt has them)."""
    connection = duckdb.connect(str(warehouse), read_only=True)
    raw = warehouse.with_name(f"{warehouse.stem}_raw.duckdb")
    connection.execute(f"attach '{raw}' as raw (read_only)")
    return connection


def relations(warehouse: Path, catalog: str | None = None) -> dict[tuple[str, str], int]:
    """Every table and view of `catalog` (the models' file): (schema, name) -> its rows."""
    with connect(warehouse) as connection:
        names = connection.execute(
            "select table_schema, table_name from information_schema.tables"
            " where table_catalog = coalesce(?, current_database())",
            [catalog],
        ).fetchall()
        counted: dict[tuple[str, str], int] = {}
        for schema, name in names:
            row = connection.execute(
                f'select count(*) from "{catalog or warehouse.stem}"."{schema}"."{name}"'
            ).fetchone()
            assert row is not None
            counted[schema, name] = row[0]
        return counted


def fleet(warehouse: Path, *columns: str) -> dict[str, tuple[Any, ...]]:
    """fleet_overview: each tenant's values of `columns`."""
    with connect(warehouse) as connection:
        rows = connection.execute(
            f"select tenant_id, {', '.join(columns)} from main.fleet_overview"
        ).fetchall()
    return {row[0]: tuple(row[1:]) for row in rows}


def test_the_package_builds_every_model_over_the_tables_the_vars_name(
    integration_dir: Path, tmp_path: Path
) -> None:
    warehouse = tmp_path / "all.duckdb"
    statuses = build(integration_dir, warehouse)
    assert any(node.startswith("unit_test.spanning.") for node in statuses)

    built = relations(warehouse)
    # Every model of the package, and nothing else: the tap's tables stay in `raw`.
    assert {name for _, name in built} == PACKAGE_MODELS
    assert {(schema, name) for schema, name in built if name.startswith("stg_")} == {
        ("main_staging", name) for name in PACKAGE_MODELS if name.startswith("stg_")
    }
    seeds = {path.stem for path in SEEDS.glob("*.csv")}
    assert set(relations(warehouse, "raw")) == {("main_tap", name) for name in seeds}
    assert {mart for mart in MARTS if built["main", mart] == 0} == set()

    # initech ran only in the first run, which acme and globex ran again without it.
    assert fleet(warehouse, "is_offboarded") == {
        "acme": (False,),
        "globex": (False,),
        "initech": (True,),
    }
    assert set(fleet(warehouse)) == seeded_tenants()
    figures = fleet(warehouse, "failing_users", "protectable_users", "open_alerts")
    assert figures["acme"][0] > 0  # bob's mail failed every day held
    assert all(
        counts[1] > 0 and counts[2] > 0 for name, counts in figures.items() if name != "initech"
    )


@pytest.mark.parametrize("turned_off", [("backups", "history"), ("alerts",)], ids="+".join)
def test_a_group_turned_off_leaves_its_models_out_and_the_rest_builds(
    integration_dir: Path, tmp_path: Path, turned_off: tuple[str, ...]
) -> None:
    warehouse = tmp_path / "some.duckdb"
    group_vars = {f"spanning__enable_{group}": False for group in turned_off}
    statuses = build(integration_dir, warehouse, "--vars", json.dumps(group_vars))

    left_out = set().union(*(GROUP_MODELS[group] for group in turned_off))
    built = relations(warehouse)
    assert {name for _, name in built} == PACKAGE_MODELS - left_out
    assert not {node for node in statuses if node.rsplit(".", 1)[-1] in left_out}
    assert {mart for mart in MARTS - left_out if built["main", mart] == 0} == set()

    # fleet_overview still holds every tenant; the figures of a group turned off read none.
    figures = fleet(warehouse, "failing_users", "protectable_users", "open_alerts")
    assert set(figures) == seeded_tenants()
    if "backups" in turned_off:
        assert {counts[:2] for counts in figures.values()} == {(0, 0)}
    if "alerts" in turned_off:
        assert {counts[2] for counts in figures.values()} == {0}
