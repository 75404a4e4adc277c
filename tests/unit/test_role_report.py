"""The role report (`python -m spanning_reports roles`) of the fixture warehouse: each
tenant's role tiers and license use from tenant_roles and fleet_overview, grouped by tenant
for a fleet, not for one tenant."""

from __future__ import annotations

from pathlib import Path

import pytest
from spanning_reports import roles

from tests.report_fixtures import HEALTHY, NEVER, TROUBLED, fleet, hand_made, mart_rows
from tests.report_warehouse import write_duckdb
from tests.role_reading import parse_report


def test_the_role_report_prints_tenant_roles_and_license_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = fleet(28)
    db = tmp_path / "spanning.duckdb"
    write_duckdb(db, rows)
    assert roles.main(["--duckdb", str(db)]) == 0
    shown = parse_report(capsys.readouterr().out)
    expected: dict[str | None, dict[str, tuple[int, int]]] = {}
    for row in rows["tenant_roles"]:
        expected.setdefault(row["tenant_id"], {})[row["role_id"]] = (
            row["members"],
            row["disabled_members"],
        )
    assert shown.roles == expected
    assert NEVER not in shown.roles  # no complete sync: no current rows
    assert shown.title.startswith(f"Spanning roles in {db} (schema main): ")
    assert f"{len(expected)} tenants" in shown.title
    overview = {row["tenant_id"]: row for row in rows["fleet_overview"]}
    assert shown.licenses[TROUBLED] == ("paid", 1150, 1000, 20, 50, 1240)
    assert set(shown.licenses) == set(expected)
    assert shown.licenses[HEALTHY][-1] == overview[HEALTHY]["users"]
    assert not shown.notes


def test_the_role_report_of_one_tenant_is_not_grouped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = mart_rows([hand_made()[1]])
    rows["fleet_overview"][0]["license_status"] = None
    rows["fleet_overview"][0]["licenses"] = None
    db = tmp_path / "one.duckdb"
    write_duckdb(db, rows)
    assert roles.main(["--duckdb", str(db), "--schema", "main"]) == 0
    shown = parse_report(capsys.readouterr().out)
    assert list(shown.roles) == [None]
    assert shown.roles[None]["global_admin"] == (3, 0)
    assert shown.title.endswith(f"tenant {HEALTHY}, 260 users")
    assert shown.licenses == {}
    assert shown.notes == [f"NOTE: {HEALTHY} has no license counters landed: sync again"]
    assert roles.main(["--duckdb", str(tmp_path / "none.duckdb")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_the_role_report_notes_counters_that_disagree_with_the_users(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """fleet_overview.counters_disagree, and only it, makes the note: the counters it quotes
    are the mart's, the users counted are the current ones."""
    rows = mart_rows(hand_made()[:2])
    troubled = rows["fleet_overview"][0]
    troubled.update(counted_users=troubled["users"] + 3, counted_assigned=7, counters_disagree=True)
    db = tmp_path / "disagree.duckdb"
    write_duckdb(db, rows)
    assert roles.main(["--duckdb", str(db)]) == 0
    shown = parse_report(capsys.readouterr().out)
    tenant = troubled["tenant_id"]
    assert shown.notes == [
        f"NOTE: {tenant}: the API counts {troubled['users'] + 3} users, 7 assigned "
        f"({troubled['assigned_archive']} archive); its current users differ "
        f"({troubled['users']} users, {troubled['licensed_users']} licensed): the tenant changed "
        "during the sync, or the tables come from different syncs; sync again"
    ]
