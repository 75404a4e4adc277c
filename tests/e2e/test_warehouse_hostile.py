"""Hostile tenants beside healthy ones, a night at a time (docs/many-tenants.md).

A fleet of four healthy tenants and one tenant per hostile case of the emulator
(spanning_emulator.hostile: counts of 10^20, 10^40 and 1e300, a negative and a null
count, "backup": null, successful > total, a duplicate day, a day in 2099 and one in
1950, a lying Date header, licenses of 10^40, a negative counter) is loaded and built
with the nightly command, `meltano --environment=prod run tap-spanning target-<db>
dbt-<db>:build` (the prod environment sets failure_mode nightly), into DuckDB and into
PostgreSQL.

Night 1 must exit 0 with the dbt build passed. Each hostile tenant fails alone, its
tenant_syncs reason naming the field or the date; the liar (its Date header says
1970-01-01) completes, with one warning and the window of this machine's clock. Every
completing tenant's rows are exactly the emulator's expected files (`--write-fleet`'s
expected/, read back whole); no failed tenant has a current row, and any backup row of
one holds its true values (never the hostile ones). fleet_overview and
tenant_sync_health show the failed tenants; failing_users holds the completing tenants'
streaks only. Night 2 serves the same tenants honestly: every tenant completes and is
current, the backup histories hold exactly the expected week, and every mart holds what the
emulator knows of each tenant (tests/mart_truth.py), a formerly hostile tenant's failing
users included.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from spanning_emulator import (
    DATE_FORMATS,
    HOSTILE_CASE_NAMES,
    DateFormat,
    EmulatedTenant,
    FleetEmulator,
    generate_users,
    utc_today,
)
from spanning_emulator.fleetfiles import HOSTILE_FILE, TENANT_STREAMS, client_name, write_fleet

from tests.current_rows import read_snapshot
from tests.e2e.test_warehouse_backups import keyed_records
from tests.e2e.test_warehouse_backups import landed_rows as backup_rows
from tests.mart_reading import Warehouse, on_one_day, read_marts, require_utility, warehouse_for
from tests.mart_truth import TenantTruth, check_marts, meltano_env, read_syncs
from tests.warehouse import (
    Fetch,
    MeltanoRun,
    Row,
    keyed,
    meltano,
    pg_database,
    postgres,
    require_plugin,
    small_tenant,
)

__all__ = ["pg_database", "postgres"]  # fixtures, requested by name for PostgreSQL

pytestmark = pytest.mark.e2e

HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
LIAR_HOST = "127.0.0.4"  # the lying-date tenant's host: its warning names it alone
# (tenant id, users, seed, date format, counts as text, userId as text)
HEALTHY: tuple[tuple[str, int, int, DateFormat, bool, bool], ...] = (
    ("acme", 28, 901, "iso", False, False),
    ("globex", 22, 902, "mdy", True, False),
    ("initech", 18, 903, "epoch_ms", False, True),
    ("umbrella", 14, 904, "datetime", True, True),
)
# huge-pages is the memory benchmark's: its tenant completes like any other.
CASES = tuple(case for case in HOSTILE_CASE_NAMES if case != "huge-pages")
HOSTILE_USERS = 12
CURRENT_STREAMS = ("users", "role_memberships", "tenants")
BACKUP_STREAMS = ("backup_summaries", "user_backups")

Expected = dict[str, dict[str, list[Row]]]  # tenant id -> stream -> records


def fleet_tenants() -> list[EmulatedTenant]:
    """The healthy tenants, then one per case ("h01-count-1e20", ...: no id holds another)."""
    tenants = [
        small_tenant(
            name,
            size,
            seed,
            HOSTS[index % len(HOSTS)],
            date_format=date_format,
            counts_as_text=as_text,
            user_id_as_text=user_id_as_text,
        )
        for index, (name, size, seed, date_format, as_text, user_id_as_text) in enumerate(HEALTHY)
    ]
    for index, case in enumerate(CASES, start=1):
        name = f"h{index:02d}-{case}"
        seed = 950 + index
        tenants.append(
            EmulatedTenant(
                tenant_id=name,
                users=generate_users(HOSTILE_USERS, seed, "realistic", domain=f"{name}.example"),
                admin_email=f"admin@{name}.example",
                api_key=f"hostile-key-0000-1111-2222-{seed:012d}",
                host=LIAR_HOST if case == "lying-date" else HOSTS[index % len(HOSTS)],
                date_format=DATE_FORMATS[index % len(DATE_FORMATS)],
                counts_as_text=index % 2 == 1,
                hostile=case,
            )
        )
    return tenants


# ----------------------------------------------------------------------------- ground truth


def expected_files(directory: Path, fleet: FleetEmulator) -> tuple[Expected, dict[str, Any]]:
    """The emulator's --write-fleet expected/ for the fleet as served now, read back: each
    tenant's records by stream, and hostile.json's tenants ({} when none is hostile)."""
    ports = {urlsplit(url).port for url in fleet.base_urls}
    assert len(ports) == 1, f"the listeners took several ports: {fleet.base_urls}"
    write_fleet(directory, fleet.tenants, ports.pop() or 0)
    expected: Expected = {}
    for tenant in fleet.tenants:
        folder = directory / "expected" / tenant.tenant_id
        expected[tenant.tenant_id] = {
            stream: [
                json.loads(line)
                for line in (folder / f"{stream}.jsonl").read_text("utf-8").splitlines()
            ]
            for stream in TENANT_STREAMS
        }
    hostile = directory / "expected" / HOSTILE_FILE
    return expected, json.loads(hostile.read_text("utf-8"))["tenants"] if hostile.exists() else {}


def assert_same(found: Mapping[Any, Row], wanted: Mapping[Any, Row], what: str) -> None:
    missing = sorted(set(wanted) - set(found), key=str)
    extra = sorted(set(found) - set(wanted), key=str)
    wrong = [(key, found[key], row) for key, row in wanted.items() if found.get(key, row) != row]
    assert not missing, f"{what}: {len(missing)} missing, e.g. {missing[:3]}"
    assert not extra, f"{what}: {len(extra)} not expected, e.g. {extra[:3]}"
    assert not wrong, f"{what}: {len(wrong)} differ (key, landed, expected): {wrong[:2]}"


# ----------------------------------------------------------------------------- the warehouse


@contextmanager
def current_views(warehouse: Warehouse) -> Iterator[Fetch]:
    """The warehouse read through the current-rows views the night's dbt build made
    (transform/models/current: current_users, ...), beside the tap's tables."""
    with warehouse.tables() as fetch:
        yield fetch


def check_current_rows(fetch: Fetch, expected: Expected, when: str) -> None:
    """Every current row of every tenant is an expected one, and every expected row is
    current (a tenant whose files are empty has none)."""
    current = read_snapshot(fetch).current
    for stream in CURRENT_STREAMS:
        rows = [{k: v for k, v in r.items() if k != "sync_version"} for r in current[stream]]
        wanted = [record for records in expected.values() for record in records[stream]]
        assert_same(keyed(stream, rows), keyed(stream, wanted), f"{when}: current {stream}")


def check_backups(
    fetch: Fetch, expected: Expected, failing: Sequence[EmulatedTenant], day: dt.date, when: str
) -> None:
    """The histories hold exactly the expected records of every tenant with files; of a
    failed tenant only rows of its true week, with its true values."""
    for stream in BACKUP_STREAMS:
        landed, _ = backup_rows(fetch, stream)
        failed_ids = {tenant.tenant_id for tenant in failing}
        wanted = keyed_records(
            stream,
            [
                r
                for tid, records in expected.items()
                if tid not in failed_ids
                for r in records[stream]
            ],
        )
        mine = {key: row for key, row in landed.items() if key[0] not in failed_ids}
        assert_same(mine, wanted, f"{when}: {stream}")
        for tenant in failing:
            truth = keyed_records(stream, tenant.expected_backups(today=day)[stream])
            theirs = {key: row for key, row in landed.items() if key[0] == tenant.tenant_id}
            untrue = {key: row for key, row in theirs.items() if truth.get(key) != row}
            assert not untrue, f"{when}: {stream} of failed {tenant.tenant_id}: {untrue}"


def nightly(env: Mapping[str, str], warehouse: Warehouse, day: dt.date) -> MeltanoRun:
    """The nightly command, the fleet report last; it must exit 0 with the dbt build
    passed, on `day` (UTC)."""
    adapter = warehouse.dbt.removeprefix("dbt-")
    step = on_one_day(
        lambda: meltano(
            env,
            "--environment=prod",
            "run",
            "tap-spanning",
            warehouse.loader,
            f"{warehouse.dbt}:build",
            f"fleet-report:{adapter}",
        )
    )
    if step.day != day:
        pytest.skip("the nights ran on two UTC days: the backup week moved between them")
    assert "Completed successfully" in step.run.output, step.run.output[-3000:]
    return step.run


def landed_truth(fetch: Fetch, tenant: EmulatedTenant) -> TenantTruth:
    """A failed tenant as the marts must see it: no current rows, and the backup rows
    that landed (check_backups has found each of them true)."""
    truth = TenantTruth()
    for stream, into in (
        ("backup_summaries", truth.summaries),
        ("user_backups", truth.user_backups),
    ):
        landed, _ = backup_rows(fetch, stream)
        into.update((key, row) for key, row in landed.items() if key[0] == tenant.tenant_id)
    return truth


# ----------------------------------------------------------------------------- the test


@pytest.mark.parametrize("warehouse_name", ["duckdb", "postgres"])
def test_hostile_tenants_fail_alone_and_a_clean_night_brings_them_back(
    warehouse_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    warehouse = warehouse_for(warehouse_name, request, tmp_path)
    require_plugin("extractors", "tap-spanning")
    require_plugin("loaders", warehouse.loader)
    require_utility(warehouse.dbt)
    tenants = fleet_tenants()
    tenant_ids = [tenant.tenant_id for tenant in tenants]
    failing = [tenant for tenant in tenants if tenant.fails]
    assert len(failing) == len(CASES) - 1  # every case but the lying Date fails its tenant
    day = utc_today()

    with FleetEmulator(tenants) as fleet:
        keys = {tenant.tenant_id: tenant.api_key for tenant in tenants}
        env = meltano_env(tmp_path, fleet, warehouse, keys, tenant_ids)
        env.pop("TAP_SPANNING_FAILURE_MODE", None)  # the prod environment's nightly mode
        # Each client named as the emulator's fleet files name it (their expected records).
        entries = json.loads(env["TAP_SPANNING_TENANTS"])
        for entry in entries:
            entry["name"] = client_name(entry["tenant_id"])
        env["TAP_SPANNING_TENANTS"] = json.dumps(entries)
        # Meltano reads the project's .env too (a developer's, or one a concurrent test
        # writes): nothing of it may change what this test loads and builds.
        env["TAP_SPANNING_API_KEY"] = ""
        if "TARGET_DUCKDB_PATH" in env:
            env["DBT_DUCKDB_PATH"] = env["TARGET_DUCKDB_PATH"]
        report = tmp_path / "fleet_report.html"
        env["FLEET_REPORT_OUTPUT"] = str(report)
        first = nightly(env, warehouse, day)
        # The report names every failed tenant, and says the marts are fresh.
        page = report.read_text(encoding="utf-8")
        for tenant in failing:
            assert tenant.tenant_id in page, f"the report does not name {tenant.tenant_id}"
        assert 'data-freshness="current"' in page
        expected, hostile = expected_files(tmp_path / "night1", fleet)
        with warehouse.tables() as fetch:
            syncs = read_syncs(fetch)
            marts = read_marts(fetch)
            check_backups(fetch, expected, failing, day, "night 1")
            truths = {t.tenant_id: landed_truth(fetch, t) for t in failing}
        with current_views(warehouse) as fetch:
            check_current_rows(fetch, expected, "night 1")

        # Each hostile tenant failed alone, its reason naming the field or the date.
        assert set(hostile) == {tenant.tenant_id for tenant in tenants if tenant.hostile}
        assert sorted(sync.tenant_id for sync in syncs) == sorted(tenant_ids)
        by_tenant = {sync.tenant_id: sync for sync in syncs}
        for tenant in tenants:
            sync, label = by_tenant[tenant.tenant_id], f"night 1: {tenant.tenant_id}"
            if tenant.fails:
                names = hostile[tenant.tenant_id]["reason_names"]
                reason = str(sync.reason)
                assert sync.status == "failed", f"{label}: {sync}"
                assert any(name.lower() in reason.lower() for name in names), (
                    f"{label}: the reason {reason!r} names none of {names}"
                )
                assert sync.backup_last_day in (None, day), f"{label}: {sync}"
            else:  # the liar's window too ends on this machine's today, not 1970's
                assert (sync.status, sync.reason) == ("complete", None), f"{label}: {sync}"
                assert sync.backup_last_day == day, f"{label}: {sync}"
        assert f"{len(failing)} of {len(tenants)} tenants failed: " in first.output
        for tenant in failing:
            assert tenant.tenant_id in first.output, tenant.tenant_id
        warnings = [line for line in first.output.splitlines() if "1970-01-01" in line]
        assert len(warnings) == 1, f"the lying Date header: {warnings}"
        assert LIAR_HOST in warnings[0], warnings[0]

        # The marts: the failed tenants as failing, never complete; the others as their one
        # complete night says; failing_users of the complete ones only.
        for tenant in tenants:
            truths.setdefault(tenant.tenant_id, TenantTruth())
            truths[tenant.tenant_id].synced(tenant, complete=not tenant.fails, on=day)
        check_marts(marts, truths, "night 1")
        for tenant in failing:
            overview = marts["fleet_overview"][(tenant.tenant_id,)]
            assert overview["last_complete_sync_at"] is None, overview

        # Night 2: the same tenants, honest now.
        for tenant in tenants:
            fleet.set_hostile(tenant.tenant_id, None)
        second = nightly(env, warehouse, day)
        assert "tenants failed" not in second.output
        expected, hostile = expected_files(tmp_path / "night2", fleet)
        assert hostile == {}
        with warehouse.tables() as fetch:
            syncs = read_syncs(fetch)
            marts = read_marts(fetch)
            check_backups(fetch, expected, [], day, "night 2")
        with current_views(warehouse) as fetch:
            check_current_rows(fetch, expected, "night 2")

    newest = max(sync.sync_version for sync in syncs)
    assert len(syncs) == 2 * len(tenants)
    assert {(s.status, s.backup_last_day) for s in syncs if s.sync_version == newest} == {
        ("complete", day)
    }
    for tenant in tenants:
        truths[tenant.tenant_id].synced(tenant, complete=True, on=day)
    check_marts(marts, truths, "night 2")
    formerly = {tenant.tenant_id for tenant in failing}
    assert {key[0] for key in marts["failing_users"]} & formerly, (
        "no formerly hostile tenant has a failing user: failing_users would prove little"
    )
