"""The report of one client (`python -m spanning_reports client`) on the fixture warehouse:
its numbers are that tenant's marts', and the file holds no other tenant's id or name."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from spanning_reports import client

from tests.report_fixtures import HEALTHY, NAMES, TROUBLED, YESTERDAY, fleet
from tests.report_reading import parse, table_rows
from tests.report_warehouse import Rows, write_duckdb

MONTH = f"{YESTERDAY:%Y-%m}"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Rows]:
    rows = fleet(28)
    db = tmp_path_factory.mktemp("client") / "spanning.duckdb"
    write_duckdb(db, rows)
    return db, rows


def write_client(db: Path, out: Path, *args: str) -> int:
    return client.main(
        ["duckdb", *args, "--output-dir", str(out), "--msp-name", "Acme <Managed> IT"],
        env={"FLEET_REPORT_DUCKDB_PATH": str(db)},
    )


def others_in(page: bytes, rows: Rows, tenant: str) -> list[str]:
    """Every other fixture tenant's id and name found in the file's bytes."""
    found = []
    for row in rows["tenant_names"]:
        if row["tenant_id"] == tenant:
            continue
        for said in (row["tenant_id"], row["tenant_name"]):
            if said and said.encode() in page:
                found.append(said)
    return found


def test_the_client_report_holds_its_tenants_numbers_alone(
    warehouse: tuple[Path, Rows], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, rows = warehouse
    assert write_client(db, tmp_path, "--tenant", TROUBLED, "--month", MONTH) == 0
    path = tmp_path / f"{TROUBLED}-{MONTH}.html"
    assert capsys.readouterr().out.splitlines() == [str(path)]
    page = path.read_bytes()
    assert others_in(page, rows, TROUBLED) == []
    dom = parse(page.decode())
    assert NAMES[TROUBLED] in dom.find(lambda n: n.tag == "h1").text
    assert "Acme &lt;Managed&gt; IT" in page.decode()
    cards = {
        n.attrs["data-kpi"]: n.find(lambda m: m.tag == "b").text
        for n in dom.find_all(lambda n: "data-kpi" in n.attrs)
    }
    (overview,) = [r for r in rows["fleet_overview"] if r["tenant_id"] == TROUBLED]
    assert cards["coverage"] == f"{overview['coverage_pct']:.1f}%"
    assert cards["unprotected"] == f"{overview['unprotected_users']:,}"
    assert cards["shared-mailboxes"] == f"{overview['shared_mailboxes']:,}"
    first = YESTERDAY.replace(day=1)
    (high,) = [
        r for r in rows["license_high_water"] if r["tenant_id"] == TROUBLED and r["month"] == first
    ]
    assert cards["high-water"] == f"{high['peak_assigned_standard']:,}"
    mine = {r["ms_id"] for r in rows["unprotected_users"] if r["tenant_id"] == TROUBLED}
    assert {r.attrs["data-ms-id"] for r in table_rows(dom, "unprotected_users")} == mine
    history = [
        r for r in rows["license_history"] if r["tenant_id"] == TROUBLED and r["day"] >= first
    ]
    shown = table_rows(dom, "license_history")
    assert [int(r.attrs["data-assigned-standard"]) for r in shown] == [
        r["assigned_standard"] for r in history
    ]
    changes = [r for r in rows["role_changes"] if r["tenant_id"] == TROUBLED and r["day"] >= first]
    if changes:
        listed = table_rows(dom, "role_changes")
        assert sorted(r.attrs["data-ms-id"] for r in listed) == sorted(r["ms_id"] for r in changes)
    # The grid: each day of the month, each cell the mart's successful / total.
    grid = dom.find(lambda n: n.tag == "table" and n.attrs.get("data-grid") == "backup")
    dates = [th.attrs["data-date"] for th in grid.find_all(lambda n: "data-date" in n.attrs)]
    cells = {
        (row.attrs["data-type"], when): pct
        for row in grid.find_all(lambda n: n.tag == "tr" and "data-type" in n.attrs)
        for when, pct in zip(dates, row.attrs["data-success-pcts"].split(","), strict=True)
    }
    days = {d for _, d in cells}
    assert min(days) == first.isoformat()
    next_month = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    assert len(days) == (next_month - first).days
    for row in rows["backup_health_daily"]:
        if row["tenant_id"] == TROUBLED and row["date"] >= first:
            pct = float(cells[(row["type"], row["date"].isoformat())])
            assert pct == pytest.approx(100 * row["successful"] / row["total"], abs=1e-4)


def test_all_writes_one_report_per_current_tenant(
    warehouse: tuple[Path, Rows], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, rows = warehouse
    assert write_client(db, tmp_path, "--all", "--day", YESTERDAY.isoformat()) == 0
    written = capsys.readouterr().out.split()
    current = sorted(r["tenant_id"] for r in rows["fleet_overview"] if not r["is_offboarded"])
    assert written == [str(tmp_path / f"{tenant}-{MONTH}.html") for tenant in current]
    for tenant in (HEALTHY, TROUBLED, current[-1]):
        page = (tmp_path / f"{tenant}-{MONTH}.html").read_bytes()
        assert others_in(page, rows, tenant) == [], tenant


def test_a_tenant_not_in_the_marts_or_a_bad_month_is_refused(
    warehouse: tuple[Path, Rows], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, _ = warehouse
    assert write_client(db, tmp_path, "--tenant", "nobody", "--month", MONTH) == 1
    assert "no tenant 'nobody'" in capsys.readouterr().err
    assert write_client(db, tmp_path, "--tenant", "../x", "--month", MONTH) == 1
    assert "cannot name a file" in capsys.readouterr().err
    assert write_client(db, tmp_path, "--tenant", TROUBLED, "--month", "2024-13") == 1
    assert "not YYYY-MM" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.html"))


def test_monthly_writes_last_months_reports_on_its_day_and_nothing_otherwise(
    warehouse: tuple[Path, Rows], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, rows = warehouse
    env = {"FLEET_REPORT_DUCKDB_PATH": str(db), "FLEET_REPORT_CLIENT_REPORT_DAY": "3"}
    out = ["--output-dir", str(tmp_path)]
    # The day after the month of the fixture's yesterday is the first of the next month.
    after = (YESTERDAY.replace(day=28) + dt.timedelta(days=4)).replace(day=3)
    assert client.main(["duckdb", "--monthly", *out], env, today=after - dt.timedelta(days=1)) == 0
    assert not list(tmp_path.iterdir())
    assert "day 3 of the month" in capsys.readouterr().err
    assert client.main(["duckdb", "--monthly", *out], env, today=after) == 0
    current = sorted(r["tenant_id"] for r in rows["fleet_overview"] if not r["is_offboarded"])
    assert capsys.readouterr().out.split() == [
        str(tmp_path / f"{tenant}-{MONTH}.html") for tenant in current
    ]


@pytest.mark.parametrize("setting", ["0", "29", "5th", "-1"])
def test_a_report_day_that_is_not_in_every_month_is_refused(
    setting: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        client.main(["duckdb", "--monthly"], {"FLEET_REPORT_CLIENT_REPORT_DAY": setting})
    assert stopped.value.code == 2
    assert "client_report_day must be a day of the month, 1 to 28" in capsys.readouterr().err
