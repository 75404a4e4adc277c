"""The page's tables: which rows, in which order, and how many are left out.

Pure: mart rows in, `Table`s out; templates/tables.html.j2 draws the cells. Each table lists
its first `max_rows` rows, the most urgent first (the tenants by attention_score, the admin
roles needing review, the longest failing streaks), and sorts in the browser on a click.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from spanning_reports.marts import Row
from spanning_reports.tenants import Tenant
from spanning_reports.values import count, day, flag, text

ROLE_NAMES = {"global_admin": "Global Admin", "spanning_admin": "Spanning Admin"}
WASTE_REASONS = {
    "deleted_from_microsoft": "deleted from Microsoft",
    "archived": "archived",
    "no_microsoft_license": "no Microsoft license",
}
# access_review's flag columns, and the words each is shown as.
REVIEW_FLAGS = (
    ("is_disabled", "disabled"),
    ("is_deleted_from_microsoft", "deleted from Microsoft"),
    ("has_no_microsoft_license", "no Microsoft license"),
    ("is_archived", "archived"),
)


@dataclass(frozen=True)
class Column:
    title: str
    numeric: bool = False
    tags: bool = False  # a cell of tags, which wraps; every other cell stays on one line


@dataclass(frozen=True)
class Table:
    name: str  # the mart it lists (data-table)
    columns: list[Column]
    rows: list[Any]  # Tenant or Row, as the table's template reads them
    total: int
    empty: str  # said when there is no row

    @property
    def more(self) -> int:
        return self.total - len(self.rows)


TENANT_COLUMNS = [
    Column("Tenant"),
    Column("Issues", tags=True),
    Column("Users", True),
    Column("Seats used", True),
    Column("Seat use", True),
    Column("Global Admins", True),
    Column("Spanning Admins", True),
    Column("Disabled admins", True),
    Column("Licenses to reclaim", True),
    Column("Coverage", True),
    Column("Unprotected users", True),
    Column("Unlicensed users", True),
    Column("Open alerts", True),
    Column("Backups yesterday", True),
    Column("Backups 7 days", True),
    Column("Failing users", True),
    Column("Failed syncs in a row", True),
    Column("Last complete sync"),
]


def tenants_table(tenants: Sequence[Tenant], max_rows: int) -> Table:
    """In the order given: build_tenants' (attention_score, the offboarded last)."""
    return Table(
        "fleet_overview",
        TENANT_COLUMNS,
        list(tenants[:max_rows]),
        len(tenants),
        "No tenant in fleet_overview.",
    )


def review_reasons(row: Row) -> list[str]:
    return [label for column, label in REVIEW_FLAGS if flag(row[column])]


def access_table(rows: Sequence[Row], max_rows: int) -> Table:
    """Those needing review first, the most flags first."""

    def order(row: Row) -> tuple[bool, int, str, str, str]:
        return (
            not flag(row["needs_review"]),
            -len(review_reasons(row)),
            text(row["tenant_id"]),
            text(row["role_id"]),
            text(row["user_principal_name"]),
        )

    columns = [
        Column("Tenant"),
        Column("User"),
        Column("Name"),
        Column("Role"),
        Column("Review"),
        Column("Why", tags=True),
    ]
    shown = sorted(rows, key=order)[:max_rows]
    return Table("access_review", columns, shown, len(rows), "No admin role in access_review.")


def waste_table(rows: Sequence[Row], max_rows: int) -> Table:
    """By reason: deleted from Microsoft, archived, no Microsoft license."""
    reasons = list(WASTE_REASONS)

    def order(row: Row) -> tuple[int, str, str]:
        reason = text(row["reason"])
        rank = reasons.index(reason) if reason in reasons else len(reasons)
        return rank, text(row["tenant_id"]), text(row["user_principal_name"])

    columns = [Column("Tenant"), Column("User"), Column("Reason")]
    shown = sorted(rows, key=order)[:max_rows]
    return Table("license_waste", columns, shown, len(rows), "No license to reclaim.")


def failing_table(rows: Sequence[Row], max_rows: int) -> Table:
    """The longest streak first."""

    def order(row: Row) -> tuple[int, str, str, str]:
        return (
            -count(row["streak_days"]),
            text(row["tenant_id"]),
            text(row["user_principal_name"]),
            text(row["type"]),
        )

    columns = [
        Column("Tenant"),
        Column("User"),
        Column("Workload"),
        Column("Days failing", True),
        Column("Since"),
        Column("Last day"),
    ]
    shown = sorted(rows, key=order)[:max_rows]
    return Table("failing_users", columns, shown, len(rows), "No user has been failing for days.")


SEVERITIES = ("critical", "warning")
ALERT_KINDS = {
    "sync_failing": "sync failing",
    "backup_below_target": "backups below target",
    "user_backup_failing": "user backup failing",
    "user_unprotected": "user unprotected",
    "global_admins_out_of_band": "Global Admins out of band",
    "new_global_admin": "new Global Admin",
    "seats_over_licenses": "seats over licenses",
}


def alerts_table(rows: Sequence[Row], max_rows: int) -> Table:
    """The open alerts, critical first, the oldest first within a severity."""
    open_rows = [row for row in rows if text(row["status"]) == "open"]

    def order(row: Row) -> tuple[int, str, str, str]:
        severity = text(row["severity"])
        rank = SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)
        return rank, text(row["first_seen"]), text(row["tenant_id"]), text(row["alert_key"])

    columns = [
        Column("Severity"),
        Column("Tenant"),
        Column("Kind"),
        Column("What", tags=True),
        Column("Since"),
        Column("Last seen"),
    ]
    shown = sorted(open_rows, key=order)[:max_rows]
    return Table("alerts", columns, shown, len(open_rows), "No open alert.")


def newest_day(rows: Sequence[Row]) -> dt.date | None:
    return max((found for row in rows if (found := day(row["day"])) is not None), default=None)


def week_of(rows: Sequence[Row], newest: dt.date | None) -> list[Row]:
    """The rows of the 7 days ending on `newest`."""
    if newest is None:
        return []
    start = newest - dt.timedelta(days=6)
    return [row for row in rows if (found := day(row["day"])) is not None and found >= start]


def role_changes_table(rows: Sequence[Row], max_rows: int, with_tenant: bool = True) -> Table:
    """Grants and revocations, the newest first."""

    def order(row: Row) -> tuple[int, str, str, str]:
        return (
            -(day(row["day"]) or dt.date.min).toordinal(),
            text(row["tenant_id"]),
            text(row["role_id"]),
            text(row["user_principal_name"]),
        )

    columns = [
        Column("Day"),
        *([Column("Tenant")] if with_tenant else []),
        Column("User"),
        Column("Role"),
        Column("Change"),
    ]
    shown = sorted(rows, key=order)[:max_rows]
    return Table("role_changes", columns, shown, len(rows), "No role was granted or revoked.")
