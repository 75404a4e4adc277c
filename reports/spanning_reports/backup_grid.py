"""The 30-day grid of backup success: one row per tenant and workload, one cell per day,
coloured by the day's success against attention_thresholds' bands (as Datto's backup
dashboards show a client's nights at a glance).

Pure: backup_health_daily rows in, a `Grid` out; templates/grid.html.j2 draws it. A cell is
the mart's successful / total of that tenant, workload and day; a day the mart does not hold
is grey.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from spanning_reports.marts import Row
from spanning_reports.tenants import Thresholds
from spanning_reports.values import (
    WORKLOADS,
    data_value,
    day,
    fmt_int,
    fmt_pct,
    num,
    text,
    workload,
)

GRID_DAYS = 30


@dataclass(frozen=True)
class Cell:
    when: dt.date
    pct: float | None  # None: no account to back up that day, or the day not held
    tone: str  # good | low | bad | none
    title: str


@dataclass(frozen=True)
class GridRow:
    tenant_id: str
    tenant_name: str
    kind: str
    cells: list[Cell]

    @property
    def values(self) -> str:
        """Each day's success, comma separated ('' for none): the row's data attribute."""
        return ",".join(data_value(cell.pct) for cell in self.cells)


@dataclass(frozen=True)
class Grid:
    days: list[dt.date]
    rows: list[GridRow]


def tone(pct: float | None, limits: Thresholds) -> str:
    if pct is None:
        return "none"
    if pct >= limits.backup_target_pct:
        return "good"
    return "low" if pct >= limits.backup_bad_pct else "bad"


def backup_grid(
    rows: Sequence[Row],
    tenants: Sequence[tuple[str, str]],
    limits: Thresholds,
    days: int = GRID_DAYS,
    ending: dt.date | None = None,
) -> Grid:
    """The `days` days ending on `ending` (else the newest day held), for the (tenant_id,
    tenant_name) given in their order, each workload the mart holds for it."""
    held: dict[tuple[str, str, dt.date], tuple[float, float]] = {}
    for row in rows:
        when = day(row["date"])
        if when is not None:
            ok, total = num(row["successful"]) or 0.0, num(row["total"]) or 0.0
            held[(text(row["tenant_id"]), text(row["type"]), when)] = (ok, total)
    if not held:
        return Grid([], [])
    newest = ending or max(when for _, _, when in held)
    shown_days = [newest - dt.timedelta(days=back) for back in range(days - 1, -1, -1)]
    kinds: dict[str, set[str]] = {}
    for tenant_id, kind, _ in held:
        kinds.setdefault(tenant_id, set()).add(kind)
    grid_rows = []
    for tenant_id, name in tenants:
        ordered = sorted(kinds.get(tenant_id, ()), key=lambda k: (k not in WORKLOADS, workload(k)))
        for kind in ordered:
            cells = []
            for when in shown_days:
                ok, total = held.get((tenant_id, kind, when), (0.0, 0.0))
                pct = 100 * ok / total if total else None
                said = f"{fmt_pct(pct)} ({fmt_int(ok)}/{fmt_int(total)})" if total else "none"
                title = f"{workload(kind)} {when:%m-%d}: {said}"
                cells.append(Cell(when, pct, tone(pct, limits), title))
            grid_rows.append(GridRow(tenant_id, name, kind, cells))
    return Grid(shown_days, grid_rows)
