"""Responses the tap refuses or tolerates (docs/operations.md, "Failure behaviour"):
hostile pages, an error the server explains, a nextLink that leaves the host or loops,
pages that come round again.

The hostile pages are a contract written as data (tests/hostile_pages.py): each case is
accepted, output exact, or refused in one line, after the requests it allows. In-process,
over real HTTP (tests/tapdriver.py); the cases run as a process are in
tests/process/test_bad_responses.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from spanning_emulator import EmulatedTenant, FleetEmulator, generate_users

from tests.conftest import EmulatorFactory
from tests.emulator_requests import paths_of
from tests.failure_fixtures import (
    PAGE_SIZE,
    assert_exact,
    assert_failed,
    assert_healthy_complete,
    entries_of,
    entry,
    fleet_config,
    sorted_users,
    tenant_reply,
)
from tests.hostile_pages import (
    CASES,
    PROCESS_CASES,
    SETUPS,
    Case,
    assert_hostile_case_handled,
    case_params,
)
from tests.hostile_server import TENANT_PATH, USERS_PATH, HostileServer, Reply, Seen
from tests.leaks import ADMIN_EMAIL
from tests.tapdriver import DEBUG_ENV, run_in_process

# ---------------------------------------------------------------- hostile pages


def test_every_case_has_a_setup() -> None:
    assert sorted(SETUPS) == sorted(case.id for case in CASES)
    assert set(PROCESS_CASES) <= set(SETUPS)


@pytest.mark.parametrize("case", case_params(process=False))
def test_hostile_response(
    start_emulator: EmulatorFactory, api_key: str, tmp_path: Path, case: Case
) -> None:
    assert_hostile_case_handled(start_emulator, api_key, tmp_path, case, as_process=False)


# ---------------------------------------------------------------- errors the server explains


def test_bad_request_shows_the_servers_message(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path
) -> None:
    # The emulator's real-size limit is 1000; a smaller limit makes it answer 400.
    emulator = start_emulator(generate_users(5), max_page_size=100)
    run = run_in_process(tap_config(emulator, page_size=500), tmp_path, env=DEBUG_ENV)
    assert_failed(run, "HTTP 400", "size")
    # The tenant answers (it takes no size); the first users page is refused, not retried.
    assert paths_of(emulator.requests) == [TENANT_PATH, USERS_PATH]


def test_not_found_says_the_base_url_is_wrong(api_key: str, tmp_path: Path) -> None:
    """A loopback service that is not the API answers 404 the way Spanning's router does."""

    def not_the_api(server: HostileServer, seen: Seen) -> Reply:
        return Reply(404, f"Cannot GET {seen.path}", "text/html; charset=utf-8")

    with HostileServer(not_the_api) as server:
        config = {
            "base_url": f"{server.base_url}/external",
            "admin_email": ADMIN_EMAIL,
            "api_key": api_key,
        }
        run = run_in_process(config, tmp_path, env=DEBUG_ENV)
    # The first request, GET /external/tenant, is the one that meets the 404.
    assert_failed(run, "404", "Cannot GET /external/tenant", "base_url is probably wrong")


# ---------------------------------------------------------------- where a nextLink leads


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
    tmp_path: Path,
    next_link: str,
    phrase: str,
) -> None:
    emulator = start_emulator(generate_users(6))

    def hostile(number: int, page: dict[str, Any]) -> dict[str, Any]:
        return {**page, "nextLink": next_link}

    emulator.page_hook = hostile
    run = run_in_process(tap_config(emulator, page_size=2), tmp_path, env=DEBUG_ENV)
    assert_failed(run, "nextLink", phrase)
    # The tenant, then page 1 only: nothing is asked where its nextLink points.
    assert paths_of(emulator.requests) == [TENANT_PATH, USERS_PATH]


def test_next_link_loop_fails_the_sync(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path
) -> None:
    emulator = start_emulator(generate_users(10))
    first_link: list[str] = []

    def loop(number: int, page: dict[str, Any]) -> dict[str, Any]:
        if not first_link:
            first_link.append(str(page["nextLink"]))
        return {**page, "nextLink": first_link[0]}

    emulator.page_hook = loop
    run = run_in_process(tap_config(emulator, page_size=2), tmp_path, env=DEBUG_ENV)
    assert_failed(run, "already followed")
    # The tenant, pages 1 and 2: page 2's nextLink is page 2's own URL, never asked again.
    assert paths_of(emulator.requests) == [TENANT_PATH] + [USERS_PATH] * 2


# ---------------------------------------------------------------- pages that come round again


def serving(pages: list[list[dict[str, Any]]], users: int) -> Any:
    """A tenant whose users pages are `pages`, page N linking to page N+1 (`?page=N+1`);
    its counter says `users`."""

    def respond(server: HostileServer, seen: Seen) -> Reply:
        other = tenant_reply(seen, users)
        if other is not None:
            return other
        number = int(parse_qs(seen.query).get("page", ["1"])[0])
        link = f"{USERS_PATH}?page={number + 1}" if number < len(pages) else ""
        return Reply(200, {"users": pages[number - 1], "nextLink": link})

    return respond


def test_users_repeated_two_pages_apart_fail_the_tenant_while_an_overlap_is_dropped(
    healthy: tuple[FleetEmulator, list[EmulatedTenant]], tmp_path: Path
) -> None:
    """A page that repeats a user of an earlier page (not the one just before) means
    pagination is not advancing: the tenant fails alone, and nothing of that page is
    written. A page that repeats users of the page just before is tolerated: the repeats
    are dropped, with a warning, and each user is written once."""
    emulator, tenants = healthy
    apart = sorted_users(300, seed=41)
    # Pages 1-4 in order; page 5 holds the next users and, last, a user of page 3.
    apart_pages = [apart[i : i + PAGE_SIZE] for i in range(0, 200, PAGE_SIZE)]
    repeated = apart[120]
    apart_pages.append([*apart[200:249], repeated])
    overlap = sorted_users(180, seed=42)
    # Page 3 starts with the last 2 users of page 2.
    overlap_pages = [overlap[0:50], overlap[50:100], overlap[98:148], overlap[148:180]]
    with (
        HostileServer(serving(list(apart_pages), len(apart)), host="127.0.0.2") as s_apart,
        HostileServer(serving(list(overlap_pages), len(overlap)), host="127.0.0.2") as s_over,
    ):
        entries = entries_of(emulator, tenants)
        entries += [
            entry("apart", "admin@apart.example", s_apart.base_url, "apart-key-3f1e-4b2d"),
            entry("overlap", "admin@overlap.example", s_over.base_url, "overlap-key-6a0c-4e9f"),
        ]
        run = run_in_process(fleet_config(entries), tmp_path)
        asked_apart = [s for s in s_apart.requests if s.path == USERS_PATH]
    assert run.returncode == 1, run.stderr[-2000:]
    assert run.last_stderr_line().endswith(
        "1 of 6 tenants failed: apart (pagination not advancing)"
    )
    assert len(asked_apart) == 5
    # Pages 1-4 were written; nothing of page 5.
    assert_exact(run, "apart", apart[:200])
    reason = run.syncs()["apart"]["reason"]
    assert reason == (
        f"page 5 of users repeats msId {repeated['msId']} of page 3: pagination is not advancing"
    )
    assert_exact(run, "overlap", overlap)
    assert run.syncs()["overlap"]["status"] == "complete"
    assert (
        "Tenant overlap: page 3 of users repeats 2 users of the previous page; they are "
        "emitted once"
    ) in run.stderr
    assert_healthy_complete(run, tenants)
