"""The dbt marts (transform/, the contract in transform/models/contract.md) end to end.

A fleet of 12 small tenants with backups (generate_fleet over three loopback hosts; every
third tenant gets the emulator's "torture" users, every tag spelling) is loaded and built
with one command per warehouse, `meltano run tap-spanning target-<db> dbt-<db>:build`, into
DuckDB and into PostgreSQL. Exit 0 means dbt's own tests passed too. Then every mart is
compared, row by row and column by column, with what this module computes in Python from the
emulator's ground truth alone (expected_output, tenant counters, expected_backups), never
from the warehouse's SQL: fleet_overview, access_review, license_waste, backup_health_daily,
failing_users (N = 3) and tenant_sync_health.

Run 2 changes users in every tenant (users gone, licenses to reclaim, a disabled admin) and
gives one tenant a wrong key with skip_refused_tenants: `meltano run` exits non-zero at the
tap, so dbt does not run (the marts still hold run 1). The dbt build alone
(`meltano invoke dbt-<db>:build`) then shows the failed tenant at its last complete sync
(its fleet_overview row as after run 1, one failed run, the reason) and every other tenant
as run 2 found it.

The Meltano system directory is private (plugins linked from the project's .meltano), and
so are dbt's target and log folders, so that nothing is shared with a concurrent run.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

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

from tests.test_warehouse import (
    PROJECT_DIR,
    Fetch,
    MeltanoRun,
    PostgresServer,
    duckdb_tables,
    meltano,
    pg_database,
    postgres,
    postgres_tables,
    require_plugin,
    unavailable,
)
from tests.test_warehouse_fleet import fleet_env

__all__ = ["pg_database", "postgres"]  # fixtures, requested by name for PostgreSQL

pytestmark = pytest.mark.e2e

HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
FLEET_SIZE = 12
FLEET_SEED = 17
MAX_USERS = 40  # small tenants: the loads and the builds stay quick
PAGE_SIZE = 15
BROKEN = 2  # index of the tenant whose key is wrong in run 2
WRONG_KEY = "wrong-key-0000-1111-2222-333333333333"
FAILING_DAYS = 3  # var failing_days of transform/dbt_project.yml
ADMIN_ROLES = ("global_admin", "spanning_admin")
# A reclaimable license's reason: the first of these roles the user holds.
RECLAIM_REASONS = ("deleted_from_microsoft", "archived", "no_microsoft_license")
DBT_ENV_PREFIX = "DBT_"

Row = dict[str, Any]
Key = tuple[Any, ...]
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
    """A tenant_syncs row, as the tap wrote it (versions and times are the tap's own)."""

    tenant_id: str
    sync_version: int
    status: str
    reason: str | None
    finished_at: dt.datetime | None


def sync_health(tenant_id: str, runs: Sequence[SyncRun]) -> Row:
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
        "is_current": newest.status == "complete",
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


def failing_users_rows(truth: TenantTruth) -> list[Row]:
    """Streaks of failed-or-partial days ending on the tenant's latest day held."""
    if not truth.user_backups:
        return []
    latest = max(day(record["date"]) for record in truth.user_backups.values())
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


@dataclass
class Marts:
    """Every mart, as rows keyed by its grain."""

    rows: dict[str, dict[Key, Row]]

    def __getitem__(self, mart: str) -> dict[Key, Row]:
        return self.rows[mart]


# Each mart's columns (the contract's, in its order) and grain.
MART_COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "fleet_overview": (
        (
            "tenant_id",
            "license_status",
            "users",
            "licensed_users",
            "licenses",
            "archived_licenses",
            "assigned_standard",
            "assigned_archive",
            "seat_use_pct",
            "archive_seat_use_pct",
            "global_admins",
            "spanning_admins",
            "disabled_admins",
            "wasted_seats",
            "unprotected_active_users",
            "last_complete_sync_at",
            "failed_syncs_in_a_row",
            "backup_success_yesterday_pct",
            "backup_success_7d_pct",
        ),
        ("tenant_id",),
    ),
    "access_review": (
        (
            "tenant_id",
            "ms_id",
            "user_principal_name",
            "display_name",
            "role_id",
            "is_disabled",
            "is_deleted_from_microsoft",
            "has_no_microsoft_license",
            "is_archived",
            "needs_review",
        ),
        ("tenant_id", "ms_id", "role_id"),
    ),
    "license_waste": (
        ("tenant_id", "ms_id", "user_principal_name", "reason"),
        ("tenant_id", "ms_id"),
    ),
    "backup_health_daily": (
        ("tenant_id", "date", "type", "total", "successful", "partial", "failed", "success_rate"),
        ("tenant_id", "date", "type"),
    ),
    "failing_users": (
        (
            "tenant_id",
            "ms_id",
            "user_principal_name",
            "type",
            "streak_days",
            "first_day",
            "last_day",
        ),
        ("tenant_id", "ms_id", "type"),
    ),
    "tenant_sync_health": (
        (
            "tenant_id",
            "last_sync_version",
            "last_sync_at",
            "last_status",
            "last_complete_sync_version",
            "last_complete_at",
            "consecutive_failed_runs",
            "last_reason",
            "is_current",
        ),
        ("tenant_id",),
    ),
}


def normal(value: Any) -> Any:
    """Numbers compared by value (a double's last digits, integers from any driver type)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float | Decimal):
        return round(float(value), 9)
    return value


def keyed(mart: str, rows: Sequence[Row]) -> dict[Key, Row]:
    columns, grain = MART_COLUMNS[mart]
    table: dict[Key, Row] = {}
    for row in rows:
        assert set(row) == set(columns), f"{mart}: columns {sorted(row)}"
        key = tuple(row[column] for column in grain)
        assert key not in table, f"{mart}: {key} twice"
        table[key] = {column: normal(row[column]) for column in columns}
    return table


def expected_marts(
    truths: Mapping[str, TenantTruth], syncs: Sequence[SyncRun], today: dt.date
) -> Marts:
    health = {
        tenant_id: sync_health(tenant_id, [run for run in syncs if run.tenant_id == tenant_id])
        for tenant_id in truths
    }
    rows: dict[str, list[Row]] = {mart: [] for mart in MART_COLUMNS}
    for tenant_id, truth in truths.items():
        rows["fleet_overview"].append(
            fleet_overview_row(tenant_id, truth, health[tenant_id], today)
        )
        rows["access_review"] += access_review_rows(truth)
        rows["license_waste"] += license_waste_rows(truth)
        rows["backup_health_daily"] += backup_health_rows(truth)
        rows["failing_users"] += failing_users_rows(truth)
        rows["tenant_sync_health"].append(health[tenant_id])
    return Marts({mart: keyed(mart, found) for mart, found in rows.items()})


# ----------------------------------------------------------------------------- the warehouse


def quoted(column: str) -> str:
    return f'"{column}"'


def read_marts(fetch: Fetch) -> Marts:
    found = {}
    for mart, (columns, _) in MART_COLUMNS.items():
        names, values = fetch(f"SELECT {', '.join(map(quoted, columns))} FROM {mart}")
        found[mart] = keyed(mart, [dict(zip(names, row, strict=True)) for row in values])
    return Marts(found)


def read_syncs(fetch: Fetch) -> list[SyncRun]:
    _, rows = fetch("SELECT tenant_id, sync_version, status, reason, finished_at FROM tenant_syncs")
    return [SyncRun(str(t), int(v), str(s), r, f) for t, v, s, r, f in rows]


def assert_marts_equal(found: Marts, wanted: Marts, when: str) -> None:
    for mart in MART_COLUMNS:
        actual, expected = found[mart], wanted[mart]
        missing = sorted(set(expected) - set(actual), key=str)[:5]
        extra = sorted(set(actual) - set(expected), key=str)[:5]
        assert not missing, f"{when}: {mart} lacks rows, e.g. {missing}"
        assert not extra, f"{when}: {mart} has rows it should not, e.g. {extra}"
        wrong = [
            (key, column, actual[key][column], expected[key][column])
            for key in expected
            for column in expected[key]
            if actual[key][column] != expected[key][column]
        ]
        assert not wrong, f"{when}: {mart} differs (key, column, found, expected): {wrong[:8]}"
    print(f"{when}: marts match: " + ", ".join(f"{m} {len(found[m])}" for m in MART_COLUMNS))


@dataclass
class Warehouse:
    name: str  # duckdb or postgres
    loader_env: dict[str, str]
    tables: Callable[[], AbstractContextManager[Fetch]]

    @property
    def loader(self) -> str:
        return f"target-{self.name}"

    @property
    def dbt(self) -> str:
        return f"dbt-{self.name}"


def warehouse_for(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Warehouse:
    if name == "duckdb":
        path = tmp_path / "warehouse" / "spanning.duckdb"
        path.parent.mkdir()
        return Warehouse(name, {"TARGET_DUCKDB_PATH": str(path)}, lambda: duckdb_tables(path))
    server: PostgresServer = request.getfixturevalue("postgres")
    database: str = request.getfixturevalue("pg_database")
    url = server.url_for(database)
    return Warehouse(name, server.loader_env(database), lambda: postgres_tables(url))


def require_utility(name: str) -> None:
    if not (PROJECT_DIR / ".meltano" / "utilities" / name / "venv" / "bin" / "dbt").exists():
        unavailable(f"{name} is not installed in .meltano/: run `make meltano-install`")


def meltano_env(
    tmp_path: Path, fleet: FleetEmulator, warehouse: Warehouse, keys: Mapping[str, str]
) -> dict[str, str]:
    """The tap (the fleet, each key in its tenant's entry), the loader and dbt, all private."""
    env = fleet_env(
        tmp_path,
        fleet,
        [tenant.tenant_id for tenant in fleet.tenants],
        TAP_SPANNING_PAGE_SIZE=str(PAGE_SIZE),
        TAP_SPANNING_SKIP_REFUSED_TENANTS="true",
        **warehouse.loader_env,
    )
    entries = json.loads(env["TAP_SPANNING_TENANTS"])
    for entry in entries:
        entry["api_key"] = keys[entry["tenant_id"]]
    env["TAP_SPANNING_TENANTS"] = json.dumps(entries)
    del env["TAP_SPANNING_TENANT_API_KEYS"]
    for name in [name for name in env if name.startswith(DBT_ENV_PREFIX)]:
        del env[name]
    # The utility's settings (meltano.yml), each read from DBT_<ADAPTER>_<SETTING>.
    prefix = f"DBT_{warehouse.name.upper()}_"
    env[f"{prefix}TARGET_PATH"] = str(tmp_path / "dbt" / "target")
    env[f"{prefix}LOG_PATH"] = str(tmp_path / "dbt" / "logs")
    return env


def utc_today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def on_one_day(step: Callable[[], MeltanoRun]) -> tuple[MeltanoRun, dt.date]:
    """Run a step that builds the marts; the UTC day it ran on (the marts' current_date)."""
    before = utc_today()
    run = step()
    if utc_today() != before:
        pytest.skip("the build ran across midnight UTC: yesterday moved under it")
    return run, before


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
    broken = tenant_ids[BROKEN]
    keys = {tenant.tenant_id: tenant.api_key for tenant in fleet.tenants}
    truths = {tenant_id: TenantTruth() for tenant_id in tenant_ids}
    started = time.monotonic()

    # Run 1: load and build in one command; dbt's tests pass, or it exits non-zero.
    env = meltano_env(tmp_path, fleet, warehouse, keys)
    run, first_day = on_one_day(
        lambda: meltano(env, "run", "tap-spanning", warehouse.loader, f"{warehouse.dbt}:build")
    )
    assert "Completed successfully" in run.output
    for tenant in fleet.tenants:
        truths[tenant.tenant_id].synced(tenant, complete=True)
    with warehouse.tables() as fetch:
        syncs = read_syncs(fetch)
        first = read_marts(fetch)
    assert sorted(sync.tenant_id for sync in syncs) == sorted(tenant_ids)
    assert {sync.status for sync in syncs} == {"complete"}
    wanted_first = expected_marts(truths, syncs, first_day)
    assert_marts_equal(first, wanted_first, "run 1")
    for mart in ("access_review", "backup_health_daily", "failing_users", "license_waste"):
        assert wanted_first[mart], f"run 1: {mart} is empty: the check would prove nothing"

    # Run 2: users change everywhere, one tenant's key is refused. The tap fails, so
    # `meltano run` stops there: dbt does not run and the marts still hold run 1.
    for tenant in fleet.tenants:
        fleet.set_users(tenant.tenant_id, changed(tenant.users))
    env = meltano_env(tmp_path, fleet, warehouse, {**keys, broken: WRONG_KEY})
    failed = meltano(
        env, "run", "tap-spanning", warehouse.loader, f"{warehouse.dbt}:build", succeed=False
    )
    assert f"1 of {FLEET_SIZE} tenants failed: {broken} (credentials refused)" in failed.output
    assert "Running with dbt" not in failed.output
    with warehouse.tables() as fetch:
        assert read_marts(fetch)["fleet_overview"] == first["fleet_overview"]

    # The build alone: the failed tenant at its last complete sync, the others current.
    build, second_day = on_one_day(lambda: meltano(env, "invoke", f"{warehouse.dbt}:build"))
    assert "Completed successfully" in build.output
    for tenant in fleet.tenants:
        truths[tenant.tenant_id].synced(tenant, complete=tenant.tenant_id != broken)
    with warehouse.tables() as fetch:
        syncs = read_syncs(fetch)
        second = read_marts(fetch)
    failures = [sync for sync in syncs if sync.status == "failed"]
    assert [sync.tenant_id for sync in failures] == [broken]
    assert "credentials" in str(failures[0].reason)
    assert "refused" in str(failures[0].reason)
    wanted_second = expected_marts(truths, syncs, second_day)
    assert_marts_equal(second, wanted_second, "run 2")
    assert wanted_second["license_waste"], "run 2 should leave licenses to reclaim"

    # The failed tenant, said plainly: as after run 1, one failed run, and why.
    kept = dict(first["fleet_overview"][(broken,)], failed_syncs_in_a_row=1)
    if second_day == first_day:  # else yesterday's backups moved on
        assert second["fleet_overview"][(broken,)] == kept
    health = second["tenant_sync_health"][(broken,)]
    assert health["consecutive_failed_runs"] == 1
    assert health["is_current"] is False
    assert health["last_reason"] == failures[0].reason
    # Every other tenant moved on: its run-2 numbers, which differ from run 1's.
    for tenant in fleet.tenants:
        if tenant.tenant_id != broken and len(truths[tenant.tenant_id].users) >= 4:
            key = (tenant.tenant_id,)
            assert second["fleet_overview"][key] != first["fleet_overview"][key], tenant.tenant_id
    print(f"{warehouse.name}: {time.monotonic() - started:.1f}s")


def test_every_model_and_column_is_documented() -> None:
    """Every model of transform/ has a description, and so has each of its columns."""
    yaml = pytest.importorskip("yaml")
    models = PROJECT_DIR / "transform" / "models"
    documented: dict[str, dict[str, Any]] = {}
    for path in models.rglob("*.yml"):
        for model in yaml.safe_load(path.read_text(encoding="utf-8")).get("models", []):
            documented[model["name"]] = model
    sql = sorted(path.stem for path in models.rglob("*.sql"))
    assert sorted(documented) == sql
    for name, model in documented.items():
        assert model.get("description"), f"{name}: no description"
        for column in model.get("columns", []):
            assert column.get("description"), f"{name}.{column['name']}: no description"
    for mart, (columns, _) in MART_COLUMNS.items():
        assert [c["name"] for c in documented[mart]["columns"]] == list(columns), mart
