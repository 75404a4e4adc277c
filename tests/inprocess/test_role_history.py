"""role_membership_history keeps each tenant's role set, sent again only when it changed,
and tenant_syncs keeps each run's name, day and license counters (docs/streams.md, "The
histories").

Night after night against one fleet emulator, each night given the state the night before
wrote; every set sent is compared whole with the emulator's model of the tenant's
memberships (`expected_output`), and every tenant_syncs record with the tenant's
configured name, the emulator's today and the counters it serves.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from spanning_emulator import (
    EmulatedTenant,
    FaultPlan,
    FleetEmulator,
    expected_output,
    generate_fleet,
    utc_today,
)

from tests.run_inputs import discovered_catalog, fleet_config, set_selected
from tests.tapdriver import run_in_process
from tests.taprun import TapRun

STREAM = "role_membership_history"
NIGHT_2 = utc_today()
NIGHT_1 = NIGHT_2 - dt.timedelta(days=1)
PAGE_SIZE = 10
COUNTERS = {
    "licenses": "licenses",
    "archived_licenses": "archivedLicenses",
    "assigned_standard": "assignedStandard",
    "assigned_archive": "assignedArchive",
}


@pytest.fixture(scope="module")
def catalog() -> dict[str, Any]:
    found = discovered_catalog()
    set_selected(found, STREAM, [], True)
    return found


@pytest.fixture
def fleet() -> Iterator[tuple[FleetEmulator, list[EmulatedTenant]]]:
    tenants = generate_fleet(4, seed=25, hosts=("127.0.0.1", "127.0.0.2"))
    emulator = FleetEmulator(tenants, today=NIGHT_1)
    emulator.start()
    yield emulator, tenants
    emulator.stop()


def names(tenants: list[EmulatedTenant]) -> dict[str, str]:
    return {tenant.tenant_id: f"Client {index} & Söhne" for index, tenant in enumerate(tenants)}


def night(
    emulator: FleetEmulator,
    tenants: list[EmulatedTenant],
    catalog: dict[str, Any],
    folder: Path,
    state: dict[str, Any] | None,
    **settings: Any,
) -> TapRun:
    folder.mkdir()
    args: list[str] = []
    if state is not None:
        state_file = folder / "state.json"
        state_file.write_text(json.dumps(state), encoding="utf-8")
        args = ["--state", str(state_file)]
    config = fleet_config(emulator, tenants, page_size=PAGE_SIZE, **settings)
    for entry in config["tenants"]:
        entry["name"] = names(tenants)[entry["tenant_id"]]
    run = run_in_process(config, folder, *args, catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def last_state(run: TapRun) -> dict[str, Any]:
    return [m["value"] for m in run.messages if m["type"] == "STATE"][-1]


def role_set(emulator: FleetEmulator, tenant_id: str) -> list[dict[str, Any]]:
    """The tenant's memberships as the emulator models them, in API order."""
    tenant = emulator.tenant(tenant_id)
    return expected_output(tenant.users, tenant_id)["role_memberships"]


def tags_of(user: dict[str, object]) -> list[str]:
    tags = user.get("tags")
    return [str(tag) for tag in tags] if isinstance(tags, list) else []


def sent_sets(run: TapRun) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for record in run.records(STREAM):
        found.setdefault(record["tenant_id"], []).append(record)
    return found


def assert_syncs(
    run: TapRun, emulator: FleetEmulator, today: dt.date, sent: dict[str, bool | None]
) -> None:
    """Every tenant_syncs record: its name, day, counters and role_set_sent."""
    syncs = run.syncs()
    assert set(syncs) == set(sent)
    for tenant_id, record in syncs.items():
        tenant = emulator.tenant(tenant_id)
        complete = record["status"] == "complete"
        served = tenant.served_counters()
        assert record["name"] == names(emulator.tenants)[tenant_id]
        assert record["day"] == today.isoformat()
        assert {column: record[column] for column in COUNTERS} == {
            column: served[counter] if complete else record[column]
            for column, counter in COUNTERS.items()
        }
        assert record["role_set_sent"] is sent[tenant_id], tenant_id


def test_each_set_is_sent_when_it_changed_and_only_then(
    fleet: tuple[FleetEmulator, list[EmulatedTenant]], catalog: dict[str, Any], tmp_path: Path
) -> None:
    emulator, tenants = fleet
    ids = [tenant.tenant_id for tenant in tenants]
    promoted, emptied, failing, quiet = ids

    # Night 1, no state: every set, whole; the tenants stream names each client.
    first = night(emulator, tenants, catalog, tmp_path / "night-1", None)
    assert sent_sets(first) == {tenant_id: role_set(emulator, tenant_id) for tenant_id in ids}
    assert_syncs(first, emulator, NIGHT_1, dict.fromkeys(ids, True))
    assert {r["tenant_id"]: r["name"] for r in first.records("tenants")} == names(tenants)
    assert STREAM in json.dumps(last_state(first)["bookmarks"])
    # A history: activation is on, and it is never activated (that would delete the sets).
    assert first.count("ACTIVATE_VERSION", "users") > 0
    assert first.count("ACTIVATE_VERSION", STREAM) == 0

    # Night 2, nothing changed: no set is sent.
    emulator.set_today(NIGHT_2)
    second = night(emulator, tenants, catalog, tmp_path / "night-2", last_state(first))
    assert sent_sets(second) == {}
    assert_syncs(second, emulator, NIGHT_2, dict.fromkeys(ids, False))

    # Night 3: a user of one tenant becomes Global Admin; another tenant's users are all
    # gone (an empty set: sent, with no rows); a third fails after a change of its own.
    users = [dict(user) for user in emulator.tenant(promoted).users]
    plain = next(u for u in users if "Global Admin" not in tags_of(u))
    plain["tags"] = [*tags_of(plain), "Global Admin"]
    emulator.set_users(promoted, users)
    emulator.set_users(emptied, [])
    failing_users = [dict(u) for u in emulator.tenant(failing).users]
    failing_users[0]["tags"] = ["Spanning Admin"]
    emulator.set_users(failing, failing_users)
    emulator.set_faults(failing, FaultPlan(at={n: "500" for n in range(2, 400)}))
    third = night(
        emulator,
        tenants,
        catalog,
        tmp_path / "night-3",
        last_state(second),
        failure_mode="nightly",
        max_retries=1,
    )
    assert third.syncs()[failing]["status"] == "failed"
    sets = sent_sets(third)
    sets.pop(failing, None)  # a failed run's set is not a set: the warehouse ignores it
    assert sets == {promoted: role_set(emulator, promoted)}
    assert role_set(emulator, emptied) == []
    assert_syncs(
        third, emulator, NIGHT_2, {promoted: True, emptied: True, failing: None, quiet: False}
    )

    # Night 4, healthy again: the failed tenant's changed set goes out now (its digest was
    # kept); then full_refresh sends every set, and a set unchanged since is not sent.
    emulator.set_faults(failing, FaultPlan())
    fourth = night(emulator, tenants, catalog, tmp_path / "night-4", last_state(third))
    assert sent_sets(fourth) == {failing: role_set(emulator, failing)}
    full = night(
        emulator, tenants, catalog, tmp_path / "night-5", last_state(fourth), full_refresh=True
    )
    assert sent_sets(full) == {
        tenant_id: role_set(emulator, tenant_id) for tenant_id in ids if tenant_id != emptied
    }
    assert_syncs(full, emulator, NIGHT_2, dict.fromkeys(ids, True))
    after = night(emulator, tenants, catalog, tmp_path / "night-6", last_state(full))
    assert sent_sets(after) == {}


def test_under_test_every_set_is_sent_and_the_state_is_left_alone(
    fleet: tuple[FleetEmulator, list[EmulatedTenant]], catalog: dict[str, Any], tmp_path: Path
) -> None:
    emulator, tenants = fleet
    first = night(emulator, tenants, catalog, tmp_path / "night-1", None)
    folder = tmp_path / "test"
    folder.mkdir()
    state_file = folder / "state.json"
    state_file.write_text(json.dumps(last_state(first)), encoding="utf-8")
    config = fleet_config(emulator, tenants, page_size=PAGE_SIZE)
    run = run_in_process(config, folder, "--test", "--state", str(state_file), catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.records(STREAM), "--test sends what it read, unchanged or not"
    assert all(m["type"] != "STATE" or STREAM not in m["value"] for m in run.messages)
