"""The fleet report's page: the marts in, one self-contained HTML file out.

The HTML is in templates/*.html.j2, rendered by a Jinja2 environment with autoescape: every
value of the warehouse is escaped, and shown through `visible` (each hidden character a token)
unless a template shows it as a name (`|name`: isolated, tokens marked). The page loads
nothing: inline CSS (templates/style.css), SVG drawn from charts.py's geometry, and two inline
scripts (templates/error.js, templates/sort.js) allowed by their hashes in the page's
Content-Security-Policy, which allows nothing else.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from spanning_reports import backup_grid, charts, tables, tenant_charts
from spanning_reports.freshness import Freshness
from spanning_reports.marts import Marts
from spanning_reports.names import name_html, tenant_html, visible
from spanning_reports.tenants import (
    Tenant,
    Thresholds,
    build_tenants,
    thresholds,
    without_offboarded,
)
from spanning_reports.values import (
    attrs,
    count,
    day,
    flag,
    fmt_day,
    fmt_int,
    fmt_pct,
    fmt_time,
    num,
    plural,
    text,
    workload,
)

DEFAULT_TOP = 20
DEFAULT_MAX_ROWS = 500
TITLE = "Spanning fleet report"


def shown(value: Any) -> Any:
    """Every {{ value }}: text with its hidden characters as tokens, then escaped."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return visible(value)
    return value


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("spanning_reports", "templates"),
        autoescape=True,
        finalize=shown,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters.update(
        name=lambda value: name_html(text(value)),
        attrs=attrs,
        int=fmt_int,
        pct=fmt_pct,
        time=fmt_time,
        day=fmt_day,
        plural=plural,
        workload=workload,
        count=count,
        flag=flag,
        text=text,
    )
    env.globals.update(
        ROLE_NAMES=tables.ROLE_NAMES,
        ALERT_KINDS=tables.ALERT_KINDS,
        tenant_cell=lambda tenant_id, name: tenant_html(text(tenant_id), text(name) or None),
        WASTE_REASONS=tables.WASTE_REASONS,
        review_reasons=tables.review_reasons,
    )
    return env


def script(name: str) -> str:
    """An inline script, exactly as the page holds it (its hash is in the CSP)."""
    env = environment()
    assert env.loader is not None
    source, _, _ = env.loader.get_source(env, name)
    return source.strip()


def script_hash(source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def csp(scripts: Sequence[str]) -> str:
    """Nothing may load: no request leaves the page, whatever text the warehouse holds."""
    return (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
        f"form-action 'none'; script-src {' '.join(script_hash(s) for s in scripts)}"
    )


@dataclass(frozen=True)
class Kpi:
    name: str
    value: str
    label: str
    bad: bool


def kpis(tenants: Sequence[Tenant], marts: Marts, limits: Thresholds, offboarded: int) -> list[Kpi]:
    """The fleet's figures: sums over its current tenants' mart rows."""
    licenses = sum(t.get("licenses") or 0 for t in tenants)
    assigned = sum(t.get("assigned_standard") or 0 for t in tenants)
    users = sum(count(t["users"]) for t in tenants)
    failing_syncs = sum(1 for t in tenants if t.sync_failing or t.never_synced)
    review = sum(1 for row in marts["access_review"] if flag(row["needs_review"]))
    ga_flagged = sum(1 for t in tenants if t.has("has_too_many_global_admins"))
    failing_users = sum(count(t["failing_users"]) for t in tenants)
    yesterday = dt.date.today() - dt.timedelta(days=1)
    ok = total = 0.0
    for row in marts["backup_health_daily"]:
        if day(row["date"]) == yesterday:
            ok += num(row["successful"]) or 0.0
            total += num(row["total"]) or 0.0
    backup = 100 * ok / total if total else None
    # One definition of wasted licenses: fleet_overview.wasted_seats, as the Tenants table.
    waste = sum(count(t["wasted_seats"]) for t in tenants)
    protectable = sum(count(t["protectable_users"]) for t in tenants)
    protected = sum(count(t["protected_users"]) for t in tenants)
    coverage = 100 * protected / protectable if protectable else None
    alerts = [row for row in marts["alerts"] if text(row["status"]) == "open"]
    critical = sum(1 for row in alerts if text(row["severity"]) == "critical")
    cards = [
        Kpi("tenants", f"{len(tenants):,}", "tenants", False),
        Kpi("sync-failing", f"{failing_syncs:,}", "last sync failed", failing_syncs > 0),
        Kpi("users", f"{users:,}", "users", False),
        Kpi(
            "coverage",
            fmt_pct(coverage),
            f"coverage ({fmt_int(protected)} / {fmt_int(protectable)} protectable protected)",
            protected < protectable,
        ),
        Kpi("alerts", f"{len(alerts):,}", f"open alerts ({critical:,} critical)", critical > 0),
        Kpi(
            "seat-use",
            fmt_pct(100 * assigned / licenses if licenses else None),
            f"seat use ({fmt_int(assigned)} / {fmt_int(licenses)})",
            False,
        ),
        Kpi(
            "backup-yesterday",
            fmt_pct(backup),
            f"backups OK on {yesterday:%b %d}",
            backup is not None and backup < limits.backup_target_pct,
        ),
        Kpi("failing-users", f"{failing_users:,}", "users failing for days", failing_users > 0),
        Kpi("review", f"{review:,}", "admin roles to review", review > 0),
        Kpi(
            "ga-flagged",
            f"{ga_flagged:,}",
            f"tenants with {limits.global_admin_flag_at}+ GAs",
            ga_flagged > 0,
        ),
        Kpi("waste", f"{waste:,}", "Licenses to reclaim", False),
    ]
    if offboarded:
        cards.append(Kpi("offboarded", f"{offboarded:,}", "offboarded, not counted", False))
    return cards


def freshness_attrs(freshness: Freshness) -> dict[str, Any]:
    build = freshness.build
    return {
        "data-freshness": freshness.state,
        "data-marts-built-at": freshness.built_at and freshness.built_at.isoformat(),
        "data-newest-sync-at": freshness.newest_sync_at and freshness.newest_sync_at.isoformat(),
        "data-build-failed-at": build.finished_at.isoformat()
        if freshness.build_failed and build and build.finished_at
        else None,
    }


def render(
    marts: Marts,
    *,
    top: int = DEFAULT_TOP,
    max_rows: int = DEFAULT_MAX_ROWS,
    title: str = TITLE,
    generated: dt.datetime | None = None,
) -> str:
    """The whole page."""
    fresh = marts.freshness
    assert fresh is not None, "the fleet report reads the marts with their freshness"
    generated = generated or dt.datetime.now(dt.timezone.utc)
    limits = thresholds(marts)
    listed = build_tenants(marts)  # every tenant, the offboarded last
    tenants = [tenant for tenant in listed if not tenant.offboarded]  # the current fleet
    offboarded = len(listed) - len(tenants)
    marts = without_offboarded(marts, listed)
    week = tables.newest_day(marts["role_changes"])
    scripts = [script("error.js"), script("sort.js")]
    return (
        environment()
        .get_template("page.html.j2")
        .render(
            title=title,
            csp=csp(scripts),
            error_script=Markup(scripts[0]),  # noqa: S704 - the package's own file
            sort_script=Markup(scripts[1]),  # noqa: S704 - the package's own file
            marts=marts,
            freshness=fresh,
            freshness_attrs=freshness_attrs(fresh),
            limits=limits,
            tenants=tenants,
            offboarded=offboarded,
            kpis=kpis(tenants, marts, limits, offboarded),
            review=sum(1 for row in marts["access_review"] if flag(row["needs_review"])),
            seat_chart=tenant_charts.seat_chart(tenants, top, limits),
            admin_chart=tenant_charts.admin_chart(tenants, top, limits),
            backup_chart=charts.backup_line_chart(marts["backup_health_daily"], limits),
            backup_tenant_chart=tenant_charts.backup_tenant_chart(tenants, top, limits),
            failing_chart=tenant_charts.failing_chart(tenants, top),
            sync_chart=tenant_charts.sync_chart(tenants, top),
            tenants_table=tables.tenants_table(listed, max_rows),
            access_table=tables.access_table(marts["access_review"], max_rows),
            waste_table=tables.waste_table(marts["license_waste"], max_rows),
            failing_table=tables.failing_table(marts["failing_users"], max_rows),
            alerts_table=tables.alerts_table(marts["alerts"], max_rows),
            week=week,
            role_changes_table=tables.role_changes_table(
                tables.week_of(marts["role_changes"], week), max_rows
            ),
            grid=backup_grid.backup_grid(
                marts["backup_health_daily"],
                [(t.tenant_id, t.name) for t in tenants[:top]],
                limits,
            ),
            stamp=generated.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        )
        + "\n"
    )
