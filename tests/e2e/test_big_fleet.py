"""2,000 tenants from files, through Meltano (docs/many-tenants.md, "Fleets of any size").

Meltano hands every setting to the tap as one environment variable, and Linux caps one
at 128 KiB: a list of 2,000 tenants (about 240 KiB with their keys) cannot go that way,
so `tenants_file` and `tenant_api_keys_file` hold them, their paths given as
TAP_SPANNING_TENANTS_FILE and TAP_SPANNING_TENANT_API_KEYS_FILE. `meltano invoke
tap-spanning` and `meltano run tap-spanning target-jsonl` then sync every tenant of a
FleetEmulator of tiny tenants (1-3 users) spread over four loopback hosts: exit 0, one
complete tenant_syncs row per tenant, and every tenant's users, role_memberships and
tenants records equal to the emulator's ground truth. While the tap runs, its process
environment is read from /proc: it stays small, holding the files' paths, not a key.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from spanning_emulator import (
    EmulatedTenant,
    FleetEmulator,
    expected_output,
    expected_roles_stream,
    expected_tenant_record,
    generate_users,
)

from tests.e2e.test_warehouse_fleet import fleet_env
from tests.warehouse import meltano, require_plugin

pytestmark = pytest.mark.e2e

TENANTS = 2_000
HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")
PROC = Path("/proc")
# The largest variable Meltano may hand the tap: far below the 128 KiB Linux allows one,
# and far below the ~240 KiB of this fleet's list with its keys.
MAX_VARIABLE_BYTES = 16 * 1024
LINUX_VARIABLE_CAP = 128 * 1024  # MAX_ARG_STRLEN: the most one variable may hold
STREAMS = ("users", "role_memberships", "tenants")


def tiny_tenants() -> list[EmulatedTenant]:
    """2,000 tenants of 1-3 users each, a GUID key each, round-robin over the hosts."""
    rng = random.Random("big-fleet")
    found = []
    for index in range(1, TENANTS + 1):
        tenant_id = f"t{index:04d}-tiny"
        found.append(
            EmulatedTenant(
                tenant_id=tenant_id,
                users=generate_users(1 + index % 3, seed=index),
                admin_email=f"admin@{tenant_id}.example",
                api_key=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                host=HOSTS[index % len(HOSTS)],
            )
        )
    return found


@pytest.fixture(scope="module")
def big_fleet() -> Iterator[FleetEmulator]:
    with FleetEmulator(tiny_tenants()) as fleet:
        yield fleet


def files_env(tmp_path: Path, fleet: FleetEmulator, marker: str) -> dict[str, str]:
    """fleet_env's Meltano environment (private system dir, blank one-tenant settings),
    with the fleet in two files instead of TAP_SPANNING_TENANTS and _TENANT_API_KEYS.

    `listed` is empty: fleet_env would otherwise build the 240 KiB variables that this
    test exists to avoid. `marker` tells this test's tap process from any other's.
    """
    env = fleet_env(tmp_path, fleet, ())
    del env["TAP_SPANNING_TENANTS"], env["TAP_SPANNING_TENANT_API_KEYS"]
    tenants_file, keys_file = tmp_path / "tenants.json", tmp_path / "tenant_api_keys.json"
    tenants_file.write_text(
        json.dumps(
            [
                {
                    "tenant_id": t.tenant_id,
                    "admin_email": t.admin_email,
                    "base_url": fleet.base_url(t.tenant_id),
                }
                for t in fleet.tenants
            ]
        ),
        encoding="utf-8",
    )
    keys_file.write_text(
        json.dumps({t.tenant_id: t.api_key for t in fleet.tenants}), encoding="utf-8"
    )
    # The premise: the fleet with its keys is more than one variable may hold.
    assert tenants_file.stat().st_size + keys_file.stat().st_size > LINUX_VARIABLE_CAP
    env.update(
        TAP_SPANNING_TENANTS_FILE=str(tenants_file),
        TAP_SPANNING_TENANT_API_KEYS_FILE=str(keys_file),
        TAP_SPANNING_MAX_CONCURRENT_TENANTS="16",
        BIG_FLEET_TEST_RUN=marker,
    )
    return env


@dataclass
class SeenEnvironment:
    """The largest environment a process of the run's tap had, as read from /proc."""

    total_bytes: int = 0
    largest_variable: str = ""
    largest_bytes: int = 0
    variables: dict[str, str] | None = None


class TapEnvironment:
    """While active, reads /proc/<pid>/environ of every process running `tap-spanning`
    whose environment holds `marker` (Meltano passes its own environment on).

    A process's environment is fixed when it starts the program, so each tap process is
    read once; the scan is slow enough to leave the emulator (in this process) its CPU.
    """

    def __init__(self, marker: str) -> None:
        self.needle = f"BIG_FLEET_TEST_RUN={marker}".encode()
        self.seen = SeenEnvironment()
        self._read_already: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> TapEnvironment:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(0.1):
            for pid_dir in PROC.iterdir():
                if pid_dir.name.isdigit() and pid_dir.name not in self._read_already:
                    self._read(pid_dir)

    def _read(self, pid_dir: Path) -> None:
        try:
            # Before it execs the tap, a child of Meltano still has Meltano's command line.
            argv = (pid_dir / "cmdline").read_bytes().split(b"\0")
            if not any(arg.endswith(b"bin/tap-spanning") for arg in argv[:2]):
                return
            raw = (pid_dir / "environ").read_bytes()
        except OSError:  # gone, or another user's
            return
        self._read_already.add(pid_dir.name)
        if self.needle not in raw.split(b"\0") or len(raw) <= self.seen.total_bytes:
            return
        variables = dict(
            item.decode("utf-8", "replace").partition("=")[::2] for item in raw.split(b"\0") if item
        )
        name, value = max(variables.items(), key=lambda item: len(item[1]))
        self.seen = SeenEnvironment(len(raw), name, len(value.encode()), variables)


def check_environment(seen: SeenEnvironment, fleet: FleetEmulator) -> None:
    assert seen.variables is not None, "the tap's process was never seen in /proc"
    print(
        f"the tap's environment: {len(seen.variables)} variables, {seen.total_bytes} bytes, "
        f"the largest {seen.largest_variable} ({seen.largest_bytes} bytes)"
    )
    assert seen.largest_bytes <= MAX_VARIABLE_BYTES, (
        f"{seen.largest_variable} holds {seen.largest_bytes} bytes"
    )
    assert seen.variables.get("TAP_SPANNING_TENANTS_FILE", "").endswith("tenants.json")
    everything = "\0".join(seen.variables.values())
    assert not [t.tenant_id for t in fleet.tenants if t.api_key in everything], (
        "a tenant's key was handed over in the environment"
    )


def by_stream(messages: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The RECORDs of a Singer stream (or a loader's rows), per stream, in order."""
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for message in messages:
        if message.get("type") == "RECORD":
            found[message["stream"]].append(message["record"])
    return found


def check_output(records: dict[str, list[dict[str, Any]]], fleet: FleetEmulator) -> None:
    """One complete tenant_syncs row per tenant; every tenant's records are its truth."""
    syncs = records["tenant_syncs"]
    assert sorted(r["tenant_id"] for r in syncs) == sorted(t.tenant_id for t in fleet.tenants)
    assert {r["status"] for r in syncs} == {"complete"}, [
        (r["tenant_id"], r["reason"]) for r in syncs if r["status"] != "complete"
    ][:5]

    def unversioned(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in row.items() if k != "sync_version"} for row in rows]

    got: dict[str, dict[str, list[dict[str, Any]]]] = {s: defaultdict(list) for s in STREAMS}
    for stream in STREAMS:
        for row in unversioned(records[stream]):
            got[stream][row["tenant_id"]].append(row)
    wrong = []
    for tenant in fleet.tenants:
        truth = expected_output(tenant.users, tenant_id=tenant.tenant_id)
        expected = {
            "users": unversioned(truth["users"]),
            "role_memberships": unversioned(truth["role_memberships"]),
            "tenants": [
                expected_tenant_record(
                    tenant.tenant_id,
                    tenant.served_counters(),
                    fleet.base_url(tenant.tenant_id),
                )
            ],
        }
        wrong += [
            f"{stream}/{tenant.tenant_id}"
            for stream in STREAMS
            if got[stream].get(tenant.tenant_id, []) != expected[stream]
        ]
    assert not wrong, f"{len(wrong)} stream/tenant pairs differ, e.g. {wrong[:5]}"
    assert sum(len(rows) for rows in got["users"].values()) == sum(
        t.user_count for t in fleet.tenants
    )
    assert [{k: r[k] for k in ("id", "name")} for r in records["roles"]] == [
        {k: r[k] for k in ("id", "name")} for r in expected_roles_stream()
    ]


def json_lines(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if line.startswith("{"):
            yield json.loads(line)


def test_meltano_invoke_syncs_2000_tenants_from_files(
    big_fleet: FleetEmulator, tmp_path: Path
) -> None:
    require_plugin("extractors", "tap-spanning")
    marker = uuid.uuid4().hex
    env = files_env(tmp_path, big_fleet, marker)
    with TapEnvironment(marker) as watch:
        run = meltano(env, "invoke", "tap-spanning")
    assert "Argument list too long" not in run.output
    check_environment(watch.seen, big_fleet)
    messages = [m for m in json_lines(run.output.splitlines()) if "type" in m]
    check_output(by_stream(messages), big_fleet)


def test_meltano_run_loads_2000_tenants_from_files(
    big_fleet: FleetEmulator, tmp_path: Path
) -> None:
    require_plugin("extractors", "tap-spanning")
    require_plugin("loaders", "target-jsonl")
    marker = uuid.uuid4().hex
    env = files_env(tmp_path, big_fleet, marker)
    output = tmp_path / "jsonl"
    env["TARGET_JSONL_DESTINATION_PATH"] = str(output)
    with TapEnvironment(marker) as watch:
        run = meltano(env, "run", "tap-spanning", "target-jsonl")
    assert "Argument list too long" not in run.output
    check_environment(watch.seen, big_fleet)
    records = {
        stream: list(json_lines((output / f"{stream}.jsonl").read_text().splitlines()))
        for stream in (*STREAMS, "roles", "tenant_syncs")
    }
    check_output(records, big_fleet)
