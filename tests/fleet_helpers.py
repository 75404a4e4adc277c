"""A small fleet of emulated tenants for the in-process fleet tests, what each tenant must
land, and the ways to make one tenant fail.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from spanning_emulator import (
    EmulatedTenant,
    FaultPlan,
    FleetEmulator,
    expected_output,
    expected_tenant_record,
    generate_users,
)

from tests.run_inputs import fleet_config as run_inputs_fleet_config
from tests.taprun import TapRun

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
    return run_inputs_fleet_config(emulator, tenants, **{"page_size": PAGE_SIZE, **overrides})


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
    then `users_pages` users pages (docs/streams.md, "What a sync emits")."""
    return [TENANT_PATH] + [USERS_PATH] * users_pages


def tenant_syncs(run: TapRun) -> dict[str, dict[str, Any]]:
    """The run's tenant_syncs rows by tenant (sync_version checked and stripped)."""
    rows = run.records("tenant_syncs")
    by_tenant = {row["tenant_id"]: row for row in rows}
    assert len(by_tenant) == len(rows), "one tenant_syncs row per tenant"
    return by_tenant


def wrong_key(tenant: EmulatedTenant, config: dict[str, Any]) -> None:
    config["tenant_api_keys"][tenant.tenant_id] = "not-the-key-0000-0000"


def persistent_503(tenant: EmulatedTenant, emulator: FleetEmulator) -> None:
    emulator.set_faults(tenant.tenant_id, FaultPlan(every=1, kind="503"))


def hang_up(tenant: EmulatedTenant, emulator: FleetEmulator) -> None:
    emulator.set_faults(tenant.tenant_id, FaultPlan(every=1, kind="reset-before"))


def unkeyed_user(tenant: EmulatedTenant, emulator: FleetEmulator) -> None:
    users = [dict(u) for u in tenant.users]
    users[-1].pop("msId")
    emulator.set_users(tenant.tenant_id, users)


def counters_fail(tenant: EmulatedTenant, emulator: FleetEmulator, tries: int) -> None:
    """Every try of the tenant's first request, GET /external/tenant, answers 500; a
    later request (which the contract never makes) would be answered."""
    emulator.set_faults(tenant.tenant_id, FaultPlan(at={n: "500" for n in range(1, tries + 1)}))
