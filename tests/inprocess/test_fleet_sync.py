"""Many tenants in one run (docs/many-tenants.md): a fleet lands whole, each tenant's
credentials go only to its own host, tenants are fetched side by side, and one emulator
tenant is the fleet of one.

Over real HTTP, against a fleet emulator; the tap runs in-process (`tap_spanning.tap.main`
with the same argv, config file and environment). Every expectation comes from the
emulator's ground truth per tenant.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from spanning_emulator import (
    SpanningEmulator,
    expected_output,
    generate_users,
)

from tests.emulator_requests import paths_of, tenant_paths
from tests.fleet_helpers import (
    TENANT_DATA,
    activated,
    assert_tenant_complete,
    contract_paths,
    fleet_config,
    make_tenants,
    records_of,
    tenant_syncs,
    users_pages,
)
from tests.tapdriver import run_in_process


def test_a_fleet_lands_whole_per_tenant_with_one_schema_and_activation_per_stream(
    fleet_of: Any, tmp_path: Path
) -> None:
    tenants = make_tenants(12)
    emulator = fleet_of(tenants)
    run = run_in_process(fleet_config(emulator, tenants), tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    for tenant in tenants:
        assert_tenant_complete(run, tenant, emulator)
    assert len(run.records("users")) == sum(len(t.users) for t in tenants)
    assert len(run.records("roles")) == 7
    for stream in ("users", "role_memberships", "tenants", "roles"):
        assert run.count("SCHEMA", stream) == 1, stream
        assert run.count("ACTIVATE_VERSION", stream) == 1, stream
    # Activation after the stream's last record.
    for stream in TENANT_DATA:
        positions = [i for i, m in enumerate(run.messages) if m.get("stream") == stream]
        assert run.messages[positions[-1]]["type"] == "ACTIVATE_VERSION", stream
    # tenant_syncs: one SCHEMA, one complete row per tenant, last, never activated.
    assert run.count("SCHEMA", "tenant_syncs") == 1
    assert run.count("ACTIVATE_VERSION", "tenant_syncs") == 0
    records = [m for m in run.messages if m["type"] == "RECORD"]
    assert {m["stream"] for m in records[-len(tenants) :]} == {"tenant_syncs"}
    rows = tenant_syncs(run)
    assert list(rows) == [t.tenant_id for t in tenants]
    for tenant in tenants:
        row = rows[tenant.tenant_id]
        expected = expected_output(tenant.users, tenant_id=tenant.tenant_id)
        assert (row["status"], row["reason"], row["retries"]) == ("complete", None, 0)
        assert (row["users"], row["role_memberships"]) == (
            len(expected["users"]),
            len(expected["role_memberships"]),
        )
        assert row["requests"] == len(contract_paths(users_pages(len(tenant.users))))
    # Requests: the tenant's counters (its credentials) first, then ceil(users /
    # page_size) users pages; nothing else.
    for tenant in tenants:
        assert tenant_paths(emulator, tenant) == contract_paths(users_pages(len(tenant.users))), (
            tenant.tenant_id
        )
    assert all(r.tenant_id is not None for r in emulator.requests)


def test_each_tenants_credentials_go_only_to_its_own_host(fleet_of: Any, tmp_path: Path) -> None:
    tenants = make_tenants(6)
    emulator = fleet_of(tenants)
    run = run_in_process(fleet_config(emulator, tenants), tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    by_id = {t.tenant_id: t for t in tenants}
    for request in emulator.requests:
        scheme, _, token = request.headers["Authorization"].partition(" ")
        email, _, key = base64.b64decode(token).decode().partition(":")
        tenant = by_id[str(request.tenant_id)]
        assert (scheme, email, key) == ("Basic", tenant.admin_email, tenant.api_key)
        assert request.host == tenant.host


def test_a_next_link_to_another_tenants_host_is_refused(
    start_emulator: Any, tmp_path: Path
) -> None:
    victim_users, other_users = generate_users(120, seed=4), generate_users(90, seed=5)
    first = start_emulator(victim_users, host="127.0.0.1", api_key="key-of-a-000000000001")
    second = start_emulator(other_users, host="127.0.0.2", api_key="key-of-b-000000000002")

    def redirect(number: int, page: dict[str, Any]) -> dict[str, Any]:
        if page.get("nextLink"):
            page["nextLink"] = str(page["nextLink"]).replace(first.base_url, second.base_url)
        return page

    first.page_hook = redirect
    config = {
        "tenants": [
            {"tenant_id": "a", "admin_email": first.admin_email, "base_url": first.base_url},
            {"tenant_id": "b", "admin_email": second.admin_email, "base_url": second.base_url},
        ],
        "tenant_api_keys": {"a": "key-of-a-000000000001", "b": "key-of-b-000000000002"},
        "page_size": 50,
        "emit_activate_version_messages": True,
    }
    run = run_in_process(config, tmp_path)
    assert run.returncode == 1
    assert run.last_stderr_line().endswith("1 of 2 tenants failed: a (nextLink refused)")
    # b is whole; a's key never reached b's host.
    assert records_of(run, "users", "b") == expected_output(other_users, tenant_id="b")["users"]
    # a: its credentials, then its first page, whose nextLink was not followed.
    assert paths_of(first.requests) == contract_paths(1)
    # b's host got only b's own requests.
    assert paths_of(second.requests) == contract_paths(users_pages(len(other_users), 50))
    for request in second.requests:
        assert (
            "key-of-a"
            not in base64.b64decode(request.headers["Authorization"].partition(" ")[2]).decode()
        )
    assert activated(run) == {"roles"}


def test_tenants_are_fetched_side_by_side_up_to_the_limit(fleet_of: Any, tmp_path: Path) -> None:
    tenants = make_tenants(12, sizes=[10] * 12)
    for tenant in tenants:
        tenant.latency = 0.3
    emulator = fleet_of(tenants)
    config = fleet_config(emulator, tenants, max_concurrent_tenants=4)
    run = run_in_process(config, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    arrivals = sorted(
        r.received_at for r in emulator.requests if r.path.startswith("/external/users")
    )
    first_wave = [t for t in arrivals if t - arrivals[0] < 0.15]
    assert len(first_wave) == 4
    # Three waves of four, not twelve requests one after the other.
    assert arrivals[-1] - arrivals[0] < 12 * 0.3 / 2


def test_state_does_not_grow_with_tenants(fleet_of: Any, tmp_path: Path) -> None:
    tenants = make_tenants(12)
    emulator = fleet_of(tenants)
    one = run_in_process(fleet_config(emulator, tenants[:1]), tmp_path)
    many = run_in_process(fleet_config(emulator, tenants), tmp_path)
    states = [[json.dumps(m) for m in run.messages if m["type"] == "STATE"] for run in (one, many)]
    assert states[0] == states[1]


def test_a_single_emulator_tenant_is_the_fleet_of_one(
    start_emulator: SpanningEmulator, tmp_path: Path
) -> None:
    """The one-tenant form and a one-entry list give the same records, tenant_id aside."""
    users = generate_users(300, seed=9)
    emulator = start_emulator(users)  # type: ignore[operator]
    one = run_in_process(
        {
            "base_url": emulator.base_url,
            "admin_email": emulator.admin_email,
            "api_key": emulator.api_key,
            "page_size": 100,
            "tenant_id": "solo",
        },
        tmp_path,
    )
    fleet = run_in_process(
        {
            "tenants": [
                {
                    "tenant_id": "solo",
                    "admin_email": emulator.admin_email,
                    "base_url": emulator.base_url,
                    "api_key": emulator.api_key,
                }
            ],
            "page_size": 100,
        },
        tmp_path,
    )
    assert one.returncode == fleet.returncode == 0
    for stream in ("users", "role_memberships", "tenants", "roles"):
        assert one.records(stream) == fleet.records(stream), stream
    assert one.records("users") == expected_output(users, tenant_id="solo")["users"]
    # The same tenant_syncs row, but for when it ran.
    when = ("started_at", "finished_at")
    assert [{k: v for k, v in r.items() if k not in when} for r in one.records("tenant_syncs")] == [
        {k: v for k, v in r.items() if k not in when} for r in fleet.records("tenant_syncs")
    ]
    assert len(one.records("tenant_syncs")) == 1
