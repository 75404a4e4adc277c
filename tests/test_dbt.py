"""The dbt marts (transform/, their columns in transform/models/marts/marts.yml) end to end.

A fleet of 12 small tenants with backups (generate_fleet over three loopback hosts; every
third tenant gets the emulator's "torture" users, every tag spelling) is loaded and built
with one command per warehouse, `meltano run tap-spanning target-<db> dbt-<db>:build`, into
DuckDB and into PostgreSQL. Exit 0 means dbt's own tests passed too. Then every mart is
compared, row by row and column by column, with what this module computes in Python from the
emulator's ground truth alone (expected_output, tenant counters, expected_backups), never
from the warehouse's SQL: fleet_overview, access_review, license_waste, backup_health_daily,
failing_users (N = 3, streaks ending on the tap's backup_last_day, checked to be the day the
tap ran), tenant_sync_health and tenant_roles; marts_build says when the build ran and the
newest sync it saw. The "needs attention" flags of fleet_overview are the dbt unit tests'
(tests/test_dbt_unit.py); here only that the failed tenant needs attention.

Run 2 changes users in every tenant (users gone, licenses to reclaim, a disabled admin),
leaves one tenant out of the configuration (offboarded) and gives another a wrong key with
failure_mode isolate: `meltano run` exits non-zero at the tap, so dbt does not run (the
marts still hold run 1, and marts_build shows them stale). The dbt build alone
(`meltano invoke dbt-<db>:build`) then shows the failed tenant at its last complete sync
(its fleet_overview row as after run 1, one failed run, the reason), the offboarded one
counted nowhere but its own row (is_offboarded) and its backup history, and every other
tenant as run 2 found it.

tests/test_dbt_by_hand.py builds the marts over tables written by hand (what the tap can no
longer send, shards loading one schema); the helpers that build and read the marts are there.

The Meltano system directory is private (plugins linked from the project's .meltano), and
so are dbt's target and log folders, so that nothing is shared with a concurrent run.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from spanning_emulator import (
    EmulatedTenant,
    FleetEmulator,
    expected_output,
    expected_roles,
    generate_fleet,
    generate_users,
    tenant_summary,
)

from tests.test_current_views import offboarded_by_definition
from tests.test_dbt_by_hand import (
    MART_COLUMNS,
    Key,
    Marts,
    Row,
    Step,
    Warehouse,
    assert_marts_equal,
    keyed,
    on_one_day,
    read_build,
    read_marts,
    require_utility,
    warehouse_for,
    with_private_dbt,
)
from tests.test_warehouse_fleet import fleet_env
from tests.warehouse import (
    Fetch,
    meltano,
    pg_database,
    postgres,
    require_plugin,
)

__all__ = ["pg_database", "postgres"]  # fixtures, requested by name for PostgreSQL

pytestmark = pytest.mark.e2e

HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
FLEET_SIZE = 12
FLEET_SEED = 17
MAX_USERS = 40  # small tenants: the loads and the builds stay quick
PAGE_SIZE = 15
BROKEN = 2  # index of the tenant whose key is wrong in run 2
OFFBOARDED = 5  # index of the tenant left out of run 2's configuration
WRONG_KEY = "wrong-key-0000-1111-2222-333333333333"
FAILING_DAYS = 3  # var failing_days of transform/dbt_project.yml
ADMIN_ROLES = ("global_admin", "spanning_admin")
# A reclaimable license's reason: the first of these roles the user holds.
RECLAIM_REASONS = ("deleted_from_microsoft", "archived", "no_microsoft_license")

Record = Mapping[str, object]


# ----------------------------------------------------------------------------- the fleet


def fleet_tenants(today: dt.date) -> list[EmulatedTenant]:
    """generate_fleet's tenants, at most MAX_USERS users each; every third one torture users.

    A tenant with counters of its own (trial, expired) keeps its status, with counters
    that follow its users.
    """
    tenants = []
    for index, tenant in enumerate(
        generate_fleet(FLEET_SIZE, seed=FLEET_SEED, hosts=HOSTS, today=today)
    ):
        size = min(len(tenant.users), MAX_USERS)
        users = (
            generate_users(size, seed=FLEET_SEED * 100 + index)
            if index % 3 == 0
            else [dict(user) for user in tenant.users[:size]]
        )
        counters = (
            None
            if tenant.counters is None
            else {**tenant_summary(users), "status": tenant.counters["status"]}
        )
        tenants.append(replace(tenant, users=users, counters=counters))
    return tenants


def with_tags(user: Record, *tags: str) -> list[str]:
    current = user.get("tags")
    return [*(current if isinstance(current, list) else []), *tags]


def changed(users: Sequence[Record]) -> list[dict[str, object]]:
    """The tenant at run 2: every 7th user gone (from the 4th); of those assigned a Standard
    license and still enabled, one loses their Microsoft license, one is deleted from
    Microsoft and one archived by tag (three licenses to reclaim); a Global Admin (or else
    the next such user) deleted from Microsoft: a disabled admin.

    Tags are spellings of TAG_SPELLINGS, so expected_output stays the ground truth.
    """
    kept = [dict(user) for index, user in enumerate(users) if index % 7 != 3]
    standard = [
        user
        for user in kept
        if user.get("assigned") is True
        and user.get("isArchive") is not True
        and not {"archived", "deleted_from_microsoft"} & set(expected_roles(user))
    ]
    admins = [user for user in standard if "global_admin" in expected_roles(user)]
    if standard:
        standard[0]["tags"] = with_tags(standard[0], "No Microsoft License")
    if len(standard) > 1:
        standard[1]["isDeleted"] = True
    if len(standard) > 2:
        standard[2]["tags"] = with_tags(standard[2], "Archived")
    if admins and admins[0] is not standard[0]:
        admins[0]["isDeleted"] = True
    elif len(standard) > 3:
        standard[3]["tags"] = with_tags(standard[3], "GLOBAL_ADMIN")
        standard[3]["isDeleted"] = True
    return kept


# ----------------------------------------------------------------------------- ground truth


@dataclass
class TenantTruth:
    """What the warehouse holds of one tenant, by the emulator: its last complete sync's
    users and counters, and every backup day landed so far (newest counts per key)."""

    users: list[Row] = field(default_factory=list)
    memberships: list[Row] = field(default_factory=list)
    counters: Mapping[str, object] = field(default_factory=dict)
    summaries: dict[Key, Row] = field(default_factory=dict)
    user_backups: dict[Key, Row] = field(default_factory=dict)
    complete_runs: int = 0
    runs: list[bool] = field(default_factory=list)  # complete?, one per run

    def synced(self, tenant: EmulatedTenant, *, complete: bool) -> None:
        self.runs.append(complete)
        if not complete:
            return  # refused: nothing landed
        self.complete_runs += 1
        expected = expected_output(tenant.users, tenant_id=tenant.tenant_id)
        self.users = [dict(user) for user in expected["users"]]
        self.memberships = [dict(m) for m in expected["role_memberships"]]
        self.counters = tenant.served_counters()
        backups = tenant.expected_backups(days=7)
        for record in backups["backup_summaries"]:
            self.summaries[record["tenant_id"], record["date"], record["type"]] = dict(record)
        for record in backups["user_backups"]:
            by_user = (record["tenant_id"], record["msId"], record["date"], record["type"])
            self.user_backups[by_user] = dict(record)

    def roles_of(self) -> dict[str, set[str]]:
        roles: dict[str, set[str]] = {str(user["msId"]): set() for user in self.users}
        for membership in self.memberships:
            roles.setdefault(str(membership["msId"]), set()).add(str(membership["roleId"]))
        return roles


def pct(part: object, whole: object) -> float | None:
    """100 * part / whole; None when either is missing or whole is 0."""
    if not isinstance(part, int) or not isinstance(whole, int) or whole == 0:
        return None
    return 100 * part / whole


def day(text: object) -> dt.date:
    return dt.date.fromisoformat(str(text))


@dataclass
class SyncRun:
    """A tenant_syncs row, as the tap wrote it (versions, times and days are the tap's own)."""

    tenant_id: str
    sync_version: int
    status: str
    reason: str | None
    finished_at: dt.datetime | None
    backup_last_day: dt.date | None


def sync_health(tenant_id: str, runs: Sequence[SyncRun], *, offboarded: bool) -> Row:
    """offboarded: by the rule as the contract states it (offboarded_by_definition)."""
    ordered = sorted(runs, key=lambda run: run.sync_version)
    newest = ordered[-1]
    complete = [run for run in ordered if run.status == "complete"]
    last_complete = complete[-1] if complete else None
    since = [
        run
        for run in ordered
        if last_complete is None or run.sync_version > last_complete.sync_version
    ]
    return {
        "tenant_id": tenant_id,
        "last_sync_version": newest.sync_version,
        "last_sync_at": newest.finished_at,
        "last_status": newest.status,
        "last_complete_sync_version": last_complete and last_complete.sync_version,
        "last_complete_at": last_complete and last_complete.finished_at,
        "consecutive_failed_runs": len(since),
        "last_reason": since[-1].reason if since else None,
        "is_current": newest.status == "complete" and not offboarded,
        "is_offboarded": offboarded,
    }


def fleet_overview_row(tenant_id: str, truth: TenantTruth, health: Row, today: dt.date) -> Row:
    counters = truth.counters
    roles = truth.roles_of()
    users = truth.users

    def count(rule: Callable[[Row, set[str]], bool]) -> int:
        return sum(1 for user in users if rule(user, roles[str(user["msId"])]))

    yesterday = today - dt.timedelta(days=1)
    week = [
        record
        for (_, date, _), record in truth.summaries.items()
        if today - dt.timedelta(days=7) <= day(date) < today
    ]
    last_day = [record for record in week if day(record["date"]) == yesterday]

    def success(records: Sequence[Row]) -> float | None:
        return pct(sum(r["successful"] for r in records), sum(r["total"] for r in records))

    return {
        "tenant_id": tenant_id,
        "license_status": counters.get("status"),
        "users": len(users),
        "licensed_users": count(lambda u, r: u["assigned"] is True),
        "licenses": counters.get("licenses"),
        "archived_licenses": counters.get("archivedLicenses"),
        "assigned_standard": counters.get("assignedStandard"),
        "assigned_archive": counters.get("assignedArchive"),
        "seat_use_pct": pct(counters.get("assignedStandard"), counters.get("licenses")),
        "archive_seat_use_pct": pct(
            counters.get("assignedArchive"), counters.get("archivedLicenses")
        ),
        "global_admins": count(lambda u, r: "global_admin" in r),
        "spanning_admins": count(lambda u, r: "spanning_admin" in r),
        "disabled_admins": count(lambda u, r: bool(u["disabled"] and r & set(ADMIN_ROLES))),
        "wasted_seats": count(
            lambda u, r: (
                bool(u["disabled"]) and u["assigned"] is True and u["isArchive"] is not True
            )
        ),
        "unprotected_active_users": count(
            lambda u, r: not u["disabled"] and u["assigned"] is not True
        ),
        "last_complete_sync_at": health["last_complete_at"],
        "failed_syncs_in_a_row": health["consecutive_failed_runs"],
        "backup_success_yesterday_pct": success(last_day),
        "backup_success_7d_pct": success(week),
        "is_offboarded": health["is_offboarded"],
    }


def access_review_rows(truth: TenantTruth) -> list[Row]:
    roles = truth.roles_of()
    by_id = {str(user["msId"]): user for user in truth.users}
    rows = []
    for membership in truth.memberships:
        if membership["roleId"] not in ADMIN_ROLES:
            continue
        user = by_id[str(membership["msId"])]
        held = roles[str(membership["msId"])]
        flags = {
            "is_disabled": bool(user["disabled"]),
            "is_deleted_from_microsoft": "deleted_from_microsoft" in held,
            "has_no_microsoft_license": "no_microsoft_license" in held,
            "is_archived": "archived" in held,
        }
        rows.append(
            {
                "tenant_id": user["tenant_id"],
                "ms_id": user["msId"],
                "user_principal_name": user["userPrincipalName"],
                "display_name": user["displayName"],
                "role_id": membership["roleId"],
                **flags,
                "needs_review": any(flags.values()),
            }
        )
    return rows


def license_waste_rows(truth: TenantTruth) -> list[Row]:
    roles = truth.roles_of()
    rows = []
    for user in truth.users:
        held = roles[str(user["msId"])]
        reasons = [reason for reason in RECLAIM_REASONS if reason in held]
        if user["assigned"] is True and user["isArchive"] is not True and reasons:
            rows.append(
                {
                    "tenant_id": user["tenant_id"],
                    "ms_id": user["msId"],
                    "user_principal_name": user["userPrincipalName"],
                    "reason": reasons[0],
                }
            )
    return rows


def backup_health_rows(truth: TenantTruth) -> list[Row]:
    return [
        {
            "tenant_id": record["tenant_id"],
            "date": day(record["date"]),
            "type": record["type"],
            "total": record["total"],
            "successful": record["successful"],
            "partial": record["partial"],
            "failed": record["failed"],
            "success_rate": record["successful"] / record["total"] if record["total"] else None,
        }
        for record in truth.summaries.values()
    ]


def last_backup_day(runs: Sequence[SyncRun]) -> dt.date | None:
    """backup_last_day of the tenant's newest complete run that has one."""
    days = [
        (run.sync_version, run.backup_last_day)
        for run in runs
        if run.status == "complete" and run.backup_last_day is not None
    ]
    return max(days)[1] if days else None


def failing_users_rows(truth: TenantTruth, latest: dt.date | None) -> list[Row]:
    """Streaks of failed-or-partial days ending on the tenant's last backup day."""
    if latest is None:
        return []
    rows = []
    series = {(tenant, ms_id, kind) for tenant, ms_id, _, kind in truth.user_backups}
    for tenant, ms_id, kind in sorted(series, key=str):
        streak: list[Row] = []
        when = latest
        while (record := truth.user_backups.get((tenant, ms_id, when.isoformat(), kind))) and (
            record["failed"] or record["partial"]
        ):
            streak.append(record)
            when -= dt.timedelta(days=1)
        if len(streak) >= FAILING_DAYS:
            rows.append(
                {
                    "tenant_id": tenant,
                    "ms_id": ms_id,
                    "user_principal_name": streak[0]["userPrincipalName"],
                    "type": kind,
                    "streak_days": len(streak),
                    "first_day": day(streak[-1]["date"]),
                    "last_day": latest,
                }
            )
    return rows


def tenant_roles_rows(tenant_id: str, truth: TenantTruth) -> list[Row]:
    """Each of the seven roles (the tap's roles stream) with its current members."""
    disabled = {str(user["msId"]) for user in truth.users if user["disabled"]}
    return [
        {
            "tenant_id": tenant_id,
            "role_id": role["id"],
            "role_name": role["name"],
            "members": sum(1 for m in truth.memberships if m["roleId"] == role["id"]),
            "disabled_members": sum(
                1 for m in truth.memberships if m["roleId"] == role["id"] and m["msId"] in disabled
            ),
        }
        for role in expected_output([], tenant_id=tenant_id)["roles"]
    ]


def expected_marts(
    truths: Mapping[str, TenantTruth], syncs: Sequence[SyncRun], today: dt.date
) -> Marts:
    """An offboarded tenant counts as one without current rows (no users, counters or
    backup figures, no failing users); its backup history stays in backup_health_daily."""
    gone = offboarded_by_definition((run.tenant_id, run.sync_version) for run in syncs)
    runs = {tid: [run for run in syncs if run.tenant_id == tid] for tid in truths}
    rows: dict[str, list[Row]] = {mart: [] for mart in MART_COLUMNS}
    for tenant_id, truth in truths.items():
        if truth.complete_runs and tenant_id not in gone:
            rows["tenant_roles"] += tenant_roles_rows(tenant_id, truth)
        health = sync_health(tenant_id, runs[tenant_id], offboarded=tenant_id in gone)
        current = TenantTruth() if health["is_offboarded"] else truth
        rows["fleet_overview"].append(fleet_overview_row(tenant_id, current, health, today))
        rows["access_review"] += access_review_rows(current)
        rows["license_waste"] += license_waste_rows(current)
        rows["backup_health_daily"] += backup_health_rows(truth)
        rows["failing_users"] += failing_users_rows(current, last_backup_day(runs[tenant_id]))
        rows["tenant_sync_health"].append(health)
    return Marts({mart: keyed(mart, found, partial=True) for mart, found in rows.items()})


# ----------------------------------------------------------------------------- the warehouse


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


def utc_today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def assert_build_row(fetch: Fetch, build: Step, syncs: Sequence[SyncRun], when: str) -> None:
    """marts_build: built during the build (UTC), from the newest sync it could see."""
    built_at, newest_sync_at = read_build(fetch)
    assert build.started <= built_at <= build.ended, f"{when}: built_at {built_at}"
    assert newest_sync_at == max(run.finished_at for run in syncs if run.finished_at), when


@pytest.fixture
def fleet() -> Iterator[FleetEmulator]:
    emulator = FleetEmulator(fleet_tenants(utc_today()))
    emulator.start()
    yield emulator
    emulator.stop()


# ----------------------------------------------------------------------------- the test


@pytest.mark.parametrize("warehouse_name", ["duckdb", "postgres"])
def test_marts_hold_the_contract_and_a_failed_tenant_stays_at_its_last_sync(
    warehouse_name: str, fleet: FleetEmulator, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    warehouse = warehouse_for(warehouse_name, request, tmp_path)
    require_plugin("extractors", "tap-spanning")
    require_plugin("loaders", warehouse.loader)
    require_utility(warehouse.dbt)
    tenant_ids = [tenant.tenant_id for tenant in fleet.tenants]
    broken, gone = tenant_ids[BROKEN], tenant_ids[OFFBOARDED]
    keys = {tenant.tenant_id: tenant.api_key for tenant in fleet.tenants}
    truths = {tenant_id: TenantTruth() for tenant_id in tenant_ids}
    started = time.monotonic()

    # Run 1: load and build in one command; dbt's tests pass, or it exits non-zero.
    env = meltano_env(tmp_path, fleet, warehouse, keys, tenant_ids)
    first_run = on_one_day(
        lambda: meltano(env, "run", "tap-spanning", warehouse.loader, f"{warehouse.dbt}:build")
    )
    assert "Completed successfully" in first_run.run.output
    for tenant in fleet.tenants:
        truths[tenant.tenant_id].synced(tenant, complete=True)
    with warehouse.tables() as fetch:
        syncs = read_syncs(fetch)
        first = read_marts(fetch)
        assert_build_row(fetch, first_run, syncs, "run 1")
        first_build = read_build(fetch)
    assert sorted(sync.tenant_id for sync in syncs) == sorted(tenant_ids)
    assert {sync.status for sync in syncs} == {"complete"}
    # The tap's window ends today (UTC): the day failing_users ends its streaks on.
    assert {sync.backup_last_day for sync in syncs} == {first_run.day}
    wanted_first = expected_marts(truths, syncs, first_run.day)
    assert_marts_equal(first, wanted_first, "run 1")
    for mart in ("access_review", "backup_health_daily", "failing_users", "license_waste"):
        assert wanted_first[mart], f"run 1: {mart} is empty: the check would prove nothing"
    for mart in ("access_review", "failing_users"):  # so that offboarding drops something
        assert any(key[0] == gone for key in wanted_first[mart]), f"run 1: {gone}: no {mart}"
    assert not any(row["is_offboarded"] for row in first["tenant_sync_health"].values())

    # Run 2: users change everywhere, one tenant is no longer configured (offboarded), one
    # tenant's key is refused. The tap fails, so `meltano run` stops there: dbt does not
    # run, the marts still hold run 1, and marts_build shows them stale.
    for tenant in fleet.tenants:
        fleet.set_users(tenant.tenant_id, changed(tenant.users))
    listed = [tenant_id for tenant_id in tenant_ids if tenant_id != gone]
    env = meltano_env(tmp_path, fleet, warehouse, {**keys, broken: WRONG_KEY}, listed)
    failed = on_one_day(
        lambda: meltano(
            env, "run", "tap-spanning", warehouse.loader, f"{warehouse.dbt}:build", succeed=False
        )
    )
    assert f"1 of {len(listed)} tenants failed: {broken} (credentials refused)" in (
        failed.run.output
    )
    assert "Running with dbt" not in failed.run.output
    with warehouse.tables() as fetch:
        assert read_marts(fetch)["fleet_overview"] == first["fleet_overview"]
        assert read_build(fetch) == first_build
        newest_loaded = max(run.finished_at for run in read_syncs(fetch) if run.finished_at)
    assert first_build[1] is not None
    assert newest_loaded > first_build[1], "a load after the build: the marts are stale"

    # The build alone: the failed tenant at its last complete sync, the offboarded one
    # counted nowhere, the others current.
    build = on_one_day(lambda: meltano(env, "invoke", f"{warehouse.dbt}:build"))
    assert "Completed successfully" in build.run.output
    for tenant in fleet.tenants:
        if tenant.tenant_id != gone:
            truths[tenant.tenant_id].synced(tenant, complete=tenant.tenant_id != broken)
    with warehouse.tables() as fetch:
        syncs = read_syncs(fetch)
        second = read_marts(fetch)
        assert_build_row(fetch, build, syncs, "run 2")
    failures = [sync for sync in syncs if sync.status == "failed"]
    assert [sync.tenant_id for sync in failures] == [broken]
    assert "credentials" in str(failures[0].reason)
    assert "refused" in str(failures[0].reason)
    newest_version = max(sync.sync_version for sync in syncs)
    newest = [sync for sync in syncs if sync.sync_version == newest_version]
    assert sorted(sync.tenant_id for sync in newest) == sorted(listed)
    assert {s.backup_last_day for s in newest if s.status == "complete"} == {failed.day}
    wanted_second = expected_marts(truths, syncs, build.day)
    assert_marts_equal(second, wanted_second, "run 2")
    assert wanted_second["license_waste"], "run 2 should leave licenses to reclaim"

    # The failed tenant, said plainly: as after run 1, one failed run, and why.
    # (the columns of its figures; its "needs attention" flags change: its sync is failing)
    figures = wanted_second["fleet_overview"][(broken,)]
    kept = {c: first["fleet_overview"][(broken,)][c] for c in figures} | {
        "failed_syncs_in_a_row": 1
    }
    if build.day == first_run.day:  # else yesterday's backups moved on
        assert {c: second["fleet_overview"][(broken,)][c] for c in figures} == kept
    assert second["fleet_overview"][(broken,)]["is_sync_failing"] is True
    assert second["fleet_overview"][(broken,)]["needs_attention"] is True
    assert second["fleet_overview"][(gone,)]["attention_score"] == 0
    health = second["tenant_sync_health"][(broken,)]
    assert health["consecutive_failed_runs"] == 1
    assert (health["is_current"], health["is_offboarded"]) == (False, False)
    assert health["last_reason"] == failures[0].reason
    # The offboarded tenant: its own row says so, no current figure counts it, its backup
    # history stays.
    assert [key for key, row in second["tenant_sync_health"].items() if row["is_offboarded"]] == [
        (gone,)
    ]
    assert second["tenant_sync_health"][(gone,)]["is_current"] is False
    overview = second["fleet_overview"][(gone,)]
    assert (overview["is_offboarded"], overview["users"], overview["licenses"]) == (True, 0, None)
    for mart in ("access_review", "license_waste", "failing_users"):
        assert not any(key[0] == gone for key in second[mart]), f"{mart} counts {gone}"
    assert {k for k in second["backup_health_daily"] if k[0] == gone} == {
        k for k in first["backup_health_daily"] if k[0] == gone
    }
    # Every other tenant moved on: its run-2 numbers, which differ from run 1's.
    for tenant in fleet.tenants:
        if tenant.tenant_id != broken and len(truths[tenant.tenant_id].users) >= 4:
            key = (tenant.tenant_id,)
            assert second["fleet_overview"][key] != first["fleet_overview"][key], tenant.tenant_id
    print(f"{warehouse.name}: {time.monotonic() - started:.1f}s")
