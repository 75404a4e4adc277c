"""The fleet report's charts, pure: round ticks, bars clipped, cut and skipped at zero, and
which tenants each chart draws, chosen by the marts' flags and attention_thresholds' bands."""

from __future__ import annotations

from pathlib import Path

from spanning_reports import charts, marts, tenant_charts
from spanning_reports.tenants import Thresholds, build_tenants
from spanning_reports.values import fx

from tests.report_fixtures import fleet
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
    layout = drawn.layout  # fitted: the longest tenant label caps at 40% of the width
    assert (layout.width, layout.label_width) == (charts.HALF.width, int(0.4 * charts.HALF.width))
    assert clipped.clipped
    assert clipped.width == str(layout.plot_width)  # the whole plot, no further
    assert clipped.tenant_label.endswith("\u2026")
    assert len(clipped.tenant_label) == layout.label_chars
    assert zero.width is None
    assert not zero.clipped
    assert zero.data == {"data-tenant": "zero", "data-value": 0.0, "data-x": 1}
    assert [tick.label for tick in drawn.ticks] == ["0%", "100%", "200%"]
    (band,) = drawn.bands
    assert band.width == fx(layout.plot_width / 4)
    assert band.label is not None
    assert drawn.height == charts.CHART_TOP + 2 * charts.ROW_HEIGHT + 22
    assert drawn.axis_note == ""


def test_value_labels_are_never_cut_and_rate_axes_start_near_the_data() -> None:
    label = "5 GA \u00b7 4 Spanning \u00b7 5 disabled admins of 12"
    drawn = charts.bar_chart(
        "c",
        [charts.Bar("t", 94.0, label, charts.RED, "t"), charts.Bar("u", 100.0, "100", "", "")],
        axis_min=90.0,
        axis_max=100.0,
        ticks=[90, 95, 100],
        tick_label=lambda v: f"{v:g}%",
    )
    assert drawn.bars[0].value_label == label
    value_room = drawn.layout.width - drawn.layout.value_left
    assert value_room >= len(label) * charts.CHAR_WIDTH
    # 94% is 40% of the plot, 100% all of it: apart, which an axis from 0 does not show.
    assert drawn.bars[0].width == fx(drawn.layout.plot_width * 0.4)
    assert drawn.bars[1].width == str(drawn.layout.plot_width)
    assert drawn.axis_note == "The axis starts at 90%, not 0."
    assert [tick.label for tick in drawn.ticks] == ["90%", "95%", "100%"]
    assert charts.rate_floor(94.0) == (92.0, 2.0)
    assert charts.rate_floor(30.0) == (20.0, 20.0)
    assert charts.rate_floor(100.0) == (99.0, 1.0)


def test_the_seat_chart_sorts_by_the_ratio_it_draws() -> None:
    rows = fleet(28)
    tenants = [t for t in build_tenants(marts.Marts("fixture", "main", rows)) if not t.offboarded]
    limits = Thresholds.from_row(THRESHOLDS)
    seats = tenant_charts.seat_chart(tenants, 20, limits)
    drawn = [bar.data["data-seat-use-pct"] for bar in seats.drawing.bars]
    assert drawn == sorted(drawn, reverse=True)
    licensed = [t.get("seat_use_pct") or 0.0 for t in tenants if (t.get("licenses") or 0) > 0]
    assert drawn == sorted(licensed, reverse=True)[:20]
    # Ties by name: two tenants at one ratio are drawn in their names' order.
    by_id = {t.tenant_id: t for t in tenants}
    by_id["client-0002"].overview.update(seat_use_pct=150.0, tenant_name="Aardvark")
    by_id["client-0001"].overview.update(seat_use_pct=150.0, tenant_name="Zebra")
    top = tenant_charts.seat_chart(tenants, 2, limits).drawing.bars
    assert [bar.data["data-tenant"] for bar in top] == ["client-0002", "client-0001"]
    assert top[0].bar.tenant == "Aardvark (client-0002)"


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
    most = max(tenants, key=lambda t: t.get("seat_use_pct") or 0.0)
    assert seats.drawing.bars[0].data["data-tenant"] == most.tenant_id
    assert any("without license counters" in str(n) for n in seats.notes)
    quiet = [t for t in tenants if not t.sync_failing and not t.never_synced]
    assert tenant_charts.sync_chart(quiet, 5).empty == "Every tenant's last sync completed."
    empty = charts.backup_line_chart([], limits)
    assert (empty.drawing, empty.empty) == (None, "No backup history in backup_health_daily.")
