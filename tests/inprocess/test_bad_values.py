"""Values no warehouse can hold fail their tenant alone, in-process (docs/many-tenants.md).

A fleet with one hostile tenant per case of the emulator's HOSTILE_CASES (a count of 10^20,
10^40 or 1e300, a negative or null count, "backup": null, successful above total, a day
twice, a day in 2099 or 1950, a counter of 10^40 or below zero, a lying Date header, pages
padded near the size bound) beside honest tenants, all streams selected, failure_mode
nightly. Each failing case fails its tenant alone with a reason that names the field or the
day; every other tenant's records equal the emulator's model of what it holds; the run
exits 0 (a tenant completed) and its last line names every failed tenant. The exit code
of each failure mode is in tests/inprocess/test_isolation.py.

The e2e test of the same fleet through Meltano into the warehouses, with dbt and the
report, is tests/e2e/test_warehouse_hostile.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from spanning_emulator import (
    HOSTILE_CASE_NAMES,
    EmulatedTenant,
    FleetEmulator,
    expected_tenant_record,
    generate_fleet,
    reason_names,
    utc_today,
)

from tap_spanning.backups import BackupError, BackupWindow, backup_summary_records
from tests.run_inputs import catalog_with_backups, fleet_config
from tests.tapdriver import run_in_process
from tests.taprun import TapRun, assert_tenants_exact

BACKUP_STREAMS = ("backup_summaries", "user_backups")
HONEST = 3
HOSTS = ("127.0.0.1", "127.0.0.2")


@pytest.fixture(scope="module")
def catalog() -> dict[str, Any]:
    return catalog_with_backups()


@pytest.fixture
def hostile_fleet() -> Iterator[tuple[FleetEmulator, list[EmulatedTenant]]]:
    """One tenant per hostile case, then HONEST honest ones; small tenants, each with a
    licensed user (the per-user cases need one), on two hosts."""
    cases = list(HOSTILE_CASE_NAMES)
    generated = [
        tenant
        for tenant in generate_fleet(3 * (len(cases) + HONEST), seed=11, hosts=HOSTS)
        if any(_backed_up(user) for user in tenant.users[:30])
    ][: len(cases) + HONEST]
    tenants = [
        dataclasses.replace(tenant, users=tenant.users[:30], hostile=case)
        for tenant, case in zip(generated, [*cases, *[None] * HONEST], strict=True)
    ]
    emulator = FleetEmulator(tenants)
    emulator.start()
    yield emulator, tenants
    emulator.stop()


def _backed_up(user: Any) -> bool:
    """A user with a backup history: licensed, not an archive."""
    return user.get("assigned") is True and user.get("isArchive") is not True


def _tenant_records(run: TapRun, stream: str, tenant_id: str) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in record.items() if k != "sync_version"}
        for record in run.records(stream)
        if record["tenant_id"] == tenant_id
    ]


def test_each_hostile_tenant_fails_alone_naming_what_is_wrong(
    hostile_fleet: tuple[FleetEmulator, list[EmulatedTenant]],
    catalog: dict[str, Any],
    tmp_path: Path,
) -> None:
    emulator, tenants = hostile_fleet
    today = utc_today()
    config = fleet_config(emulator, tenants, failure_mode="nightly", page_size=10)
    run = run_in_process(config, tmp_path, catalog=catalog)
    if utc_today() != today:
        pytest.skip("the UTC day changed during the run: the window moved under the test")
    failing = [t for t in tenants if t.fails]
    assert len(failing) == len(HOSTILE_CASE_NAMES) - 2  # lying-date and huge-pages complete
    # Nightly: a night with a complete tenant exits 0; the last line still names them all.
    assert run.returncode == 0, run.stderr[-3000:]
    last = run.last_stderr_line()
    assert f"{len(failing)} of {len(tenants)} tenants failed: " in last
    syncs = {row["tenant_id"]: row for row in run.records("tenant_syncs")}
    assert set(syncs) == {t.tenant_id for t in tenants}
    for tenant in tenants:
        row = syncs[tenant.tenant_id]
        if tenant.fails:
            assert tenant.hostile is not None
            assert row["status"] == "failed", tenant.hostile
            names = reason_names(tenant.hostile, today)
            assert any(name in row["reason"] for name in names), (tenant.hostile, row["reason"])
            # No value of a failed tenant's backup history or counters was written.
            assert _tenant_records(run, "tenants", tenant.tenant_id) == []
            assert _tenant_records(run, "backup_summaries", tenant.tenant_id) == []
            continue
        assert row["status"] == "complete", (tenant.hostile, row["reason"])
        assert row["backup_last_day"] == today.isoformat()
        assert_tenants_exact(run, [tenant])
        backups = tenant.expected_backups(today=today)
        for stream in BACKUP_STREAMS:
            assert run.of_tenant(stream, tenant.tenant_id) == backups[stream], stream
        assert _tenant_records(run, "tenants", tenant.tenant_id) == [
            expected_tenant_record(
                tenant.tenant_id, tenant.served_counters(), emulator.base_url(tenant.tenant_id)
            )
        ]
    # The lying Date header is named once for its host, and not believed.
    liar = next(t for t in tenants if t.hostile == "lying-date")
    lying = "sent a Date header of 1970-01-01"
    warned = [line for line in run.stderr.splitlines() if lying in line]
    assert len(warned) == 1, warned
    assert emulator.base_url(liar.tenant_id) in warned[0]
    # Nothing holding tenant data was activated (a tenant failed): the seven roles only.
    assert [m["stream"] for m in run.messages if m["type"] == "ACTIVATE_VERSION"] == ["roles"]


def test_a_clean_night_after_makes_every_tenant_complete(
    hostile_fleet: tuple[FleetEmulator, list[EmulatedTenant]],
    catalog: dict[str, Any],
    tmp_path: Path,
) -> None:
    """The same tenants without their hostile cases: every one completes, exactly."""
    emulator, tenants = hostile_fleet
    for tenant in tenants:
        emulator.set_hostile(tenant.tenant_id, None)
    run = run_in_process(
        fleet_config(emulator, tenants, failure_mode="nightly", page_size=10),
        tmp_path,
        catalog=catalog,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert {row["status"] for row in run.records("tenant_syncs")} == {"complete"}
    assert "Date header" not in run.stderr
    assert {m["stream"] for m in run.messages if m["type"] == "ACTIVATE_VERSION"} == {
        "users",
        "role_memberships",
        "tenants",
        "roles",
    }


def test_a_day_outside_the_window_is_named_with_the_window() -> None:
    """The reason says the day and the days asked, so a person can see the clock's fault."""
    window = BackupWindow.ending(dt.date(2026, 12, 4), 7)
    item = {"date": "2099-01-01", "type": "MAIL", "backup": {"total": 1, "successful": 1,
            "partial": 0, "failed": 0}}  # fmt: skip
    with pytest.raises(BackupError) as caught:
        backup_summary_records([item], "t1", 1, window)
    assert "date 2099-01-01 is outside the days asked (2026-11-28 to 2026-12-04)" in str(
        caught.value
    )
