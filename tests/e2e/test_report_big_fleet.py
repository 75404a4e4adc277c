"""The fleet report of 1,000 tenants, written by the command run as a process, stays small:
each chart draws its top bars, each table its first rows, and says how many more there are."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.report_fixtures import fleet
from tests.report_reading import bars, parse, table_rows
from tests.report_warehouse import run_report, write_duckdb

pytestmark = pytest.mark.e2e

TOP = 20  # the report's default: bars per chart
MAX_ROWS = 500  # and rows per table


def test_a_thousand_tenants_stay_small(tmp_path: Path) -> None:
    db = tmp_path / "fleet_1000.duckdb"
    write_duckdb(db, fleet(1000))
    report = tmp_path / "fleet_report_1000.html"
    done = run_report("--duckdb", str(db), output=report)
    assert done.returncode == 0, done.stderr
    page = report.read_text(encoding="utf-8")
    size = len(page.encode("utf-8"))
    print(f"fleet report for 1,000 tenants: {size:,} bytes")
    # 1.5 MB before the open alerts (up to --max-rows of them) and the 30-day grid of the
    # --top tenants' workloads, about 0.4 MB together at this size.
    assert size < 1_800_000, size
    dom = parse(page)
    for chart in ("seat-use", "global-admins", "backup-yesterday", "failing-users", "failed-runs"):
        assert 0 < len(bars(dom, chart)) <= TOP, chart
    tenants = table_rows(dom, "fleet_overview")
    assert len(tenants) == MAX_ROWS
    notes = {
        (n.attrs["data-shown"], n.attrs["data-total"])
        for n in dom.find_all(lambda n: "more" in n.attrs.get("class", "").split())
    }
    assert (str(TOP), "1000") in notes or any(shown == str(TOP) for shown, _ in notes)
    assert (str(MAX_ROWS), "1000") in notes
    assert "500 more not shown" in page
    body = dom.find(lambda n: n.tag == "body")
    assert body.attrs["data-tenants"] == "1000"
