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
    assert marts.marts_yml_path(env={}) == ROOT / "transform" / "models" / "marts"
    assert marts.marts_yml_path(env={"MELTANO_PROJECT_ROOT": str(project)}) == (
        project / "transform" / "models" / "marts"
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


def test_every_yaml_file_of_the_folder_declares_marts_but_the_unit_tests(tmp_path: Path) -> None:
    folder = tmp_path / "marts"
    folder.mkdir()
    (folder / "marts.yml").write_text("models:\n  - name: a\n    columns: [{name: x}]\n")
    (folder / "alerts.yml").write_text("models:\n  - name: alerts\n    columns: [{name: k}]\n")
    (folder / "marts_unit_tests.yml").write_text("unit_tests:\n  - name: t\n    model: a\n")
    (folder / "sources.yml").write_text("sources: []\n")
    assert marts.mart_columns(folder) == {"a": ["x"], "alerts": ["k"]}
    (folder / "broken.yml").write_text("models: [\n")
    with pytest.raises(marts.ReportError, match=r"broken\.yml: cannot read the marts' columns"):
        marts.mart_columns(folder)


def test_one_tenants_read_is_filtered_in_sql(tmp_path: Path) -> None:
    """With tenant=, every query of a mart with tenant_id filters by it (quoted), and a
    mart without the column that holds tenants' data is refused."""
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
            marts=marts.CLIENT_MARTS,
            declared=declared,
            freshness=False,
            tenant="contoso",
        )
        with pytest.raises(marts.ReportError, match="no tenant_id"):
            marts.read_marts(
                run, str(db), "main", "duckdb", marts=["x"], declared={"x": ["a"]}, tenant="t"
            )
    for mart in marts.CLIENT_MARTS:
        query = next(q for q in selects if f'FROM "main"."{mart}"' in q)
        if mart == "attention_thresholds":
            assert "WHERE" not in query
            continue
        assert query.endswith("WHERE \"tenant_id\" = 'contoso'"), query
        assert found[mart], mart
        assert {row["tenant_id"] for row in found[mart]} == {"contoso"}, mart
    assert marts.mart_query("s", "m", ["a"], "o'brien").endswith("= 'o''brien'")


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
