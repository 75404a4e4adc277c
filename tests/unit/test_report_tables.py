"""The fleet report's tables: the rows each keeps, in order, and the per-table rules that
align numbers and wrap tags, as CSS the browser reads."""

from __future__ import annotations

import re
from collections.abc import Callable

from spanning_reports import tables

from tests.report_fixtures import WEEK_AGO, YESTERDAY, fleet
from tests.report_reading import Written, cells_by_header, report, table_rows

__all__ = ["report"]  # the fixture used here


def test_tables_order_and_cut_their_rows() -> None:
    rows = fleet(28)
    review = tables.access_table(rows["access_review"], 3)
    assert review.total == len(rows["access_review"])
    assert review.more == review.total - 3
    assert all(row["needs_review"] for row in review.rows)
    assert len(tables.review_reasons(review.rows[0])) >= len(tables.review_reasons(review.rows[-1]))
    waste = tables.waste_table(rows["license_waste"], 1000)
    reasons = [row["reason"] for row in waste.rows]
    assert reasons == sorted(reasons, key=list(tables.WASTE_REASONS).index)
    streaks = [row["streak_days"] for row in tables.failing_table(rows["failing_users"], 9).rows]
    assert streaks[0] == 9
    assert streaks == sorted(streaks, reverse=True)


def test_each_table_aligns_numbers_and_wraps_tags_by_its_own_rule(
    report: Callable[..., Written],
) -> None:
    """The per-table rules are CSS as written, not escaped text a browser would ignore."""
    written = report(fleet(28))
    assert (
        'table[data-table="fleet_overview"] td:nth-child(2){white-space:normal;min-width:250px}'
        in written.page
    )
    assert 'table[data-table="failing_users"] td:nth-child(4){text-align:right}' in written.page
    # license_waste has no numeric and no tag column: no rule, not an empty selector.
    assert "<style>{" not in written.page
    assert "&#34;" not in "".join(re.findall(r"<style>(.*?)</style>", written.page, re.S))


def test_the_new_sections_list_open_alerts_this_weeks_role_changes_and_the_grid(
    report: Callable[..., Written],
) -> None:
    rows = fleet(28)
    written = report(rows)
    assert written.code == 0, written.stderr
    dom = written.dom
    alerts = table_rows(dom, "alerts")
    open_keys = {r["alert_key"] for r in rows["alerts"] if r["status"] == "open"}
    assert {row.attrs["data-alert-key"] for row in alerts} == open_keys
    severities = [row.attrs["data-severity"] for row in alerts]
    assert severities == sorted(severities, key=["critical", "warning"].index)
    week = {(r["tenant_id"], r["ms_id"]) for r in rows["role_changes"] if r["day"] >= WEEK_AGO}
    listed = table_rows(dom, "role_changes")
    assert {(row.attrs["data-tenant"], row.attrs["data-ms-id"]) for row in listed} == week
    assert all(row.attrs["data-change"] == "granted" for row in listed)  # revocations: older
    grid = dom.find(lambda n: n.tag == "table" and n.attrs.get("data-grid") == "backup")
    gridded = [n for n in grid.find_all(lambda n: n.tag == "tr" and "data-tenant" in n.attrs)]
    worst = sorted(rows["fleet_overview"], key=lambda r: (-r["attention_score"], r["tenant_id"]))
    assert {row.attrs["data-tenant"] for row in gridded} <= {r["tenant_id"] for r in worst[:20]}
    assert len({row.attrs["data-tenant"] for row in gridded}) == 20 - sum(
        1 for r in worst[:20] if not r["users"]
    )
    dates = [th.attrs["data-date"] for th in grid.find_all(lambda n: "data-date" in n.attrs)]
    assert len(dates) == 30
    assert dates[-1] == YESTERDAY.isoformat()
    assert all(len(row.attrs["data-success-pcts"].split(",")) == 30 for row in gridded)
    assert all(len([c for c in row.children if c.tag == "td"]) == 2 + 30 for row in gridded)
    # The Tenants table shows coverage and the one number of licenses to reclaim.
    tenants = table_rows(dom, "fleet_overview")
    by_id = {r["tenant_id"]: r for r in rows["fleet_overview"]}
    for row in tenants:
        overview = by_id[row.attrs["data-tenant"]]
        cells_shown = cells_by_header(dom, "fleet_overview", row)
        assert cells_shown["Licenses to reclaim"] == f"{overview['wasted_seats']:,}"
        if overview["protectable_users"]:
            assert cells_shown["Coverage"] == (
                f"{overview['protected_users']:,} / {overview['protectable_users']:,} "
                f"({overview['coverage_pct']:.1f}%)"
            )
