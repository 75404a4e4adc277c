"""The dbt marts (transform/, their columns in transform/models/marts/marts.yml) end to end.

A fleet of 12 small tenants with backups (generate_fleet over three loopback hosts; every
third tenant gets the emulator's "torture" users, every tag spelling) is loaded and built
with one command per warehouse, `meltano run tap-spanning target-<db> dbt-<db>:build`, into
DuckDB and into PostgreSQL. Exit 0 means dbt's own tests passed too. Then the marts are held
against what the emulator knows of each tenant (tests/mart_truth.py: its users, their roles,
its license counters, its backup days), never against a copy of the marts' SQL: the rules
that derive the rest are the dbt unit tests' (tests/unit/test_dbt_unit.py). marts_build says when
the build ran and the newest sync it saw.

Run 2 changes users in every tenant (users gone, licenses to reclaim, a disabled admin),
leaves one tenant out of the configuration (offboarded) and gives another a wrong key with
failure_mode isolate: `meltano run` exits non-zero at the tap, so dbt does not run (the
marts still hold run 1, and marts_build shows them stale). The dbt build alone
(`meltano invoke dbt-<db>:build`) then shows the failed tenant at its last complete sync
(its fleet_overview figures as after run 1, one failed run, the reason), the offboarded one
counted nowhere but its own row (is_offboarded) and its backup history, and every other
tenant as run 2 found it, the licenses run 2 left to reclaim in license_waste.

The Meltano system directory is private (plugins linked from the project's .meltano), and
so are dbt's target and log folders, so that nothing is shared with a concurrent run.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from spanning_emulator import (
    EmulatedTenant,
    FleetEmulator,
    expected_roles,
    generate_fleet,
    generate_users,
    tenant_summary,
    utc_today,
)

from tests.mart_reading import on_one_day, read_build, read_marts, require_utility, warehouse_for
from tests.mart_truth import TenantTruth, assert_build_row, check_marts, meltano_env, read_syncs
from tests.warehouse import meltano, pg_database, postgres, require_plugin

__all__ = ["pg_database", "postgres"]  # fixtures, requested by name for PostgreSQL

pytestmark = pytest.mark.e2e

HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
FLEET_SIZE = 12
FLEET_SEED = 17
MAX_USERS = 40  # small tenants: the loads and the builds stay quick
BROKEN = 2  # index of the tenant whose key is wrong in run 2
OFFBOARDED = 5  # index of the tenant left out of run 2's configuration
WRONG_KEY = "wrong-key-0000-1111-2222-333333333333"
# fleet_overview's columns the emulator knows, which a failed sync leaves as they were.
FIGURES = (
    "license_status",
    "users",
    "licensed_users",
    "licenses",
    "archived_licenses",
    "assigned_standard",
    "assigned_archive",
    "global_admins",
    "spanning_admins",
    "last_complete_sync_at",
)

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


def changed(users: Sequence[Record]) -> tuple[list[dict[str, object]], set[str]]:
    """The tenant at run 2, and the msIds of the three licenses it leaves to reclaim: every
    7th user gone (from the 4th); of those assigned a Standard license, one loses their
    Microsoft license, one is deleted from Microsoft and one archived by tag; a Global Admin
    (or else the next such user) deleted from Microsoft: a disabled admin.

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
    return kept, {str(user["msId"]) for user in standard[:3]}


@pytest.fixture
def fleet() -> Iterator[FleetEmulator]:
    with FleetEmulator(fleet_tenants(utc_today())) as emulator:
        yield emulator


# ----------------------------------------------------------------------------- the test


@pytest.mark.parametrize("warehouse_name", ["duckdb", "postgres"])
def test_marts_hold_the_emulators_truth_and_a_failed_tenant_stays_at_its_last_sync(
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
        truths[tenant.tenant_id].synced(tenant, complete=True, on=first_run.day)
    with warehouse.tables() as fetch:
        syncs = read_syncs(fetch)
        first = read_marts(fetch)
        assert_build_row(fetch, first_run, syncs, "run 1")
        first_build = read_build(fetch)
    assert sorted(sync.tenant_id for sync in syncs) == sorted(tenant_ids)
    assert {sync.status for sync in syncs} == {"complete"}
    # The tap's window ends today (UTC): the day failing_users ends its streaks on.
    assert {sync.backup_last_day for sync in syncs} == {first_run.day}
    check_marts(first, truths, "run 1")
    for mart in ("access_review", "backup_health_daily", "failing_users", "license_waste"):
        assert first[mart], f"run 1: {mart} is empty: the check would prove nothing"
    for mart in ("access_review", "failing_users"):  # so that offboarding drops something
        assert any(key[0] == gone for key in first[mart]), f"run 1: {gone}: no {mart}"

    # Run 2: users change everywhere, one tenant is no longer configured (offboarded), one
    # tenant's key is refused. The tap fails, so `meltano run` stops there: dbt does not
    # run, the marts still hold run 1, and marts_build shows them stale.
    reclaimable: dict[str, set[str]] = {}
    for tenant in fleet.tenants:
        users, reclaimable[tenant.tenant_id] = changed(tenant.users)
        fleet.set_users(tenant.tenant_id, users)
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
    truths[gone].offboarded = True
    for tenant in fleet.tenants:
        if tenant.tenant_id != gone:
            truths[tenant.tenant_id].synced(
                tenant, complete=tenant.tenant_id != broken, on=failed.day
            )
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
    check_marts(second, truths, "run 2")
    # The licenses run 2 left to reclaim, in every tenant that synced it.
    for tenant_id in listed:
        if tenant_id != broken:
            wasted = {key[1] for key in second["license_waste"] if key[0] == tenant_id}
            missing = reclaimable[tenant_id] - wasted
            assert not missing, f"run 2: {tenant_id}: not in license_waste: {missing}"

    # The failed tenant, said plainly: its figures as after run 1, one failed run, and why.
    overview = second["fleet_overview"][(broken,)]
    before = first["fleet_overview"][(broken,)]
    assert {c: overview[c] for c in FIGURES} == {c: before[c] for c in FIGURES}
    assert overview["failed_syncs_in_a_row"] == 1
    assert overview["is_sync_failing"] is True
    assert overview["needs_attention"] is True
    assert second["fleet_overview"][(gone,)]["attention_score"] == 0
    health = second["tenant_sync_health"][(broken,)]
    assert health["last_reason"] == failures[0].reason
    # The offboarded tenant: its own row says so, no current figure counts it, its backup
    # history stays.
    for mart in ("access_review", "license_waste", "failing_users", "tenant_roles"):
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
