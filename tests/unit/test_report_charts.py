"""The fleet report's charts, pure: round ticks, bars clipped, cut and skipped at zero, and
which tenants each chart draws, chosen by the marts' flags and attention_thresholds' bands."""

from __future__ import annotations

from pathlib import Path

from spanning_reports import charts, marts, tenant_charts
from spanning_reports.tenants import Thresholds, build_tenants

from tests.report_fixtures import TROUBLED, fleet
from tests.report_warehouse import THRESHOLDS


def test_nice_ticks_are_round_and_cover_the_maximum() -> None:
    assert charts.nice_ticks(7, whole=True) == (8, [0, 2, 4, 6, 8])
    assert charts.nice_ticks(100.0) == (100, [0, 20, 40, 60, 80, 100])
    assert charts.nice_ticks(115.0) == (150, [0, 50, 100, 150])  # a step of 23 rounds to 50
    assert charts.nice_ticks(0.2, whole=True) == (1, [0, 1])


def test_a_bar_chart_clips_cuts_and_skips_zero() -> None:
    name = "a-tenant-with-a-very-long-name-that-does-not-fit"
    drawn = charts.bar_chart(
        "c",
        [
            charts.Bar(name, 250.0, "250", charts.RED, "t"),
            charts.Bar("zero", 0.0, "0", charts.GREEN, "t", {"data-x": 1}),
        ],
        axis_max=200.0,
        ticks=[0, 100, 200],
        tick_label=lambda v: f"{v:g}%",
        bands=[charts.Band(50, 100, "#eee", "ok")],
    )
    clipped, zero = drawn.bars
    layout = charts.HALF
    assert clipped.clipped
    assert clipped.width == str(layout.plot_width)  # the whole plot, no further
    assert clipped.tenant_label.endswith("\u2026")
    assert len(clipped.tenant_label) == layout.label_chars
    assert zero.width is None
    assert not zero.clipped
    assert zero.data == {"data-tenant": "zero", "data-value": 0.0, "data-x": 1}
    assert [tick.label for tick in drawn.ticks] == ["0%", "100%", "200%"]
    (band,) = drawn.bands
    assert band.width == str(layout.plot_width // 4)
    assert band.label is not None
    assert drawn.height == charts.CHART_TOP + 2 * charts.ROW_HEIGHT + 22


def test_charts_choose_by_the_flags_and_bands(tmp_path: Path) -> None:
    rows = fleet(28)
    found = marts.Marts("fixture", "main", rows)
    tenants = [t for t in build_tenants(found) if not t.offboarded]
    limits = Thresholds.from_row(THRESHOLDS)
    admins = tenant_charts.admin_chart(tenants, 5, limits)
    assert admins.drawing is not None
    first = admins.drawing.bars[0]
    assert first.bar.color == charts.RED
    assert first.data["data-global-admins"] >= THRESHOLDS["global_admin_flag_at"]
    (note,) = admins.notes
    assert isinstance(note, charts.Note)
    assert (note.shown, note.more) == (5, True)
    seats = tenant_charts.seat_chart(tenants, 3, limits)
    assert seats.drawing.bars[0].bar.tenant == TROUBLED  # the one over licensed the most
    assert any("without license counters" in str(n) for n in seats.notes)
    quiet = [t for t in tenants if not t.sync_failing and not t.never_synced]
    assert tenant_charts.sync_chart(quiet, 5).empty == "Every tenant's last sync completed."
    empty = charts.backup_line_chart([], limits)
    assert (empty.drawing, empty.empty) == (None, "No backup history in backup_health_daily.")
