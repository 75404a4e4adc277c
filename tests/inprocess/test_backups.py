"""Backup health (docs/backup-health.md): backup_summaries and user_backups, in-process.

Over real HTTP against a fleet emulator whose tenants spell their backup status every way
seen (ISO dates and date-times, MM/DD/YYYY, epoch milliseconds as numbers and as text,
counts as text). Every expectation is the emulator's own model of the history, per tenant.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jsonschema  # type: ignore[import-untyped]
import pytest
from spanning_emulator import (
    DATE_FORMATS,
    EmulatedTenant,
    FleetEmulator,
    expected_output,
    generate_fleet,
    utc_today,
)

from tests.run_inputs import catalog_with_backups, fleet_config
from tests.tapdriver import run_in_process

HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
PAGE_SIZE = 40
BACKUP_STREAMS = ("backup_summaries", "user_backups")


@pytest.fixture(scope="module")
def catalog() -> dict[str, Any]:
    """Every stream selected, the backup histories (off by default) too."""
    return catalog_with_backups()


@pytest.fixture
def fleet() -> Iterator[tuple[FleetEmulator, list[EmulatedTenant]]]:
    tenants = generate_fleet(12, seed=5, hosts=HOSTS)
    emulator = FleetEmulator(tenants)
    emulator.start()
    yield emulator, tenants
    emulator.stop()


def config_for(emulator: FleetEmulator, tenants: list[EmulatedTenant], **more: Any) -> Any:
    return fleet_config(emulator, tenants, **{"page_size": PAGE_SIZE, **more})


def test_every_day_of_every_tenant_lands_whatever_its_spelling(
    fleet: tuple[FleetEmulator, list[EmulatedTenant]], catalog: dict[str, Any], tmp_path: Path
) -> None:
    emulator, tenants = fleet
    assert {t.date_format for t in tenants} >= set(DATE_FORMATS) - {"broken"}
    assert any(t.counts_as_text for t in tenants)
    run = run_in_process(config_for(emulator, tenants), tmp_path, catalog=catalog)
    assert run.returncode == 0, run.stderr[-2000:]
    for tenant in tenants:
        expected = tenant.expected_backups(days=7)
        for stream in BACKUP_STREAMS:
            assert run.of_tenant(stream, tenant.tenant_id) == expected[stream], (
                tenant.tenant_id,
                stream,
            )
        # The users and their roles are the same as without backups: backupSummary
        # never reaches users.
        truth = expected_output(tenant.users, tenant_id=tenant.tenant_id)
        for stream in ("users", "role_memberships"):
            assert run.of_tenant(stream, tenant.tenant_id) == truth[stream]
    # Histories: one SCHEMA each, never an ACTIVATE_VERSION.
    for stream in BACKUP_STREAMS:
        assert run.count("SCHEMA", stream) == 1
        assert run.count("ACTIVATE_VERSION", stream) == 0
    assert run.count("ACTIVATE_VERSION", "users") == 1


def test_requests_are_one_summary_a_tenant_and_the_same_users_pages(
    fleet: tuple[FleetEmulator, list[EmulatedTenant]], catalog: dict[str, Any], tmp_path: Path
) -> None:
    emulator, tenants = fleet
    run = run_in_process(config_for(emulator, tenants), tmp_path, catalog=catalog)
    assert run.returncode == 0, run.stderr[-2000:]
    today = utc_today()
    start = dt.datetime.combine(today - dt.timedelta(days=6), dt.time.min, dt.timezone.utc)
    window = {"start": str(int(start.timestamp() * 1000))}
    for tenant in tenants:
        mine = [r.path for r in emulator.requests if r.tenant_id == tenant.tenant_id]
        summaries = [p for p in mine if p.startswith("/external/tenant/backups/summary")]
        users = [p for p in mine if p.startswith("/external/users")]
        assert mine[0] == "/external/tenant"
        assert len(summaries) == 1
        assert len(users) == max(1, math.ceil(len(tenant.users) / PAGE_SIZE))
        assert len(mine) == 2 + len(users)
        # Every users request asks for the same days as the summary.
        for path in [*summaries, *users]:
            query = dict(parse_qsl(urlsplit(path).query))
            assert query["start"] == window["start"], path
            assert int(query["end"]) == int(window["start"]) + 7 * 86_400_000 - 1, path
        assert all("status=true" in path for path in users)


def test_without_the_backup_streams_nothing_about_backups_is_asked(
    fleet: tuple[FleetEmulator, list[EmulatedTenant]], tmp_path: Path
) -> None:
    emulator, tenants = fleet
    run = run_in_process(config_for(emulator, tenants), tmp_path)  # the default selection
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.records("user_backups") == run.records("backup_summaries") == []
    paths = [r.path for r in emulator.requests]
    assert not any("backups" in path or "start=" in path for path in paths)
    assert all("status=false" in path for path in paths if path.startswith("/external/users"))


def test_backup_days_and_the_servers_today_set_the_window(
    fleet: tuple[FleetEmulator, list[EmulatedTenant]], catalog: dict[str, Any], tmp_path: Path
) -> None:
    emulator, tenants = fleet
    # The server's clock is a day behind: its Date header says which day is today.
    behind = utc_today() - dt.timedelta(days=1)
    emulator.set_today(behind)
    run = run_in_process(config_for(emulator, tenants, backup_days=3), tmp_path, catalog=catalog)
    assert run.returncode == 0, run.stderr[-2000:]
    for tenant in tenants:
        expected = tenant.expected_backups(days=3, today=behind)
        for stream in BACKUP_STREAMS:
            assert run.of_tenant(stream, tenant.tenant_id) == expected[stream]
    days = {r["date"] for r in run.records("backup_summaries")}
    assert days == {(behind - dt.timedelta(days=n)).isoformat() for n in range(3)}
    assert {r["backup_last_day"] for r in run.records("tenant_syncs")} == {behind.isoformat()}
    assert "Date header" not in run.stderr


def test_a_server_clock_more_than_a_day_off_is_not_trusted(
    fleet: tuple[FleetEmulator, list[EmulatedTenant]], catalog: dict[str, Any], tmp_path: Path
) -> None:
    emulator, tenants = fleet
    # Two days behind: the window ends on this machine's today, and the host is named once.
    today = utc_today()
    behind = today - dt.timedelta(days=2)
    emulator.set_today(behind)
    run = run_in_process(config_for(emulator, tenants, backup_days=3), tmp_path, catalog=catalog)
    assert run.returncode == 0, run.stderr[-2000:]
    assert {r["backup_last_day"] for r in run.records("tenant_syncs")} == {today.isoformat()}
    warnings = [line for line in run.stderr.splitlines() if "more than a day from" in line]
    # One line a host, however many of its tenants answered.
    assert len(warnings) == len(emulator.base_urls) > 1, warnings
    for base_url in emulator.base_urls:
        assert sum(f"Host {base_url} sent a Date header" in line for line in warnings) == 1
    assert all(f"ends on this machine's today ({today.isoformat()})" in w for w in warnings)
    # The server holds days up to its own today: of the three asked, only that one.
    for tenant in tenants:
        expected = tenant.expected_backups(days=1, today=behind)
        for stream in BACKUP_STREAMS:
            assert run.of_tenant(stream, tenant.tenant_id) == expected[stream]


def test_a_tenant_with_an_unreadable_date_fails_alone(
    fleet: tuple[FleetEmulator, list[EmulatedTenant]], catalog: dict[str, Any], tmp_path: Path
) -> None:
    emulator, tenants = fleet
    broken = tenants[4]
    emulator.set_backup_options(broken.tenant_id, date_format="broken")
    run = run_in_process(config_for(emulator, tenants), tmp_path, catalog=catalog)
    assert run.returncode == 1
    assert run.last_stderr_line().endswith(
        f"1 of 12 tenants failed: {broken.tenant_id} (unreadable backup status)"
    )
    # The reason names the field, never its content.
    assert "date is not a date the tap reads" in run.stderr
    assert "someday" not in run.stderr
    for tenant in tenants:
        if tenant is broken:
            assert run.of_tenant("users", tenant.tenant_id) == []
            continue
        expected = tenant.expected_backups(days=7)
        for stream in BACKUP_STREAMS:
            assert run.of_tenant(stream, tenant.tenant_id) == expected[stream]
    syncs = {r["tenant_id"]: r["status"] for r in run.records("tenant_syncs")}
    assert syncs == {t.tenant_id: "failed" if t is broken else "complete" for t in tenants}


def test_every_record_of_every_stream_fits_the_schema_sent_before_it(
    fleet: tuple[FleetEmulator, list[EmulatedTenant]], catalog: dict[str, Any], tmp_path: Path
) -> None:
    """target-postgres runs with validate_records false (meltano.yml): the tap's records are
    checked here, every one against its stream's SCHEMA message, formats included, over a
    fleet that spells its backup status every way seen."""
    emulator, tenants = fleet
    run = run_in_process(config_for(emulator, tenants), tmp_path, catalog=catalog)
    assert run.returncode == 0, run.stderr[-2000:]
    validators: dict[str, Any] = {}
    checked: Counter[str] = Counter()
    for message in run.messages:
        if message["type"] == "SCHEMA":
            validator = jsonschema.validators.validator_for(message["schema"])
            validators[message["stream"]] = validator(
                message["schema"], format_checker=validator.FORMAT_CHECKER
            )
        elif message["type"] == "RECORD":
            validators[message["stream"]].validate(message["record"])
            checked[message["stream"]] += 1
    assert set(checked) == set(validators)
    assert len(checked) == len(catalog["streams"])
