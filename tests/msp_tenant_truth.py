"""One tenant's ground truth for the MSP marts (tests/msp_truth.py puts the fleet's
together): its runs as the night plan made them, and the rows of user_protection,
unprotected_users, fleet_overview's coverage, license_history, license_high_water and
role_changes, from the emulator's model of the tenant only (EmulatedTenant).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from spanning_emulator import (
    ROLE_NAMES,
    USER_BACKUP_TYPES,
    EmulatedTenant,
    expected_output,
    expected_roles,
)

# transform/dbt_project.yml's vars, written here by hand.
UNPROTECTED_DAYS = 3
FAILING_DAYS = 3
ALERT_FAILED_RUNS = 2
ALERT_RESOLVED_DAYS = 7
ALERT_NEW_ADMIN_DAYS = 7
BACKUP_TARGET_PCT = 95
BACKUP_BAD_PCT = 80
GLOBAL_ADMIN_MIN = 2
GLOBAL_ADMIN_FLAG_AT = 5
NOT_PROTECTABLE_ROLES = frozenset({"archived", "no_microsoft_license", "deleted_from_microsoft"})

Row = dict[str, Any]


@dataclass(frozen=True)
class TenantRun:
    """One tenant's part of one night's run: the tenant as the emulator held it, the day
    the run counts as the tenant's today, its configured name, and whether it completed
    (a failed tenant sends nothing but its tenant_syncs row)."""

    night: int
    tenant: EmulatedTenant
    day: dt.date
    name: str | None
    complete: bool

    @cached_property
    def backups(self) -> dict[str, list[dict[str, object]]]:
        return self.tenant.expected_backups(today=self.day)

    @cached_property
    def role_set(self) -> frozenset[tuple[str, str, str]]:
        """(roleId, msId, userPrincipalName) of every role membership."""
        memberships = expected_output(self.tenant.users, self.tenant.tenant_id)["role_memberships"]
        return frozenset(
            (str(m["roleId"]), str(m["msId"]), str(m["userPrincipalName"])) for m in memberships
        )

    @cached_property
    def counters(self) -> dict[str, object]:
        return self.tenant.served_counters()


def protection(user: Mapping[str, object]) -> str:
    """protectable, shared_mailbox or not_protectable, of an assigned user."""
    roles = set(expected_roles(user))
    if roles & NOT_PROTECTABLE_ROLES or user.get("isDeleted") is True:
        return "not_protectable"
    if user.get("isArchive") is True:
        return "not_protectable"
    return "shared_mailbox" if "shared_mailbox" in roles else "protectable"


def display_name(user: Mapping[str, object]) -> object:
    return user["displayName"] if "displayName" in user else user.get("userDisplayName")


def true_runs(flags: Sequence[tuple[dt.date, bool]]) -> list[tuple[int, int]]:
    """(first index, last index) of each run of True in order."""
    found: list[tuple[int, int]] = []
    start: int | None = None
    for index, (_, flag) in enumerate(flags):
        if flag and start is None:
            start = index
        if not flag and start is not None:
            found.append((start, index - 1))
            start = None
    if start is not None:
        found.append((start, len(flags) - 1))
    return found


@dataclass
class TenantTruth:
    """One tenant's runs (oldest first) and what the marts say of it."""

    tenant_id: str
    runs: list[TenantRun]
    sync_versions: dict[int, int]  # night -> sync_version of the tenant's run

    @property
    def name(self) -> str | None:
        return self.runs[-1].name

    @property
    def complete(self) -> list[TenantRun]:
        return [run for run in self.runs if run.complete]

    @property
    def latest(self) -> TenantRun | None:
        return self.complete[-1] if self.complete else None

    @property
    def latest_day(self) -> dt.date:
        assert self.latest is not None
        return self.latest.day

    def version(self, run: TenantRun) -> int:
        return self.sync_versions[run.night]

    @cached_property
    def user_backups(self) -> dict[tuple[str, str, str], Mapping[str, object]]:
        """(msId, date, type) -> the newest complete run's record: the history held."""
        held: dict[tuple[str, str, str], Mapping[str, object]] = {}
        for run in self.complete:
            for record in run.backups["user_backups"]:
                held[(str(record["msId"]), str(record["date"]), str(record["type"]))] = record
        return held

    @cached_property
    def summary_days(self) -> dict[dt.date, tuple[int, int]]:
        """day -> (successful, total) summed over every workload of backup_summaries."""
        held: dict[tuple[str, str], Mapping[str, object]] = {}
        for run in self.complete:
            for record in run.backups["backup_summaries"]:
                held[(str(record["date"]), str(record["type"]))] = record
        days: dict[dt.date, tuple[int, int]] = {}
        for (day, _), kept in sorted(held.items()):
            good, total = days.get(dt.date.fromisoformat(day), (0, 0))
            days[dt.date.fromisoformat(day)] = (
                good + int(str(kept["successful"])),
                total + int(str(kept["total"])),
            )
        return days

    # -- user_protection, unprotected_users, coverage

    def last_success(self, ms_id: str, workload: str) -> dt.date | None:
        days = [
            dt.date.fromisoformat(date)
            for (who, date, kind), record in self.user_backups.items()
            if who == ms_id and kind == workload and int(str(record["successful"])) > 0
        ]
        days = [day for day in days if day <= self.latest_day]
        return max(days) if days else None

    @cached_property
    def user_protection(self) -> list[Row]:
        if self.latest is None:
            return []
        rows: list[Row] = []
        for user in self.latest.tenant.users:
            if user.get("assigned") is not True:
                continue
            kind = protection(user)
            for workload in USER_BACKUP_TYPES:
                last = self.last_success(str(user["msId"]), workload)
                since = None if last is None else (self.latest_day - last).days
                unprotected = kind == "protectable" and (since is None or since >= UNPROTECTED_DAYS)
                rows.append(
                    {
                        "tenant_id": self.tenant_id,
                        "tenant_name": self.name,
                        "ms_id": user["msId"],
                        "user_principal_name": user["userPrincipalName"],
                        "display_name": display_name(user),
                        "workload": workload,
                        "protection": kind,
                        "last_success_day": last,
                        "days_since_success": since,
                        "latest_day": self.latest_day,
                        "is_unprotected": unprotected,
                    }
                )
        return rows

    @cached_property
    def unprotected_users(self) -> list[Row]:
        by_user: dict[str, list[Row]] = {}
        for row in self.user_protection:
            if row["protection"] == "protectable":
                by_user.setdefault(str(row["ms_id"]), []).append(row)
        rows: list[Row] = []
        for ms_id, workloads in by_user.items():
            bad = sorted(str(row["workload"]) for row in workloads if row["is_unprotected"])
            if not bad:
                continue
            successes = [row["last_success_day"] for row in workloads if row["last_success_day"]]
            # How long it has been unprotected: the oldest last success of the workloads
            # unprotected, none when one of them never succeeded.
            lasts = [row["last_success_day"] for row in workloads if row["is_unprotected"]]
            last = None if None in lasts else min(lasts)
            first = workloads[0]
            rows.append(
                {
                    "tenant_id": self.tenant_id,
                    "tenant_name": self.name,
                    "ms_id": ms_id,
                    "user_principal_name": first["user_principal_name"],
                    "display_name": first["display_name"],
                    "unprotected_workloads": ", ".join(bad),
                    "never_backed_up": not successes,
                    "last_success_day": last,
                    "days_since_success": None if last is None else (self.latest_day - last).days,
                }
            )
        return rows

    @cached_property
    def coverage(self) -> Row:
        kinds: dict[str, str] = {}
        for row in self.user_protection:
            kinds[str(row["ms_id"])] = str(row["protection"])
        protectable = sum(1 for kind in kinds.values() if kind == "protectable")
        unprotected = len(self.unprotected_users)
        protected = protectable - unprotected
        return {
            "tenant_id": self.tenant_id,
            "protectable_users": protectable,
            "protected_users": protected,
            "unprotected_users": unprotected,
            "shared_mailboxes": sum(1 for kind in kinds.values() if kind == "shared_mailbox"),
            "not_protectable_users": sum(1 for kind in kinds.values() if kind == "not_protectable"),
            "coverage_pct": None if protectable == 0 else 100.0 * protected / protectable,
        }

    # -- licenses

    @cached_property
    def license_history(self) -> list[Row]:
        newest: dict[dt.date, TenantRun] = {}
        for run in self.complete:
            newest[run.day] = run
        return [
            {
                "tenant_id": self.tenant_id,
                "tenant_name": self.name,
                "day": day,
                "sync_version": self.version(run),
                "licenses": run.counters.get("licenses"),
                "archived_licenses": run.counters.get("archivedLicenses"),
                "assigned_standard": run.counters.get("assignedStandard"),
                "assigned_archive": run.counters.get("assignedArchive"),
            }
            for day, run in sorted(newest.items())
        ]

    @cached_property
    def license_high_water(self) -> list[Row]:
        months: dict[dt.date, list[TenantRun]] = {}
        for run in self.complete:
            months.setdefault(run.day.replace(day=1), []).append(run)
        rows: list[Row] = []
        for month, runs in sorted(months.items()):

            def peak(counter: str, runs: list[TenantRun] = runs) -> int:
                return max(int(str(run.counters[counter])) for run in runs)

            standard = peak("assignedStandard")
            rows.append(
                {
                    "tenant_id": self.tenant_id,
                    "tenant_name": self.name,
                    "month": month,
                    "days_observed": len({run.day for run in runs}),
                    "peak_assigned_standard": standard,
                    "peak_assigned_archive": peak("assignedArchive"),
                    "peak_day": min(
                        run.day for run in runs if run.counters["assignedStandard"] == standard
                    ),
                    "licenses": peak("licenses"),
                    "archived_licenses": peak("archivedLicenses"),
                    "is_over_licenses": standard > peak("licenses"),
                }
            )
        return rows

    # -- roles

    @cached_property
    def sent_sets(self) -> list[tuple[TenantRun, frozenset[tuple[str, str, str]]]]:
        """Each complete run that sent its role set (it differed from the last sent)."""
        sent: list[tuple[TenantRun, frozenset[tuple[str, str, str]]]] = []
        for run in self.complete:
            if not sent or sent[-1][1] != run.role_set:
                sent.append((run, run.role_set))
        return sent

    def role_set_sent(self, run: TenantRun) -> bool | None:
        if not run.complete:
            return None
        return any(sent is run for sent, _ in self.sent_sets)

    @cached_property
    def role_changes(self) -> list[Row]:
        rows: list[Row] = []
        for (_, old), (run, new) in zip(self.sent_sets, self.sent_sets[1:], strict=False):
            old_keys = {(role, ms_id): upn for role, ms_id, upn in old}
            new_keys = {(role, ms_id): upn for role, ms_id, upn in new}
            changes = [(key, new_keys[key], "granted") for key in new_keys.keys() - old_keys]
            changes += [(key, old_keys[key], "revoked") for key in old_keys.keys() - new_keys]
            for (role, ms_id), upn, change in sorted(changes):
                rows.append(
                    {
                        "tenant_id": self.tenant_id,
                        "tenant_name": self.name,
                        "day": run.day,
                        "sync_version": self.version(run),
                        "role_id": role,
                        "role_name": ROLE_NAMES[role],
                        "ms_id": ms_id,
                        "user_principal_name": upn,
                        "change": change,
                    }
                )
        return rows

    # -- alerts
