"""Behaviour: config mistakes, refusals and failures; each one loud, exact and key-free.

Every sync first asks GET /external/tenant (the credentials and the counters), then the
users pages (README, "What a sync emits"): the emulator numbers that first request 1,
so users page N's first try is request TENANT_REQUESTS + N when nothing failed before.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from spanning_emulator import FaultPlan, RequestRecord, expected_output, generate_users
from typing_extensions import override

from tests.conftest import EmulatorFactory
from tests.hostile_server import TENANT_PATH, USERS_PATH
from tests.tapdriver import (
    ADMIN_EMAIL,
    TapRun,
    assert_output_is,
    run_in_process,
    run_tap,
    start_tap,
)
from tests.tapdriver import DEBUG_ENV as DEBUG

TENANT_REQUESTS = 1  # GET /external/tenant, before any users page


def paths_asked(requests: Sequence[RequestRecord]) -> list[str]:
    """The path of each request the emulator received, in order, without the query."""
    return [r.path.partition("?")[0] for r in requests]


def assert_failed(run: TapRun, *phrases: str) -> None:
    assert run.returncode != 0
    for phrase in phrases:
        assert phrase in run.stderr, run.stderr[-3000:]


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"admin_email": None}, "admin_email"),
        ({"api_key": None}, "api_key"),
        ({"base_url": "https://evil.example"}, "base_url"),
        ({"base_url": "http://o365-api-us.spanningbackup.com"}, "base_url"),
        ({"region": "mars"}, "region"),
        ({"region": "eu"}, "region"),  # disagrees with a Spanning base_url below
        ({"page_size": 5000}, "page_size"),
        ({"page_size": 0}, "page_size"),
        ({"max_retries": 0}, "max_retries"),
        ({"request_timeout": -1}, "request_timeout"),
    ],
)
def test_config_mistakes_fail_before_any_request(
    start_emulator: EmulatorFactory,
    tap_config: Any,
    api_key: str,
    tmp_path: Path,
    overrides: dict[str, Any],
    setting: str,
) -> None:
    emulator = start_emulator(generate_users(5))
    config = tap_config(emulator)
    if setting == "region" and overrides.get("region") == "eu":
        config["base_url"] = "https://o365-api-us.spanningbackup.com"
    config.update(overrides)
    config = {k: v for k, v in config.items() if v is not None}
    run = run_in_process(config, tmp_path, env=DEBUG)
    assert run.returncode == 1
    assert run.stdout == ""
    assert emulator.requests == []
    assert setting in run.stderr


@pytest.mark.process  # the console script's real exit status and last stderr line
def test_wrong_key_fails_at_once_with_the_likely_causes(
    start_emulator: EmulatorFactory, tap_config: Any, api_key: str, tmp_path: Path
) -> None:
    emulator = start_emulator(generate_users(5))
    run = run_tap(
        tap_config(emulator, api_key="0000-wrong-key", max_retries=5), tmp_path, env=DEBUG
    )
    assert_failed(run, "HTTP 401", "API Token", "admin_email", "region")
    assert paths_asked(emulator.requests) == [TENANT_PATH]  # the credentials, once
    assert "Sync failed: Spanning refused the credentials (HTTP 401" in run.last_stderr_line()
    assert run.count("RECORD") == 0  # bad credentials write no record


def test_wrong_email_fails_like_a_wrong_key(
    start_emulator: EmulatorFactory, tap_config: Any, api_key: str, tmp_path: Path
) -> None:
    emulator = start_emulator(generate_users(5))
    run = run_in_process(
        tap_config(emulator, admin_email="other@contoso.example"), tmp_path, env=DEBUG
    )
    assert_failed(run, "HTTP 401")


def test_bad_request_shows_the_servers_message(
    start_emulator: EmulatorFactory, tap_config: Any, api_key: str, tmp_path: Path
) -> None:
    # The emulator's real-size limit is 1000; a smaller limit makes it answer 400.
    emulator = start_emulator(generate_users(5), max_page_size=100)
    run = run_in_process(tap_config(emulator, page_size=500), tmp_path, env=DEBUG)
    assert_failed(run, "HTTP 400", "size")
    # The tenant answers (it takes no size); the first users page is refused, not retried.
    assert paths_asked(emulator.requests) == [TENANT_PATH, USERS_PATH]


def test_not_found_says_the_base_url_is_wrong(api_key: str, tmp_path: Path) -> None:
    """A loopback service that is not the API answers 404 the way Spanning's router does."""

    class NotTheApi(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f"Cannot GET {self.path.split('?')[0]}".encode()
            self.send_response(404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        @override
        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotTheApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        config = {
            "base_url": f"http://127.0.0.1:{server.server_port}/external",
            "admin_email": ADMIN_EMAIL,
            "api_key": api_key,
        }
        run = run_in_process(config, tmp_path, env=DEBUG)
    finally:
        server.shutdown()
        server.server_close()
    # The first request, GET /external/tenant, is the one that meets the 404.
    assert_failed(run, "404", "Cannot GET /external/tenant", "base_url is probably wrong")


@pytest.mark.parametrize(
    ("next_link", "phrase"),
    [
        ("https://evil.example/external/users?size=2", "refusing to send credentials"),
        ("http://203.0.113.9/external/users?size=2", "refusing to send credentials"),
        ("file:///etc/passwd", "http(s)"),
        ("javascript:alert(1)", "http(s)"),
        ("/external/tenant", "path"),
    ],
)
def test_next_link_off_the_host_is_refused(
    start_emulator: EmulatorFactory,
    tap_config: Any,
    api_key: str,
    tmp_path: Path,
    next_link: str,
    phrase: str,
) -> None:
    emulator = start_emulator(generate_users(6))

    def hostile(number: int, page: dict[str, Any]) -> dict[str, Any]:
        return {**page, "nextLink": next_link}

    emulator.page_hook = hostile
    run = run_in_process(tap_config(emulator, page_size=2), tmp_path, env=DEBUG)
    assert_failed(run, "nextLink", phrase)
    # The tenant, then page 1 only: nothing is asked where its nextLink points.
    assert paths_asked(emulator.requests) == [TENANT_PATH, USERS_PATH]


def test_next_link_loop_fails_the_sync(
    start_emulator: EmulatorFactory, tap_config: Any, api_key: str, tmp_path: Path
) -> None:
    emulator = start_emulator(generate_users(10))
    first_link: list[str] = []

    def loop(number: int, page: dict[str, Any]) -> dict[str, Any]:
        if not first_link:
            first_link.append(str(page["nextLink"]))
        return {**page, "nextLink": first_link[0]}

    emulator.page_hook = loop
    run = run_in_process(tap_config(emulator, page_size=2), tmp_path, env=DEBUG)
    assert_failed(run, "already followed")
    # The tenant, pages 1 and 2: page 2's nextLink is page 2's own URL, never asked again.
    assert paths_asked(emulator.requests) == [TENANT_PATH] + [USERS_PATH] * 2


@pytest.mark.parametrize("kind", ["503", "429", "reset-before", "truncate", "html200"])
def test_persistent_fault_fails_after_max_retries(
    start_emulator: EmulatorFactory, tap_config: Any, api_key: str, tmp_path: Path, kind: str
) -> None:
    """Every try of the first users page faults (the tenant request answers)."""
    page_1 = TENANT_REQUESTS + 1
    plan = FaultPlan(at={n: kind for n in range(page_1, page_1 + 10)}, retry_after="0")
    emulator = start_emulator(generate_users(30), faults=plan)
    run = run_in_process(tap_config(emulator, max_retries=3), tmp_path, env=DEBUG)
    assert_failed(run, "GET /external/users failed 3 times, giving up")
    assert paths_asked(emulator.requests) == [TENANT_PATH] + [USERS_PATH] * 3
    assert [r.fault for r in emulator.requests] == [None] + [kind] * 3
    assert run.count("RECORD", "users") == 0


@pytest.mark.process  # the console script's real exit status and last two stderr lines
def test_a_sync_never_ends_0_with_users_missing(
    start_emulator: EmulatorFactory, tap_config: Any, api_key: str, tmp_path: Path
) -> None:
    """The third page fails for good: users of the first pages were sent, the exit says so."""
    page_3 = TENANT_REQUESTS + 3  # its first try: the tenant and pages 1 and 2 answered
    plan = FaultPlan(at={n: "502" for n in range(page_3, 20)})
    users = generate_users(30)
    emulator = start_emulator(users, faults=plan)
    config = tap_config(emulator, page_size=10, max_retries=2, emit_activate_version_messages=True)
    run = run_tap(config, tmp_path, env=DEBUG)
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
    assert paths_asked(emulator.requests) == [TENANT_PATH] + [USERS_PATH] * 4
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
    run = run_in_process(config, tmp_path, env=DEBUG)
    assert run.returncode == 1
    for stream in ("users", "role_memberships", "tenants", "roles", "tenant_syncs"):
        assert run.records(stream) == [], stream
    assert run.count("RECORD") == 0
    assert run.count("ACTIVATE_VERSION") == 0
    assert paths_asked(emulator.requests) == [TENANT_PATH] * 2  # max_retries tries
    assert (
        "| Sync failed: GET /external/tenant failed 2 times, giving up: HTTP 503 from "
        "/external/tenant: <html>"
    ) in run.last_stderr_line()


def test_debug_output_of_a_good_sync_holds_no_key(
    start_emulator: EmulatorFactory, tap_config: Any, api_key: str, tmp_path: Path
) -> None:
    emulator = start_emulator(generate_users(40), faults=FaultPlan(every=2, kind="429"))
    run = run_in_process(tap_config(emulator, page_size=10), tmp_path, env=DEBUG)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "DEBUG" in run.stderr


@pytest.mark.parametrize("kind", ["trickle", "slow-headers"])
def test_a_trickling_response_is_cut_off_by_the_deadline(
    start_emulator: EmulatorFactory, tap_config: Any, api_key: str, tmp_path: Path, kind: str
) -> None:
    """Bytes sent one at a time, in the body or already in the headers, never trip a read
    timeout; the deadline ends the request, and the retry gets the page."""
    users = generate_users(30)
    page_1 = TENANT_REQUESTS + 1
    emulator = start_emulator(users, faults=FaultPlan(at={page_1: kind}))
    started = time.monotonic()
    run = run_in_process(tap_config(emulator, page_size=10, request_timeout=1), tmp_path, env=DEBUG)
    elapsed = time.monotonic() - started
    assert_output_is(run, users)
    # The tenant, page 1 twice, pages 2 and 3.
    assert paths_asked(emulator.requests) == [TENANT_PATH] + [USERS_PATH] * 4
    assert [r.fault for r in emulator.requests] == [None, kind, None, None, None]
    assert elapsed < 10
    assert "try 1 of 5 failed: no complete answer within request_timeout (1s)" in run.stderr


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


@pytest.mark.process  # a signal
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


@pytest.mark.process  # a signal
def test_a_terminated_sync_flushes_the_records_so_far(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path
) -> None:
    run, users = terminate_half_way(start_emulator, tap_config, tmp_path)
    assert run.returncode == 128 + signal.SIGTERM
    # Three pages of 20 were requested before the signal: the first came back and was
    # written (its memberships too) before the tap was stopped.
    assert 0 < len(run.records("users")) < len(users)
    assert run.records("role_memberships")


@pytest.mark.process  # a reader that closes the tap's stdout
def test_a_target_that_stops_reading_fails_the_sync_in_one_line(
    start_emulator: EmulatorFactory, tap_config: Any, api_key: str, tmp_path: Path
) -> None:
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
