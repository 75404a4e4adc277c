"""Costs that must not grow with the fleet (README, "Output rules", "Performance").

- The response budget: the bytes held for pages in flight, across every tenant, stay
  within one budget; a tenant waits for room rather than failing, and a page larger than
  the budget is still fetched, alone. Checked on the class and on a whole fleet sync
  in-process with a small budget, whose output must still be exact.
- Scrubbing: every form of every tenant's key is masked, found by its last characters,
  so a message costs the same at 10 tenants and at 100,000 (the bench measures it).
- A body that cannot change on a retry (NaN, a number beyond a double) fails its tenant
  at once, not after every try.
"""

from __future__ import annotations

import base64
import dataclasses
import threading
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from spanning_emulator import FaultPlan, FleetEmulator, generate_fleet

from tap_spanning import budget as response_budget
from tap_spanning.budget import BudgetClosed, ResponseBudget
from tap_spanning.redaction import MASK, SecretIndex, secret_forms
from tap_spanning.tap import TapSpanning
from tests.hostile_server import HostileServer, Reply, Seen
from tests.tapdriver import assert_tenants_exact, fleet_config, run_in_process

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
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twelve tenants, eight at once, and room for about three pages, every third request
    a 503: every record exact. Room is reserved before each try, at the largest page so
    far, and a failed try gives it back, so what is held passes the budget only by bodies
    larger than every page before them (at most one a worker)."""
    tenants = [
        dataclasses.replace(tenant, faults=FaultPlan(every=3, kind="503"))
        for tenant in generate_fleet(12, seed=4)
    ]
    emulator = FleetEmulator(tenants)
    emulator.start()
    limit = 24_000
    monkeypatch.setattr(response_budget, "RESPONSE_BUDGET_BYTES", limit)
    try:
        config = fleet_config(
            emulator, tenants, page_size=20, max_concurrent_tenants=8, max_retry_wait=0.01
        )
        run = run_in_process(config, tmp_path)
    finally:
        emulator.stop()
    assert run.returncode == 0, run.stderr[-2000:]
    assert_tenants_exact(run, tenants)
    assert sum(row["retries"] for row in run.records("tenant_syncs")) > 0
    [sync_run] = TapSpanning.runs
    spent = sync_run.budget
    assert spent.used == 0  # every page's room was given back
    assert spent.largest_page > 0
    assert spent.peak <= limit + 8 * spent.largest_page


# ---------------------------------------------------------------- scrubbing


def test_every_form_of_every_key_is_masked_among_many_tenants() -> None:
    """100,000 tenants, three of them sharing one admin email: each form of one key is
    masked wherever it stands, and nothing else is."""
    keys = [str(uuid.uuid4()) for _ in range(100_000)]
    forms = [form for key in keys for form in secret_forms("msp-admin@msp.example", key)]
    index = SecretIndex(forms)
    key = keys[77_777]
    pair = f"msp-admin@msp.example:{key}"
    spelled = [
        key,
        pair,
        quote(key, safe=""),
        base64.b64encode(pair.encode()).decode(),
        base64.b64encode(key.encode()).decode(),
    ]
    for form in spelled:
        text = f"before {form} after; again:{form}."
        assert index.redact(text) == f"before {MASK} after; again:{MASK}."
    untouched = "Tenant t00042: retrying GET /external/users in 1.0s (HTTP 503)"
    assert index.redact(untouched) == untouched


def test_overlapping_forms_and_short_keys_are_masked_whole() -> None:
    index = SecretIndex([*secret_forms("a@b.example", "k3y!"), *secret_forms("", "abcdefghij")])
    assert index.redact("Basic YUBiLmV4YW1wbGU6azN5IQ== and k3y! and xxabcdefghijyy") == (
        f"Basic {MASK} and {MASK} and xx{MASK}yy"
    )
    assert index.redact("a@b.example:k3y!") == MASK


# ---------------------------------------------------------------- bodies a retry cannot mend


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"licenses": NaN, "users": 3}', "NaN in the body"),
        (b'{"licenses": 1e400, "users": 3}', "number out of range"),
    ],
    ids=["nan", "beyond-a-double"],
)
def test_a_body_no_retry_can_mend_fails_the_tenant_at_once(
    body: bytes, reason: str, tmp_path: Path
) -> None:
    def answer(_server: HostileServer, _seen: Seen) -> Reply:
        return Reply(200, body)

    with HostileServer(answer) as server:
        config = {
            "admin_email": "admin@contoso.example",
            "api_key": str(uuid.uuid4()),
            "base_url": server.base_url,
            "max_retries": 5,
            "max_retry_wait": 0.01,
        }
        run = run_in_process(config, tmp_path)
        assert len(server.requests) == 1  # asked once: the answer cannot change
    assert run.returncode == 1
    assert "retrying" not in run.stderr
    assert run.last_stderr_line().endswith(
        "HTTP 200 from /external/tenant but the body holds "
        + ("NaN or Infinity, which JSON does not allow" if "NaN" in reason else "a number too "
           "large for any warehouse")
    )  # fmt: skip
