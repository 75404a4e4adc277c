"""Behaviour: the tap over real HTTP against the emulator, whole output compared.

The runs are in-process (`tap_spanning.tap.main` with the same argv, config file,
environment and catalog); one full sync also runs as a `tap-spanning` process, for the
whole output as the console script writes it to a real pipe.
"""

from __future__ import annotations

import gzip
import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from spanning_emulator import (
    FaultPlan,
    SpanningEmulator,
    expected_output,
    expected_tenant_record,
    generate_users,
    tenant_summary,
    utc_today,
)

from tests.conftest import EmulatorFactory
from tests.run_inputs import discovered_catalog, set_selected
from tests.tapdriver import run_in_process
from tests.taprun import TapRun, assert_output_is, license_columns

STREAMS = ("users", "role_memberships", "tenants", "roles")
# Every sync also writes tenant_syncs, last: a history, never activated.
SYNCED = (*STREAMS, "tenant_syncs")
TENANT_PATH = "/external/tenant"
USERS_PATH = "/external/users"


def users_requests(emulator: SpanningEmulator) -> list[str]:
    return [r.path for r in emulator.requests if r.path.startswith("/external/users")]


def expected_paths(users_pages: int) -> list[str]:
    """The contract's requests of one tenant: its credentials (GET /external/tenant)
    first, then `users_pages` users pages (docs/streams.md, "What a sync emits")."""
    return [TENANT_PATH] + [USERS_PATH] * users_pages


def assert_requests(emulator: SpanningEmulator, users_pages: int) -> None:
    """Exactly the one tenant request, then `users_pages` users requests; nothing else."""
    paths = [urlsplit(r.path).path for r in emulator.requests]
    assert paths == expected_paths(users_pages), paths


def tenant_record(emulator: SpanningEmulator, users: list[dict[str, object]]) -> dict[str, Any]:
    """The tenants record of the one-tenant form, from the emulator's own counters."""
    return expected_tenant_record("default", tenant_summary(users), emulator.base_url)


def assert_tenant_is(run: TapRun, emulator: SpanningEmulator, users: list[Any]) -> None:
    assert run.records("tenants") == [tenant_record(emulator, users)]
    assert run.count("SCHEMA", "tenants") == 1




def test_same_output_with_a_fault_on_every_third_request(
    start_emulator: EmulatorFactory, tap_config: Any, tenant_2500: list[Any], tmp_path: Path
) -> None:
    kinds = ["429", "503", "reset-before", "truncate", "reset-during", "html200", "500:empty"]
    plan = FaultPlan(at={n: kinds[(n // 3 - 1) % len(kinds)] for n in range(3, 40, 3)})
    emulator = start_emulator(tenant_2500, faults=plan)
    run = run_in_process(tap_config(emulator, page_size=500), tmp_path)
    assert_output_is(run, tenant_2500)
    assert_tenant_is(run, emulator, tenant_2500)
    faulted = [r for r in emulator.requests if r.fault]
    assert faulted, "the plan injected no fault"
    # Each page once and the tenant once, plus one retry per fault.
    assert len(emulator.requests) == math.ceil(2500 / 500) + 1 + len(faulted)
    good = [urlsplit(r.path).path for r in emulator.requests if r.status == 200]
    assert good == expected_paths(math.ceil(2500 / 500))


def test_next_links_are_followed_verbatim(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path
) -> None:
    users = generate_users(230, seed=3)
    seen_links: list[str] = []
    emulator = start_emulator(users)

    def remember(number: int, page: dict[str, Any]) -> dict[str, Any]:
        if page.get("nextLink"):
            seen_links.append(str(page["nextLink"]))
        return page

    emulator.page_hook = remember
    run = run_in_process(tap_config(emulator, page_size=50), tmp_path)
    assert_output_is(run, users)
    sent = users_requests(emulator)
    assert len(sent) == 5
    # Request k+1 is exactly the nextLink of page k: same path and query, byte for byte.
    assert sent[1:] == [
        urlsplit(link)._replace(scheme="", netloc="").geturl() for link in seen_links
    ]
    for path in sent:
        names = [name for name, _ in parse_qsl(urlsplit(path).query)]
        assert len(names) == len(set(names)), f"duplicated parameter in {path}"


@pytest.mark.parametrize("link_style", ["absolute", "relative"])
@pytest.mark.parametrize("last_link", ["empty", "null", "absent"])
def test_link_styles_and_last_page_markers(
    start_emulator: EmulatorFactory,
    tap_config: Any,
    tmp_path: Path,
    link_style: str,
    last_link: str,
) -> None:
    users = generate_users(120, seed=5)
    emulator = start_emulator(users, link_style=link_style, last_link=last_link)
    run = run_in_process(tap_config(emulator, page_size=40), tmp_path)
    assert_output_is(run, users)
    assert_requests(emulator, 3)


@pytest.mark.parametrize(("count", "page_size"), [(0, 10), (1, 1000), (100, 100), (101, 100)])
def test_request_count_is_ceil_of_users_over_page_size(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path, count: int, page_size: int
) -> None:
    users = generate_users(count, seed=11)
    emulator = start_emulator(users)
    run = run_in_process(tap_config(emulator, page_size=page_size), tmp_path)
    assert_output_is(run, users)
    assert_requests(emulator, max(1, math.ceil(count / page_size)))


def test_deselected_tenants_stream_still_proves_the_credentials_first(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path
) -> None:
    """Without the tenants stream the sync still asks GET /external/tenant first (it
    proves the credentials before any record), and nothing more: one tenant request,
    then exactly ceil(users / page_size) users requests; no tenants record or SCHEMA."""
    users = generate_users(101, seed=11)
    emulator = start_emulator(users)
    catalog = discovered_catalog()
    set_selected(catalog, "tenants", [], on=False)
    run = run_in_process(tap_config(emulator, page_size=25), tmp_path, catalog=catalog)
    assert_output_is(run, users)
    assert run.records("tenants") == []
    assert run.count("SCHEMA", "tenants") == 0
    assert_requests(emulator, math.ceil(101 / 25))
    assert emulator.requests[0].path == TENANT_PATH  # no query


def test_output_rules(start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path) -> None:
    """One SCHEMA and ACTIVATE_VERSION per stream (none for the tenant_syncs history);
    no per-user log line or state."""
    users = generate_users(400, seed=13)
    emulator = start_emulator(users)
    run = run_in_process(
        tap_config(emulator, page_size=100, emit_activate_version_messages=True), tmp_path
    )
    assert_output_is(run, users)
    assert_tenant_is(run, emulator, users)
    # Streams in the order the tap syncs them: users with its memberships (page by
    # page), then tenants, then roles, and tenant_syncs last: no record is written
    # before a tenant answered.
    first_record: dict[str, int] = {}
    for index, message in enumerate(run.messages):
        if message["type"] == "RECORD":
            first_record.setdefault(message["stream"], index)
    order = sorted(first_record, key=first_record.__getitem__)
    assert set(order[:2]) == {"users", "role_memberships"}
    assert order[2:] == ["tenants", "roles", "tenant_syncs"]
    # tenant_syncs comes after every other record of the run, and is never activated.
    records = [i for i, m in enumerate(run.messages) if m["type"] == "RECORD"]
    syncs = [i for i in records if run.messages[i]["stream"] == "tenant_syncs"]
    assert syncs == records[-len(syncs) :]
    assert run.count("SCHEMA", "tenant_syncs") == 1
    assert run.count("ACTIVATE_VERSION", "tenant_syncs") == 0
    (sync,) = run.raw_records("tenant_syncs")
    expected = expected_output(users)
    assert {k: v for k, v in sync.items() if k not in ("started_at", "finished_at")} == {
        "tenant_id": "default",
        "sync_version": run.sync_version,
        "status": "complete",
        "reason": None,
        "users": len(users),
        "role_memberships": len(expected["role_memberships"]),
        "requests": len(expected_paths(math.ceil(400 / 100))),
        "retries": 0,
        "backup_last_day": None,  # no backup stream selected
        "name": None,  # none configured
        "day": utc_today().isoformat(),  # the emulator's Date header
        **license_columns(tenant_summary(users)),
        "role_set_sent": None,  # role_membership_history not selected
    }
    started, finished = (
        datetime.fromisoformat(str(sync[name]).replace("Z", "+00:00"))
        for name in ("started_at", "finished_at")
    )
    assert started <= finished
    for stream in STREAMS:
        assert run.count("ACTIVATE_VERSION", stream) == 1, stream
        versions = {
            m["version"]
            for m in run.messages
            if m.get("stream") == stream and m["type"] == "RECORD"
        }
        activated = [
            m["version"]
            for m in run.messages
            if m["type"] == "ACTIVATE_VERSION" and m["stream"] == stream
        ]
        assert versions == set(activated)
        # Activated only once the stream's last record is out (see ActivatesAtEnd).
        positions = [i for i, m in enumerate(run.messages) if m.get("stream") == stream]
        assert run.messages[positions[-1]]["type"] == "ACTIVATE_VERSION"
    assert run.count("STATE") <= len(SYNCED)
    for state in (m["value"] for m in run.messages if m["type"] == "STATE"):
        assert len(str(state)) < 200, state
    upns = [str(u["userPrincipalName"]) for u in users]
    msids = [str(u["msId"]) for u in users]
    stderr = run.stderr
    assert not [upn for upn in upns if upn in stderr]
    assert not [msid for msid in msids if msid in stderr]
    assert len(stderr.splitlines()) < 80


def test_unknown_tags_are_logged_once_each(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path
) -> None:
    users = generate_users(50, seed=17)
    for index, user in enumerate(users):
        user["tags"] = ["Global Admin", "Finance Team"] if index % 2 else ["Finance Team", "VIP"]
    emulator = start_emulator(users)
    run = run_in_process(tap_config(emulator, page_size=10), tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("'Finance Team' names no Spanning role") == 1
    assert run.stderr.count("'VIP' names no Spanning role") == 1
    tags = {tuple(r["tags"]) for r in run.records("users")}
    assert tags == {("Global Admin", "Finance Team"), ("Finance Team", "VIP")}


def test_deselected_users_still_feed_memberships(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path
) -> None:
    """A catalog that selects only role_memberships gets all of them and no users: the
    users are still read (the tenant request first, then every page), not emitted."""
    users = generate_users(150, seed=19)
    emulator = start_emulator(users)
    catalog = discovered_catalog()
    for stream in ("users", "roles", "tenants"):
        set_selected(catalog, stream, [], on=False)
    set_selected(catalog, "role_memberships", [], on=True)
    run = run_in_process(tap_config(emulator, page_size=50), tmp_path, catalog=catalog)
    assert run.returncode == 0, run.stderr
    assert run.records("role_memberships") == expected_output(users)["role_memberships"]
    assert run.records("users") == []
    assert run.records("roles") == []
    assert run.records("tenants") == []
    assert run.count("SCHEMA", "role_memberships") == 1
    assert_requests(emulator, math.ceil(150 / 50))
    # tenant_syncs is written whatever is selected, after everything else.
    (sync,) = run.records("tenant_syncs")
    assert (sync["tenant_id"], sync["status"], sync["reason"]) == ("default", "complete", None)
    assert sync["role_memberships"] == len(expected_output(users)["role_memberships"])
    assert sync["requests"] == len(expected_paths(math.ceil(150 / 50)))


def test_stream_maps_and_flattening_still_work(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path
) -> None:
    users = generate_users(60, seed=23)
    emulator = start_emulator(users)
    config = tap_config(
        emulator,
        page_size=25,
        stream_maps={
            "users": {
                "email": None,
                "upn_lower": "userPrincipalName.lower() if userPrincipalName else None",
            }
        },
    )
    run = run_in_process(config, tmp_path)
    assert run.returncode == 0, run.stderr
    expected = expected_output(users)["users"]
    got = run.records("users")
    assert len(got) == len(expected)
    for record, want in zip(got, expected, strict=True):
        assert "email" not in record
        upn = want["userPrincipalName"]
        assert record["upn_lower"] == (upn.lower() if isinstance(upn, str) else None)


def test_batch_messages_hold_the_whole_output(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path
) -> None:
    users = generate_users(300, seed=31)
    emulator = start_emulator(users)
    batch_config = {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": (tmp_path / "batches").as_uri(), "prefix": "spanning-"},
    }
    config = tap_config(
        emulator, page_size=100, batch_config=batch_config, emit_activate_version_messages=True
    )
    run = run_in_process(config, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.count("RECORD") == 0
    landed: dict[str, list[dict[str, Any]]] = {stream: [] for stream in SYNCED}
    for message in run.messages:
        if message["type"] == "BATCH":
            for uri in message["manifest"]:
                with gzip.open(urlsplit(uri).path, "rt", encoding="utf-8") as lines:
                    landed[message["stream"]].extend(json.loads(line) for line in lines)
    # Every record of the tenant data and of tenant_syncs carries the run's one
    # sync_version: the version of its ACTIVATE_VERSION messages, a time in the run.
    versions = {
        record.get("sync_version")
        for stream in ("users", "role_memberships", "tenants", "tenant_syncs")
        for record in landed[stream]
    }
    (version,) = versions
    assert isinstance(version, int)
    assert run.started_ms - 1000 <= version <= run.started_ms + run.seconds * 1000 + 1000
    assert {m["version"] for m in run.messages if m["type"] == "ACTIVATE_VERSION"} == {version}
    unversioned = {
        stream: [{k: v for k, v in r.items() if k != "sync_version"} for r in records]
        for stream, records in landed.items()
    }
    expected = expected_output(users)
    assert unversioned["users"] == expected["users"]
    assert unversioned["role_memberships"] == expected["role_memberships"]
    assert landed["roles"] == expected["roles"]
    assert unversioned["tenants"] == [tenant_record(emulator, users)]
    (sync,) = unversioned["tenant_syncs"]
    assert (sync["tenant_id"], sync["status"], sync["reason"]) == ("default", "complete", None)
    assert (sync["users"], sync["role_memberships"]) == (
        len(expected["users"]),
        len(expected["role_memberships"]),
    )
    assert sync["requests"] == len(expected_paths(math.ceil(300 / 100)))
    for stream in STREAMS:
        assert run.count("SCHEMA", stream) == 1
        # Activated only after the stream's last BATCH.
        kinds = [m["type"] for m in run.messages if m.get("stream") == stream]
        assert kinds[-1] == "ACTIVATE_VERSION"
        assert kinds.count("ACTIVATE_VERSION") == 1
    # tenant_syncs: its own SCHEMA and BATCH, last, and never activated (a history).
    kinds = [m["type"] for m in run.messages if m.get("stream") == "tenant_syncs"]
    assert kinds == ["SCHEMA", "BATCH"]
    batches = [m["stream"] for m in run.messages if m["type"] == "BATCH"]
    assert batches[-1] == "tenant_syncs"


def test_deselected_properties_are_left_out(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path
) -> None:
    """Deselected users.email, .tags and .userPrincipalName: the rest is exact, and the
    memberships, computed from the whole user, still carry the UPN."""
    users = generate_users(80, seed=37)
    emulator = start_emulator(users)
    catalog = discovered_catalog()
    for name in ("email", "tags", "userPrincipalName"):
        set_selected(catalog, "users", ["properties", name], on=False)
    run = run_in_process(tap_config(emulator, page_size=30), tmp_path, catalog=catalog)
    assert run.returncode == 0, run.stderr[-2000:]
    expected = expected_output(users)
    trimmed = [
        {k: v for k, v in user.items() if k not in ("email", "tags", "userPrincipalName")}
        for user in expected["users"]
    ]
    assert run.records("users") == trimmed
    assert run.records("role_memberships") == expected["role_memberships"]


def test_settings_from_the_environment(
    start_emulator: EmulatorFactory, api_key: str, tmp_path: Path
) -> None:
    """--config=ENV: every setting as text, numbers included."""
    users = generate_users(45, seed=41)
    emulator = start_emulator(users)
    env = {
        "TAP_SPANNING_BASE_URL": emulator.base_url,
        "TAP_SPANNING_ADMIN_EMAIL": "admin@contoso.example",
        "TAP_SPANNING_API_KEY": api_key,
        "TAP_SPANNING_TENANT_ID": "contoso-eu",
        "TAP_SPANNING_PAGE_SIZE": "20",
        "TAP_SPANNING_REQUEST_TIMEOUT": "30",
        "TAP_SPANNING_MAX_RETRIES": "3",
        "TAP_SPANNING_MAX_RETRY_WAIT": "0.5",
    }
    run = run_in_process("ENV", tmp_path, env=env)
    assert_output_is(run, users, tenant_id="contoso-eu")
    assert_requests(emulator, 3)


def test_a_users_stream_mapped_away_still_feeds_memberships(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path
) -> None:
    """A stream map that drops users from the output drops no user's memberships."""
    users = generate_users(70, seed=43)
    emulator = start_emulator(users)
    run = run_in_process(tap_config(emulator, page_size=25, stream_maps={"users": None}), tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.records("users") == []
    assert run.records("role_memberships") == expected_output(users)["role_memberships"]


def test_memberships_log_does_not_grow_with_pages(
    start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path
) -> None:
    """Even at one user per page, role_memberships logs a fixed handful of lines."""
    users = generate_users(40, seed=47)
    emulator = start_emulator(users)
    lines = {}
    for page_size in (1, 40):
        run = run_in_process(tap_config(emulator, page_size=page_size), tmp_path)
        assert_output_is(run, users)
        lines[page_size] = sum("role_memberships" in line for line in run.stderr.splitlines())
    assert lines[1] <= lines[40] + 1, lines
