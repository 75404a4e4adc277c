"""The fixture fleet's rows of the marts that look at a tenant over time and per user
(tests/report_fixtures.py): coverage, license history, role changes and alerts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.report_shapes import DAYS_HELD, HEALTHY, TODAY, USER_KINDS, YESTERDAY, Shape
from tests.report_warehouse import Rows


def coverage_rows(rows: Rows, shape: Shape) -> dict[str, Any]:
    """user_protection and unprotected_users of the tenant's unprotected users, one protected
    user and its shared mailboxes; fleet_overview's coverage columns beside them."""
    tenant = shape.tenant_id
    if shape.never_completed or shape.offboarded:
        return dict.fromkeys(
            (
                "protectable_users",
                "protected_users",
                "unprotected_users",
                "shared_mailboxes",
                "not_protectable_users",
            ),
            0,
        ) | {"coverage_pct": None}
    not_protectable = shape.wasted_seats + shape.no_ms_license
    protectable = max(shape.assigned_standard - shape.shared_mailboxes - not_protectable, 1)
    protectable = max(protectable, shape.unprotected + 1)
    people: list[tuple[str, int | None]] = [
        (f"{tenant}-unprotected-{i}", i) for i in range(shape.unprotected)
    ]
    people.append((f"{tenant}-protected-0", None))
    for ms_id, index in people:
        never = index is not None and index % 3 == 0
        gone: tuple[str, ...] = (
            USER_KINDS if never else () if index is None else ("MAIL", "DRIVE")[: 1 + index % 2]
        )
        upn = f"{ms_id.rsplit('-', 2)[1]}{index or 0}@{tenant}.example"
        display = f"Person {index} of {tenant}" if index is not None else f"Safe one of {tenant}"
        for kind in USER_KINDS:
            last = None if never else YESTERDAY - dt.timedelta(days=9 if kind in gone else 0)
            rows["user_protection"].append(
                {
                    "tenant_id": tenant,
                    "ms_id": ms_id,
                    "user_principal_name": upn,
                    "display_name": display,
                    "workload": kind,
                    "protection": "protectable",
                    "last_success_day": last,
                    "days_since_success": None if last is None else (YESTERDAY - last).days,
                    "latest_day": YESTERDAY,
                    "is_unprotected": kind in gone,
                }
            )
        if gone:
            # Unprotected since the oldest last success of its unprotected workloads.
            last = None if never else YESTERDAY - dt.timedelta(days=9)
            rows["unprotected_users"].append(
                {
                    "tenant_id": tenant,
                    "ms_id": ms_id,
                    "user_principal_name": upn,
                    "display_name": display,
                    "unprotected_workloads": ", ".join(sorted(gone)),
                    "never_backed_up": never,
                    "last_success_day": last,
                    "days_since_success": None if last is None else (YESTERDAY - last).days,
                }
            )
    for index in range(shape.shared_mailboxes):
        rows["user_protection"].append(
            {
                "tenant_id": tenant,
                "ms_id": f"{tenant}-shared-{index}",
                "user_principal_name": f"shared{index}@{tenant}.example",
                "display_name": f"Shared {index} of {tenant}",
                "workload": "MAIL",
                "protection": "shared_mailbox",
                "last_success_day": YESTERDAY,
                "days_since_success": 0,
                "latest_day": YESTERDAY,
                "is_unprotected": False,
            }
        )
    protected = protectable - shape.unprotected
    return {
        "protectable_users": protectable,
        "protected_users": protected,
        "unprotected_users": shape.unprotected,
        "shared_mailboxes": shape.shared_mailboxes,
        "not_protectable_users": not_protectable,
        "coverage_pct": 100 * protected / protectable,
    }


def license_rows(rows: Rows, shape: Shape) -> None:
    """license_history for each day held (the Standard seats climbing to today's, with a
    peak 12 days ago), and license_high_water of each month, as dbt would sum them."""
    if shape.never_completed or shape.licenses is None:
        return
    history: list[dict[str, Any]] = []
    for back in range(DAYS_HELD, 0, -1):
        when = TODAY - dt.timedelta(days=back)
        history.append(
            {
                "tenant_id": shape.tenant_id,
                "day": when,
                "sync_version": int(dt.datetime.combine(when, dt.time(2)).timestamp() * 1000),
                "licenses": shape.licenses - (1 if back > 20 else 0),
                "archived_licenses": shape.archived_licenses,
                "assigned_standard": shape.assigned_standard
                - back // 10
                + (3 if back == 12 else 0),
                "assigned_archive": shape.assigned_archive,
            }
        )
    rows["license_history"].extend(history)
    months: dict[dt.date, list[dict[str, Any]]] = {}
    for row in history:
        months.setdefault(row["day"].replace(day=1), []).append(row)
    for month, held in months.items():
        peak = max(row["assigned_standard"] for row in held)
        licenses = max(row["licenses"] for row in held)
        rows["license_high_water"].append(
            {
                "tenant_id": shape.tenant_id,
                "month": month,
                "days_observed": len(held),
                "peak_assigned_standard": peak,
                "peak_assigned_archive": max(row["assigned_archive"] for row in held),
                "peak_day": min(row["day"] for row in held if row["assigned_standard"] == peak),
                "licenses": licenses,
                "archived_licenses": max(row["archived_licenses"] for row in held),
                "is_over_licenses": peak > licenses,
            }
        )


def role_change_rows(rows: Rows, shape: Shape, version: int) -> None:
    """Grants of global_admin this week (one every other day back from yesterday), and one
    revocation 10 days ago, before the week."""
    tenant = shape.tenant_id
    for index in range(shape.role_changes):
        rows["role_changes"].append(
            {
                "tenant_id": tenant,
                "day": YESTERDAY - dt.timedelta(days=2 * index),
                "sync_version": version - index,
                "role_id": "global_admin",
                "role_name": "Global Admin",
                "ms_id": f"{tenant}-granted-{index}",
                "user_principal_name": f"newadmin{index}@{tenant}.example",
                "change": "granted",
            }
        )
    if shape.role_changes:
        rows["role_changes"].append(
            {
                "tenant_id": tenant,
                "day": YESTERDAY - dt.timedelta(days=10),
                "sync_version": version - 100,
                "role_id": "spanning_admin",
                "role_name": "Spanning Admin",
                "ms_id": f"{tenant}-revoked-0",
                "user_principal_name": f"oldadmin0@{tenant}.example",
                "change": "revoked",
            }
        )


def alert_rows(rows: Rows, shape: Shape, overview: dict[str, Any]) -> int:
    """The alerts dbt would raise for this shape (a resolved one for a tenant over licensed
    no more); the count of open ones."""
    if shape.never_completed or shape.offboarded:
        return 0
    tenant, shown = shape.tenant_id, shape.name or shape.tenant_id
    found: list[tuple[str, str, str, str, str]] = []  # kind, subject, severity, status, summary
    if shape.failed_runs >= 2:
        found.append(("sync_failing", "", "critical", "open", f"{shown}: sync failing"))
    if overview["is_backup_below_target"]:
        severity = "critical" if overview["is_backup_bad"] else "warning"
        found.append(("backup_below_target", "", severity, "open", f"{shown}: backups low"))
    for row in rows["unprotected_users"]:
        if row["tenant_id"] == tenant:
            severity = "critical" if row["never_backed_up"] else "warning"
            said = f"{shown}: {row['user_principal_name']} unprotected"
            found.append(("user_unprotected", row["ms_id"], severity, "open", said))
    if overview["is_over_licensed"]:
        found.append(("seats_over_licenses", "", "warning", "open", f"{shown}: over licenses"))
    elif shape.tenant_id == HEALTHY:
        found.append(("seats_over_licenses", "", "warning", "resolved", f"{shown}: resolved"))
    for kind, subject, severity, status, summary in found:
        rows["alerts"].append(
            {
                "alert_key": f"{tenant}|{kind}|{subject}",
                "tenant_id": tenant,
                "kind": kind,
                "subject": subject,
                "severity": severity,
                "status": status,
                "first_seen": YESTERDAY - dt.timedelta(days=3),
                "last_seen": YESTERDAY,
                "resolved_on": YESTERDAY if status == "resolved" else None,
                "summary": summary,
            }
        )
    return sum(1 for *_, status, _ in found if status == "open")
