"""The fleet report reads PostgreSQL: the fixture fleet's marts (tests/report_fixtures.py)
in a fresh database, in schema spanning as dbt-postgres builds them, give the page DuckDB
gives, but for the line naming the source."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from pathlib import Path

import duckdb
import psycopg
import pytest

from tests.report_reading import Reported, reported
from tests.report_warehouse import ROOT, built_at, columns_of, ddl, run_report, write_results

__all__ = ["reported"]  # the fixture used here

pytestmark = pytest.mark.e2e


def test_the_report_reads_postgresql_too(
    reported: Reported, tmp_path: Path, postgres_url: str
) -> None:
    """The same marts in PostgreSQL (schema spanning, as dbt-postgres builds them) give the
    same page, but for the line naming the source."""
    name = f"fleet_report_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = psycopg.conninfo.make_conninfo(postgres_url, dbname=name)
    try:
        connection = duckdb.connect(str(reported.db), read_only=True)
        try:
            tables = {}
            for table in columns_of():
                tables[table] = connection.execute(f'SELECT * FROM main."{table}"').fetchall()
        finally:
            connection.close()
        with psycopg.connect(url, autocommit=True) as target:
            target.execute('CREATE SCHEMA "spanning"')
            for table, columns in columns_of().items():
                target.execute(ddl(table, columns, "spanning", "double precision"))
                marks = ", ".join(["%s"] * len(columns))
                with target.cursor() as inserting:
                    inserting.executemany(
                        f'INSERT INTO "spanning"."{table}" VALUES ({marks})', tables[table]
                    )
        output = tmp_path / "fleet_report_pg.html"
        results = write_results(tmp_path / "run_results.json", ["success"], built_at(reported.db))
        done = run_report("--postgres", url, "--dbt-results", str(results), output=output)
        assert done.returncode == 0, done.stderr
        page = output.read_text(encoding="utf-8")
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def main(text: str) -> str:
        found = re.search(r"<main>.*</main>", text, re.S)
        assert found is not None
        return found.group(0)

    assert main(page) == main(reported.page)
    where = psycopg.conninfo.conninfo_to_dict(url)
    assert f"{where['host']}:{where['port']}/{name}" in page
    assert "schema spanning" in page


@pytest.fixture
def postgres_url() -> str:
    """TAP_SPANNING_TEST_PG_URL, else the private cluster, started (and installed) by
    scripts/postgres.sh when it is not running."""
    url = os.environ.get("TAP_SPANNING_TEST_PG_URL")
    if not url:
        done = subprocess.run(
            ["bash", str(ROOT / "scripts" / "postgres.sh"), "start"],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert done.returncode == 0, f"scripts/postgres.sh start failed:\n{done.stderr[-3000:]}"
        url = done.stdout.strip().splitlines()[-1]
    return url
