"""The fault kinds the tap retries, and what a sync must show after each one.

Every sync first asks GET /external/tenant (the credentials and the counters), then
the users pages (docs/streams.md, "What a sync emits"); the emulator numbers every request, that
one included.

Transient (tests/inprocess/test_retries.py): the fault hits three requests (the first try of GET
/external/tenant, the first try of page 1 and the first try of page 2); the sync exits 0,
every RECORD equals the fault-free ground truth, and the emulator saw exactly
1 + pages + faults requests.

Persistent (`assert_persistent_fault_fails_fast`): every request faults, `max_retries: 3`;
the sync exits non-zero within tries x (request_timeout + max_retry_wait) + start-up slack,
after exactly 3 requests (every try of GET /external/tenant: a tenant whose credentials
request fails fails as a whole, before any users page), with a one-line reason as the last
stderr line, and no RECORD at all.

Every run is at DEBUG; like every run of the tap, it is grepped for every form of the
key (tests/tapdriver.py).
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spanning_emulator import (
    FAULT_KINDS,
    FaultPlan,
    SpanningEmulator,
    expected_output,
    expected_tenant_record,
    generate_users,
    tenant_summary,
    utc_today,
)

from tests.emulator_requests import paths_of
from tests.hostile_server import TENANT_PATH, free_port, retry_warnings
from tests.leaks import ADMIN_EMAIL
from tests.tapdriver import DEBUG_ENV, run_in_process, run_tap
from tests.taprun import TapRun, assert_output_is, license_columns

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

# The persistent cases run as a process (tests/process/test_retries.py), for the console
# script's real exit status and last stderr line; the others run in the test process.
PROCESS_KINDS = ("503-html", "connection-refused")

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
        "name": None,  # none configured
        "day": utc_today().isoformat(),  # the emulator's Date header
        **license_columns(counters),
        "role_set_sent": None,  # role_membership_history not selected
    }
    assert row["started_at"] <= row["finished_at"]
    records = [m for m in run.messages if m["type"] == "RECORD"]
    assert records[-1]["stream"] == "tenant_syncs"


def assert_persistent_fault_fails_fast(
    start_emulator: Callable[..., SpanningEmulator],
    api_key: str,
    tmp_path: Path,
    kind: Kind,
    *,
    as_process: bool,
) -> None:
    """Every request faults with `kind`: the sync fails within its bound, after every try
    of GET /external/tenant and nothing else, with one line naming the reason. The run is
    the console script's (`as_process`) or `tap_spanning.tap.main` in the test process."""
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
    if as_process:
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
        assert paths_of(emulator.requests) == [TENANT_PATH] * TRIES
