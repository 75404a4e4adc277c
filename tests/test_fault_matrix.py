"""The fault matrix (issue 5): every fault kind, once transient and once persistent.

Every sync first asks GET /external/tenant (the credentials and the counters), then
the users pages (README, "What a sync emits"); the emulator numbers every request, that
one included.

Transient: the fault hits three requests (the first try of GET /external/tenant, the
first try of page 1 and the first try of page 2); the sync exits 0, every RECORD equals
the fault-free ground truth, and the emulator saw exactly 1 + pages + faults requests.

Persistent: every request faults, `max_retries: 3`; the sync exits non-zero within
tries x (request_timeout + max_retry_wait) + start-up slack, after exactly 3 requests
(every try of GET /external/tenant: a tenant whose credentials request fails fails as a
whole, before any users page), with a one-line reason as the last stderr line, and no
RECORD at all.

Every run is at DEBUG; like every run of the tap, it is grepped for every form of the
key (tests/tapdriver.py).
"""

from __future__ import annotations

import email.utils
import queue
import re
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from spanning_emulator import (
    FAULT_KINDS,
    FaultPlan,
    SpanningEmulator,
    expected_output,
    expected_tenant_record,
    generate_users,
    tenant_summary,
)

from tests.conftest import EmulatorFactory
from tests.hostile_server import TENANT_PATH, USERS_PATH, free_port, retry_warnings
from tests.tapdriver import (
    ADMIN_EMAIL,
    DEBUG_ENV,
    TapRun,
    assert_output_is,
    run_in_process,
    run_tap,
    start_tap,
)

TENANT = generate_users(25, seed=29)
PAGE_SIZE = 10
PAGES = 3  # ceil(25 / 10)
TENANT_REQUEST = 1  # GET /external/tenant comes before every users page
PAGE_1 = TENANT_REQUEST + 1  # page 1's first try, when the tenant answered at once
MAX_RETRY_WAIT = 0.05
TRIES = 3
HANG_TIMEOUT = 0.5  # request_timeout for the hang cases
HANG_SECONDS = 3.0  # how long the emulator hangs: well past request_timeout
FAIL_TIMEOUT = 1.0  # request_timeout for the other persistent cases
STARTUP_SLACK = 5.0  # interpreter and SDK start-up, generously
DATE = "<an HTTP date 2 s ahead>"  # placeholder, computed when the plan is made


@dataclass(frozen=True)
class Kind:
    """One fault kind, and the reason the final error gives when it persists."""

    id: str
    fault: str | None  # emulator fault kind; None: connection refused (no server)
    reason: str  # in the last stderr line of the persistent case
    retry_after: str | None = "1"


KINDS: list[Kind] = [
    Kind("429-retry-after-seconds", "429", "HTTP 429", "1"),
    Kind("429-retry-after-http-date", "429", "HTTP 429", DATE),
    Kind("429-no-retry-after", "429", "HTTP 429", None),
    Kind("429-retry-after-one-day", "429", "HTTP 429", "86400"),
    *[
        Kind(f"{name}-{body}", f"{name}:{body}", f"HTTP {name}")
        for name, row in FAULT_KINDS.items()
        for body in row.variants  # the 5xx kinds, with every body
    ],
    Kind("reset-before-response", "reset-before", "connection was reset"),
    Kind("reset-during-body", "reset-during", "broke off in the middle of the response"),
    Kind("truncated-json", "truncate", "not valid JSON"),
    Kind("html-page-with-200", "html200", "not valid JSON"),
    Kind("response-never-finishes", "hang", "no complete answer within request_timeout"),
    Kind("connection-refused", None, "could not connect"),
]

LAST_LINE = re.compile(r"Sync failed: GET /external/tenant failed 3 times, giving up: \S.*")


def retry_after(kind: Kind) -> str | None:
    if kind.retry_after == DATE:
        return email.utils.formatdate(time.time() + 2, usegmt=True)
    return kind.retry_after


def config_for(api_key: str, base_url: str, **overrides: Any) -> dict[str, Any]:
    return {
        "base_url": base_url,
        "admin_email": ADMIN_EMAIL,
        "api_key": api_key,
        "page_size": PAGE_SIZE,
        "max_retry_wait": MAX_RETRY_WAIT,
        **overrides,
    }


def assert_fault_free_output(
    run: TapRun, emulator: SpanningEmulator, *, requests: int, retries: int
) -> None:
    """The ground truth of every stream, the tenants record included, and the tenant's
    tenant_syncs row, written last: complete, every user and membership, and the
    `requests` the tap made (every try, refused ones too) of which `retries` failed."""
    assert_output_is(run, TENANT)
    counters = tenant_summary(TENANT)
    assert run.records("tenants") == [
        expected_tenant_record("default", counters, emulator.base_url)
    ]
    truth = expected_output(TENANT)
    [row] = run.records("tenant_syncs")
    assert {k: v for k, v in row.items() if k not in ("started_at", "finished_at")} == {
        "tenant_id": "default",
        "status": "complete",
        "reason": None,
        "users": len(truth["users"]),
        "role_memberships": len(truth["role_memberships"]),
        "requests": requests,
        "retries": retries,
        "backup_last_day": None,  # no backup stream selected
    }
    assert row["started_at"] <= row["finished_at"]
    records = [m for m in run.messages if m["type"] == "RECORD"]
    assert records[-1]["stream"] == "tenant_syncs"


# ---------------------------------------------------------------- transient


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
    assert [r.path.partition("?")[0] for r in seen] == [TENANT_PATH] * 2 + [USERS_PATH] * 5
    faulted = {r.number for r in seen if r.fault}
    assert faulted == {TENANT_REQUEST, page_1_try, page_2_try}
    assert retry_warnings(run) == 2
    assert retry_warnings(run, TENANT_PATH) == 1


@pytest.mark.process  # the port comes up while the tap runs, the test acts meanwhile
def test_transient_connection_refused_gives_the_fault_free_output(
    start_emulator: EmulatorFactory, api_key: str, tmp_path: Path
) -> None:
    """Nobody listens on the port for the first try; the emulator is up for the retry."""
    reserved = socket.socket()
    reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    reserved.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    port = int(reserved.getsockname()[1])
    config = config_for(api_key, f"http://127.0.0.1:{port}", max_retry_wait=1.0)
    process = start_tap(config, tmp_path, env=DEBUG_ENV, label="connection refused, then up")
    lines: queue.Queue[str] = queue.Queue()
    stdout: list[str] = []
    stderr: list[str] = []

    def read_stderr() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            stderr.append(line)
            lines.put(line)

    def read_stdout() -> None:
        assert process.stdout is not None
        stdout.append(process.stdout.read())

    readers = [threading.Thread(target=f, daemon=True) for f in (read_stderr, read_stdout)]
    for reader in readers:
        reader.start()
    try:
        deadline = time.monotonic() + 20
        while True:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if "retrying GET /external/tenant in " in line:  # the first request
                break
        reserved.close()
        emulator = start_emulator(TENANT, port=port)
        process.wait(timeout=30)
    finally:
        reserved.close()
        if process.poll() is None:
            process.kill()
            process.wait()
    for reader in readers:
        reader.join(timeout=5)
    run = process.checked("".join(stdout), "".join(stderr))
    # The tap counts the refused try too: the tenant twice, then every page.
    assert_fault_free_output(run, emulator, requests=1 + PAGES + 1, retries=1)
    # The refused try never reached the emulator: the tenant's retry, then every page.
    assert [r.path.partition("?")[0] for r in emulator.requests] == [TENANT_PATH] + [
        USERS_PATH
    ] * PAGES
    assert retry_warnings(run, TENANT_PATH) == 1
    assert retry_warnings(run) == 0
    assert "could not connect" in run.stderr


# ---------------------------------------------------------------- persistent


# These persistent cases run the console script as a process, for its real exit status
# and last stderr line; the others run in the test process (tests/tapdriver.py).
PROCESS_KINDS = ("503-html", "connection-refused")


def persistent_params() -> list[Any]:
    return [
        pytest.param(
            kind, id=kind.id, marks=[pytest.mark.process] if kind.id in PROCESS_KINDS else []
        )
        for kind in KINDS
    ]


def test_process_kinds_are_fault_kinds() -> None:
    assert set(PROCESS_KINDS) <= {kind.id for kind in KINDS}


@pytest.mark.parametrize("kind", persistent_params())
def test_persistent_fault_fails_fast_with_one_line(
    start_emulator: EmulatorFactory,
    api_key: str,
    tmp_path: Path,
    kind: Kind,
    request: pytest.FixtureRequest,
) -> None:
    timeout = HANG_TIMEOUT if kind.fault == "hang" else FAIL_TIMEOUT
    bound = TRIES * (timeout + MAX_RETRY_WAIT) + STARTUP_SLACK
    if kind.fault is None:
        emulator = None
        base_url = f"http://127.0.0.1:{free_port()}"
    else:
        plan = FaultPlan(
            every=1, kind=kind.fault, retry_after=retry_after(kind), hang_seconds=HANG_SECONDS
        )
        emulator = start_emulator(TENANT, faults=plan)
        base_url = emulator.base_url
    config = config_for(api_key, base_url, max_retries=TRIES, request_timeout=timeout)
    label = f"persistent {kind.id}"
    if request.node.get_closest_marker("process"):
        run = run_tap(config, tmp_path, env=DEBUG_ENV, label=label, timeout=bound + 30)
    else:
        run = run_in_process(config, tmp_path, env=DEBUG_ENV, label=label)
    assert run.returncode != 0
    assert run.seconds < bound, f"took {run.seconds:.1f}s, bound {bound:.1f}s"
    last = run.last_stderr_line()
    assert LAST_LINE.search(last), run.stderr[-3000:]
    assert kind.reason in last
    assert "Traceback" not in run.stderr
    assert run.count("RECORD") == 0  # roles neither: no tenant ever answered
    assert retry_warnings(run, TENANT_PATH) == TRIES - 1
    assert retry_warnings(run) == 0  # no users page is asked of a tenant that failed
    if emulator is not None:
        assert len(emulator.requests) == TRIES
        assert all(r.fault == kind.fault for r in emulator.requests)
        assert all(r.path.partition("?")[0] == TENANT_PATH for r in emulator.requests)


# ---------------------------------------------------------------- Retry-After


def gap_between(emulator: SpanningEmulator, first: int) -> float:
    """Seconds between request `first` and the next one, as the emulator received them."""
    seen = {r.number: r.received_at for r in emulator.requests}
    return seen[first + 1] - seen[first]


def test_retry_after_seconds_is_honoured(
    start_emulator: EmulatorFactory, api_key: str, tmp_path: Path
) -> None:
    emulator = start_emulator(TENANT, faults=FaultPlan(at={PAGE_1: "429"}, retry_after="1"))
    run = run_in_process(
        config_for(api_key, emulator.base_url, max_retry_wait=5), tmp_path, env=DEBUG_ENV
    )
    assert_fault_free_output(run, emulator, requests=1 + PAGES + 1, retries=1)
    assert 1.0 <= gap_between(emulator, PAGE_1) < 2.0


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


def test_absurd_retry_after_is_capped_by_max_retry_wait(
    start_emulator: EmulatorFactory, api_key: str, tmp_path: Path
) -> None:
    emulator = start_emulator(TENANT, faults=FaultPlan(at={PAGE_1: "429"}, retry_after="86400"))
    run = run_in_process(
        config_for(api_key, emulator.base_url, max_retry_wait=0.3), tmp_path, env=DEBUG_ENV
    )
    assert_fault_free_output(run, emulator, requests=1 + PAGES + 1, retries=1)
    assert 0.25 <= gap_between(emulator, PAGE_1) < 1.5


def test_no_retry_after_uses_capped_exponential_backoff(
    start_emulator: EmulatorFactory, api_key: str, tmp_path: Path
) -> None:
    """The first backoff wait is 1 s; max_retry_wait 0.2 caps it."""
    emulator = start_emulator(TENANT, faults=FaultPlan(at={PAGE_1: "429"}, retry_after=None))
    run = run_in_process(
        config_for(api_key, emulator.base_url, max_retry_wait=0.2), tmp_path, env=DEBUG_ENV
    )
    assert_fault_free_output(run, emulator, requests=1 + PAGES + 1, retries=1)
    assert 0.15 <= gap_between(emulator, PAGE_1) < 1.0
    assert "in 0.2s" in run.stderr
