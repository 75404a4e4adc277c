"""The emulator's own console script, `spanning-emulator`, as a process: one tenant, a
fleet and a hostile tenant served from the command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from spanning_emulator import (
    DEFAULT_ADMIN_EMAIL,
    generate_fleet,
)

from tests.backup_reading import tenant_auth
from tests.emulator_helpers import EMULATOR_ROOT, get_with_auth

pytestmark = pytest.mark.process


def test_cli_serves_in_a_subprocess(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    env = {**os.environ, "PYTHONPATH": str(EMULATOR_ROOT), "SPANNING_EMULATOR_API_KEY": "k-e-y"}
    command = [sys.executable, "-m", "spanning_emulator", "--port", "0", "--users", "30"]
    process = subprocess.Popen(
        [*command, "--ready-file", str(ready)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not ready.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        base_url = ready.read_text("utf-8").strip()
        response = requests.get(
            f"{base_url}/external/tenant", auth=(DEFAULT_ADMIN_EMAIL, "k-e-y"), timeout=5
        )
        assert response.json()["users"] == 30
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert stdout.startswith(f"spanning-emulator: serving 30 users at {base_url} (admin_email=")
    assert "SPANNING_EMULATOR_API_KEY" in stdout
    assert "k-e-y" not in stdout + stderr


def test_cli_serves_a_fleet_in_a_subprocess(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    tenants = generate_fleet(4, seed=2, hosts=("127.0.0.1", "127.0.0.2"))
    faulty, slow = tenants[0], tenants[1]
    command = [
        sys.executable, "-m", "spanning_emulator", "--tenants", "4", "--seed", "2",
        "--hosts", "127.0.0.1,127.0.0.2", "--port", "0", "--ready-file", str(ready),
        "--tenant-fault", f"{faulty.tenant_id}:1=503",
        "--tenant-latency-ms", f"{slow.tenant_id}=300",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(EMULATOR_ROOT)}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 20
        while not ready.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        base_urls = ready.read_text("utf-8").splitlines()
        assert [urlsplit(url).hostname for url in base_urls] == ["127.0.0.1", "127.0.0.2"]
        by_host = {urlsplit(url).hostname: url for url in base_urls}
        for tenant in tenants:
            url = f"{by_host[tenant.host]}/external/tenant"
            auth = (tenant.admin_email, tenant.api_key)
            response = get_with_auth(url, auth)
            if tenant is faulty:
                assert response.status_code == 503
                response = get_with_auth(url, auth)
            assert response.json()["users"] == len(tenant.users)
        started = time.monotonic()
        assert get_with_auth(
            f"{by_host[slow.host]}/external/tenant", (slow.admin_email, slow.api_key)
        ).ok
        assert time.monotonic() - started >= 0.3
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    users = sum(len(t.users) for t in tenants)
    assert stdout.startswith(f"spanning-emulator: serving 4 tenants ({users} users) at ")
    assert not any(t.api_key in stdout + stderr for t in tenants)


def test_cli_serves_a_hostile_tenant_in_a_subprocess(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    tenants = generate_fleet(3, seed=2)
    hostile, honest = tenants[1], tenants[2]
    command = [
        sys.executable, "-m", "spanning_emulator", "--tenants", "3", "--seed", "2",
        "--port", "0", "--ready-file", str(ready),
        "--tenant-hostile", f"{hostile.tenant_id}=licenses-1e40",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(EMULATOR_ROOT)}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 20
        while not ready.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        (base,) = ready.read_text("utf-8").splitlines()
        assert urlsplit(base).hostname == "127.0.0.1"
        bad = requests.get(f"{base}/external/tenant", auth=tenant_auth(hostile), timeout=5)
        good = requests.get(f"{base}/external/tenant", auth=tenant_auth(honest), timeout=5)
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert bad.json() == {**hostile.served_counters(), "licenses": 10**40}
    assert good.json() == honest.served_counters()
    assert stdout.splitlines()[0].endswith(f"; hostile: {hostile.tenant_id}=licenses-1e40")
