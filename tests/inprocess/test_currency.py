"""Per-tenant currency (docs/many-tenants.md): credentials first, tenant_syncs, bounded pages.

Over real HTTP against a fleet emulator, in-process. Every expectation comes from the
emulator's ground truth or from the configuration, never from the output.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from spanning_emulator import EmulatedTenant, FleetEmulator, expected_output, generate_users

from tests.emulator_requests import tenant_paths
from tests.hostile_server import HostileServer, Reply, Seen
from tests.run_inputs import fleet_config
from tests.tapdriver import run_in_process
from tests.taprun import TapRun

HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
PAGE_SIZE = 50
TENANT_DATA = ("users", "role_memberships", "tenants")


def make_tenants(sizes: list[int]) -> list[EmulatedTenant]:
    return [
        EmulatedTenant(
            tenant_id=f"c{index:02d}",
            users=generate_users(size, seed=500 + index),
            admin_email=f"admin@c{index}.example",
            api_key=f"c{index:02d}-key-7d1b-4c3e-9a6f-{index:012d}",
            host=HOSTS[index % len(HOSTS)],
        )
        for index, size in enumerate(sizes)
    ]


@pytest.fixture
def fleet() -> Iterator[tuple[FleetEmulator, list[EmulatedTenant]]]:
    tenants = make_tenants([120, 0, 75, 260, 5])
    emulator = FleetEmulator(tenants)
    emulator.start()
    yield emulator, tenants
    emulator.stop()


def config_for(emulator: FleetEmulator, tenants: list[EmulatedTenant], **more: Any) -> Any:
    return fleet_config(emulator, tenants, **{"page_size": PAGE_SIZE, **more})


def assert_complete(run: TapRun, tenant: EmulatedTenant) -> None:
    expected = expected_output(tenant.users, tenant_id=tenant.tenant_id)
    for stream in ("users", "role_memberships"):
        assert run.of_tenant(stream, tenant.tenant_id) == expected[stream], tenant.tenant_id
    assert len(run.of_tenant("tenants", tenant.tenant_id)) == 1
    record = run.syncs()[tenant.tenant_id]
    pages = max(1, math.ceil(len(tenant.users) / PAGE_SIZE))
    assert {k: record[k] for k in ("status", "reason", "users", "role_memberships")} == {
        "status": "complete",
        "reason": None,
        "users": len(expected["users"]),
        "role_memberships": len(expected["role_memberships"]),
    }
    assert (record["requests"], record["retries"]) == (1 + pages, 0)
    assert record["started_at"] <= record["finished_at"]


def test_every_record_carries_the_runs_version_and_tenant_syncs_closes_the_run(
    fleet: tuple[FleetEmulator, list[EmulatedTenant]], tmp_path: Path
) -> None:
    emulator, tenants = fleet
    run = run_in_process(config_for(emulator, tenants), tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    version = run.sync_version  # one version, in every record, equal to ACTIVATE_VERSION's
    for tenant in tenants:
        assert_complete(run, tenant)
    assert [r["tenant_id"] for r in run.records("tenant_syncs")] == [t.tenant_id for t in tenants]
    assert {r["sync_version"] for r in run.raw_records("tenant_syncs")} == {version}
    # After every other record; a history, never activated.
    records = [m for m in run.messages if m["type"] == "RECORD"]
    assert {m["stream"] for m in records[-len(tenants) :]} == {"tenant_syncs"}
    assert run.count("ACTIVATE_VERSION", "tenant_syncs") == 0
    for stream in (*TENANT_DATA, "roles"):
        assert run.count("ACTIVATE_VERSION", stream) == 1, stream
    # Credentials first: each tenant's first request is its counters.
    for tenant in tenants:
        mine = [r.path for r in emulator.requests if r.tenant_id == tenant.tenant_id]
        assert mine[0] == "/external/tenant"
        assert mine.count("/external/tenant") == 1


def test_a_refused_tenant_stops_the_run_before_any_record_naming_every_one(
    fleet: tuple[FleetEmulator, list[EmulatedTenant]], tmp_path: Path
) -> None:
    emulator, tenants = fleet
    config = config_for(emulator, tenants)
    config["tenant_api_keys"]["c02"] = "c02-wrong-0000-0000-000000000000"
    config["tenant_api_keys"]["c04"] = "c04-wrong-0000-0000-000000000000"
    run = run_in_process(config, tmp_path)
    assert run.returncode == 1
    assert run.count("RECORD") == 0
    assert run.last_stderr_line().endswith(
        "Credentials refused for 2 of 5 tenants, so nothing was synced: c02, c04 (fix their "
        "keys, or set failure_mode to isolate or nightly to sync the others without them)"
    )
    # The refused tenants were asked nothing but their credentials (pages of the others
    # fetched ahead, while the last credentials were in flight, are dropped unwritten).
    for tenant in tenants:
        paths = tenant_paths(emulator, tenant)
        assert paths[:1] == ["/external/tenant"], tenant.tenant_id
        if tenant.tenant_id in ("c02", "c04"):
            assert paths == ["/external/tenant"], tenant.tenant_id


def test_with_failure_mode_isolate_a_refused_tenant_fails_alone_and_is_recorded(
    fleet: tuple[FleetEmulator, list[EmulatedTenant]], tmp_path: Path
) -> None:
    emulator, tenants = fleet
    config = config_for(emulator, tenants, failure_mode="isolate")
    config["tenant_api_keys"]["c03"] = "c03-wrong-0000-0000-000000000000"
    run = run_in_process(config, tmp_path)
    assert run.returncode == 1
    assert run.last_stderr_line().endswith("1 of 5 tenants failed: c03 (credentials refused)")
    for tenant in tenants:
        if tenant.tenant_id != "c03":
            assert_complete(run, tenant)
    assert run.of_tenant("users", "c03") == []
    assert run.of_tenant("tenants", "c03") == []
    refused = run.syncs()["c03"]
    assert refused["status"] == "failed"
    assert refused["reason"].startswith("Spanning refused the credentials (HTTP 401")
    assert (refused["users"], refused["role_memberships"], refused["requests"]) == (0, 0, 1)
    # Nothing holding tenant data is activated; tenant_syncs never is.
    assert {m["stream"] for m in run.messages if m["type"] == "ACTIVATE_VERSION"} == {"roles"}


def test_the_largest_tenant_starts_first(
    fleet: tuple[FleetEmulator, list[EmulatedTenant]], tmp_path: Path
) -> None:
    emulator, tenants = fleet
    run = run_in_process(config_for(emulator, tenants, max_concurrent_tenants=1), tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    # One at a time: every tenant's counters, then the users, largest first.
    firsts = []
    for record in emulator.requests:
        if record.path.startswith("/external/users") and record.tenant_id not in firsts:
            firsts.append(record.tenant_id)
    by_size = sorted(tenants, key=lambda t: len(t.users), reverse=True)
    assert firsts == [t.tenant_id for t in by_size]
    paths = [r.path for r in emulator.requests]
    assert paths[: len(tenants)] == ["/external/tenant"] * len(tenants)


def endless(users: list[dict[str, object]], page_size: int, *, fresh: bool) -> Any:
    """A tenant whose pages never end, each with a fresh nextLink: pages A and B in turn
    (`fresh` False), or new users on every page (`fresh` True); its counter says
    `len(users)`."""
    halves = [users[:page_size], users[page_size:]]

    def respond(server: HostileServer, seen: Seen) -> Reply:
        if seen.path == "/external/tenant":
            return Reply(200, {"users": len(users), "licenses": 10, "status": "paid"})
        page = len([s for s in server.requests if s.path == "/external/users"])
        listed = generate_users(page_size, seed=1000 + page) if fresh else halves[page % 2 - 1]
        return Reply(200, {"users": listed, "nextLink": f"/external/users?page={page + 1}"})

    return respond


@pytest.mark.parametrize(
    ("fresh", "reason", "pages"),
    [
        # Pages A, B, A: page 3 repeats page 1.
        (False, "pagination not advancing", 3),
        # New users on every page: twice the 2 pages its counter needs, plus 2.
        (True, "pagination runaway", 6),
    ],
)
def test_a_tenant_whose_pages_never_end_fails_alone_within_a_bound(
    fleet: tuple[FleetEmulator, list[EmulatedTenant]],
    tmp_path: Path,
    fresh: bool,
    reason: str,
    pages: int,
) -> None:
    emulator, tenants = fleet
    looping_users = generate_users(2 * PAGE_SIZE, seed=77)
    config = config_for(emulator, tenants)
    responder = endless(looping_users, PAGE_SIZE, fresh=fresh)
    with HostileServer(responder, host="127.0.0.3") as server:
        entry = {"tenant_id": "endless", "admin_email": "a@x.example", "base_url": server.base_url}
        config["tenants"].append(entry)
        config["tenant_api_keys"]["endless"] = "endless-key-0000-0000-0000"
        run = run_in_process(config, tmp_path)
        asked = [s.path for s in server.requests if s.path == "/external/users"]
    assert run.returncode == 1
    assert run.last_stderr_line().endswith(f"1 of 6 tenants failed: endless ({reason})")
    assert len(asked) == pages
    for tenant in tenants:
        expected = expected_output(tenant.users, tenant_id=tenant.tenant_id)
        assert run.of_tenant("users", tenant.tenant_id) == expected["users"]
    assert run.syncs()["endless"]["status"] == "failed"
