"""Small fleets of emulated tenants named by hand, and the emulator serving one for a test.

Each tenant is a name, a number of users, the seed of generate_users and a loopback host;
its admin is admin@<name>.example and its key follows the caller's pattern, so that each
test's keys are spellings of its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from spanning_emulator import EmulatedTenant, FleetEmulator, generate_users

# name, users, seed of generate_users, host
TenantSpec = tuple[str, int, int, str]


def named_tenants(specs: Sequence[TenantSpec], key_pattern: str) -> list[EmulatedTenant]:
    """One tenant per spec; its key is key_pattern formatted with its name and seed."""
    return [
        EmulatedTenant(
            tenant_id=name,
            users=generate_users(size, seed=seed),
            admin_email=f"admin@{name}.example",
            api_key=key_pattern.format(name=name, seed=seed),
            host=host,
        )
        for name, size, seed, host in specs
    ]


def serving(tenants: Sequence[EmulatedTenant]) -> Iterator[FleetEmulator]:
    """The body of a fixture: the emulator serving these tenants while the test runs."""
    with FleetEmulator(list(tenants)) as emulator:
        yield emulator
