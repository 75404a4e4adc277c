"""The charts' geometry: where each bar, band, tick and point goes, in SVG viewBox units.

Pure: numbers in, frozen dataclasses out; templates/charts.html.j2 draws them. The bar charts
of tenants are chosen in tenant_charts.py; the fleet's backup success per workload and day is
here. The dashed target line is attention_thresholds' (transform/models/marts/marts.yml).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from spanning_reports.marts import Row
from spanning_reports.names import visible
from spanning_reports.tenants import Thresholds
from spanning_reports.values import (
    WORKLOADS,
    day,
    fmt_int,
    fmt_pct,
    fx,
    num,
    short,
    text,
    workload,
)

PALETTE = ("#2563eb", "#16a34a", "#d97706", "#9333ea", "#0891b2", "#db2777", "#65a30d")
BLUE, GREEN, AMBER, RED, GREY = "#2563eb", "#16a34a", "#d97706", "#dc2626", "#9ca3af"
ROW_HEIGHT = 22
BAR_HEIGHT = 14
CHART_TOP = 26
CHAR_WIDTH = 6.4  # about, of an 11px sans-serif character: text is cut to fit its room
WIDE = 1100  # the viewBox width of a chart across the page (about its size on screen)


@dataclass(frozen=True)
class Layout:
    """A bar chart's columns, in viewBox units: tenant label, bars, value label."""

    width: int
    label_width: int
    plot_width: int

    @property
    def plot_left(self) -> int:
        return self.label_width + 8

    @property
    def value_left(self) -> int:
        return self.plot_left + self.plot_width + 8

    @property
    def label_chars(self) -> int:
        return int(self.label_width / CHAR_WIDTH)

    @property
    def value_chars(self) -> int:
        return int((self.width - self.value_left) / CHAR_WIDTH)


HALF = Layout(560, 156, 196)  # a chart in one of two columns
FULL = Layout(WIDE, 170, 400)


@dataclass(frozen=True)
class Bar:
    tenant: str
    value: float  # in axis units; clipped at the axis maximum
    label: str  # right of the bar
    color: str
    title: str  # the tooltip
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Band:
    start: float
    end: float
    color: str
    label: str = ""


@dataclass(frozen=True)
class Mark:
    """A tick, a marker or a band's label: where, and what it says."""

    x: str
    label: str


@dataclass(frozen=True)
class DrawnBand:
    x: str
    width: str
    color: str
    label: Mark | None


@dataclass(frozen=True)
class DrawnBar:
    bar: Bar
    data: dict[str, Any]
    bar_top: str
    text_y: str
    width: str | None  # None: nothing to draw (a zero)
    tenant_label: str
    value_label: str
    clipped: bool


@dataclass(frozen=True)
class Note:
    """Under a chart or table: all shown, or the worst `shown` of `total`."""

    shown: int
    total: int
    noun: str
    nouns: str
    where: str

    @property
    def more(self) -> bool:
        return self.total > self.shown


@dataclass(frozen=True)
class BarChart:
    name: str
    layout: Layout
    height: int
    plot_top: int
    plot_bottom: int
    bars: list[DrawnBar]
    ticks: list[Mark]
    axis_note: str  # said under the chart when the axis does not start at 0
    bands: list[DrawnBand]
    markers: list[Mark]
    track_width: str | None  # the grey track behind each bar, to 100
    clip_x: str

    @property
    def plot_left(self) -> int:
        return self.layout.plot_left


@dataclass(frozen=True)
class Chart:
    """A chart as a section holds it: the drawing, or why there is none, and its notes."""

    drawing: Any = None  # BarChart, LineChart or SyncChart
    empty: str = ""
    good: bool = False  # the empty text is good news
    notes: list[Note | str] = field(default_factory=list)


def nice_ticks(maximum: float, steps: int = 5, whole: bool = False) -> tuple[float, list[float]]:
    """An axis maximum >= maximum and about `steps` round ticks from 0 (whole: 1 apart at
    least, for counts)."""
    maximum = max(maximum, 1.0)
    raw = maximum / steps
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    if whole:
        step = max(step, 1)
    top = math.ceil(maximum / step) * step
    return top, [step * index for index in range(round(top / step) + 1)]


def rate_floor(minimum: float) -> tuple[float, float]:
    """The start of a 0..100 axis near the data's minimum, and its tick step: 94% and 100%
    must be told apart, which an axis from 0 does not do."""
    span = max(100.0 - minimum, 2.0)
    raw = span / 5
    step = next(m for m in (1.0, 2.0, 5.0, 10.0, 20.0) if m >= raw)
    return max(0.0, math.floor((minimum - step / 2) / step) * step), step


def fitted(layout: Layout, bars: Sequence[Bar]) -> Layout:
    """The layout whose value column holds the longest value label whole, and whose label
    column holds the longest tenant label (up to 40% of the width; longer ones are cut)."""
    value_width = max((len(visible(bar.label)) for bar in bars), default=0) * CHAR_WIDTH + 6
    label_width = max((len(visible(bar.tenant)) for bar in bars), default=0) * CHAR_WIDTH + 4
    label_width = min(max(label_width, 60.0), 0.4 * layout.width)
    plot_width = layout.width - label_width - 16 - value_width
    if plot_width < 0.3 * layout.width:  # the bars keep their room: the labels are cut
        plot_width = 0.3 * layout.width
        label_width = max(60.0, layout.width - plot_width - 16 - value_width)
    return Layout(layout.width, int(label_width), int(plot_width))


def bar_chart(
    name: str,
    bars: Sequence[Bar],
    *,
    axis_max: float,
    axis_min: float = 0.0,
    ticks: Sequence[float],
    tick_label: Callable[[float], str],
    bands: Sequence[Band] = (),
    markers: Sequence[tuple[float, str]] = (),
    track: bool = False,
    layout: Layout = HALF,
) -> BarChart:
    """Horizontal bars, one row per tenant, in the order given; the layout fitted to the
    labels (`fitted`), the axis from axis_min (said under the chart when not 0)."""
    layout = fitted(layout, bars)
    plot_bottom = CHART_TOP + ROW_HEIGHT * len(bars)
    left = layout.plot_left

    def x(value: float) -> float:
        held = max(axis_min, min(value, axis_max)) - axis_min
        return left + layout.plot_width * held / (axis_max - axis_min)

    drawn = []
    for index, bar in enumerate(bars):
        middle = CHART_TOP + ROW_HEIGHT * index + ROW_HEIGHT / 2
        width = x(bar.value) - left
        drawn.append(
            DrawnBar(
                bar,
                {"data-tenant": bar.tenant, "data-value": bar.value, **bar.data},
                fx(middle - BAR_HEIGHT / 2),
                fx(middle + 4),
                fx(max(width, 1.5)) if width > 0 or (axis_min and bar.value > 0) else None,
                short(bar.tenant, layout.label_chars),
                visible(bar.label),
                bar.value > axis_max,
            )
        )
    return BarChart(
        name,
        layout,
        plot_bottom + 22,
        CHART_TOP,
        plot_bottom,
        drawn,
        [Mark(fx(x(tick)), tick_label(tick)) for tick in ticks if tick >= axis_min],
        f"The axis starts at {tick_label(axis_min)}, not 0." if axis_min else "",
        [
            DrawnBand(
                fx(x(band.start)),
                fx(x(band.end) - x(band.start)),
                band.color,
                Mark(fx((x(band.start) + x(band.end)) / 2), band.label) if band.label else None,
            )
            for band in bands
        ],
        [Mark(fx(x(value)), label) for value, label in markers],
        fx(x(min(100, axis_max)) - left) if track else None,
        fx(x(axis_max) - 3),
    )


@dataclass(frozen=True)
class Point:
    x: str
    y: str
    data: dict[str, Any]
    title: str


@dataclass(frozen=True)
class Series:
    kind: str
    name: str
    color: str
    path: str
    points: list[Point]
    legend_x: int


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    left: int
    right: int
    bottom: int
    grid: list[tuple[str, str, str]]  # (y, label y, label) of each horizontal line
    target_y: str | None
    days: list[Mark]
    series: list[Series]
    first: dt.date
    last: dt.date
    day_count: int
    floor: float  # where the axis starts (said under the chart)


def backup_line_chart(rows: Sequence[Row], limits: Thresholds) -> Chart:
    """Fleet-wide success per workload and day: sum(successful) / sum(total) of the tenants
    in backup_health_daily."""
    totals: dict[tuple[str, dt.date], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for row in rows:
        when, total = day(row["date"]), num(row["total"])
        if when is None or not total:
            continue
        cell = totals[(text(row["type"]), when)]
        cell[0] += num(row["successful"]) or 0.0
        cell[1] += total
    if not totals:
        return Chart(empty="No backup history in backup_health_daily.")
    kinds = sorted({kind for kind, _ in totals}, key=lambda k: (k not in WORKLOADS, workload(k)))
    days = sorted({when for _, when in totals})
    points = {key: 100 * ok / total for key, (ok, total) in totals.items()}
    floor, step = rate_floor(min(points.values()))
    width, height = WIDE, 300
    left, right, top, bottom = 48, WIDE - 16, 40, height - 30
    span = max((days[-1] - days[0]).days, 1)

    def x(when: dt.date) -> float:
        if len(days) == 1:
            return (left + right) / 2
        return left + (right - left) * (when - days[0]).days / span

    def y(pct: float) -> float:
        return bottom - (bottom - top) * (pct - floor) / (100 - floor)

    ticks = [floor + step * index for index in range(round((100 - floor) / step) + 1)]
    grid = [(fx(y(tick)), fx(y(tick) + 4), f"{tick:g}%") for tick in ticks]
    target = limits.backup_target_pct
    every = max(1, math.ceil(len(days) / 10))
    labels = [
        Mark(fx(x(when)), f"{when:%m-%d}")
        for index, when in enumerate(days)
        if index % every == 0 or index == len(days) - 1
    ]
    series, legend_x = [], left
    for index, kind in enumerate(kinds):
        held = [(when, points[(kind, when)]) for when in days if (kind, when) in points]
        path = " ".join(
            f"{'M' if n == 0 else 'L'}{fx(x(when))},{fx(y(pct))}"
            for n, (when, pct) in enumerate(held)
        )
        dots = [
            Point(
                fx(x(when)),
                fx(y(pct)),
                {"data-date": when.isoformat(), "data-success-pct": pct},
                f"{workload(kind)} {when}: {fmt_pct(pct)} ({fmt_int(totals[(kind, when)][0])} "
                f"of {fmt_int(totals[(kind, when)][1])})",
            )
            for when, pct in held
        ]
        name = workload(kind)
        series.append(Series(kind, name, PALETTE[index % len(PALETTE)], path, dots, legend_x))
        legend_x += 28 + 7 * len(name)
    drawing = LineChart(
        width,
        height,
        left,
        right,
        bottom,
        grid,
        fx(y(target)) if floor < target else None,
        labels,
        series,
        days[0],
        days[-1],
        len(days),
        floor,
    )
    return Chart(drawing)
