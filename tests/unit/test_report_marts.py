"""The marts as the reports read them: exactly the columns transform/models/marts/marts.yml
declares (the project's, or the one named), and a missing mart or column named with the
command that builds it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
from spanning_reports import fleet as fleet_report
from spanning_reports import marts

from tests.report_fixtures import fleet
from tests.report_warehouse import ROOT, TYPES, write_duckdb


def test_the_fixture_writes_every_column_marts_yml_declares() -> None:
    """The fixture's types cover marts.yml's columns exactly: a column added to a mart is
    added here, so every test below runs on the marts as dbt builds them."""
    declared = marts.mart_columns()
    for table, types in TYPES.items():
        assert table in declared, f"marts.yml has no model {table}"
        assert set(types) == set(declared[table]), (table, set(declared[table]) ^ set(types))
    for mart in (*marts.FLEET_MARTS, *marts.ROLE_MARTS):
        assert mart in TYPES, mart


def test_the_reader_selects_exactly_the_columns_of_marts_yml(tmp_path: Path) -> None:
    db = tmp_path / "spanning.duckdb"
    write_duckdb(db, fleet(28))
    declared = marts.mart_columns()
    selects: list[str] = []
    with marts.duckdb_run(db) as run:

        def recording(query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
            selects.append(query)
            return run(query)

        found = marts.read_marts(
            recording,
            str(db),
            "main",
            "duckdb",
            marts=marts.FLEET_MARTS,
            declared=declared,
            freshness=False,
        )
    for mart in marts.FLEET_MARTS:
        wanted = ", ".join(f'"{column}"' for column in declared[mart])
        assert f'SELECT {wanted} FROM "main"."{mart}"' in selects, mart
        assert found[mart], mart
        assert all(list(row) == declared[mart] for row in found[mart]), mart
    assert found.freshness is None


def test_a_mart_without_a_declared_column_names_it_and_the_build(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    write_duckdb(db, fleet(28))
    connection = duckdb.connect(str(db))
    connection.execute("ALTER TABLE main.fleet_overview DROP COLUMN attention_score")
    connection.execute("DROP TABLE main.attention_thresholds")
    connection.close()
    with pytest.raises(marts.ReportError) as raised:
        marts.read_warehouse(db, "main", marts.FLEET_MARTS, marts.mart_columns())
    message = str(raised.value)
    assert "fleet_overview.attention_score" in message
    assert "attention_thresholds" in message
    assert "dbt-duckdb:build" in message


def test_marts_yml_is_the_projects_or_the_one_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "project"
    assert marts.marts_yml_path(env={}) == ROOT / "transform" / "models" / "marts" / "marts.yml"
    assert marts.marts_yml_path(env={"MELTANO_PROJECT_ROOT": str(project)}) == (
        project / "transform" / "models" / "marts" / "marts.yml"
    )
    other = tmp_path / "marts.yml"
    other.write_text("models:\n  - name: fleet_overview\n    columns: [{name: tenant_id}]\n")
    assert marts.mart_columns(other) == {"fleet_overview": ["tenant_id"]}
    db = tmp_path / "spanning.duckdb"
    write_duckdb(db, fleet(28))
    code = fleet_report.main(
        ["--duckdb", str(db), "--marts-yml", str(other), "-o", str(tmp_path / "r")]
    )
    assert code == 1
    assert "marts.yml declares no access_review" in capsys.readouterr().err
    monkeypatch.setenv("MELTANO_PROJECT_ROOT", str(project))
    with pytest.raises(marts.ReportError, match="cannot read the marts' columns"):
        marts.mart_columns()


def test_missing_marts_are_named_with_the_command_that_builds_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "tap_only.duckdb"
    connection = duckdb.connect(str(db))
    connection.execute("CREATE TABLE users (tenant_id VARCHAR)")
    connection.close()
    output = tmp_path / "r.html"
    assert fleet_report.main(["--duckdb", str(db), "-o", str(output)]) == 1
    said = capsys.readouterr().err
    assert "fleet_overview" in said
    assert "dbt-duckdb:build" in said
    assert not output.exists()
    assert fleet_report.main(["--duckdb", str(tmp_path / "none.duckdb"), "-o", str(output)]) == 1
    assert "does not exist" in capsys.readouterr().err
