"""One tenant's rows of the alerts mart (docs/alerts.md), from its ground truth
(tests/msp_tenant_truth.py): each kind's newest episode, open or resolved recently.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from tests.msp_tenant_truth import (
    ALERT_FAILED_RUNS,
    ALERT_NEW_ADMIN_DAYS,
    ALERT_RESOLVED_DAYS,
    BACKUP_BAD_PCT,
    BACKUP_TARGET_PCT,
    FAILING_DAYS,
    GLOBAL_ADMIN_FLAG_AT,
    GLOBAL_ADMIN_MIN,
    UNPROTECTED_DAYS,
    Row,
    TenantTruth,
    true_runs,
)


def alert_row(
    tenant_id: str,
    name: str | None,
    kind: str,
    subject: str,
    severity: str,
    status: str,
    first_seen: dt.date,
    last_seen: dt.date,
    resolved_on: dt.date | None,
) -> Row:
    return {
        "alert_key": f"{tenant_id}|{kind}|{subject}",
        "tenant_id": tenant_id,
        "tenant_name": name,
        "kind": kind,
        "subject": subject,
        "severity": severity,
        "status": status,
        "first_seen": first_seen,
        "last_seen": last_seen,
        "resolved_on": resolved_on,
    }


def newest_island(
    truth: TenantTruth, flags: Sequence[tuple[dt.date, bool]], kind: str
) -> list[Row]:
    """The alert of an island over runs (or days): open when the newest is in one, else
    resolved by the first after the newest island, when recent enough."""
    islands = true_runs(flags)
    if not islands:
        return []
    first, last = islands[-1]
    if last == len(flags) - 1:
        return [
            alert_row(
                truth.tenant_id,
                truth.name,
                kind,
                "",
                "warning",
                "open",
                flags[first][0],
                flags[last][0],
                None,
            )
        ]
    resolved = flags[last + 1][0]
    if (truth.latest_day - resolved).days > ALERT_RESOLVED_DAYS:
        return []
    return [
        alert_row(
            truth.tenant_id,
            truth.name,
            kind,
            "",
            "warning",
            "resolved",
            flags[first][0],
            flags[last][0],
            resolved,
        )
    ]


def sync_failing(truth: TenantTruth) -> list[Row]:
    flags = [(run.day, not run.complete) for run in truth.runs]
    islands = [(a, b) for a, b in true_runs(flags) if b - a + 1 >= ALERT_FAILED_RUNS]
    if not islands:
        return []
    first, last = islands[-1]
    status, resolved = "open", None
    if last != len(flags) - 1:
        status, resolved = "resolved", flags[last + 1][0]
        if (truth.latest_day - resolved).days > ALERT_RESOLVED_DAYS:
            return []
    return [
        alert_row(
            truth.tenant_id,
            truth.name,
            "sync_failing",
            "",
            "critical",
            status,
            flags[first][0],
            flags[last][0],
            resolved,
        )
    ]


def backup_below_target(truth: TenantTruth) -> list[Row]:
    settled = truth.latest_day - dt.timedelta(days=1)
    days = [
        (day, good, total)
        for day, (good, total) in sorted(truth.summary_days.items())
        if day <= settled and total > 0
    ]
    # In integers: a share exactly on the target is not below it.
    flags = [(day, 100 * good < BACKUP_TARGET_PCT * total) for day, good, total in days]
    islands = true_runs(flags)
    if not islands or days[-1][0] != settled:
        return []
    first, last = islands[-1]
    day, good, total = days[last]
    severity = "critical" if 100 * good < BACKUP_BAD_PCT * total else "warning"
    status, resolved = "open", None
    if last != len(flags) - 1:
        status, resolved = "resolved", flags[last + 1][0]
        if (truth.latest_day - resolved).days > ALERT_RESOLVED_DAYS:
            return []
    return [
        alert_row(
            truth.tenant_id,
            truth.name,
            "backup_below_target",
            "",
            severity,
            status,
            flags[first][0],
            day,
            resolved,
        )
    ]


def user_backup_failing(truth: TenantTruth) -> list[Row]:
    bad: dict[tuple[str, str], set[dt.date]] = {}
    for (ms_id, date, kind), record in truth.user_backups.items():
        day = dt.date.fromisoformat(date)
        failed = int(str(record["failed"])) > 0 or int(str(record["partial"])) > 0
        if failed and day <= truth.latest_day:
            bad.setdefault((ms_id, kind), set()).add(day)
    rows: list[Row] = []
    for (ms_id, kind), days in sorted(bad.items()):
        ordered = sorted(days)
        flags_days = [
            ordered[0] + dt.timedelta(days=n)
            for n in range((truth.latest_day - ordered[0]).days + 1)
        ]
        flags = [(day, day in days) for day in flags_days]
        islands = [(a, b) for a, b in true_runs(flags) if b - a + 1 >= FAILING_DAYS]
        if not islands:
            continue
        first, last = islands[-1]
        status, resolved = "open", None
        if last != len(flags) - 1:
            status, resolved = "resolved", flags[last][0] + dt.timedelta(days=1)
            if (truth.latest_day - resolved).days > ALERT_RESOLVED_DAYS:
                continue
        rows.append(
            alert_row(
                truth.tenant_id,
                truth.name,
                "user_backup_failing",
                f"{ms_id}:{kind}",
                "warning",
                status,
                flags[first][0],
                flags[last][0],
                resolved,
            )
        )
    return rows


def user_unprotected(truth: TenantTruth) -> list[Row]:
    """first_seen: the day the user's first unprotected workload became so, a day that
    stays while the episode lasts: the tenant's first day held in user_backups for a
    workload never backed up, else its last success + UNPROTECTED_DAYS."""
    first_day = min(dt.date.fromisoformat(date) for _, date, _ in truth.user_backups)
    since: dict[str, dt.date] = {}
    for workload in truth.user_protection:
        if workload["is_unprotected"]:
            last = workload["last_success_day"]
            day = first_day if last is None else last + dt.timedelta(days=UNPROTECTED_DAYS)
            ms_id = str(workload["ms_id"])
            since[ms_id] = min(day, since.get(ms_id, day))
    rows: list[Row] = []
    for user in truth.unprotected_users:
        never = bool(user["never_backed_up"])
        rows.append(
            alert_row(
                truth.tenant_id,
                truth.name,
                "user_unprotected",
                str(user["ms_id"]),
                "critical" if never else "warning",
                "open",
                since[str(user["ms_id"])],
                truth.latest_day,
                None,
            )
        )
    return rows


def global_admins(truth: TenantTruth) -> list[Row]:
    flags = []
    for run in truth.complete:
        admins = sum(1 for role, _, _ in run.role_set if role == "global_admin")
        users = len(run.tenant.users)
        flags.append(
            (
                run.day,
                (users > 0 and admins < GLOBAL_ADMIN_MIN) or admins >= GLOBAL_ADMIN_FLAG_AT,
            )
        )
    return newest_island(truth, flags, "global_admins_out_of_band")


def new_global_admin(truth: TenantTruth) -> list[Row]:
    rows: list[Row] = []
    since = truth.latest_day - dt.timedelta(days=ALERT_NEW_ADMIN_DAYS)
    changes = [row for row in truth.role_changes if row["role_id"] == "global_admin"]
    for grant in changes:
        if grant["change"] != "granted" or grant["day"] < since:
            continue
        revoked = [
            row["day"]
            for row in changes
            if row["change"] == "revoked"
            and row["ms_id"] == grant["ms_id"]
            and row["sync_version"] > grant["sync_version"]
        ]
        status, resolved = ("resolved", min(revoked)) if revoked else ("open", None)
        rows.append(
            alert_row(
                truth.tenant_id,
                truth.name,
                "new_global_admin",
                str(grant["ms_id"]),
                "warning",
                status,
                grant["day"],
                grant["day"],
                resolved,
            )
        )
    return rows


def seats_over_licenses(truth: TenantTruth) -> list[Row]:
    flags = [
        (
            run.day,
            int(str(run.counters["assignedStandard"])) > int(str(run.counters["licenses"])),
        )
        for run in truth.complete
    ]
    return newest_island(truth, flags, "seats_over_licenses")


def tenant_alerts(truth: TenantTruth) -> list[Row]:
    if truth.latest is None:
        return []
    return [
        *sync_failing(truth),
        *backup_below_target(truth),
        *user_backup_failing(truth),
        *user_unprotected(truth),
        *global_admins(truth),
        *new_global_admin(truth),
        *seats_over_licenses(truth),
    ]
