"""The head start (tap_spanning/head_start.py): the credentials are asked while the SDK
loads, and the tap adopts the run only if it would have begun the very same one.

In-process, as the console script does it: `head_start.begin(argv)`, then the tap's
main() with the same argv (tapdriver's `head_start`). Whatever happens to the head
start, the output is the tap's exact output and every request it makes is accounted for.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from spanning_emulator import EmulatedTenant, FaultPlan, FleetEmulator, expected_output

from tap_spanning import head_start
from tests.tapdriver import TapRun, discovered_catalog, run_in_process, set_selected, tenant_paths
from tests.test_currency import PAGE_SIZE, config_for, fleet

__all__ = ["fleet"]  # the fixture (test_currency.py's five tenants), requested by name

TENANT = "/external/tenant"
USERS = "/external/users"


@pytest.fixture(autouse=True)
def no_head_start_left() -> Iterator[None]:
    """A head start the test began and no tap adopted ends with the test."""
    yield
    head_start.drop()


def assert_exact(run: TapRun, tenants: list[EmulatedTenant]) -> None:
    """Every tenant's users and memberships exactly, its counters once, all complete."""
    assert run.returncode == 0, run.stderr[-2000:]
    for tenant in tenants:
        expected = expected_output(tenant.users, tenant_id=tenant.tenant_id)
        for stream in ("users", "role_memberships"):
            assert run.of_tenant(stream, tenant.tenant_id) == expected[stream], tenant.tenant_id
        assert len(run.of_tenant("tenants", tenant.tenant_id)) == 1
    syncs = run.records("tenant_syncs")
    assert sorted(s["tenant_id"] for s in syncs) == sorted(t.tenant_id for t in tenants)
    assert {s["status"] for s in syncs} == {"complete"}
    # One version for the run, from its start, in every record and ACTIVATE_VERSION.
    assert run.sync_version


def contract_paths(tenant: EmulatedTenant) -> list[str]:
    return [TENANT] + [USERS] * max(1, math.ceil(len(tenant.users) / PAGE_SIZE))


def write_catalog(tmp_path: Path, selected: set[str]) -> Path:
    """The discovered catalog, selecting `selected` (and nothing else)."""
    catalog = discovered_catalog()
    for entry in catalog["streams"]:
        name = entry["tap_stream_id"]
        set_selected(catalog, name, [], name in selected)
    path = tmp_path / f"catalog-{len(selected)}.json"
    path.write_text(json.dumps(catalog))
    return path


def test_the_tap_adopts_the_head_start_and_asks_nothing_twice(
    fleet: tuple[FleetEmulator, list[EmulatedTenant]], tmp_path: Path
) -> None:
    emulator, tenants = fleet
    run = run_in_process(config_for(emulator, tenants), tmp_path, head_start=True)
    assert_exact(run, tenants)
    # Adopted: each tenant asked once for its credentials, then its pages, as without it.
    for tenant in tenants:
        assert tenant_paths(emulator, tenant) == contract_paths(tenant), tenant.tenant_id


def test_a_head_start_for_other_streams_is_dropped_and_the_run_begun_again(
    fleet: tuple[FleetEmulator, list[EmulatedTenant]], tmp_path: Path
) -> None:
    """The head start read a catalog that also wants the backup summaries; the tap
    syncs without one (the default streams). The run starts again for the tap's
    streams: its output is exact, and the backup summaries asked for are not written."""
    emulator, tenants = fleet
    config = config_for(emulator, tenants)
    # The same config file the tap reads (run_in_process writes it as config.json).
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    other = write_catalog(tmp_path, {"users", "backup_summaries"})
    run = run_in_process(
        config,
        tmp_path,
        head_start=["--config", str(config_path), "--catalog", str(other)],
    )
    assert_exact(run, tenants)
    assert run.records("backup_summaries") == []
    for tenant in tenants:
        asked = Counter(tenant_paths(emulator, tenant))
        # The dropped run's credentials pass, and the tap's own.
        assert 1 <= asked[TENANT] <= 2, tenant.tenant_id
        assert asked["/external/tenant/backups/summary"] <= 1, tenant.tenant_id


def test_a_head_start_with_other_settings_is_dropped(
    fleet: tuple[FleetEmulator, list[EmulatedTenant]], tmp_path: Path
) -> None:
    emulator, tenants = fleet
    begun = config_for(emulator, tenants, page_size=PAGE_SIZE * 2)
    config_path = tmp_path / "other-config.json"
    config_path.write_text(json.dumps(begun))
    run = run_in_process(
        config_for(emulator, tenants), tmp_path, head_start=["--config", str(config_path)]
    )
    assert_exact(run, tenants)
    # The tap's own pages are of its page size, whatever the dropped run fetched.
    assert any(f"size={PAGE_SIZE}&" in r.path for r in emulator.requests)


def test_the_workers_log_before_the_sdk_reaches_the_tap_log_once(
    fleet: tuple[FleetEmulator, list[EmulatedTenant]], tmp_path: Path
) -> None:
    """A retry of the first request, logged by a worker before the SDK set up logging,
    is held and written once the tap's log is set up: once, in the tap's format."""
    emulator, tenants = fleet
    emulator.set_faults("c03", FaultPlan(at={1: "503"}))
    run = run_in_process(config_for(emulator, tenants, max_retry_wait=0), tmp_path, head_start=True)
    assert_exact(run, tenants)
    lines = [line for line in run.stderr.splitlines() if "retrying GET /external/tenant" in line]
    assert len(lines) == 1, run.stderr[-3000:]
    assert "Tenant c03: retrying GET /external/tenant" in lines[0]
    assert "WARNING" in lines[0]  # the SDK's console format, not Python's last resort


def test_a_config_mistake_gets_no_head_start_and_no_request(
    fleet: tuple[FleetEmulator, list[EmulatedTenant]], tmp_path: Path
) -> None:
    emulator, tenants = fleet
    config: dict[str, Any] = config_for(emulator, tenants)
    del config["tenants"][2]["admin_email"]
    run = run_in_process(config, tmp_path, head_start=True)
    assert run.returncode == 1
    assert "admin_email" in run.last_stderr_line()
    assert emulator.requests == []


@pytest.mark.parametrize(
    ("case", "extra", "sdk_setting"),
    [
        ("--test", ["--test"], None),
        ("--discover", ["--discover"], None),
        ("--about", ["--about"], None),
        ("--config=ENV as well", ["--config=ENV"], None),
        ("an option without its value", ["--catalog"], None),
        ("a catalog that is not one", ["--catalog", "{config}"], None),
        ("a stream map (the SDK checks it)", [], ("stream_maps", {"users": {"a": "1"}})),
        ("flattening (the SDK checks it)", [], ("flattening_enabled", True)),
    ],
)
def test_anything_but_a_plain_sync_of_the_taps_own_settings_gets_no_head_start(
    fleet: tuple[FleetEmulator, list[EmulatedTenant]],
    tmp_path: Path,
    case: str,
    extra: list[str],
    sdk_setting: tuple[str, object] | None,
) -> None:
    emulator, tenants = fleet
    plain: dict[str, Any] = config_for(emulator, tenants)
    plain_path = tmp_path / "plain.json"
    plain_path.write_text(json.dumps(plain))
    path = tmp_path / "config.json"
    path.write_text(json.dumps(dict([sdk_setting], **plain) if sdk_setting else plain))
    argv = ["--config", str(path), *(str(path) if arg == "{config}" else arg for arg in extra)]
    assert head_start.begin(argv) is None, case
    assert emulator.requests == [], case
    # The same settings, as a plain sync of the tap's own settings, do get one.
    assert head_start.begin(["--config", str(plain_path)]) is not None


def test_a_catalog_reads_as_the_sdk_reads_it() -> None:
    def entry(name: str, **metadata: object) -> dict[str, object]:
        return {"tap_stream_id": name, "metadata": [{"breadcrumb": [], "metadata": metadata}]}

    catalog = {
        "streams": [
            entry("users", selected=False),  # ...but a child is selected
            entry("role_memberships", selected=True),
            entry("tenants", **{"selected-by-default": True}),
            entry("roles", selected=None, **{"selected-by-default": False}),
            entry("tenant_syncs", inclusion="automatic", selected=False),
            entry("backup_summaries", inclusion="unsupported", selected=True),
        ]
    }
    assert head_start.selected_streams(catalog) == {
        "users",
        "role_memberships",
        "tenants",
        "tenant_syncs",
    }
    assert head_start.selected_streams({"streams": "no"}) is None
    assert head_start.selected_streams([]) is None
