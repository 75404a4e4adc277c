"""How the console script ends when a sync cannot complete: the real exit status and the
reason as the last stderr line (docs/operations.md, "Exit codes", "Stopped by a signal").

Credentials refused (at once, one request), a users page that fails for good after some
were sent (exit 1, no ACTIVATE_VERSION, tenant_syncs says what was written), a SIGTERM
half-way (exit 143, the records so far flushed), a target that stops reading (exit 1,
one line). A process is the point: exit statuses, signals, a pipe's other end.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest
from spanning_emulator import FaultPlan, expected_output, generate_users

from tests.conftest import EmulatorFactory
from tests.emulator_requests import paths_of
from tests.failure_fixtures import USERS_PATH, assert_failed
from tests.hostile_server import TENANT_PATH
from tests.tapdriver import DEBUG_ENV, run_tap, start_tap
from tests.taprun import TapRun

pytestmark = pytest.mark.process

TENANT_REQUESTS = 1  # GET /external/tenant, before any users page


def test_wrong_key_fails_at_once_with_the_likely_causes(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path
) -> None:
    """A 401 is not retried: one request, and a last line that says the credentials were
    refused and what to check (the API Token, admin_email, region)."""
    emulator = start_emulator(generate_users(5))
    run = run_tap(
        tap_config(emulator, api_key="0000-wrong-key", max_retries=5), tmp_path, env=DEBUG_ENV
    )
    assert_failed(run, "HTTP 401", "API Token", "admin_email", "region")
    assert paths_of(emulator.requests) == [TENANT_PATH]  # the credentials, once
    assert "Sync failed: Spanning refused the credentials (HTTP 401" in run.last_stderr_line()
    assert run.count("RECORD") == 0  # bad credentials write no record


def test_a_sync_never_ends_0_with_users_missing(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path
) -> None:
    """The third page fails for good: users of the first pages were sent, the exit says so."""
    page_3 = TENANT_REQUESTS + 3  # its first try: the tenant and pages 1 and 2 answered
    plan = FaultPlan(at={n: "502" for n in range(page_3, 20)})
    users = generate_users(30)
    emulator = start_emulator(users, faults=plan)
    config = tap_config(emulator, page_size=10, max_retries=2, emit_activate_version_messages=True)
    run = run_tap(config, tmp_path, env=DEBUG_ENV)
    assert run.returncode == 1
    expected = expected_output(users)
    assert run.records("users") == expected["users"][:20]
    sent = {str(user["msId"]) for user in expected["users"][:20]}
    memberships = [m for m in expected["role_memberships"] if m["msId"] in sent]
    assert run.records("role_memberships") == memberships
    # Nothing may tell a hard-deleting loader that 20 users are the whole tenant.
    for stream in ("users", "role_memberships", "tenants"):
        assert run.count("ACTIVATE_VERSION", stream) == 0, stream
    # The tenant first, then pages 1 and 2, page 3 twice (max_retries); a failed
    # tenant's counters are not written.
    requests = TENANT_REQUESTS + 2 + 2
    assert paths_of(emulator.requests) == [TENANT_PATH] + [USERS_PATH] * 4
    assert run.records("tenants") == []
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert (
        f"Synced 20 users and {len(memberships)} role memberships of 0 of 1 tenants: "
        f"{requests} requests, 1 retries, "
    ) in lines[-2]
    # tenant_syncs, written last, says how the tenant's sync went.
    [row] = run.records("tenant_syncs")
    assert [m for m in run.messages if m["type"] == "RECORD"][-1]["stream"] == "tenant_syncs"
    assert (row["status"], row["users"], row["role_memberships"], row["requests"]) == (
        "failed",
        20,
        len(memberships),
        requests,
    )
    assert row["retries"] == 1
    assert row["reason"].startswith("GET /external/users failed 2 times, giving up: HTTP 502")
    assert "Sync failed: GET /external/users failed 2 times, giving up: HTTP 502" in lines[-1]


def terminate_half_way(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path
) -> tuple[TapRun, list[dict[str, object]]]:
    """Start a slow sync, SIGTERM it after its third users request; what it printed."""
    users = generate_users(200)
    emulator = start_emulator(users, latency=0.3)
    config = tap_config(emulator, page_size=20, emit_activate_version_messages=True)
    process = start_tap(config, tmp_path)
    deadline = time.monotonic() + 20
    while len(emulator.requests) < TENANT_REQUESTS + 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    return process.finish(timeout=20), users


def test_a_terminated_sync_does_not_exit_0(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path
) -> None:
    """SIGTERM half-way: exit 143 with the reason as the last line, no ACTIVATE_VERSION,
    and whatever records did come out are the tenant's first users, each once."""
    run, users = terminate_half_way(start_emulator, tap_config, tmp_path)
    assert run.returncode == 128 + signal.SIGTERM
    assert run.last_stderr_line().endswith("Stopped by signal 15 before the sync was complete")
    users_sent = run.records("users")
    assert len(users_sent) < len(users)
    assert users_sent == expected_output(users)["users"][: len(users_sent)]
    assert run.count("ACTIVATE_VERSION") == 0


def test_a_terminated_sync_flushes_the_records_so_far(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path
) -> None:
    """The records of the pages fetched before the signal are written before it stops."""
    run, users = terminate_half_way(start_emulator, tap_config, tmp_path)
    assert run.returncode == 128 + signal.SIGTERM
    # Three pages of 20 were requested before the signal: the first came back and was
    # written (its memberships too) before the tap was stopped.
    assert 0 < len(run.records("users")) < len(users)
    assert run.records("role_memberships")


def test_a_target_that_stops_reading_fails_the_sync_in_one_line(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path
) -> None:
    """A reader that closes the tap's stdout (the target died): exit 1, one line, no
    traceback."""
    emulator = start_emulator(generate_users(3000))
    process = start_tap(tap_config(emulator, page_size=500), tmp_path, text=False)
    assert process.stdout is not None
    assert process.stderr is not None
    read = process.stdout.read(1000)
    process.stdout.close()  # the target died
    stderr = process.stderr.read()
    assert process.wait(timeout=30) == 1
    run = process.checked(read, stderr, parse=False)
    assert "Sync failed: the target closed its input" in run.last_stderr_line()
    assert "Traceback" not in run.stderr
