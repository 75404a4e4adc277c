"""Responses too large to hold, and the memory every response in flight may take
(docs/operations.md, "Failure behaviour"; docs/performance.md).

- A body that never ends, or declares 2 GiB, fails its tenant alone once it passes the
  bound; the other tenants complete.
- The response budget: the bytes held for pages in flight, across every tenant, stay
  within one budget; a tenant waits for room rather than failing, and a page larger than
  the budget is still fetched, alone. Checked on the class and on a whole fleet sync
  in-process with a small budget, whose output must still be exact.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from spanning_emulator import EmulatedTenant, FaultPlan, FleetEmulator, generate_fleet

from tap_spanning import budget as response_budget
from tap_spanning.budget import BudgetClosed, ResponseBudget
from tap_spanning.tap import TapSpanning
from tests.failure_fixtures import (
    HugeBodyServer,
    MiB,
    assert_healthy_complete,
    entries_of,
    entry,
    fleet_config,
)
from tests.hostile_server import retry_warnings
from tests.run_inputs import fleet_config as fleet_config_of
from tests.tapdriver import run_in_process
from tests.taprun import assert_tenants_exact

# ---------------------------------------------------------------- bodies too large to hold


def test_a_body_that_never_ends_or_declares_2_gib_fails_its_tenant_alone(
    healthy: tuple[FleetEmulator, list[EmulatedTenant]], tmp_path: Path
) -> None:
    """The body is bounded while it is read (16 MiB), and a declared Content-Length above
    the bound fails at once; each try is retried, then the tenant fails alone with
    "response too large after N tries". The tap hangs up as soon as the bound is passed:
    it never reads on to the server's cap."""
    emulator, tenants = healthy
    entries = entries_of(emulator, tenants)
    with HugeBodyServer("chunked") as endless, HugeBodyServer("length") as huge:
        entries += [
            entry("endless", "admin@endless.example", endless.base_url, "endless-7a1c-49de-bb1f"),
            entry("huge", "admin@huge.example", huge.base_url, "huge-2f0d-4c7a-9e55-aa01"),
        ]
        config = fleet_config(entries, max_retries=2, max_retry_wait=0.01)
        run = run_in_process(config, tmp_path)
    for server in (endless, huge):
        print(f"\n{server.mode}: {[(b.sent // MiB, b.ended) for b in server.bodies]} (MiB sent)")
    assert run.returncode == 1, run.stderr[-2000:]
    assert run.last_stderr_line().endswith(
        "2 of 6 tenants failed: endless (response too large after 2 tries), "
        "huge (response too large after 2 tries)"
    )
    for server in (endless, huge):
        # Two tries each, and each one ended by the tap hanging up, long before the
        # server's cap: the tap stopped reading, it did not wait for the end.
        assert len(server.users_paths()) == 2, server.mode
        assert [b.ended for b in server.bodies] == ["client closed"] * 2, server.mode
    assert retry_warnings(run) == 2  # one retry per huge tenant, none for the others
    assert_healthy_complete(run, tenants)
    for tenant_id in ("endless", "huge"):
        assert run.of_tenant("users", tenant_id) == []
        assert run.syncs()[tenant_id]["status"] == "failed"
    assert run.count("RECORD", "users") == sum(len(t.users) for t in tenants)


# ---------------------------------------------------------------- the budget


def _waiting(target: object) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)  # type: ignore[arg-type]
    thread.start()
    return thread


def _then(_hold: object, done: threading.Event) -> None:
    done.set()


def test_a_reservation_waits_for_room_and_gets_it_when_a_page_is_written() -> None:
    budget = ResponseBudget(limit=100)
    first = budget.reserve(60)
    got = threading.Event()
    waiter = _waiting(lambda: _then(budget.reserve(60), got))
    assert not got.wait(0.2)  # 60 + 60 > 100: it waits, it does not fail
    first.release()
    assert got.wait(5)
    waiter.join(5)
    assert budget.used == 60
    assert budget.peak == 60


def test_a_page_larger_than_the_budget_is_fetched_alone() -> None:
    budget = ResponseBudget(limit=100)
    huge = budget.reserve(500)  # nothing else held: it goes
    assert budget.used == 500
    got = threading.Event()
    _waiting(lambda: _then(budget.reserve(1), got))
    assert not got.wait(0.2)
    huge.release()
    assert got.wait(5)


def test_a_body_larger_than_its_estimate_takes_the_rest_without_waiting() -> None:
    budget = ResponseBudget(limit=100, first_estimate=40)
    hold = budget.reserve()
    assert hold.size == 40
    other = budget.reserve(50)
    hold.resize(70)  # over the limit now, but the body is already read: no wait
    assert budget.used == 120
    assert budget.estimate() == 70  # the largest page so far sizes the next reservations
    hold.release()
    other.release()
    hold.release()  # twice is once
    assert budget.used == 0


def test_closing_the_budget_wakes_a_waiting_tenant() -> None:
    budget = ResponseBudget(limit=10)
    budget.reserve(10)
    raised: list[BaseException] = []

    def wait() -> None:
        try:
            budget.reserve(5)
        except BudgetClosed as exc:
            raised.append(exc)

    thread = _waiting(wait)
    budget.close()
    thread.join(5)
    assert len(raised) == 1


def test_a_fleet_within_a_small_budget_is_synced_exactly(
    fleet_of: Callable[[list[EmulatedTenant]], FleetEmulator],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Twelve tenants, eight at once, and room for about three pages, every third request
    a 503: every record exact. Room is reserved before each try, at the largest page so
    far, and a failed try gives it back, so what is held passes the budget only by bodies
    larger than every page before them (at most one a worker)."""
    tenants = [
        dataclasses.replace(tenant, faults=FaultPlan(every=3, kind="503"))
        for tenant in generate_fleet(12, seed=4)
    ]
    emulator = fleet_of(tenants)
    limit = 24_000
    monkeypatch.setattr(response_budget, "RESPONSE_BUDGET_BYTES", limit)
    config = fleet_config_of(
        emulator, tenants, page_size=20, max_concurrent_tenants=8, max_retry_wait=0.01
    )
    run = run_in_process(config, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert_tenants_exact(run, tenants)
    assert sum(row["retries"] for row in run.records("tenant_syncs")) > 0
    [sync_run] = TapSpanning.runs
    spent = sync_run.budget
    assert spent.used == 0  # every page's room was given back
    assert spent.largest_page > 0
    assert spent.peak <= limit + 8 * spent.largest_page
