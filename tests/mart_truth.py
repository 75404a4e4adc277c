"""What the emulator knows of each tenant, and the marts held against it, through Meltano.

The facts are the emulator's, never a copy of the marts' SQL: a tenant's users and who holds
which role (spanning_emulator.expected_output), its license counters (served_counters) and
its backup days (expected_backups), as of its last complete sync; and what the test did to
it: which runs completed, and whether the newest run left it out of the configuration
(offboarded). The marts must show those facts: per tenant, fleet_overview's users, licensed
users, Global and Spanning Admins and license counters; tenant_roles' members of each role;
access_review's admins; backup_health_daily's daily totals; tenant_sync_health's last status
and failed runs. A license_waste row is a licensed user of the tenant, a failing_users row a
run of days on which the emulator failed that user's backup, ending on the tenant's last
backup day. The rules that derive the rest (the "needs attention" flags, attention_score,
which streaks count, the reasons a license is wasted, the success rates) are the dbt unit
tests' (transform/README.md, tests/unit/test_dbt_unit.py).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from spanning_emulator import (
    EmulatedTenant,
    FleetEmulator,
    expected_output,
    expected_roles_stream,
)

from tests.e2e.test_warehouse_fleet import fleet_env
from tests.mart_reading import (
    Key,
    Marts,
    Row,
    Step,
    Warehouse,
    assert_marts_equal,
    keyed,
    read_build,
    with_private_dbt,
)
from tests.warehouse import Fetch

ADMIN_ROLES = ("global_admin", "spanning_admin")
PAGE_SIZE = 15  # users per request: small tenants still read several pages


def day(text: object) -> dt.date:
    return dt.date.fromisoformat(str(text))


@dataclass
class TenantTruth:
    """One tenant as the warehouse must hold it: its last complete sync's users, memberships
    and counters, every backup day landed so far (newest counts per key), and its runs."""

    users: list[Row] = field(default_factory=list)
    memberships: list[Row] = field(default_factory=list)
    counters: Mapping[str, object] = field(default_factory=dict)
    summaries: dict[Key, Row] = field(default_factory=dict)
    user_backups: dict[Key, Row] = field(default_factory=dict)
    backup_day: dt.date | None = None  # the last day its last complete sync read
    runs: list[bool] = field(default_factory=list)  # complete?, one per run it was in
    offboarded: bool = False  # left out of the newest run's configuration

    def synced(self, tenant: EmulatedTenant, *, complete: bool, on: dt.date) -> None:
        """A run of the tap on day `on` (UTC); a failed one lands nothing of the tenant."""
        self.runs.append(complete)
        if not complete:
            return
        expected = expected_output(tenant.users, tenant_id=tenant.tenant_id)
        self.users = [dict(user) for user in expected["users"]]
        self.memberships = [dict(m) for m in expected["role_memberships"]]
        self.counters = tenant.served_counters()
        self.backup_day = on
        backups = tenant.expected_backups(days=7)
        for record in backups["backup_summaries"]:
            self.summaries[record["tenant_id"], record["date"], record["type"]] = dict(record)
        for record in backups["user_backups"]:
            by_user = (record["tenant_id"], record["msId"], record["date"], record["type"])
            self.user_backups[by_user] = dict(record)

    @property
    def counted(self) -> bool:
        """Whether its current rows count: it completed a run and is not offboarded."""
        return any(self.runs) and not self.offboarded

    def current(self) -> TenantTruth:
        """Itself while counted, else a tenant without users, memberships or counters."""
        return self if self.counted else TenantTruth()

    def failed_in_a_row(self) -> int:
        """Its failed runs since its last complete one."""
        complete = [index for index, done in enumerate(self.runs) if done]
        return len(self.runs) - (complete[-1] + 1 if complete else 0)

    def holders(self, role_id: str) -> list[Row]:
        return [m for m in self.memberships if m["roleId"] == role_id]


# ----------------------------------------------------------------------------- the facts


def fleet_overview_row(tenant_id: str, truth: TenantTruth) -> Row:
    now = truth.current()
    return {
        "tenant_id": tenant_id,
        "license_status": now.counters.get("status"),
        "users": len(now.users),
        "licensed_users": sum(1 for user in now.users if user["assigned"] is True),
        "licenses": now.counters.get("licenses"),
        "archived_licenses": now.counters.get("archivedLicenses"),
        "assigned_standard": now.counters.get("assignedStandard"),
        "assigned_archive": now.counters.get("assignedArchive"),
        "global_admins": len(now.holders("global_admin")),
        "spanning_admins": len(now.holders("spanning_admin")),
        "failed_syncs_in_a_row": truth.failed_in_a_row(),
        "is_offboarded": truth.offboarded,
    }


def sync_health_row(tenant_id: str, truth: TenantTruth) -> Row:
    return {
        "tenant_id": tenant_id,
        "last_status": "complete" if truth.runs[-1] else "failed",
        "consecutive_failed_runs": truth.failed_in_a_row(),
        "is_current": truth.runs[-1] and not truth.offboarded,
        "is_offboarded": truth.offboarded,
    }


def access_review_rows(truth: TenantTruth) -> list[Row]:
    now = truth.current()
    by_id = {user["msId"]: user for user in now.users}
    return [
        {
            "tenant_id": membership["tenant_id"],
            "ms_id": membership["msId"],
            "role_id": role_id,
            "user_principal_name": by_id[membership["msId"]]["userPrincipalName"],
            "display_name": by_id[membership["msId"]]["displayName"],
        }
        for role_id in ADMIN_ROLES
        for membership in now.holders(role_id)
    ]


def tenant_roles_rows(tenant_id: str, truth: TenantTruth) -> list[Row]:
    """The seven roles of a counted tenant, each with its members."""
    if not truth.counted:
        return []
    return [
        {
            "tenant_id": tenant_id,
            "role_id": role["id"],
            "role_name": role["name"],
            "members": len(truth.holders(str(role["id"]))),
        }
        for role in expected_roles_stream()
    ]


def backup_health_rows(truth: TenantTruth) -> list[Row]:
    """Every day landed, offboarded or not: the history stays."""
    return [
        {
            "tenant_id": record["tenant_id"],
            "date": day(record["date"]),
            "type": record["type"],
            **{column: record[column] for column in ("total", "successful", "partial", "failed")},
        }
        for record in truth.summaries.values()
    ]


def expected_marts(truths: Mapping[str, TenantTruth]) -> Marts:
    """The marts' rows and the columns the emulator knows the values of."""
    rows: dict[str, list[Row]] = {
        "fleet_overview": [fleet_overview_row(tid, truth) for tid, truth in truths.items()],
        "tenant_sync_health": [sync_health_row(tid, truth) for tid, truth in truths.items()],
        "access_review": [],
        "tenant_roles": [],
        "backup_health_daily": [],
    }
    for tenant_id, truth in truths.items():
        rows["access_review"] += access_review_rows(truth)
        rows["tenant_roles"] += tenant_roles_rows(tenant_id, truth)
        rows["backup_health_daily"] += backup_health_rows(truth)
    return Marts({mart: keyed(mart, found, partial=True) for mart, found in rows.items()})


def check_marts(found: Marts, truths: Mapping[str, TenantTruth], when: str) -> None:
    """Every mart against the facts; license_waste and failing_users row by row."""
    assert_marts_equal(found, expected_marts(truths), when)
    for (tenant_id, ms_id), row in found["license_waste"].items():
        licensed = {
            user["msId"]: user["userPrincipalName"]
            for user in truths[tenant_id].current().users
            if user["assigned"] is True
        }
        assert licensed.get(ms_id) == row["user_principal_name"], f"{when}: license_waste {row}"
    for (tenant_id, ms_id, kind), row in found["failing_users"].items():
        truth = truths[tenant_id].current()
        first, last = row["first_day"], row["last_day"]
        assert last == truth.backup_day, f"{when}: failing_users ends on its last day: {row}"
        assert row["streak_days"] == (last - first).days + 1, f"{when}: {row}"
        for back in range(row["streak_days"]):
            date = (last - dt.timedelta(days=back)).isoformat()
            backup = truth.user_backups.get((tenant_id, ms_id, date, kind), {})
            assert backup.get("failed") or backup.get("partial"), f"{when}: {date}: {row}"
            assert backup["userPrincipalName"] == row["user_principal_name"], f"{when}: {row}"


# ----------------------------------------------------------------------------- the runs


@dataclass
class SyncRun:
    """A tenant_syncs row, as the tap wrote it (versions, times and days are the tap's own)."""

    tenant_id: str
    sync_version: int
    status: str
    reason: str | None
    finished_at: dt.datetime | None
    backup_last_day: dt.date | None


def read_syncs(fetch: Fetch) -> list[SyncRun]:
    _, rows = fetch(
        "SELECT tenant_id, sync_version, status, reason, finished_at, backup_last_day "
        "FROM tenant_syncs"
    )
    # backup_last_day: text on DuckDB, a date or text on PostgreSQL.
    return [
        SyncRun(str(t), int(v), str(s), r, f, None if d is None else day(d))
        for t, v, s, r, f, d in rows
    ]


def assert_build_row(fetch: Fetch, build: Step, syncs: Sequence[SyncRun], when: str) -> None:
    """marts_build: built during the build (UTC), from the newest sync it could see."""
    built_at, newest_sync_at = read_build(fetch)
    assert build.started <= built_at <= build.ended, f"{when}: built_at {built_at}"
    assert newest_sync_at == max(run.finished_at for run in syncs if run.finished_at), when


def meltano_env(
    tmp_path: Path,
    fleet: FleetEmulator,
    warehouse: Warehouse,
    keys: Mapping[str, str],
    listed: Sequence[str],
) -> dict[str, str]:
    """The tap (the `listed` tenants, each key in its entry), the loader and dbt, all private."""
    env = fleet_env(
        tmp_path,
        fleet,
        listed,
        TAP_SPANNING_PAGE_SIZE=str(PAGE_SIZE),
        TAP_SPANNING_FAILURE_MODE="isolate",
        **warehouse.loader_env,
    )
    entries = json.loads(env["TAP_SPANNING_TENANTS"])
    for entry in entries:
        entry["api_key"] = keys[entry["tenant_id"]]
    env["TAP_SPANNING_TENANTS"] = json.dumps(entries)
    del env["TAP_SPANNING_TENANT_API_KEYS"]
    return with_private_dbt(env, tmp_path, warehouse)
