"""Many tenants in one run (README, "Many tenants"): over real HTTP, against a fleet emulator.

Each tenant lives on one of several loopback hosts, with its own admin, key, faults and
latency. Every expectation comes from the emulator's ground truth per tenant.

The tap runs in-process (`tap_spanning.tap.main` with the same argv, config file and
environment). Two tests start processes: one fleet with a failing tenant runs as a
`tap-spanning` process, for its real exit status and the last line of its stderr, and the
`spanning-emulator --tenants` test starts the emulator's own command line.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from spanning_emulator import (
    EmulatedTenant,
    FaultPlan,
    FleetEmulator,
    SpanningEmulator,
    expected_output,
    expected_tenant_record,
    generate_users,
)

from tap_spanning.settings import SettingsError, resolve_settings
from tests.hostile_server import HostileServer, Reply
from tests.tapdriver import TapRun, paths_of, run_in_process, tenant_paths
from tests.tapdriver import fleet_config as tapdriver_fleet_config

HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
TENANT_DATA = ("users", "role_memberships", "tenants")
DEBUG_ENV = {"TAP_SPANNING_LOGLEVEL": "DEBUG", "LOGLEVEL": "DEBUG"}
TENANT_PATH = "/external/tenant"
USERS_PATH = "/external/users"
PAGE_SIZE = 250  # fleet_config's


def make_tenants(count: int, *, sizes: Sequence[int] | None = None) -> list[EmulatedTenant]:
    """A small fleet spread over three hosts; sizes cross page boundaries on purpose."""
    sizes = sizes or [0, 1, 249, 250, 251, 600, 37, 5, 999, 120, 3, 260][:count]
    return [
        EmulatedTenant(
            tenant_id=f"client-{index:02d}.example",
            users=generate_users(size, seed=100 + index),
            admin_email=f"admin@client{index}.example",
            api_key=f"key-{index:02d}-5f0c2a8e-7d1b-4c3e-9a6f-{index:012d}",
            host=HOSTS[index % len(HOSTS)],
            counters=counters_for(index, size),
        )
        for index, size in enumerate(sizes)
    ]


def counters_for(index: int, size: int) -> dict[str, object]:
    """Hand-made counters: every status the contract names, one it does not, one gap."""
    counters: dict[str, object] = {
        "licenses": size + 10,
        "archivedLicenses": index,
        "users": size,
        "assigned": size // 2,
        "assignedStandard": max(0, size // 2 - index % 2),
        "assignedArchive": index % 2,
        "status": ("paid", "trial", "expired", "suspended")[index % 4],
    }
    if index == 3:
        del counters["archivedLicenses"]  # a counter the API left out: null
    return counters


def fleet_config(
    emulator: FleetEmulator, tenants: Sequence[EmulatedTenant], **overrides: Any
) -> dict[str, Any]:
    """The driver's fleet config, at this file's page size."""
    return tapdriver_fleet_config(emulator, tenants, **{"page_size": PAGE_SIZE, **overrides})


def records_of(run: TapRun, stream: str, tenant_id: str) -> list[dict[str, Any]]:
    return [r for r in run.records(stream) if r.get("tenant_id") == tenant_id]


def assert_tenant_complete(run: TapRun, tenant: EmulatedTenant, emulator: FleetEmulator) -> None:
    """Every user, membership and counter of this tenant, exactly, in the API's order."""
    expected = expected_output(tenant.users, tenant_id=tenant.tenant_id)
    assert records_of(run, "users", tenant.tenant_id) == expected["users"], tenant.tenant_id
    assert records_of(run, "role_memberships", tenant.tenant_id) == expected["role_memberships"], (
        tenant.tenant_id
    )
    assert tenant.counters is not None
    assert records_of(run, "tenants", tenant.tenant_id) == [
        expected_tenant_record(
            tenant.tenant_id, tenant.counters, emulator.base_url(tenant.tenant_id)
        )
    ]


def activated(run: TapRun) -> set[str]:
    return {m["stream"] for m in run.messages if m["type"] == "ACTIVATE_VERSION"}


def users_pages(users: int, page_size: int = PAGE_SIZE) -> int:
    """The users requests of a tenant of `users` users: ceil(users / page_size), at least 1."""
    return max(1, math.ceil(users / page_size))


def contract_paths(users_pages: int) -> list[str]:
    """A tenant's requests by the contract: its credentials (GET /external/tenant) first,
    then `users_pages` users pages (README, "What a sync emits")."""
    return [TENANT_PATH] + [USERS_PATH] * users_pages


def tenant_syncs(run: TapRun) -> dict[str, dict[str, Any]]:
    """The run's tenant_syncs rows by tenant (sync_version checked and stripped)."""
    rows = run.records("tenant_syncs")
    by_tenant = {row["tenant_id"]: row for row in rows}
    assert len(by_tenant) == len(rows), "one tenant_syncs row per tenant"
    return by_tenant


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


def _wrong_key(tenant: EmulatedTenant, config: dict[str, Any]) -> None:
    config["tenant_api_keys"][tenant.tenant_id] = "not-the-key-0000-0000"


def _persistent_503(tenant: EmulatedTenant, emulator: FleetEmulator) -> None:
    emulator.set_faults(tenant.tenant_id, FaultPlan(every=1, kind="503"))


def _hang_up(tenant: EmulatedTenant, emulator: FleetEmulator) -> None:
    emulator.set_faults(tenant.tenant_id, FaultPlan(every=1, kind="reset-before"))


def _unkeyed_user(tenant: EmulatedTenant, emulator: FleetEmulator) -> None:
    users = [dict(u) for u in tenant.users]
    users[-1].pop("msId")
    emulator.set_users(tenant.tenant_id, users)


def _counters_fail(tenant: EmulatedTenant, emulator: FleetEmulator, tries: int) -> None:
    """Every try of the tenant's first request, GET /external/tenant, answers 500; a
    later request (which the contract never makes) would be answered."""
    emulator.set_faults(tenant.tenant_id, FaultPlan(at={n: "500" for n in range(1, tries + 1)}))


# reason: (break the config, break the emulator, the pass the tenant fails in). A tenant
# failing in the credentials pass (GET /external/tenant) is never asked for users.
FAILURES = {
    "credentials refused": (_wrong_key, None, "tenants"),
    "HTTP 503 after 3 tries": (None, _persistent_503, "tenants"),
    "connection failed after 3 tries": (None, _hang_up, "tenants"),
    "unreadable users page": (None, _unkeyed_user, "users"),
}


@pytest.mark.parametrize("reason", sorted(FAILURES))
def test_a_failing_tenant_fails_alone_and_nothing_holding_tenant_data_is_activated(
    fleet_of: Any, tmp_path: Path, reason: str
) -> None:
    """A tenant fails alone, whatever the reason; a refused one too, with
    failure_mode isolate (strict, the default, stops the run: see the test after this one)."""
    tenants = make_tenants(8)
    emulator = fleet_of(tenants)
    victim = tenants[5]  # 600 users: three pages of 250
    tries = 3
    config = fleet_config(
        emulator, tenants, max_retries=tries, max_concurrent_tenants=3, failure_mode="isolate"
    )
    break_config, break_emulator, fails_in = FAILURES[reason]
    if break_config:
        break_config(victim, config)
    if break_emulator:
        break_emulator(victim, emulator)
    run = run_in_process(config, tmp_path, env=DEBUG_ENV)
    assert run.returncode == 1
    assert run.last_stderr_line().endswith(f"1 of 8 tenants failed: {victim.tenant_id} ({reason})")
    for tenant in tenants:
        if tenant is not victim:
            assert_tenant_complete(run, tenant, emulator)
    assert records_of(run, "tenants", victim.tenant_id) == []
    assert activated(run) == {"roles"}
    failure_lines = [
        line for line in run.stderr.splitlines() if f"Tenant {victim.tenant_id} failed" in line
    ]
    assert len(failure_lines) == 1
    assert f"Tenant {victim.tenant_id} failed in {fails_in}: " in failure_lines[0]
    # The failed tenant is not asked again: its requests end with the one that failed.
    mine = tenant_paths(emulator, victim)
    if fails_in == "tenants":
        # Its credentials failed (a refusal is not retried): never asked for its users.
        assert mine == [TENANT_PATH] * (1 if reason == "credentials refused" else tries)
        assert records_of(run, "users", victim.tenant_id) == []
    else:
        # Its counters, then its pages up to the unreadable one (not retried), no more.
        failed_page = re.search(r"page (\d+) of users", failure_lines[0])
        assert failed_page is not None, failure_lines[0]
        assert 1 <= int(failed_page[1]) <= users_pages(len(victim.users))
        assert mine == contract_paths(int(failed_page[1]))
    # Its tenant_syncs row says so; every other tenant's is complete.
    rows = tenant_syncs(run)
    assert [tid for tid, row in rows.items() if row["status"] != "complete"] == [victim.tenant_id]
    assert rows[victim.tenant_id]["status"] == "failed"
    assert rows[victim.tenant_id]["reason"] in failure_lines[0]
    assert rows[victim.tenant_id]["requests"] == len(mine)


def test_by_default_a_refused_tenant_stops_the_run_before_any_record(
    fleet_of: Any, tmp_path: Path
) -> None:
    """failure_mode strict (the default): the wrong key of the test above stops
    the whole run after the credentials pass, naming the refused tenant; no record and
    no tenant_syncs row is written. The users pass starts while the last credentials
    are in flight, so a few pages of tenants that answered may have been fetched: they
    are dropped unwritten."""
    tenants = make_tenants(8)
    emulator = fleet_of(tenants)
    victim = tenants[5]
    config = fleet_config(emulator, tenants, max_retries=3, max_concurrent_tenants=3)
    _wrong_key(victim, config)
    run = run_in_process(config, tmp_path, env=DEBUG_ENV)
    assert run.returncode == 1
    assert run.last_stderr_line().endswith(
        f"Credentials refused for 1 of 8 tenants, so nothing was synced: {victim.tenant_id} "
        "(fix their keys, or set failure_mode to isolate or nightly to sync the others "
        "without them)"
    )
    assert run.count("RECORD") == 0
    assert run.count("ACTIVATE_VERSION") == 0
    # Every tenant's credentials were asked, once each and first; the refused tenant
    # was asked nothing else.
    for tenant in tenants:
        paths = tenant_paths(emulator, tenant)
        assert paths[:1] == [TENANT_PATH], tenant.tenant_id
        assert TENANT_PATH not in paths[1:], tenant.tenant_id
    assert tenant_paths(emulator, victim) == [TENANT_PATH]




def test_two_failing_tenants_are_both_named_and_all_failing_writes_no_record(
    fleet_of: Any, tmp_path: Path
) -> None:
    """With failure_mode isolate, a refused tenant is named beside another failure; a run
    in which every tenant fails writes no record, with the option or without it."""
    tenants = make_tenants(4)
    emulator = fleet_of(tenants)
    config = fleet_config(emulator, tenants, max_retries=1, failure_mode="isolate")
    _wrong_key(tenants[1], config)
    _persistent_503(tenants[3], emulator)
    run = run_in_process(config, tmp_path)
    assert run.returncode == 1
    assert run.last_stderr_line().endswith(
        f"2 of 4 tenants failed: {tenants[1].tenant_id} (credentials refused), "
        f"{tenants[3].tenant_id} (HTTP 503 after 1 try)"
    )
    for tenant in tenants:
        config["tenant_api_keys"][tenant.tenant_id] = "wrong-wrong-wrong-000"
    run = run_in_process(config, tmp_path)
    assert run.returncode == 1
    assert run.count("RECORD") == 0
    assert "4 of 4 tenants failed: " in run.last_stderr_line()
    config["failure_mode"] = "strict"
    run = run_in_process(config, tmp_path)
    assert run.returncode == 1
    assert run.count("RECORD") == 0
    ids = ", ".join(t.tenant_id for t in tenants)
    assert f"Credentials refused for 4 of 4 tenants, so nothing was synced: {ids} (" in (
        run.last_stderr_line()
    )


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


@pytest.mark.parametrize("skip_refused", [True, False], ids=["skip-refused", "refused-stops"])
def test_every_key_of_every_tenant_is_absent_at_debug(
    fleet_of: Any, tmp_path: Path, skip_refused: bool
) -> None:
    """A refused tenant and a failing one at DEBUG: the others synced beside them
    (failure_mode isolate), or the run stopped after the credentials pass (default)."""
    tenants = make_tenants(6)
    emulator = fleet_of(tenants)
    mode = "isolate" if skip_refused else "strict"
    config = fleet_config(emulator, tenants, max_retries=2, failure_mode=mode)
    _wrong_key(tenants[0], config)
    _persistent_503(tenants[1], emulator)
    run = run_in_process(config, tmp_path, env=DEBUG_ENV)
    assert run.returncode == 1
    assert "DEBUG" in run.stderr
    if skip_refused:  # the healthy tenants' whole sync was logged at DEBUG too
        for tenant in tenants[2:]:
            assert_tenant_complete(run, tenant, emulator)
    else:
        assert run.count("RECORD") == 0
    output = run.stdout + run.stderr
    for tenant in tenants:
        assert tenant.api_key not in output
        pair = f"{tenant.admin_email}:{tenant.api_key}".encode()
        assert base64.b64encode(pair).decode() not in output


# -- settings: every tenant checked before any request


BASE_TENANT = {"tenant_id": "acme", "admin_email": "admin@acme.example", "region": "us"}


def errors_of(config: dict[str, Any]) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        resolve_settings(config)
    return caught.value.errors


def test_a_fleet_takes_keys_from_the_entry_or_the_map() -> None:
    settings = resolve_settings(
        {
            "tenants": [
                {**BASE_TENANT, "api_key": "key-in-entry"},
                {"tenant_id": "globex", "admin_email": "a@globex.example", "region": "eu"},
            ],
            "tenant_api_keys": {"globex": "key-in-map"},
        }
    )
    assert [(t.tenant_id, t.api_key, t.region) for t in settings.tenants] == [
        ("acme", "key-in-entry", "us"),
        ("globex", "key-in-map", "eu"),
    ]
    assert settings.max_concurrent_tenants == 8


def test_the_one_tenant_form_has_a_default_tenant_id() -> None:
    settings = resolve_settings({"admin_email": "a@b.example", "api_key": "k", "region": "us"})
    assert [t.tenant_id for t in settings.tenants] == ["default"]
    named = resolve_settings(
        {"admin_email": "a@b.example", "api_key": "k", "region": "us", "tenant_id": "hq"}
    )
    assert [t.tenant_id for t in named.tenants] == ["hq"]


@pytest.mark.parametrize(
    ("config", "says"),
    [
        (
            {"tenants": [BASE_TENANT], "api_key": "secret-key-1", "tenant_api_keys": {"acme": "k"}},
            "not both",
        ),
        ({"tenants": [BASE_TENANT]}, "tenants[0] (acme): api_key is missing"),
        (
            {"tenants": [BASE_TENANT, BASE_TENANT], "tenant_api_keys": {"acme": "k"}},
            "tenants[1] (acme): tenant_id 'acme' is already used by tenants[0]",
        ),
        (
            {
                "tenants": [BASE_TENANT, {**BASE_TENANT, "tenant_id": "ACME"}],
                "tenant_api_keys": {"acme": "k1", "ACME": "k2"},
            },
            "tenants[1] (ACME): tenant_id 'ACME' is already used by tenants[0] (ids are "
            "compared without case)",
        ),
        (
            {
                "tenants": [
                    BASE_TENANT,
                    {**BASE_TENANT, "tenant_id": "acme-eu", "admin_email": "Admin@ACME.example"},
                ],
                "tenant_api_keys": {"acme": "same-key-1", "acme-eu": "same-key-1"},
            },
            "tenants[1] (acme-eu): has the same admin_email and api_key as tenant 'acme'",
        ),
        (
            {"tenants": [{**BASE_TENANT, "tenant_id": "a b"}], "tenant_api_keys": {"a b": "k"}},
            "tenant_id must be 1 to 64 letters",
        ),
        (
            {"tenants": [{**BASE_TENANT, "tenant_id": "x" * 65}], "tenant_api_keys": {}},
            "tenant_id must be 1 to 64",
        ),
        (
            {
                "tenants": [{**BASE_TENANT, "base_url": "https://evil.example"}],
                "tenant_api_keys": {"acme": "k"},
            },
            "tenants[0] (acme): base_url host 'evil.example' is not a Spanning API host",
        ),
        (
            {"tenants": [{**BASE_TENANT, "regoin": "eu"}], "tenant_api_keys": {"acme": "k"}},
            "tenants[0] (acme): unknown setting 'regoin' (did you mean region?)",
        ),
        ({"tenants": []}, "tenants must be a non-empty list"),
        (
            {
                "tenants": [BASE_TENANT],
                "tenant_api_keys": {"acme": "k"},
                "max_concurrent_tenants": 65,
            },
            "max_concurrent_tenants must be between 1 and 64",
        ),
        (
            {
                "admin_email": "a@b.example",
                "api_key": "k",
                "region": "us",
                "tenant_api_keys": {"x": "k"},
            },
            "tenant_api_keys goes with tenants",
        ),
    ],
)
def test_fleet_setting_mistakes_name_the_tenant_and_the_setting(
    config: dict[str, Any], says: str
) -> None:
    errors = errors_of(config)
    assert any(says in error for error in errors), errors


def test_a_key_pasted_into_a_tenant_setting_is_never_echoed() -> None:
    key = "d3adbeef-1234-4321-aaaa-0123456789ab"
    errors = errors_of(
        {
            "tenants": [{**BASE_TENANT, "admin_email": key, "base_url": key}],
            "tenant_api_keys": {"acme": key},
        }
    )
    assert errors
    assert not any(key in error for error in errors), errors


def test_a_config_mistake_in_one_tenant_stops_the_run_before_any_request(
    fleet_of: Any, tmp_path: Path
) -> None:
    tenants = make_tenants(3)
    emulator = fleet_of(tenants)
    config = fleet_config(emulator, tenants)
    del config["tenant_api_keys"][tenants[2].tenant_id]
    run = run_in_process(config, tmp_path)
    assert run.returncode == 1
    assert f"tenants[2] ({tenants[2].tenant_id}): api_key is missing" in run.stderr
    assert "Traceback" not in run.stderr
    assert emulator.requests == []
    assert run.messages == []




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


def test_a_region_beside_a_loopback_base_url_is_not_used_and_says_so() -> None:
    settings = resolve_settings(
        {
            "admin_email": "a@b.example",
            "api_key": "k",
            "region": "eu",
            "base_url": "http://127.0.0.1:8765",
        }
    )
    assert [str(t.origin) for t in settings.tenants] == ["http://127.0.0.1:8765"]
    assert settings.notes == (
        "base_url 'http://127.0.0.1:8765' is a loopback address (the emulator): "
        "region 'eu' is not used",
    )
    errors = errors_of(
        {
            "admin_email": "a@b.example",
            "api_key": "k",
            "region": "eu",
            "base_url": "https://o365-api-us.spanningbackup.com",
        }
    )
    assert any("region 'eu' does not agree with base_url" in error for error in errors)


def test_a_404_and_a_pagination_loop_each_fail_their_tenant_alone(
    fleet_of: Any, start_emulator: Any, tmp_path: Path
) -> None:
    """The other kinds of tenant failure, side by side with healthy tenants."""
    tenants = make_tenants(4)
    emulator = fleet_of(tenants)
    looping = start_emulator(generate_users(600, seed=6), host="127.0.0.2")  # 3 pages of 250
    first_link: list[str] = []

    def loop(number: int, page: dict[str, Any]) -> dict[str, Any]:
        if page.get("nextLink"):
            first_link[:1] = first_link[:1] or [str(page["nextLink"])]
            page["nextLink"] = first_link[0]  # page 2 again and again
        return page

    looping.page_hook = loop
    config = fleet_config(emulator, tenants)
    config["tenants"] += [
        {"tenant_id": "looper", "admin_email": looping.admin_email, "base_url": looping.base_url},
    ]
    config["tenant_api_keys"]["looper"] = looping.api_key
    with HostileServer(
        lambda server, seen: Reply(404, f"Cannot GET {seen.path}", "text/html"), host="127.0.0.3"
    ) as lost:
        config["tenants"].append(
            {"tenant_id": "lost", "admin_email": "admin@lost.example", "base_url": lost.base_url}
        )
        config["tenant_api_keys"]["lost"] = "lost-key-0000-0000"
        run = run_in_process(config, tmp_path)
        # Its first request, the credentials, got the 404: never asked for users.
        assert [seen.path for seen in lost.requests] == [TENANT_PATH]
    assert run.returncode == 1
    assert run.last_stderr_line().endswith(
        "2 of 6 tenants failed: looper (pagination loop), lost (HTTP 404, base_url wrong?)"
    )
    for tenant in tenants:
        assert_tenant_complete(run, tenant, emulator)
    assert activated(run) == {"roles"}
    # The loop is caught before the repeated link is requested: the counters, then pages
    # 1 and 2 only (long before the page bound of its 600 users: 2 x 3 + 2 pages).
    assert paths_of(looping.requests) == contract_paths(2)
    rows = tenant_syncs(run)
    assert {tid for tid, row in rows.items() if row["status"] == "failed"} == {"looper", "lost"}
