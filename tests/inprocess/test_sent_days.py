"""The histories send only the days that changed (docs/backup-health.md, "Only what changed").

Night after night against one fleet emulator, each night given the state the night before
wrote: every record sent is checked against the emulator's own model of each tenant's
history, and the rows a warehouse would hold (upserted by key) against those of the same
nights sent in full.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from spanning_emulator import EmulatedTenant, FaultPlan, FleetEmulator, generate_fleet, utc_today

from tests.run_inputs import catalog_with_backups, fleet_config
from tests.tapdriver import run_in_process
from tests.taprun import TapRun

BACKUP_STREAMS = ("backup_summaries", "user_backups")
KEYS = {
    "backup_summaries": ("tenant_id", "date", "type"),
    "user_backups": ("tenant_id", "msId", "date", "type"),
}
# Yesterday, then today: a server's clock more than a day off is not trusted (clock.py).
NIGHT_2 = utc_today()
NIGHT_1 = NIGHT_2 - dt.timedelta(days=1)
PAGE_SIZE = 10

Rows = dict[str, dict[tuple[Any, ...], dict[str, Any]]]


@pytest.fixture(scope="module")
def catalog() -> dict[str, Any]:
    return catalog_with_backups()


@pytest.fixture
def fleet() -> Iterator[tuple[FleetEmulator, list[EmulatedTenant]]]:
    tenants = generate_fleet(6, seed=11, hosts=("127.0.0.1", "127.0.0.2"))
    emulator = FleetEmulator(tenants, today=NIGHT_1)
    emulator.start()
    yield emulator, tenants
    emulator.stop()


def night(
    emulator: FleetEmulator,
    tenants: list[EmulatedTenant],
    catalog: dict[str, Any],
    folder: Path,
    state: dict[str, Any] | None,
    **settings: Any,
) -> TapRun:
    """One run of the tap, given `state` (None: none)."""
    folder.mkdir()
    args: list[str] = []
    if state is not None:
        state_file = folder / "state.json"
        state_file.write_text(json.dumps(state), encoding="utf-8")
        args = ["--state", str(state_file)]
    config = fleet_config(emulator, tenants, page_size=PAGE_SIZE, **settings)
    run = run_in_process(config, folder, *args, catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def last_state(run: TapRun) -> dict[str, Any]:
    states = [m["value"] for m in run.messages if m["type"] == "STATE"]
    assert states, "the run writes its state"
    return states[-1]


def sent_days(state: dict[str, Any], stream: str) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = state["bookmarks"][stream]["sent_days"]
    return found


def expected(tenant: EmulatedTenant, today: dt.date) -> dict[str, list[dict[str, Any]]]:
    """A tenant's whole window of both histories, as the emulator models it on `today`."""
    return tenant.expected_backups(days=7, today=today)


def in_key_order(stream: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A history's records by key: a tenant's new days are written as they come, the days
    sent before once its last page has come (docs/backup-health.md, "Only what changed")."""
    return sorted(records, key=lambda record: tuple(record[key] for key in KEYS[stream]))


def upsert(rows: Rows, stream: str, records: list[dict[str, Any]]) -> None:
    """What a loader does with a history's records: one row per key, the last one sent."""
    table = rows.setdefault(stream, {})
    for record in records:
        table[tuple(record[key] for key in KEYS[stream])] = record


def test_nights_send_only_the_days_that_changed_and_load_as_a_full_reload(
    fleet: tuple[FleetEmulator, list[EmulatedTenant]], catalog: dict[str, Any], tmp_path: Path
) -> None:
    emulator, tenants = fleet
    settled = tenants[2]
    incremental: Rows = {}
    full: Rows = {}

    # Night 1, no state: every day of every tenant.
    first = night(emulator, tenants, catalog, tmp_path / "night-1", None)
    for tenant in tenants:
        truth = expected(tenant, NIGHT_1)
        for stream in BACKUP_STREAMS:
            assert first.of_tenant(stream, tenant.tenant_id) == truth[stream]
            upsert(full, stream, truth[stream])
    for stream in BACKUP_STREAMS:
        upsert(incremental, stream, first.records(stream))
        days = sent_days(last_state(first), stream)
        assert list(days) == [t.tenant_id for t in tenants]
        window = [str(NIGHT_1 - dt.timedelta(days=back)) for back in range(6, -1, -1)]
        for tenant in tenants:
            assert sorted(days[tenant.tenant_id]) == window, (stream, tenant.tenant_id)

    # The same day again, nothing changed: nothing of either history is sent, and the state
    # is what it was. The other streams are sent in full, as ever.
    again = night(emulator, tenants, catalog, tmp_path / "again", last_state(first))
    for stream in BACKUP_STREAMS:
        assert again.records(stream) == []
        assert sent_days(last_state(again), stream) == sent_days(last_state(first), stream)
    for tenant in tenants:
        users = again.of_tenant("users", tenant.tenant_id)
        assert users == first.of_tenant("users", tenant.tenant_id)
    assert "sent 0 of 42 tenant days read; 42 unchanged" in again.stderr

    # Night 2: a new day for every tenant, the oldest leaves the window, and one tenant's
    # day of night 1 settles into other counts. Exactly those days are sent.
    emulator.set_today(NIGHT_2)
    emulator.set_backup_options(settled.tenant_id, settle_day=NIGHT_1)
    tenants[2] = settled = dataclasses.replace(settled, settle_day=NIGHT_1)
    second = night(emulator, tenants, catalog, tmp_path / "night-2", last_state(again))
    for tenant in tenants:
        truth = expected(tenant, NIGHT_2)
        changed = {str(NIGHT_2)} | ({str(NIGHT_1)} if tenant is settled else set())
        for stream in BACKUP_STREAMS:
            sent = [r for r in truth[stream] if r["date"] in changed]
            got = second.of_tenant(stream, tenant.tenant_id)
            assert in_key_order(stream, got) == in_key_order(stream, sent), (stream, tenant)
            upsert(full, stream, truth[stream])
    for stream in BACKUP_STREAMS:
        upsert(incremental, stream, second.records(stream))
        days = sent_days(last_state(second), stream)
        assert all(min(d) == str(NIGHT_2 - dt.timedelta(days=6)) for d in days.values())
    # The warehouse holds what the same nights sent in full would: every day of night 1
    # (the one that left the window too), night 2's new day and the settled counts.
    assert incremental == full
    assert len(full["backup_summaries"]) == sum(
        len(expected(t, NIGHT_1)["backup_summaries"]) for t in tenants
    ) + sum(
        len([r for r in expected(t, NIGHT_2)["backup_summaries"] if r["date"] == str(NIGHT_2)])
        for t in tenants
    )


def test_a_tenant_that_fails_keeps_its_digests_and_sends_its_days_again(
    fleet: tuple[FleetEmulator, list[EmulatedTenant]], catalog: dict[str, Any], tmp_path: Path
) -> None:
    emulator, tenants = fleet
    failing = tenants[0]  # pages enough to fail after its first
    assert failing.user_count > 2 * PAGE_SIZE
    first = night(emulator, tenants, catalog, tmp_path / "night-1", None)

    emulator.set_today(NIGHT_2)
    emulator.clear_requests()
    # Its credentials, its summary and its first page answer; then every request fails.
    emulator.set_faults(failing.tenant_id, FaultPlan(at={n: "500" for n in range(4, 200)}))
    broken = night(
        emulator,
        tenants,
        catalog,
        tmp_path / "night-2",
        last_state(first),
        failure_mode="nightly",
        max_retries=1,
    )
    assert broken.syncs()[failing.tenant_id]["status"] == "failed"
    # What it read is sent (its first page's days, every one of them), and its digests stay
    # those of night 1; the others moved on.
    truth = expected(failing, NIGHT_2)["user_backups"]
    read = broken.of_tenant("user_backups", failing.tenant_id)
    assert read
    assert all(record in truth for record in read)
    assert {r["date"] for r in read} == {r["date"] for r in truth}
    for stream in BACKUP_STREAMS:
        before, after = sent_days(last_state(first), stream), sent_days(last_state(broken), stream)
        assert after[failing.tenant_id] == before[failing.tenant_id], stream
        for tenant in tenants[1:]:
            assert after[tenant.tenant_id] != before[tenant.tenant_id], (stream, tenant)

    # Healthy again: its new day is sent again, in full; the others send nothing.
    emulator.set_faults(failing.tenant_id, FaultPlan())
    healed = night(emulator, tenants, catalog, tmp_path / "night-3", last_state(broken))
    for stream in BACKUP_STREAMS:
        new_day = [r for r in expected(failing, NIGHT_2)[stream] if r["date"] == str(NIGHT_2)]
        assert healed.records(stream) == new_day, stream


def test_full_refresh_sends_every_day_and_writes_the_state(
    fleet: tuple[FleetEmulator, list[EmulatedTenant]], catalog: dict[str, Any], tmp_path: Path
) -> None:
    emulator, tenants = fleet
    first = night(emulator, tenants, catalog, tmp_path / "night-1", None)
    again = night(
        emulator, tenants, catalog, tmp_path / "again", last_state(first), full_refresh=True
    )
    for stream in BACKUP_STREAMS:
        for tenant in tenants:
            records = again.of_tenant(stream, tenant.tenant_id)
            assert records == first.of_tenant(stream, tenant.tenant_id)
            assert records == expected(tenant, NIGHT_1)[stream]
        assert sent_days(last_state(again), stream) == sent_days(last_state(first), stream)


def test_the_state_follows_the_records_it_covers_and_keeps_nothing_else(
    fleet: tuple[FleetEmulator, list[EmulatedTenant]], catalog: dict[str, Any], tmp_path: Path
) -> None:
    emulator, tenants = fleet
    first = night(emulator, tenants, catalog, tmp_path / "night-1", None)
    # A tenant no longer configured leaves the state; a stranger's bookmarks are not kept.
    given = last_state(first)
    given["bookmarks"]["users"] = {"replication_key_value": "not ours"}
    gone = tenants.pop()
    emulator.set_today(NIGHT_2)
    second = night(emulator, tenants, catalog, tmp_path / "night-2", given)
    state = last_state(second)
    assert set(state["bookmarks"]) <= set(BACKUP_STREAMS) | {
        "users",
        "role_memberships",
        "role_membership_history",
        "tenants",
        "roles",
        "tenant_syncs",
    }
    assert "replication_key_value" not in json.dumps(state)
    for stream in BACKUP_STREAMS:
        assert gone.tenant_id not in sent_days(state, stream)
        # Every STATE that holds this night's digests comes after the stream's last record.
        last_record = max(
            index
            for index, m in enumerate(second.messages)
            if m["type"] == "RECORD" and m["stream"] == stream
        )
        night_2_digests = sent_days(state, stream)
        for index, message in enumerate(second.messages):
            if message["type"] == "STATE":
                held = message["value"].get("bookmarks", {}).get(stream, {})
                if held.get("sent_days") == night_2_digests:
                    assert index > last_record, stream


def test_under_test_every_record_read_is_sent_and_no_digest_is_kept(
    fleet: tuple[FleetEmulator, list[EmulatedTenant]], catalog: dict[str, Any], tmp_path: Path
) -> None:
    emulator, tenants = fleet
    config = fleet_config(emulator, tenants, page_size=PAGE_SIZE)
    run = run_in_process(config, tmp_path, "--test=all", catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.records("user_backups")
    assert "sent_days" not in json.dumps([m for m in run.messages if m["type"] == "STATE"])


def batch_records(run: TapRun, stream: str) -> list[dict[str, Any]]:
    """The records of a stream's BATCH files, sync_version aside."""
    found: list[dict[str, Any]] = []
    for message in run.messages:
        if message["type"] == "BATCH" and message["stream"] == stream:
            for uri in message["manifest"]:
                with gzip.open(urlsplit(uri).path, "rt", encoding="utf-8") as lines:
                    found.extend(json.loads(line) for line in lines)
    return [{k: v for k, v in r.items() if k != "sync_version"} for r in found]


def test_batch_files_hold_only_the_days_that_changed_and_the_state_follows_them(
    fleet: tuple[FleetEmulator, list[EmulatedTenant]], catalog: dict[str, Any], tmp_path: Path
) -> None:
    emulator, tenants = fleet

    def batch_config(night: str) -> dict[str, Any]:
        root = (tmp_path / "batches" / night).as_uri()
        return {
            "encoding": {"format": "jsonl", "compression": "gzip"},
            "storage": {"root": root, "prefix": "spanning-"},
        }

    first = night(
        emulator, tenants, catalog, tmp_path / "night-1", None, batch_config=batch_config("1")
    )
    emulator.set_today(NIGHT_2)
    second = night(
        emulator,
        tenants,
        catalog,
        tmp_path / "night-2",
        last_state(first),
        batch_config=batch_config("2"),
    )
    for stream in BACKUP_STREAMS:
        want = [r for t in tenants for r in expected(t, NIGHT_1)[stream]]
        assert in_key_order(stream, batch_records(first, stream)) == in_key_order(stream, want)
        new_day = [
            r for t in tenants for r in expected(t, NIGHT_2)[stream] if r["date"] == str(NIGHT_2)
        ]
        got = batch_records(second, stream)
        assert in_key_order(stream, got) == in_key_order(stream, new_day)
        last_batch = max(
            index
            for index, m in enumerate(second.messages)
            if m["type"] == "BATCH" and m["stream"] == stream
        )
        digests = sent_days(last_state(second), stream)
        assert digests != sent_days(last_state(first), stream)
        for index, message in enumerate(second.messages):
            held = message.get("value", {}).get("bookmarks", {}).get(stream, {})
            if message["type"] == "STATE" and held.get("sent_days") == digests:
                assert index > last_batch, stream
