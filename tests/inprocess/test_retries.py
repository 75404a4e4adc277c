"""What the tap retries, how long it waits, and when it gives up (docs/operations.md, "Failure
behaviour").

Every fault kind once transient (retried, the output exact) and once persistent (the sync
fails after `max_retries` tries, in one line): tests/fault_kinds.py says what each must
show. Then the wait before a retry (Retry-After in seconds or as a date, capped by
`max_retry_wait`; exponential backoff without it), a response that trickles past the
deadline, a page that is not UTF-8, and the bodies no retry can mend, which fail at once.

In-process, over real HTTP (tests/tapdriver.py); the persistent kinds that run as a
process are in tests/process/test_retries.py.
"""

from __future__ import annotations

import email.utils
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from spanning_emulator import FaultPlan, SpanningEmulator, generate_users

from tests.conftest import EmulatorFactory
from tests.emulator_requests import paths_of
from tests.failure_fixtures import (
    PAGE_SIZE,
    USERS_PATH,
    assert_failed,
    sorted_users,
    tenant_reply,
)
from tests.fault_kinds import (
    HANG_SECONDS,
    HANG_TIMEOUT,
    KINDS,
    PAGE_1,
    PAGES,
    PROCESS_KINDS,
    TENANT,
    TENANT_REQUEST,
    Kind,
    assert_fault_free_output,
    assert_persistent_fault_fails_fast,
    config_for,
    retry_after,
)
from tests.hostile_server import TENANT_PATH, HostileServer, Reply, Seen, retry_warnings
from tests.tapdriver import DEBUG_ENV, run_in_process
from tests.taprun import assert_output_is

# ---------------------------------------------------------------- every kind, transient


@pytest.mark.parametrize("kind", [k for k in KINDS if k.fault], ids=lambda k: k.id)
def test_transient_fault_gives_the_fault_free_output(
    start_emulator: EmulatorFactory, api_key: str, tmp_path: Path, kind: Kind
) -> None:
    assert kind.fault is not None
    # The tenant request's first try, then page 1's first try (after the tenant's retry)
    # and page 2's first try (after page 1's retry).
    page_1_try = TENANT_REQUEST + 2
    page_2_try = page_1_try + 2
    plan = FaultPlan(
        at={TENANT_REQUEST: kind.fault, page_1_try: kind.fault, page_2_try: kind.fault},
        retry_after=retry_after(kind),
        hang_seconds=HANG_SECONDS,
    )
    emulator = start_emulator(TENANT, faults=plan)
    overrides = {"request_timeout": HANG_TIMEOUT} if kind.fault == "hang" else {}
    run = run_in_process(
        config_for(api_key, emulator.base_url, **overrides),
        tmp_path,
        env=DEBUG_ENV,
        label=kind.id,
    )
    assert_fault_free_output(run, emulator, requests=1 + PAGES + 3, retries=3)
    seen = emulator.requests
    assert [r.fault for r in seen if r.fault] == [kind.fault] * 3
    assert len(seen) == 1 + PAGES + 3
    # The tenant twice, page 1 twice, page 2 twice, page 3; each first try faulted.
    assert paths_of(seen) == [TENANT_PATH] * 2 + [USERS_PATH] * 5
    faulted = {r.number for r in seen if r.fault}
    assert faulted == {TENANT_REQUEST, page_1_try, page_2_try}
    assert retry_warnings(run) == 2
    assert retry_warnings(run, TENANT_PATH) == 1


# ---------------------------------------------------------------- every kind, persistent


def test_process_kinds_are_fault_kinds() -> None:
    assert set(PROCESS_KINDS) <= {kind.id for kind in KINDS}


@pytest.mark.parametrize(
    "kind", [k for k in KINDS if k.id not in PROCESS_KINDS], ids=lambda k: k.id
)
def test_persistent_fault_fails_fast_with_one_line(
    start_emulator: EmulatorFactory, api_key: str, tmp_path: Path, kind: Kind
) -> None:
    assert_persistent_fault_fails_fast(start_emulator, api_key, tmp_path, kind, as_process=False)


@pytest.mark.parametrize("kind", ["503", "429", "reset-before", "truncate", "html200"])
def test_a_users_page_that_always_faults_fails_after_max_retries(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path, kind: str
) -> None:
    """Every try of the first users page faults (the tenant request answers)."""
    page_1 = TENANT_REQUEST + 1
    plan = FaultPlan(at={n: kind for n in range(page_1, page_1 + 10)}, retry_after="0")
    emulator = start_emulator(generate_users(30), faults=plan)
    run = run_in_process(tap_config(emulator, max_retries=3), tmp_path, env=DEBUG_ENV)
    assert_failed(run, "GET /external/users failed 3 times, giving up")
    assert paths_of(emulator.requests) == [TENANT_PATH] + [USERS_PATH] * 3
    assert [r.fault for r in emulator.requests] == [None] + [kind] * 3
    assert run.count("RECORD", "users") == 0


def test_a_tenant_request_that_fails_fails_the_sync_before_the_users(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path
) -> None:
    """GET /external/tenant, asked before any users page, fails for good: the tenant
    fails as a whole, no users page is asked, no record of any stream is written (no
    tenant answered) and nothing is activated; the exit says so."""
    users = generate_users(30)
    plan = FaultPlan(at={n: "503" for n in range(1, 20)})  # the tenant never answers
    emulator = start_emulator(users, faults=plan)
    config = tap_config(emulator, page_size=10, max_retries=2, emit_activate_version_messages=True)
    run = run_in_process(config, tmp_path, env=DEBUG_ENV)
    assert run.returncode == 1
    for stream in ("users", "role_memberships", "tenants", "roles", "tenant_syncs"):
        assert run.records(stream) == [], stream
    assert run.count("RECORD") == 0
    assert run.count("ACTIVATE_VERSION") == 0
    assert paths_of(emulator.requests) == [TENANT_PATH] * 2  # max_retries tries
    assert (
        "| Sync failed: GET /external/tenant failed 2 times, giving up: HTTP 503 from "
        "/external/tenant: <html>"
    ) in run.last_stderr_line()


# ---------------------------------------------------------------- the wait before a retry


def gap_between(emulator: SpanningEmulator, first: int) -> float:
    """Seconds between request `first` and the next one, as the emulator received them."""
    seen = {r.number: r.received_at for r in emulator.requests}
    return seen[first + 1] - seen[first]


@pytest.mark.parametrize(
    ("asked", "max_retry_wait", "shortest", "longest", "logged"),
    [
        # Retry-After: 1 is honoured, well under max_retry_wait.
        ("1", 5, 1.0, 2.0, None),
        # A day's Retry-After is capped by max_retry_wait.
        ("86400", 0.3, 0.25, 1.5, None),
        # No Retry-After: the first backoff wait is 1 s; max_retry_wait 0.2 caps it.
        (None, 0.2, 0.15, 1.0, "in 0.2s"),
    ],
    ids=["retry-after-seconds", "retry-after-one-day", "no-retry-after"],
)
def test_the_wait_is_retry_after_or_backoff_capped_by_max_retry_wait(
    start_emulator: EmulatorFactory,
    api_key: str,
    tmp_path: Path,
    asked: str | None,
    max_retry_wait: float,
    shortest: float,
    longest: float,
    logged: str | None,
) -> None:
    plan = FaultPlan(at={PAGE_1: "429"}, retry_after=asked)
    emulator = start_emulator(TENANT, faults=plan)
    config = config_for(api_key, emulator.base_url, max_retry_wait=max_retry_wait)
    run = run_in_process(config, tmp_path, env=DEBUG_ENV)
    assert_fault_free_output(run, emulator, requests=1 + PAGES + 1, retries=1)
    assert shortest <= gap_between(emulator, PAGE_1) < longest
    if logged is not None:
        assert logged in run.stderr


def test_retry_after_http_date_is_honoured(
    start_emulator: EmulatorFactory, api_key: str, tmp_path: Path
) -> None:
    """The date is set ~2 s ahead just before the 429 is sent (it has 1 s resolution):
    when page 1 is served, for page 2's first try."""
    page_2 = PAGE_1 + 1
    plan = FaultPlan(at={page_2: "429"})
    emulator = start_emulator(TENANT, faults=plan)
    dated: list[int] = []

    def date_two_seconds_ahead(number: int, page: dict[str, Any]) -> dict[str, Any]:
        if number == PAGE_1:  # the emulator's number: GET /external/tenant was 1
            plan.retry_after = email.utils.formatdate(time.time() + 2, usegmt=True)
            dated.append(number)
        return page

    emulator.page_hook = date_two_seconds_ahead
    run = run_in_process(
        config_for(api_key, emulator.base_url, max_retry_wait=5), tmp_path, env=DEBUG_ENV
    )
    assert_fault_free_output(run, emulator, requests=1 + PAGES + 1, retries=1)
    assert dated == [PAGE_1]  # the 429 carried the date, not the plan's default "1"
    assert [r.number for r in emulator.requests if r.fault] == [page_2]
    assert 0.9 <= gap_between(emulator, page_2) < 3.0


# ---------------------------------------------------------------- bodies retried, or not


@pytest.mark.parametrize("kind", ["trickle", "slow-headers"])
def test_a_trickling_response_is_cut_off_by_the_deadline(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path, kind: str
) -> None:
    """Bytes sent one at a time, in the body or already in the headers, never trip a read
    timeout; the deadline ends the request, and the retry gets the page."""
    users = generate_users(30)
    page_1 = TENANT_REQUEST + 1
    emulator = start_emulator(users, faults=FaultPlan(at={page_1: kind}))
    started = time.monotonic()
    config = tap_config(emulator, page_size=10, request_timeout=1)
    run = run_in_process(config, tmp_path, env=DEBUG_ENV)
    elapsed = time.monotonic() - started
    assert_output_is(run, users)
    # The tenant, page 1 twice, pages 2 and 3.
    assert paths_of(emulator.requests) == [TENANT_PATH] + [USERS_PATH] * 4
    assert [r.fault for r in emulator.requests] == [None, kind, None, None, None]
    assert elapsed < 10
    assert "try 1 of 5 failed: no complete answer within request_timeout (1s)" in run.stderr


def test_a_page_that_is_not_utf8_is_retried(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are a bad response, retried like a cut-off body."""
    users = sorted_users(30, seed=31)
    bodies = [
        b'{"users":[{"msId":"a\xff"}],"nextLink":""}',
        json.dumps({"users": users, "nextLink": ""}).encode(),
    ]

    def in_turn(server: HostileServer, seen: Seen) -> Reply:
        other = tenant_reply(seen, len(users))
        if other is not None:
            return other
        asked = len([s for s in server.requests if s.path == USERS_PATH])
        return Reply(200, bodies[min(asked, len(bodies)) - 1])

    with HostileServer(in_turn) as server:
        config = {
            "base_url": server.base_url,
            "admin_email": "admin@bytes.example",
            "api_key": "bytes-key-8e2a-41c7-b9d3",
            "page_size": PAGE_SIZE,
            "max_retry_wait": 0.01,
        }
        run = run_in_process(config, tmp_path)
        asked = [s.path for s in server.requests if s.path == USERS_PATH]
    assert_output_is(run, users)
    assert len(asked) == 2
    assert retry_warnings(run) == 1
    assert "the body is not valid JSON" in run.stderr


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"licenses": NaN, "users": 3}', "NaN or Infinity, which JSON does not allow"),
        (b'{"licenses": 1e400, "users": 3}', "a number too large for any warehouse"),
    ],
    ids=["nan", "beyond-a-double"],
)
def test_a_body_no_retry_can_mend_fails_the_tenant_at_once(
    body: bytes, says: str, tmp_path: Path
) -> None:
    with HostileServer(lambda server, seen: Reply(200, body)) as server:
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
        "HTTP 200 from /external/tenant but the body holds " + says
    )
