"""One tenant fails alone, and the run says so (docs/many-tenants.md, "A failing tenant
fails alone"; docs/operations.md, "A host that is down for every tenant", "Exit codes").

A host that hangs or refuses costs one round of tries, then its tenants fail as "host
unreachable" without a request; the run exits as its failure_mode says; progress and the
last stderr line stay short however many tenants failed; the healthy fleet the failure
tests add a bad tenant to completes alone. In-process, over real HTTP (tests/tapdriver.py).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from spanning_emulator import (
    EmulatedTenant,
    FaultPlan,
    FleetEmulator,
    generate_fleet,
    generate_users,
)

from tap_spanning.client import SpanningError
from tap_spanning.run import RunFailed, SyncRun
from tap_spanning.settings import resolve_settings
from tests.failure_fixtures import (
    assert_healthy_complete,
    entries_of,
    entry,
    fleet_config,
    healthy_tenants,
)
from tests.hostile_server import HostileServer, Reply, free_port
from tests.run_inputs import fleet_config as fleet_config_of
from tests.tapdriver import run_in_process
from tests.taprun import TapRun

# ---------------------------------------------------------------- a host that is away


def reasons_by_kind(run: TapRun, tenant_ids: list[str]) -> dict[str, list[str]]:
    """The failed tenants among `tenant_ids`, by the first words of their reason."""
    found: dict[str, list[str]] = {}
    for tenant_id in tenant_ids:
        record = run.syncs()[tenant_id]
        assert record["status"] == "failed", tenant_id
        reason: str = record["reason"]
        if reason.startswith("host unreachable: "):
            kind = "host unreachable"
        elif "giving up: no complete answer within request_timeout (0.3s)" in reason:
            kind = "timeout"
        elif "giving up: could not connect" in reason:
            kind = "connection failed"
        else:
            kind = reason
        found.setdefault(kind, []).append(tenant_id)
    return found


def test_a_host_that_hangs_for_every_tenant_costs_one_round_of_tries(tmp_path: Path) -> None:
    """After 3 tenants of a host in a row time out, the rest of that host's tenants fail as
    "host unreachable" without a request, and the other host's tenants complete: the host
    costs one round of tries, not every tenant's max_retries tries of request_timeout."""
    ok = healthy_tenants([120, 30, 75])
    hung = [
        EmulatedTenant(
            tenant_id=f"hung{index:02d}",
            users=generate_users(20, seed=900 + index),
            admin_email=f"admin@hung{index}.example",
            api_key=f"hung{index:02d}-key-1e5b-4a8c-9d0f-{index:012d}",
            host="127.0.0.2",
            faults=FaultPlan(every=1, kind="hang", hang_seconds=10.0),
        )
        for index in range(20)
    ]
    with FleetEmulator([*ok, *hung]) as emulator:
        config = fleet_config(
            entries_of(emulator, [*ok, *hung]),
            max_concurrent_tenants=8,
            request_timeout=0.3,
            max_retries=2,
            max_retry_wait=0.01,
        )
        run = run_in_process(config, tmp_path)
        asked = [r.tenant_id for r in emulator.requests]
    print(f"\nhung host: the run took {run.seconds:.2f}s")
    assert run.returncode == 1, run.stderr[-2000:]
    assert_healthy_complete(run, ok)
    hung_ids = [t.tenant_id for t in hung]
    kinds = reasons_by_kind(run, hung_ids)
    print("hung host:", {kind: len(ids) for kind, ids in kinds.items()})
    assert set(kinds) == {"timeout", "host unreachable"}, kinds
    assert len(kinds["timeout"]) >= 3
    # 8 tenants in flight when the circuit opens, and at most 2 more.
    assert len(kinds["host unreachable"]) >= 10, f"asked before the circuit: {kinds['timeout']}"
    for tenant_id in kinds["host unreachable"]:
        assert asked.count(tenant_id) == 0, tenant_id  # never asked: the circuit was open
        assert run.syncs()[tenant_id]["requests"] == 0
    for tenant_id in kinds["timeout"]:
        # Its counters, tried at most max_retries times: twice, or once when the circuit
        # opened between its tries (other tenants of the host timed out meanwhile; on a
        # loaded machine that happens). The tap counts its tries; the emulator logs a
        # request only once a handler reads it, which a loaded machine may not reach before
        # the 0.3 s deadline shuts the connection: never more than the tap's count.
        tries = run.syncs()[tenant_id]["requests"]
        assert 1 <= tries <= 2, (tenant_id, tries)
        assert asked.count(tenant_id) <= tries, tenant_id
    last = run.last_stderr_line()
    assert "20 of 23 tenants failed: " in last
    assert last.endswith("and 10 more (each named in the log above)")


def test_a_host_that_refuses_every_connection_opens_the_circuit(
    healthy: tuple[FleetEmulator, list[EmulatedTenant]], tmp_path: Path
) -> None:
    """The same with a host nobody listens on: "connection failed" three times in a
    row, then "host unreachable" without a try."""
    emulator, tenants = healthy
    away = f"http://127.0.0.1:{free_port()}"
    refused = [
        entry(f"gone{index:02d}", f"admin@gone{index}.example", away, f"gone-{index:02d}-3d9e")
        for index in range(20)
    ]
    config = fleet_config(
        [*refused, *entries_of(emulator, tenants)],
        max_concurrent_tenants=8,
        max_retries=2,
        max_retry_wait=0.01,
    )
    run = run_in_process(config, tmp_path)
    print(f"\nrefusing host: the run took {run.seconds:.2f}s")
    assert run.returncode == 1, run.stderr[-2000:]
    assert_healthy_complete(run, tenants)
    kinds = reasons_by_kind(run, [e["tenant_id"] for e in refused])
    print("refusing host:", {kind: len(ids) for kind, ids in kinds.items()})
    assert set(kinds) == {"connection failed", "host unreachable"}, kinds
    assert len(kinds["connection failed"]) >= 3
    assert len(kinds["host unreachable"]) >= 10, f"tried: {kinds['connection failed']}"
    for tenant_id in kinds["host unreachable"]:
        assert run.syncs()[tenant_id]["requests"] == 0, tenant_id
    for tenant_id in kinds["connection failed"]:
        assert run.syncs()[tenant_id]["requests"] == 2, tenant_id
    assert run.last_stderr_line().endswith("and 10 more (each named in the log above)")


# ---------------------------------------------------------------- what the run says


class Recorder:
    """A logger that keeps its lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str, *args: object) -> None:
        self.lines.append(message % args)

    warning = error = info


def loopback_fleet(count: int, port: int = 9) -> dict[str, Any]:
    return {
        "tenants": [
            entry(
                f"t{index:05d}",
                f"admin@t{index:05d}.example",
                f"http://127.0.0.1:{port}",
                f"t{index:05d}-key-4b8e-9c1d",
            )
            for index in range(count)
        ]
    }


def test_progress_is_logged_at_most_every_ten_seconds_and_names_the_tenants(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A progress line at most every ten seconds, saying the users, pages, rate and
    retries so far and how many tenants are done, failed and left."""
    clock = [100.0]
    monkeypatch.setattr("tap_spanning.run.time.monotonic", lambda: clock[0])
    recorder = Recorder()
    settings = resolve_settings(loopback_fleet(3))
    run = SyncRun(
        lambda: settings, recorder, "ua", version=1, tallies={"users": "users"}  # type: ignore[arg-type]
    )
    tenants = {t.tenant_id: t for t in settings.tenants}
    for second in range(35):
        clock[0] = 100.0 + second
        if second == 15:
            run.fail(tenants["t00002"], "users", SpanningError("HTTP 503 ...", "HTTP 503"))
        if second == 25:
            run.tenants["t00001"].pages_done = True  # its users pages pass ran to the end
        run.note_written("users", "t00000", 1000)
        run.note_page()
    # A page a second from t=0: lines at 10, 20 and 30 s, with 11, 21 and 31 pages in.
    assert [line for line in recorder.lines if line.startswith("Progress:")] == [
        "Progress: 11000 users in 11 pages so far, 1100 users/s, 0 retries; "
        "tenants: 0 done, 0 failed, 3 left",
        "Progress: 21000 users in 21 pages so far, 1050 users/s, 0 retries; "
        "tenants: 0 done, 1 failed, 2 left",
        "Progress: 31000 users in 31 pages so far, 1033 users/s, 0 retries; "
        "tenants: 1 done, 1 failed, 1 left",
    ]


def test_the_last_line_stays_short_with_ten_thousand_failed_tenants() -> None:
    """The last line names the first 10 failed tenants and counts the rest, each named in
    the log above it: under 1,000 characters, not one of 300,000."""
    settings = resolve_settings(loopback_fleet(10_000))
    recorder = Recorder()
    run = SyncRun(lambda: settings, recorder, "ua", version=1)  # type: ignore[arg-type]
    for tenant in settings.tenants:
        run.fail(tenant, "users", SpanningError("HTTP 503 from /external/users", "HTTP 503"))
    line = run.failure_line()
    print(f"\nlast line of 10,000 failures: {len(line)} characters")
    named = ", ".join(f"t{index:05d} (HTTP 503)" for index in range(10))
    assert line == (
        f"10000 of 10000 tenants failed: {named} and 9990 more (each named in the log above)"
    )
    assert len(line) < 1000
    # Each one is named in the log above it.
    assert len([x for x in recorder.lines if x.startswith("Tenant t")]) == 10_000


def test_the_refused_line_stays_short_with_thousands_of_refused_tenants(
    tmp_path: Path,
) -> None:
    """The same for the credentials pass, over HTTP: every tenant's key refused."""
    count = 300
    with HostileServer(lambda server, seen: Reply(401, {"message": "Unauthorized"})) as server:
        config = loopback_fleet(count, server.server_port)
        config["max_concurrent_tenants"] = 64
        settings = resolve_settings(config)
        run = SyncRun(lambda: settings, Recorder(), "ua", version=1)  # type: ignore[arg-type]
        started = time.monotonic()
        with pytest.raises(RunFailed) as stopped:
            run.preflight()
        print(f"\n{count} refused tenants: {time.monotonic() - started:.2f}s")
        assert len(server.requests) == count
    line = str(stopped.value)
    named = ", ".join(f"t{index:05d}" for index in range(10))
    assert line == (
        f"Credentials refused for {count} of {count} tenants, so nothing was synced: "
        f"{named} and {count - 10} more (each named in the log above) (fix their keys, or "
        "set failure_mode to isolate or nightly to sync the others without them)"
    )
    assert len(line) < 1000


# ---------------------------------------------------------------- exit codes


@pytest.mark.parametrize(
    ("mode", "failing", "exit_code"),
    [
        ("nightly", 1, 0),  # one of four failed: a normal night
        ("nightly", 4, 1),  # none completed: nothing to build on
        ("isolate", 1, 1),
        ("strict", 1, 1),
    ],
)
def test_the_exit_code_of_each_failure_mode(
    fleet_of: Callable[[list[EmulatedTenant]], FleetEmulator],
    mode: str,
    failing: int,
    exit_code: int,
    tmp_path: Path,
) -> None:
    """A hostile tenant fails alone in every mode; the exit code is the mode's: nightly
    exits 0 while a tenant completed, isolate and strict exit 1 (README, "The nightly
    run")."""
    tenants = [
        dataclasses.replace(t, hostile="licenses-1e40" if i < failing else None)
        for i, t in enumerate(generate_fleet(4, seed=3))
    ]
    emulator = fleet_of(tenants)
    run = run_in_process(fleet_config_of(emulator, tenants, failure_mode=mode), tmp_path)
    assert run.returncode == exit_code, run.stderr[-2000:]
    assert run.last_stderr_line().endswith(
        ", ".join(f"{t.tenant_id} (unreadable tenant counters)" for t in tenants[:failing])
    )


def test_the_healthy_fleet_alone_completes(
    healthy: tuple[FleetEmulator, list[EmulatedTenant]], tmp_path: Path
) -> None:
    """The fleet the failure tests add a bad tenant to, alone: every tenant complete."""
    emulator, tenants = healthy
    run = run_in_process(fleet_config(entries_of(emulator, tenants)), tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert_healthy_complete(run, tenants)
