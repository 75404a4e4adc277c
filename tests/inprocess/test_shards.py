"""Two shards of one fleet sync every tenant once between them, each in full, with runs
apart (docs/many-tenants.md, "Shards"); shard settings that cannot work are refused before
any request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from spanning_emulator import EmulatedTenant, FleetEmulator, expected_output, generate_fleet

from tests.run_inputs import fleet_config
from tests.tapdriver import run_in_process

SHARDS = 2


@pytest.fixture
def fleet() -> Iterator[tuple[FleetEmulator, list[EmulatedTenant]]]:
    tenants = generate_fleet(8, seed=26, hosts=("127.0.0.1", "127.0.0.2"))
    emulator = FleetEmulator(tenants)
    emulator.start()
    yield emulator, tenants
    emulator.stop()


def shard_config(emulator: FleetEmulator, tenants: list[EmulatedTenant], **shard: Any) -> dict:
    return fleet_config(
        emulator, tenants, page_size=50, emit_activate_version_messages=False, **shard
    )


def test_two_shards_sync_each_tenant_once_and_in_full(
    fleet: tuple[FleetEmulator, list[EmulatedTenant]], tmp_path: Path
) -> None:
    emulator, tenants = fleet
    synced: dict[int, set[str]] = {}
    for index in range(SHARDS):
        folder = tmp_path / f"shard-{index}"
        folder.mkdir()
        config = shard_config(emulator, tenants, shard_count=SHARDS, shard_index=str(index))
        run = run_in_process(config, folder)
        assert run.returncode == 0, run.stderr[-2000:]
        assert run.count("ACTIVATE_VERSION") == 0
        # The seven roles, from shard 0 alone: the same keys from two loaders at once collide.
        assert len(run.records("roles")) == (7 if index == 0 else 0)
        assert run.sync_version % SHARDS == index  # apart from the other shard's run
        synced[index] = set(run.syncs())
        for tenant_id in synced[index]:
            tenant = emulator.tenant(tenant_id)
            truth = expected_output(tenant.users, tenant_id)
            for stream in ("users", "role_memberships"):
                assert run.of_tenant(stream, tenant_id) == truth[stream], (tenant_id, stream)
        assert {r["tenant_id"] for r in run.records("users")} == synced[index]
    assert synced[0]
    assert synced[1]
    assert synced[0].isdisjoint(synced[1])
    assert synced[0] | synced[1] == {tenant.tenant_id for tenant in tenants}


@pytest.mark.parametrize(
    ("shard", "says"),
    [
        ({"shard_count": 2, "shard_index": 2}, "shard_index must be below shard_count (2), got 2"),
        ({"shard_count": 0}, "shard_count must be between 1 and 1024"),
        ({"shard_count": "two"}, "shard_count must be a whole number"),
        (
            {"shard_count": 2, "emit_activate_version_messages": True},
            "shard_count is above 1, so emit_activate_version_messages must be false",
        ),
        ({"shard_count": 1024, "shard_index": 1023}, "holds none of the 8 tenants"),
    ],
)
def test_shard_settings_that_cannot_work_are_refused_before_any_request(
    fleet: tuple[FleetEmulator, list[EmulatedTenant]],
    tmp_path: Path,
    shard: dict[str, Any],
    says: str,
) -> None:
    emulator, tenants = fleet
    config = shard_config(emulator, tenants)
    config.update(shard)
    run = run_in_process(config, tmp_path)
    assert run.returncode == 1
    assert says in run.stderr
    assert "Traceback" not in run.stderr
    assert emulator.requests == []
