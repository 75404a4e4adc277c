"""The report of one client: its page, from that tenant's rows of the marts alone.

The marts are read filtered by the tenant's id in SQL (marts.read_marts with `tenant=`), so
the page can hold nothing of another tenant: no fleet figure, no average, no link. It shows
the month asked for: coverage (protected / protectable users, shared mailboxes apart), backup
success per workload and day, the failing and the unprotected users, license use and the
month's high-water mark, the role changes of the month, and the MSP's name. It loads nothing
and runs no script (its Content-Security-Policy allows none), so it prints the same as it
shows (client.py prints it to PDF with headless Chromium).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from spanning_reports import backup_grid, tables
from spanning_reports.marts import Marts, ReportError, Row
from spanning_reports.page import environment
from spanning_reports.tenants import thresholds
from spanning_reports.values import count, day, flag, fmt_int, fmt_pct, num, text

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; script-src 'none'"
)


@dataclass(frozen=True)
class Month:
    first: dt.date
    last: dt.date

    @classmethod
    def of(cls, when: dt.date) -> Month:
        first = when.replace(day=1)
        return cls(first, first.replace(day=calendar.monthrange(first.year, first.month)[1]))

    @classmethod
    def parse(cls, value: str) -> Month:
        """YYYY-MM."""
        try:
            return cls.of(dt.datetime.strptime(value, "%Y-%m").date())
        except ValueError:
            raise ReportError(f"--month {value!r}: not YYYY-MM") from None

    @property
    def label(self) -> str:
        return f"{self.first:%Y-%m}"

    def holds(self, value: Any) -> bool:
        found = day(value)
        return found is not None and self.first <= found <= self.last


@dataclass(frozen=True)
class Figure:
    name: str
    value: str
    label: str
    bad: bool = False


def in_month(rows: Sequence[Row], column: str, month: Month) -> list[Row]:
    return [row for row in rows if month.holds(row[column])]


def tenant_name(marts: Marts) -> str:
    """The tenant's name (tenant_names, else fleet_overview), '' when never named."""
    names = [text(row["tenant_name"]) for row in marts["tenant_names"]]
    overview = [text(row["tenant_name"]) for row in marts["fleet_overview"]]
    return next((name for name in (*names, *overview) if name), "")


def check_one_tenant(marts: Marts, tenant_id: str) -> None:
    """Every row read is the tenant's: the SQL filter, held to account."""
    for mart, rows in marts.rows.items():
        strays = {text(row["tenant_id"]) for row in rows if "tenant_id" in row} - {tenant_id}
        if strays:
            raise ReportError(f"{mart} returned rows of another tenant: refusing to write")


def figures(overview: Row, high_water: Row | None) -> list[Figure]:
    protectable, protected = (
        count(overview.get("protectable_users")),
        count(overview.get("protected_users")),
    )
    unprotected = count(overview.get("unprotected_users"))
    cards = [
        Figure(
            "coverage",
            fmt_pct(overview.get("coverage_pct")),
            f"coverage: {fmt_int(protected)} of {fmt_int(protectable)} protectable users protected",
            unprotected > 0,
        ),
        Figure("unprotected", fmt_int(unprotected), "unprotected users", unprotected > 0),
        Figure("shared-mailboxes", fmt_int(overview.get("shared_mailboxes")), "shared mailboxes"),
        Figure(
            "not-protectable",
            fmt_int(overview.get("not_protectable_users")),
            "licensed, not protectable (archived, deleted, no Microsoft license)",
        ),
        Figure(
            "unlicensed",
            fmt_int(overview.get("unlicensed_users")),
            "users without a Spanning license",
            count(overview.get("unlicensed_users")) > 0,
        ),
        Figure(
            "seat-use",
            f"{fmt_int(overview.get('assigned_standard'))} / {fmt_int(overview.get('licenses'))}",
            "Standard licenses assigned / bought (latest sync)",
            flag(overview.get("is_over_licensed")),
        ),
    ]
    if high_water is not None:
        cards.append(
            Figure(
                "high-water",
                fmt_int(high_water["peak_assigned_standard"]),
                f"the month's high-water mark of Standard licenses assigned (on "
                f"{day(high_water['peak_day'])}, of {fmt_int(high_water['licenses'])} bought)",
                flag(high_water["is_over_licenses"]),
            )
        )
    return cards


def render_client(
    marts: Marts,
    tenant_id: str,
    month: Month,
    *,
    msp_name: str = "",
    generated: dt.datetime | None = None,
) -> str:
    """The page of one tenant and month, from marts read with `tenant=tenant_id`."""
    check_one_tenant(marts, tenant_id)
    if not marts["tenant_names"] and not marts["fleet_overview"]:
        raise ReportError(f"no tenant {tenant_id!r} in the marts (tenant_names, fleet_overview)")
    generated = generated or dt.datetime.now(dt.timezone.utc)
    name = tenant_name(marts)
    overview = marts["fleet_overview"][0] if marts["fleet_overview"] else {}
    limits = thresholds(marts)
    high_water = next(iter(in_month(marts["license_high_water"], "month", month)), None)
    history = sorted(in_month(marts["license_history"], "day", month), key=lambda r: r["day"])
    backups = in_month(marts["backup_health_daily"], "date", month)
    grid = backup_grid.backup_grid(
        backups,
        [(tenant_id, name)],
        limits,
        days=(month.last - month.first).days + 1,
        ending=month.last,
    )
    failing = tables.failing_table(marts["failing_users"], 10_000)
    unprotected = sorted(
        marts["unprotected_users"],
        key=lambda r: (
            not flag(r["never_backed_up"]),
            -count(r["days_since_success"]),
            text(r["user_principal_name"]),
        ),
    )
    changes = tables.role_changes_table(
        in_month(marts["role_changes"], "day", month), 10_000, with_tenant=False
    )
    shared = [r for r in marts["user_protection"] if text(r["protection"]) == "shared_mailbox"]
    return (
        environment()
        .get_template("client.html.j2")
        .render(
            csp=CSP,
            tenant_id=tenant_id,
            tenant_name=name,
            month=month,
            msp_name=msp_name,
            overview=overview,
            figures=figures(overview, high_water),
            high_water=high_water,
            history=history,
            grid=grid,
            limits=limits,
            failing=failing,
            unprotected=unprotected,
            changes=changes,
            shared=sorted({text(r["user_principal_name"]) for r in shared}),
            peak=max((num(r["assigned_standard"]) or 0 for r in history), default=None),
            stamp=generated.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        )
        + "\n"
    )
