"""The per-tenant charts: which tenants each draws, in which order, in which colour.

Pure: the tenants (fleet_overview and tenant_sync_health rows) in, charts.py's geometry out.
The order and the colours follow fleet_overview's flags, the bands attention_thresholds'
(transform/models/marts/marts.yml): a chart decides nothing a mart holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from spanning_reports.charts import (
    AMBER,
    BLUE,
    FULL,
    GREEN,
    GREY,
    RED,
    WIDE,
    Band,
    Bar,
    BarChart,
    Chart,
    Note,
    bar_chart,
    nice_ticks,
    rate_floor,
)
from spanning_reports.tenants import Tenant, Thresholds
from spanning_reports.values import count, fmt_int, fmt_pct, fx, plural, text


def seat_chart(tenants: Sequence[Tenant], top: int, limits: Thresholds) -> Chart:
    """Assigned Standard seats against licenses, by the ratio drawn (seat_use_pct, highest
    first; ties by the tenant's name)."""
    licensed = [t for t in tenants if (t.get("licenses") or 0) > 0]

    def worst(tenant: Tenant) -> tuple[float, str, str]:
        return -(tenant.get("seat_use_pct") or 0.0), tenant.label.casefold(), tenant.tenant_id

    shown = sorted(licensed, key=worst)[:top]
    bars = []
    for tenant in shown:
        pct = tenant.get("seat_use_pct") or 0.0
        label = (
            f"{fmt_int(tenant['assigned_standard'])} / {fmt_int(tenant['licenses'])} "
            f"({fmt_pct(pct)})"
        )
        color = RED if tenant.has("is_over_licensed") else AMBER if pct < 50 else BLUE
        title = f"{tenant.label}: {label} of Standard licenses assigned"
        data = {"data-tenant": tenant.tenant_id, "data-seat-use-pct": pct}
        bars.append(Bar(tenant.label, pct, label, color, title, data))
    limit = limits.seat_use_max_pct
    axis_max, ticks = nice_ticks(max([limit, *(min(b.value, 2 * limit) for b in bars)]))
    without = len(tenants) - len(licensed)
    notes: list[Note | str] = [
        Note(len(shown), len(licensed), "licensed tenant", "licensed tenants", "Tenants table")
    ]
    if without:
        notes.append(f"{plural(without, 'tenant')} without license counters.")
    if not bars:
        return Chart(empty="No tenant has license counters yet.", notes=notes)
    drawing = bar_chart(
        "seat-use",
        bars,
        axis_max=axis_max,
        ticks=ticks,
        tick_label=lambda v: f"{v:g}%",
        markers=[(limit, "licenses")],
        track=True,
    )
    return Chart(drawing, notes=notes)


def admin_chart(tenants: Sequence[Tenant], top: int, limits: Thresholds) -> Chart:
    """Global Admins per tenant against the band: too many first, then too few."""
    counted = [t for t in tenants if t["users"]]

    def worst(tenant: Tenant) -> tuple[int, int, int, str]:
        admins = count(tenant["global_admins"])
        many, few = (
            tenant.has("has_too_many_global_admins"),
            tenant.has("has_too_few_global_admins"),
        )
        rank = 0 if many else 1 if few else 2
        return (
            rank,
            -admins if many else admins,
            -count(tenant["disabled_admins"]),
            tenant.tenant_id,
        )

    shown = sorted(counted, key=worst)[:top]
    bars = []
    for tenant in shown:
        admins = count(tenant["global_admins"])
        disabled = count(tenant["disabled_admins"])
        spanning = count(tenant["spanning_admins"])
        many, few = (
            tenant.has("has_too_many_global_admins"),
            tenant.has("has_too_few_global_admins"),
        )
        label = f"{admins} GA \u00b7 {spanning} Spanning" + (
            f" \u00b7 {disabled} disabled" if disabled else ""
        )
        bars.append(
            Bar(
                tenant.label,
                float(admins),
                label,
                RED if many else AMBER if few else GREEN,
                f"{tenant.label}: {admins} Global Admins, {spanning} Spanning Admins, "
                f"{disabled} disabled admins",
                {
                    "data-tenant": tenant.tenant_id,
                    "data-global-admins": admins,
                    "data-disabled-admins": disabled,
                },
            )
        )
    notes: list[Note | str] = [Note(len(shown), len(counted), "tenant", "tenants", "Tenants table")]
    if not bars:
        return Chart(empty="No tenant has users yet.", notes=notes)
    low, high, flag_at = (
        limits.global_admin_min,
        limits.global_admin_max,
        limits.global_admin_flag_at,
    )
    axis_max, ticks = nice_ticks(max([flag_at + 2.0, *(b.value for b in bars)]), whole=True)
    drawing = bar_chart(
        "global-admins",
        bars,
        axis_max=axis_max,
        ticks=ticks,
        tick_label=lambda v: f"{v:g}",
        bands=[
            # Half a unit either side: a bar of low..high ends in the green band.
            Band(low - 0.5, high + 0.5, "#dcfce7", f"{low}\u2013{high}"),
            Band(flag_at - 0.5, axis_max, "#fee2e2", f"{flag_at}+"),
        ],
    )
    return Chart(drawing, notes=notes)


def backup_tenant_chart(tenants: Sequence[Tenant], top: int, limits: Thresholds) -> Chart:
    """The tenants with the lowest backup success yesterday."""
    held = [t for t in tenants if t.get("backup_success_yesterday_pct") is not None]
    shown = sorted(held, key=lambda t: (t.get("backup_success_yesterday_pct") or 0.0, t.tenant_id))
    shown = shown[:top]
    bars = []
    for tenant in shown:
        pct = tenant.get("backup_success_yesterday_pct") or 0.0
        label = f"{fmt_pct(pct)} (7 days: {fmt_pct(tenant['backup_success_7d_pct'])})"
        color = (
            RED
            if tenant.has("is_backup_bad")
            else AMBER
            if tenant.has("is_backup_below_target")
            else GREEN
        )
        data = {"data-tenant": tenant.tenant_id, "data-backup-success-yesterday-pct": pct}
        bars.append(Bar(tenant.label, pct, label, color, f"{tenant.label}: {label}", data))
    if not bars:
        return Chart(empty="No tenant has backup results for yesterday.")
    target = limits.backup_target_pct
    floor, step = rate_floor(min([target, *(bar.value for bar in bars)]))
    drawing = bar_chart(
        "backup-yesterday",
        bars,
        axis_min=floor,
        axis_max=100.0,
        ticks=[floor + step * index for index in range(round((100 - floor) / step) + 1)],
        tick_label=lambda v: f"{v:g}%",
        markers=[(target, f"{target:g}%")],
        track=True,
    )
    return Chart(drawing, notes=[Note(len(bars), len(held), "tenant", "tenants", "Tenants table")])


def failing_chart(tenants: Sequence[Tenant], top: int) -> Chart:
    """Tenants by failing users (fleet_overview.failing_users), the longest streak beside."""
    failing = sorted(
        (t for t in tenants if t.has("has_failing_users")),
        key=lambda t: (
            -count(t["failing_users"]),
            -count(t["longest_failing_streak_days"]),
            t.tenant_id,
        ),
    )
    shown = failing[:top]
    if not shown:
        return Chart(empty="No user has been failing for days in any tenant.", good=True)
    bars = []
    for tenant in shown:
        users, streak = count(tenant["failing_users"]), count(tenant["longest_failing_streak_days"])
        bars.append(
            Bar(
                tenant.label,
                float(users),
                f"{plural(users, 'user')} \u00b7 longest {streak} days",
                RED if streak >= 7 else AMBER,
                f"{tenant.label}: {plural(users, 'user')} failing, the longest for {streak} days",
                {"data-tenant": tenant.tenant_id, "data-failing-users": users},
            )
        )
    axis_max, ticks = nice_ticks(max(b.value for b in bars), whole=True)
    drawing = bar_chart(
        "failing-users", bars, axis_max=axis_max, ticks=ticks, tick_label=lambda v: f"{v:g}"
    )
    note = Note(
        len(shown),
        len(failing),
        "tenant with failing users",
        "tenants with failing users",
        "table below",
    )
    return Chart(drawing, notes=[note])


@dataclass(frozen=True)
class Segment:
    status: str
    count: int
    x: str
    width: str
    color: str


@dataclass(frozen=True)
class SyncChart:
    """The fleet split by sync health, and the failing tenants by failed runs in a row."""

    segments: list[Segment]
    legend: str
    failed_runs: BarChart | None


def sync_chart(tenants: Sequence[Tenant], top: int) -> Chart:
    never = [t for t in tenants if t.never_synced]
    failing = [t for t in tenants if t.sync_failing]
    groups = (
        ("current", len(tenants) - len(failing) - len(never), GREEN),
        ("failing", len(failing), RED),
        ("never completed", len(never), GREY),
    )
    total = max(len(tenants), 1)
    segments, left = [], 0.0
    for status, number, color in groups:
        width = WIDE * number / total
        if number:
            segments.append(Segment(status, number, fx(left), fx(width), color))
        left += width
    legend = " \u00b7 ".join(f"{number:,} {status}" for status, number, _ in groups)
    broken = sorted(
        failing + never,
        key=lambda t: (-count(t.sync.get("consecutive_failed_runs")), t.tenant_id),
    )
    shown = broken[:top]
    bars = []
    for tenant in shown:
        runs = count(tenant.sync.get("consecutive_failed_runs"))
        reason = text(tenant.sync.get("last_reason")) or text(tenant.sync.get("last_status"))
        bars.append(
            Bar(
                tenant.label,
                float(runs),
                f"{plural(runs, 'run')} \u00b7 {reason}",
                GREY if tenant.never_synced else RED,
                f"{tenant.label}: {plural(runs, 'failed run')} in a row: {reason}",
                {"data-tenant": tenant.tenant_id, "data-consecutive-failed-runs": runs},
            )
        )
    if not bars:
        return Chart(
            SyncChart(segments, legend, None),
            empty="Every tenant's last sync completed.",
            good=True,
        )
    axis_max, ticks = nice_ticks(max(b.value for b in bars), whole=True)
    runs_chart = bar_chart(
        "failed-runs",
        bars,
        axis_max=axis_max,
        ticks=ticks,
        tick_label=lambda v: f"{v:g}",
        layout=FULL,
    )
    note = Note(len(shown), len(broken), "failing tenant", "failing tenants", "Tenants table")
    return Chart(SyncChart(segments, legend, runs_chart), notes=[note])
