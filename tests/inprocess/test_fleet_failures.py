"""A failing tenant of a fleet (docs/many-tenants.md): it fails alone or stops the run, as
failure_mode says, nothing holding tenant data is activated, and no key of any tenant is
logged, even at DEBUG.

Over real HTTP, against a fleet emulator; the tap runs in-process.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
from spanning_emulator import (
    generate_users,
)

from tests.emulator_requests import paths_of, tenant_paths
from tests.fleet_helpers import (
    DEBUG_ENV,
    TENANT_PATH,
    activated,
    assert_tenant_complete,
    contract_paths,
    fleet_config,
    hang_up,
    make_tenants,
    persistent_503,
    records_of,
    tenant_syncs,
    unkeyed_user,
    users_pages,
    wrong_key,
)
from tests.hostile_server import HostileServer, Reply
from tests.tapdriver import run_in_process

# reason: (break the config, break the emulator, the pass the tenant fails in). A tenant
# failing in the credentials pass (GET /external/tenant) is never asked for users.
FAILURES = {
    "credentials refused": (wrong_key, None, "tenants"),
    "HTTP 503 after 3 tries": (None, persistent_503, "tenants"),
    "connection failed after 3 tries": (None, hang_up, "tenants"),
    "unreadable users page": (None, unkeyed_user, "users"),
}


@pytest.mark.parametrize("reason", sorted(FAILURES))
def test_a_failing_tenant_fails_alone_and_nothing_holding_tenant_data_is_activated(
    fleet_of: Any, tmp_path: Path, reason: str
) -> None:
    """A tenant fails alone, whatever the reason; a refused one too, with
    failure_mode isolate (strict, the default, stops the run: see the test after this one)."""
    tenants = make_tenants(8)
    emulator = fleet_of(tenants)
    victim = tenants[5]  # 600 users: three pages of 250
    tries = 3
    config = fleet_config(
        emulator, tenants, max_retries=tries, max_concurrent_tenants=3, failure_mode="isolate"
    )
    break_config, break_emulator, fails_in = FAILURES[reason]
    if break_config:
        break_config(victim, config)
    if break_emulator:
        break_emulator(victim, emulator)
    run = run_in_process(config, tmp_path, env=DEBUG_ENV)
    assert run.returncode == 1
    assert run.last_stderr_line().endswith(f"1 of 8 tenants failed: {victim.tenant_id} ({reason})")
    for tenant in tenants:
        if tenant is not victim:
            assert_tenant_complete(run, tenant, emulator)
    assert records_of(run, "tenants", victim.tenant_id) == []
    assert activated(run) == {"roles"}
    failure_lines = [
        line for line in run.stderr.splitlines() if f"Tenant {victim.tenant_id} failed" in line
    ]
    assert len(failure_lines) == 1
    assert f"Tenant {victim.tenant_id} failed in {fails_in}: " in failure_lines[0]
    # The failed tenant is not asked again: its requests end with the one that failed.
    mine = tenant_paths(emulator, victim)
    if fails_in == "tenants":
        # Its credentials failed (a refusal is not retried): never asked for its users.
        assert mine == [TENANT_PATH] * (1 if reason == "credentials refused" else tries)
        assert records_of(run, "users", victim.tenant_id) == []
    else:
        # Its counters, then its pages up to the unreadable one (not retried), no more.
        failed_page = re.search(r"page (\d+) of users", failure_lines[0])
        assert failed_page is not None, failure_lines[0]
        assert 1 <= int(failed_page[1]) <= users_pages(len(victim.users))
        assert mine == contract_paths(int(failed_page[1]))
    # Its tenant_syncs row says so; every other tenant's is complete.
    rows = tenant_syncs(run)
    assert [tid for tid, row in rows.items() if row["status"] != "complete"] == [victim.tenant_id]
    assert rows[victim.tenant_id]["status"] == "failed"
    assert rows[victim.tenant_id]["reason"] in failure_lines[0]
    assert rows[victim.tenant_id]["requests"] == len(mine)


def test_by_default_a_refused_tenant_stops_the_run_before_any_record(
    fleet_of: Any, tmp_path: Path
) -> None:
    """failure_mode strict (the default): the wrong key of the test above stops
    the whole run after the credentials pass, naming the refused tenant; no record and
    no tenant_syncs row is written. The users pass starts while the last credentials
    are in flight, so a few pages of tenants that answered may have been fetched: they
    are dropped unwritten."""
    tenants = make_tenants(8)
    emulator = fleet_of(tenants)
    victim = tenants[5]
    config = fleet_config(emulator, tenants, max_retries=3, max_concurrent_tenants=3)
    wrong_key(victim, config)
    run = run_in_process(config, tmp_path, env=DEBUG_ENV)
    assert run.returncode == 1
    assert run.last_stderr_line().endswith(
        f"Credentials refused for 1 of 8 tenants, so nothing was synced: {victim.tenant_id} "
        "(fix their keys, or set failure_mode to isolate or nightly to sync the others "
        "without them)"
    )
    assert run.count("RECORD") == 0
    assert run.count("ACTIVATE_VERSION") == 0
    # Every tenant's credentials were asked, once each and first; the refused tenant
    # was asked nothing else.
    for tenant in tenants:
        paths = tenant_paths(emulator, tenant)
        assert paths[:1] == [TENANT_PATH], tenant.tenant_id
        assert TENANT_PATH not in paths[1:], tenant.tenant_id
    assert tenant_paths(emulator, victim) == [TENANT_PATH]


def test_two_failing_tenants_are_both_named_and_all_failing_writes_no_record(
    fleet_of: Any, tmp_path: Path
) -> None:
    """With failure_mode isolate, a refused tenant is named beside another failure; a run
    in which every tenant fails writes no record, with the option or without it."""
    tenants = make_tenants(4)
    emulator = fleet_of(tenants)
    config = fleet_config(emulator, tenants, max_retries=1, failure_mode="isolate")
    wrong_key(tenants[1], config)
    persistent_503(tenants[3], emulator)
    run = run_in_process(config, tmp_path)
    assert run.returncode == 1
    assert run.last_stderr_line().endswith(
        f"2 of 4 tenants failed: {tenants[1].tenant_id} (credentials refused), "
        f"{tenants[3].tenant_id} (HTTP 503 after 1 try)"
    )
    for tenant in tenants:
        config["tenant_api_keys"][tenant.tenant_id] = "wrong-wrong-wrong-000"
    run = run_in_process(config, tmp_path)
    assert run.returncode == 1
    assert run.count("RECORD") == 0
    assert "4 of 4 tenants failed: " in run.last_stderr_line()
    config["failure_mode"] = "strict"
    run = run_in_process(config, tmp_path)
    assert run.returncode == 1
    assert run.count("RECORD") == 0
    ids = ", ".join(t.tenant_id for t in tenants)
    assert f"Credentials refused for 4 of 4 tenants, so nothing was synced: {ids} (" in (
        run.last_stderr_line()
    )


@pytest.mark.parametrize("skip_refused", [True, False], ids=["skip-refused", "refused-stops"])
def test_every_key_of_every_tenant_is_absent_at_debug(
    fleet_of: Any, tmp_path: Path, skip_refused: bool
) -> None:
    """A refused tenant and a failing one at DEBUG: the others synced beside them
    (failure_mode isolate), or the run stopped after the credentials pass (default)."""
    tenants = make_tenants(6)
    emulator = fleet_of(tenants)
    mode = "isolate" if skip_refused else "strict"
    config = fleet_config(emulator, tenants, max_retries=2, failure_mode=mode)
    wrong_key(tenants[0], config)
    persistent_503(tenants[1], emulator)
    run = run_in_process(config, tmp_path, env=DEBUG_ENV)
    assert run.returncode == 1
    assert "DEBUG" in run.stderr
    if skip_refused:  # the healthy tenants' whole sync was logged at DEBUG too
        for tenant in tenants[2:]:
            assert_tenant_complete(run, tenant, emulator)
    else:
        assert run.count("RECORD") == 0
    output = run.stdout + run.stderr
    for tenant in tenants:
        assert tenant.api_key not in output
        pair = f"{tenant.admin_email}:{tenant.api_key}".encode()
        assert base64.b64encode(pair).decode() not in output


def test_a_404_and_a_pagination_loop_each_fail_their_tenant_alone(
    fleet_of: Any, start_emulator: Any, tmp_path: Path
) -> None:
    """The other kinds of tenant failure, side by side with healthy tenants."""
    tenants = make_tenants(4)
    emulator = fleet_of(tenants)
    looping = start_emulator(generate_users(600, seed=6), host="127.0.0.2")  # 3 pages of 250
    first_link: list[str] = []

    def loop(number: int, page: dict[str, Any]) -> dict[str, Any]:
        if page.get("nextLink"):
            first_link[:1] = first_link[:1] or [str(page["nextLink"])]
            page["nextLink"] = first_link[0]  # page 2 again and again
        return page

    looping.page_hook = loop
    config = fleet_config(emulator, tenants)
    config["tenants"] += [
        {"tenant_id": "looper", "admin_email": looping.admin_email, "base_url": looping.base_url},
    ]
    config["tenant_api_keys"]["looper"] = looping.api_key
    with HostileServer(
        lambda server, seen: Reply(404, f"Cannot GET {seen.path}", "text/html"), host="127.0.0.3"
    ) as lost:
        config["tenants"].append(
            {"tenant_id": "lost", "admin_email": "admin@lost.example", "base_url": lost.base_url}
        )
        config["tenant_api_keys"]["lost"] = "lost-key-0000-0000"
        run = run_in_process(config, tmp_path)
        # Its first request, the credentials, got the 404: never asked for users.
        assert [seen.path for seen in lost.requests] == [TENANT_PATH]
    assert run.returncode == 1
    assert run.last_stderr_line().endswith(
        "2 of 6 tenants failed: looper (pagination loop), lost (HTTP 404, base_url wrong?)"
    )
    for tenant in tenants:
        assert_tenant_complete(run, tenant, emulator)
    assert activated(run) == {"roles"}
    # The loop is caught before the repeated link is requested: the counters, then pages
    # 1 and 2 only (long before the page bound of its 600 users: 2 x 3 + 2 pages).
    assert paths_of(looping.requests) == contract_paths(2)
    rows = tenant_syncs(run)
    assert {tid for tid, row in rows.items() if row["status"] == "failed"} == {"looper", "lost"}
