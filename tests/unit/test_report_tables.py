"""The fleet report's tables: the rows each keeps, in order, and the per-table rules that
align numbers and wrap tags, as CSS the browser reads."""

from __future__ import annotations

import re
from collections.abc import Callable

from spanning_reports import tables

from tests.report_fixtures import fleet
from tests.report_reading import Written, report

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
