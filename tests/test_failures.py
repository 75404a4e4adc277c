"""Behaviour: config mistakes, refusals and failures; each one loud, exact and key-free."""

from __future__ import annotations

import base64
import json
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tap_spanning.emulator import FaultPlan, expected_output, generate_users
from tests.conftest import EmulatorFactory
from tests.tapdriver import ADMIN_EMAIL, TapRun, run_tap, start_tap

DEBUG = {"TAP_SPANNING_LOGLEVEL": "DEBUG", "LOGLEVEL": "DEBUG"}


def assert_key_absent(run: TapRun, api_key: str) -> None:
    pair = f"{ADMIN_EMAIL}:{api_key}"
    forms = [api_key, pair, base64.b64encode(pair.encode()).decode()]
    for text in (run.stdout, run.stderr):
        for form in forms:
            assert form not in text


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
    run = run_tap(config, tmp_path, env=DEBUG)
    assert run.returncode == 1
    assert run.stdout == ""
    assert emulator.requests == []
    assert setting in run.stderr
    assert_key_absent(run, api_key)


def test_wrong_key_fails_at_once_with_the_likely_causes(
    start_emulator: EmulatorFactory, tap_config: Any, api_key: str, tmp_path: Path
) -> None:
    emulator = start_emulator(generate_users(5))
    run = run_tap(
        tap_config(emulator, api_key="0000-wrong-key", max_retries=5), tmp_path, env=DEBUG
    )
    assert_failed(run, "HTTP 401", "API Token", "admin_email", "region")
    assert len(emulator.requests) == 1
    assert "0000-wrong-key" not in run.stderr + run.stdout


def test_wrong_email_fails_like_a_wrong_key(
    start_emulator: EmulatorFactory, tap_config: Any, api_key: str, tmp_path: Path
) -> None:
    emulator = start_emulator(generate_users(5))
    run = run_tap(tap_config(emulator, admin_email="other@contoso.example"), tmp_path, env=DEBUG)
    assert_failed(run, "HTTP 401")
    assert_key_absent(run, api_key)


def test_bad_request_shows_the_servers_message(
    start_emulator: EmulatorFactory, tap_config: Any, api_key: str, tmp_path: Path
) -> None:
    # The emulator's real-size limit is 1000; a smaller limit makes it answer 400.
    emulator = start_emulator(generate_users(5), max_page_size=100)
    run = run_tap(tap_config(emulator, page_size=500), tmp_path, env=DEBUG)
    assert_failed(run, "HTTP 400", "size")
    assert len(emulator.requests) == 1
    assert_key_absent(run, api_key)


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
        run = run_tap(config, tmp_path, env=DEBUG)
    finally:
        server.shutdown()
        server.server_close()
    assert_failed(run, "404", "Cannot GET /external/users", "base_url is probably wrong")
    assert_key_absent(run, api_key)


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
    run = run_tap(tap_config(emulator, page_size=2), tmp_path, env=DEBUG)
    assert_failed(run, "nextLink", phrase)
    assert len(emulator.requests) == 1
    assert_key_absent(run, api_key)


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
    run = run_tap(tap_config(emulator, page_size=2), tmp_path, env=DEBUG)
    assert_failed(run, "already followed")
    assert len(emulator.requests) == 2
    assert_key_absent(run, api_key)


@pytest.mark.parametrize("kind", ["503", "429", "reset-before", "truncate", "html200"])
def test_persistent_fault_fails_after_max_retries(
    start_emulator: EmulatorFactory, tap_config: Any, api_key: str, tmp_path: Path, kind: str
) -> None:
    emulator = start_emulator(
        generate_users(30), faults=FaultPlan(every=1, kind=kind, retry_after="0")
    )
    run = run_tap(tap_config(emulator, max_retries=3), tmp_path, env=DEBUG)
    assert_failed(run, "failed 3 times, giving up")
    assert len(emulator.requests) == 3
    assert run.count("RECORD", "users") == 0
    assert_key_absent(run, api_key)


def test_a_sync_never_ends_0_with_users_missing(
    start_emulator: EmulatorFactory, tap_config: Any, api_key: str, tmp_path: Path
) -> None:
    """The third page fails for good: users of the first pages were sent, the exit says so."""
    plan = FaultPlan(at={n: "502" for n in range(3, 20)})
    emulator = start_emulator(generate_users(30), faults=plan)
    config = tap_config(emulator, page_size=10, max_retries=2, emit_activate_version_messages=True)
    run = run_tap(config, tmp_path, env=DEBUG)
    assert run.returncode != 0
    assert run.count("RECORD", "users") == 20
    # Nothing may tell a hard-deleting loader that 20 users are the whole tenant.
    assert run.count("ACTIVATE_VERSION", "users") == 0
    assert run.count("ACTIVATE_VERSION", "role_memberships") == 0
    assert "giving up" in run.last_stderr_line()
    assert_key_absent(run, api_key)


def test_debug_output_of_a_good_sync_holds_no_key(
    start_emulator: EmulatorFactory, tap_config: Any, api_key: str, tmp_path: Path
) -> None:
    emulator = start_emulator(generate_users(40), faults=FaultPlan(every=2, kind="429"))
    run = run_tap(tap_config(emulator, page_size=10), tmp_path, env=DEBUG)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "DEBUG" in run.stderr
    assert_key_absent(run, api_key)


@pytest.mark.parametrize("kind", ["trickle", "slow-headers"])
def test_a_trickling_response_is_cut_off_by_the_deadline(
    start_emulator: EmulatorFactory, tap_config: Any, api_key: str, tmp_path: Path, kind: str
) -> None:
    """Bytes sent one at a time, in the body or already in the headers, never trip a read
    timeout; the deadline ends the request, and the retry gets the page."""
    users = generate_users(30)
    emulator = start_emulator(users, faults=FaultPlan(at={1: kind}))
    started = time.monotonic()
    run = run_tap(tap_config(emulator, page_size=10, request_timeout=1), tmp_path, env=DEBUG)
    elapsed = time.monotonic() - started
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.records("users") == expected_output(users)["users"]
    assert [r.fault for r in emulator.requests] == [kind, None, None, None]
    assert elapsed < 10
    assert "try 1 of 5 failed: no complete answer within request_timeout (1s)" in run.stderr
    assert_key_absent(run, api_key)


def test_a_terminated_sync_does_not_exit_0(
    start_emulator: EmulatorFactory, tap_config: Any, api_key: str, tmp_path: Path
) -> None:
    """SIGTERM half-way: the records so far are flushed, no ACTIVATE_VERSION, exit 143."""
    users = generate_users(200)
    emulator = start_emulator(users, latency=0.3)
    config = tap_config(emulator, page_size=20, emit_activate_version_messages=True)
    process = start_tap(config, tmp_path)
    deadline = time.monotonic() + 20
    while len(emulator.requests) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 128 + signal.SIGTERM
    messages = [json.loads(line) for line in stdout.splitlines()]
    users_sent = [m for m in messages if m["type"] == "RECORD" and m["stream"] == "users"]
    assert 0 < len(users_sent) < len(users)
    assert len({m["record"]["msId"] for m in users_sent}) == len(users_sent)
    assert "Stopped by signal 15" in stderr
    assert not [m for m in messages if m["type"] == "ACTIVATE_VERSION" and m["stream"] == "users"]
    assert api_key not in stdout + stderr


def test_a_target_that_stops_reading_fails_the_sync_in_one_line(
    start_emulator: EmulatorFactory, tap_config: Any, api_key: str, tmp_path: Path
) -> None:
    emulator = start_emulator(generate_users(3000))
    process = start_tap(tap_config(emulator, page_size=500), tmp_path, text=False)
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.read(1000)
    process.stdout.close()  # the target died
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=30) == 1
    last = [line for line in stderr.splitlines() if line.strip()][-1]
    assert "Sync failed: the target closed its input" in last
    assert "Traceback" not in stderr
    assert api_key not in stderr
