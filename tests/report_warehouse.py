"""The report tests' warehouse: the marts' tables as dbt leaves them, and the command.

The columns are those the YAML files of transform/models/marts/ declare (`mart_columns()`,
the one list), each given a type here (TYPES), with the tap's own tenant_syncs beside them.
write_duckdb writes rows into a DuckDB file as dbt-duckdb would; write_results writes dbt's
run_results.json; run_report runs `python -m spanning_reports fleet` as a user runs it.
The rows themselves are tests/report_fixtures.py's.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import duckdb
from spanning_reports import marts

ROOT = Path(__file__).resolve().parents[1]

# attention_thresholds as dbt_project.yml's vars set it.
THRESHOLDS: dict[str, Any] = {
    "backup_target_pct": 95.0,
    "backup_bad_pct": 80.0,
    "global_admin_min": 2,
    "global_admin_max": 4,
    "global_admin_flag_at": 5,
    "seat_use_max_pct": 100.0,
    "failing_users_pattern_at": 10,
}
FLAGS = (
    "is_never_synced",
    "is_sync_failing",
    "is_backup_below_target",
    "is_backup_bad",
    "has_failing_users",
    "has_too_many_global_admins",
    "has_too_few_global_admins",
    "has_disabled_admins",
    "is_over_licensed",
    "has_unprotected_users",
    "has_unlicensed_users",
    "has_wasted_seats",
    "needs_attention",
)
# Every mart with a tenant_id has its tenant_name right after it.
TENANT = {"tenant_id": "VARCHAR", "tenant_name": "VARCHAR"}
# The type of each column the fixture writes (the same DDL on DuckDB and PostgreSQL, but
# DOUBLE); the columns, and their order, are those the marts' YAML files declare.
TYPES: dict[str, dict[str, str]] = {
    "fleet_overview": {
        **TENANT,
        "license_status": "VARCHAR",
        **dict.fromkeys(
            (
                "users",
                "licensed_users",
                "licenses",
                "archived_licenses",
                "assigned_standard",
                "assigned_archive",
                "counted_users",
                "counted_assigned",
                "global_admins",
                "spanning_admins",
                "disabled_admins",
                "wasted_seats",
                "protectable_users",
                "protected_users",
                "unprotected_users",
                "shared_mailboxes",
                "not_protectable_users",
                "unlicensed_users",
                "open_alerts",
                "failed_syncs_in_a_row",
                "failing_users",
                "longest_failing_streak_days",
                "attention_score",
            ),
            "BIGINT",
        ),
        **dict.fromkeys(
            (
                "seat_use_pct",
                "archive_seat_use_pct",
                "backup_success_yesterday_pct",
                "backup_success_7d_pct",
                "coverage_pct",
            ),
            "DOUBLE",
        ),
        "last_complete_sync_at": "TIMESTAMP",
        "counters_disagree": "BOOLEAN",
        "is_offboarded": "BOOLEAN",
        **dict.fromkeys(FLAGS, "BOOLEAN"),
    },
    "access_review": {
        **TENANT,
        **dict.fromkeys(("ms_id", "user_principal_name", "display_name", "role_id"), "VARCHAR"),
        **dict.fromkeys(
            (
                "is_disabled",
                "is_deleted_from_microsoft",
                "has_no_microsoft_license",
                "is_archived",
                "needs_review",
            ),
            "BOOLEAN",
        ),
    },
    "license_waste": {
        **TENANT,
        **dict.fromkeys(("ms_id", "user_principal_name", "reason"), "VARCHAR"),
    },
    "backup_health_daily": {
        **TENANT,
        "date": "DATE",
        "type": "VARCHAR",
        **dict.fromkeys(("total", "successful", "partial", "failed"), "BIGINT"),
        "success_rate": "DOUBLE",
    },
    "failing_users": {
        **TENANT,
        **dict.fromkeys(("ms_id", "user_principal_name", "type"), "VARCHAR"),
        "streak_days": "BIGINT",
        "first_day": "DATE",
        "last_day": "DATE",
    },
    "tenant_sync_health": {
        **TENANT,
        "last_sync_version": "BIGINT",
        "last_sync_at": "TIMESTAMP",
        "last_status": "VARCHAR",
        "last_complete_sync_version": "BIGINT",
        "last_complete_at": "TIMESTAMP",
        "consecutive_failed_runs": "BIGINT",
        "last_reason": "VARCHAR",
        "is_current": "BOOLEAN",
        "is_offboarded": "BOOLEAN",
    },
    "attention_thresholds": {
        name: "DOUBLE" if isinstance(value, float) else "BIGINT"
        for name, value in THRESHOLDS.items()
    },
    "tenant_roles": {
        **TENANT,
        **dict.fromkeys(("role_id", "role_name"), "VARCHAR"),
        **dict.fromkeys(("members", "disabled_members"), "BIGINT"),
    },
    "tenant_names": dict(TENANT),
    "user_protection": {
        **TENANT,
        **dict.fromkeys(
            ("ms_id", "user_principal_name", "display_name", "workload", "protection"), "VARCHAR"
        ),
        "last_success_day": "DATE",
        "days_since_success": "BIGINT",
        "latest_day": "DATE",
        "is_unprotected": "BOOLEAN",
    },
    "unprotected_users": {
        **TENANT,
        **dict.fromkeys(
            ("ms_id", "user_principal_name", "display_name", "unprotected_workloads"), "VARCHAR"
        ),
        "never_backed_up": "BOOLEAN",
        "last_success_day": "DATE",
        "days_since_success": "BIGINT",
    },
    "license_history": {
        **TENANT,
        "day": "DATE",
        **dict.fromkeys(
            (
                "sync_version",
                "licenses",
                "archived_licenses",
                "assigned_standard",
                "assigned_archive",
            ),
            "BIGINT",
        ),
    },
    "license_high_water": {
        **TENANT,
        "month": "DATE",
        **dict.fromkeys(
            (
                "days_observed",
                "peak_assigned_standard",
                "peak_assigned_archive",
                "licenses",
                "archived_licenses",
            ),
            "BIGINT",
        ),
        "peak_day": "DATE",
        "is_over_licenses": "BOOLEAN",
    },
    "role_changes": {
        **TENANT,
        "day": "DATE",
        "sync_version": "BIGINT",
        **dict.fromkeys(
            ("role_id", "role_name", "ms_id", "user_principal_name", "change"), "VARCHAR"
        ),
    },
    "alerts": {
        **dict.fromkeys(
            ("alert_key", "tenant_id", "tenant_name", "kind", "subject", "severity", "status"),
            "VARCHAR",
        ),
        **dict.fromkeys(("first_seen", "last_seen", "resolved_on"), "DATE"),
        "summary": "VARCHAR",
    },
    "marts_build": {"built_at": "TIMESTAMP", "newest_sync_at": "TIMESTAMP"},
}
# Not a mart: the tap's own tenant_syncs (the columns freshness reads), beside the marts as
# the loaders leave it.
TENANT_SYNCS = {
    "tenant_id": "VARCHAR",
    "sync_version": "BIGINT",
    "status": "VARCHAR",
    "finished_at": "TIMESTAMP",
}
Rows = dict[str, list[dict[str, Any]]]


def columns_of() -> dict[str, dict[str, str]]:
    """Each table the fixture writes -> its columns (marts.yml's, in its order) and types."""
    declared = marts.mart_columns()
    tables = {mart: {c: TYPES[mart][c] for c in declared[mart]} for mart in TYPES}
    return {**tables, "tenant_syncs": TENANT_SYNCS}


# ----------------------------------------------------------------------------- the tables


def ddl(table: str, columns: dict[str, str], schema: str, double: str = "DOUBLE") -> str:
    listed = ", ".join(
        f'"{name}" {double if kind == "DOUBLE" else kind}' for name, kind in columns.items()
    )
    return f'CREATE TABLE "{schema}"."{table}" ({listed})'


def jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else value


def write_duckdb(
    path: Path, rows: Rows, schema: str = "main", without: tuple[str, ...] = ()
) -> None:
    """The marts as dbt-duckdb would leave them: tables in `schema` of the file, with
    marts.yml's columns (but the tables named in `without`)."""
    connection = duckdb.connect(str(path))
    try:
        connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        for table, columns in columns_of().items():
            if table in without:
                continue
            connection.execute(ddl(table, columns, schema))
            if not rows[table]:
                continue
            source = path.with_name(f"{path.stem}-{table}.jsonl")
            source.write_text(
                "".join(
                    json.dumps({k: jsonable(row[k]) for k in columns}) + "\n" for row in rows[table]
                ),
                encoding="utf-8",
            )
            types = ", ".join(f"'{name}': '{kind}'" for name, kind in columns.items())
            connection.execute(
                f'INSERT INTO "{schema}"."{table}" SELECT * FROM read_json(?, '
                f"format = 'newline_delimited', columns = {{{types}}})",
                [str(source)],
            )
            source.unlink()
    finally:
        connection.close()


def read_back(path: Path, mart: str) -> dict[str, dict[str, Any]]:
    """A mart's rows by tenant_id (the first row of each), as the warehouse returns them."""
    connection = duckdb.connect(str(path), read_only=True)
    try:
        cursor = connection.execute(f'SELECT * FROM main."{mart}"')
        names = [column[0] for column in cursor.description or ()]
        found: dict[str, dict[str, Any]] = {}
        for values in cursor.fetchall():
            row = dict(zip(names, values, strict=True))
            found.setdefault(row["tenant_id"], row)
        return found
    finally:
        connection.close()


def built_at(path: Path) -> dt.datetime:
    """marts_build.built_at of the fixture warehouse (naive: UTC, as dbt leaves it)."""
    connection = duckdb.connect(str(path), read_only=True)
    try:
        found = connection.execute("SELECT built_at FROM main.marts_build").fetchone()
    finally:
        connection.close()
    assert found is not None
    return found[0]


def write_results(
    path: Path, statuses: list[str], generated_at: dt.datetime, which: str = "build"
) -> Path:
    """dbt's run_results.json as dbt 1.8 writes it (the fields the report reads, and some it
    does not): one result per status, a model when it succeeded or errored, else a test."""
    results: list[dict[str, Any]] = [
        {
            "status": status,
            "unique_id": f"model.spanning.model_{index}"
            if status in ("success", "error")
            else f"test.spanning.test_{index}",
            "timing": [],
            "thread_id": "Thread-1",
            "execution_time": 0.1,
            "adapter_response": {},
            "message": None,
            "failures": 1 if status == "fail" else None,
        }
        for index, status in enumerate(statuses)
    ]
    document = {
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
            "dbt_version": "1.8.10",
            "generated_at": generated_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "invocation_id": str(uuid.uuid4()),
            "env": {},
        },
        "results": results,
        "elapsed_time": 1.5,
        "args": {"which": which, "target_path": str(path.parent)},
    }
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- the command


def run_report(*args: str, output: Path) -> subprocess.CompletedProcess[str]:
    """`python -m spanning_reports fleet`, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "spanning_reports", "fleet", *args, "-o", str(output)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
