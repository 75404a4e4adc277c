"""The fleet-report utility finds the warehouse dbt built as the dbt profiles do (meltano.yml,
`fleet-report`): its own setting, else dbt's, else the loader's, else the default."""

from __future__ import annotations

import importlib
from typing import Any

from psycopg.conninfo import conninfo_to_dict


def test_the_report_utility_reads_the_warehouse_dbt_built() -> None:
    """Each setting: FLEET_REPORT_*, else dbt's DBT_<ADAPTER>_*, else the loader's TARGET_*,
    else meltano.yml's default; relative paths from the project, absolute ones as given."""
    utility = importlib.import_module("spanning_reports.utility")
    root = "/srv/spanning"
    report = ["-o", f"{root}/output/fleet_report.html"]

    env: dict[str, str] = {"MELTANO_PROJECT_ROOT": root}
    duckdb = ["--duckdb", f"{root}/output/spanning.duckdb", "--schema", "main"]
    assert utility.report_args("duckdb", env) == [*duckdb, *report]
    env |= {"TARGET_DUCKDB_PATH": "w/a.duckdb", "TARGET_DUCKDB_DEFAULT_TARGET_SCHEMA": "raw"}
    duckdb = ["--duckdb", f"{root}/w/a.duckdb", "--schema", "raw"]
    assert utility.report_args("duckdb", env) == [*duckdb, *report]
    env |= {"DBT_DUCKDB_PATH": "/data/b.duckdb", "DBT_DUCKDB_SCHEMA": "marts"}
    duckdb = ["--duckdb", "/data/b.duckdb", "--schema", "marts"]
    assert utility.report_args("duckdb", env) == [*duckdb, *report]
    env |= {"FLEET_REPORT_DUCKDB_PATH": "c.duckdb", "FLEET_REPORT_SCHEMA": "mine"}
    env |= {"FLEET_REPORT_OUTPUT": "/tmp/r.html"}
    duckdb = ["--duckdb", f"{root}/c.duckdb", "--schema", "mine"]
    assert utility.report_args("duckdb", env) == [*duckdb, "-o", "/tmp/r.html"]

    def postgres(env: dict[str, str]) -> tuple[dict[str, Any], str]:
        flag, conninfo, schema_flag, schema, *_ = utility.report_args("postgres", env)
        assert (flag, schema_flag) == ("--postgres", "--schema")
        return conninfo_to_dict(conninfo), schema

    defaults = {
        "host": "127.0.0.1",
        "port": "54329",
        "user": "postgres",
        "password": "trust",
        "dbname": "spanning",
    }
    assert postgres({}) == (defaults, "spanning")
    layered = {
        "TARGET_POSTGRES_HOST": "db.example",
        "TARGET_POSTGRES_PORT": "6432",
        "TARGET_POSTGRES_PASSWORD": "loader's",
        "DBT_POSTGRES_PASSWORD": "p w'd\\",
        "DBT_POSTGRES_USER": "dbt",
        "FLEET_REPORT_DATABASE": "reports",
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": "raw",
    }
    wanted = {
        **defaults,
        "host": "db.example",
        "port": "6432",
        "user": "dbt",
        "password": "p w'd\\",
        "dbname": "reports",
    }
    assert postgres(layered) == (wanted, "raw")


