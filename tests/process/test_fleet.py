"""A fleet run as a `tap-spanning` process, where the process is the point: its real exit
status and the last line of its stderr when a tenant fails, and the emulator's own
`spanning-emulator --tenants` command line feeding a run (docs/many-tenants.md)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.emulator_requests import tenant_paths
from tests.fleet_helpers import (
    TENANT_DATA,
    TENANT_PATH,
    activated,
    assert_tenant_complete,
    counters_fail,
    fleet_config,
    make_tenants,
    records_of,
    tenant_syncs,
)
from tests.tapdriver import run_in_process, run_tap

pytestmark = pytest.mark.process


def test_a_tenant_failing_its_counters_fails_alone_before_its_users(
    fleet_of: Any, tmp_path: Path
) -> None:
    """As a process: the console script's real exit status and last stderr line.

    GET /external/tenant (the counters) is the tenant's first request: failing it, the
    tenant fails in the credentials pass, is never asked for its users, and, since a
    tenant failed, nothing holding tenant data is activated."""
    tenants = make_tenants(5)
    emulator = fleet_of(tenants)
    tries = 2
    counters_fail(tenants[2], emulator, tries)
    run = run_tap(fleet_config(emulator, tenants, max_retries=tries), tmp_path)
    assert run.returncode == 1
    assert run.last_stderr_line().endswith(
        f"1 of 5 tenants failed: {tenants[2].tenant_id} (HTTP 500 after 2 tries)"
    )
    assert activated(run) == {"roles"}
    assert len(run.records("tenants")) == 4
    for tenant in tenants:
        if tenant is not tenants[2]:
            assert_tenant_complete(run, tenant, emulator)
    assert tenant_paths(emulator, tenants[2]) == [TENANT_PATH] * tries
    assert records_of(run, "users", tenants[2].tenant_id) == []
    assert tenant_syncs(run)[tenants[2].tenant_id]["status"] == "failed"


def test_the_emulators_fleet_syncs_with_its_keys_from_the_environment(tmp_path: Path) -> None:
    """`spanning-emulator --tenants K`: the config file, the keys as .env holds them, served."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "fleet"
    fleet_args = [sys.executable, "-m", "spanning_emulator", "--tenants", "5", "--port", str(port)]
    subprocess.run([*fleet_args, "--write-fleet", str(out)], check=True)
    config = json.loads((out / "tap-config.json").read_text())
    name, _, quoted = (out / "tenant-keys.env").read_text().strip().partition("=")
    keys = json.loads(quoted.strip("'"))
    assert name == "TAP_SPANNING_TENANT_API_KEYS"
    assert sorted(keys) == sorted(t["tenant_id"] for t in config["tenants"])
    assert not any(key in json.dumps(config) for key in keys.values())
    ready = tmp_path / "ready"
    server = subprocess.Popen([*fleet_args, "--ready-file", str(ready)])
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        config["emit_activate_version_messages"] = True
        run = run_in_process(config, tmp_path, "--config", "ENV", env={name: quoted.strip("'")})
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert run.returncode == 0, run.stderr[-3000:]
    for tenant in config["tenants"]:
        tenant_id = tenant["tenant_id"]
        for stream in TENANT_DATA:
            lines = (out / "expected" / tenant_id / f"{stream}.jsonl").read_text().splitlines()
            assert records_of(run, stream, tenant_id) == [json.loads(line) for line in lines]
