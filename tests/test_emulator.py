"""Tests of the Spanning API emulator itself, from a plain HTTP client on loopback."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests

from tap_spanning.emulator import (
    DEFAULT_ADMIN_EMAIL,
    DEFAULT_API_KEY,
    ROLE_IDS,
    ROLE_NAMES,
    TAG_SPELLINGS,
    FaultPlan,
    SpanningEmulator,
    expected_output,
    expected_roles,
    generate_users,
    parse_fault,
    sort_key,
)
from tap_spanning.emulator.cli import main as cli_main

AUTH = (DEFAULT_ADMIN_EMAIL, DEFAULT_API_KEY)
PROJECT_ROOT = Path(__file__).resolve().parents[1]
TENANT = generate_users(230)


def _user(upn: str, ms_id: str, **fields: object) -> dict[str, object]:
    return {"userPrincipalName": upn, "msId": ms_id, "inActiveDirectory": True, **fields}


@pytest.fixture
def emulator() -> Iterator[SpanningEmulator]:
    with SpanningEmulator(TENANT) as emu:
        yield emu


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        http.auth = AUTH
        yield http


def _crawl(http: requests.Session, url: str) -> tuple[list[dict[str, object]], list[str]]:
    """Follow nextLink to the end: (users, links followed)."""
    users: list[dict[str, object]] = []
    links: list[str] = []
    while url:
        response = http.get(url, timeout=5)
        assert response.status_code == 200, response.text
        page = response.json()
        users += page["users"]
        url = page.get("nextLink") or ""
        links += [url] if url else []
    return users, links


# ------------------------------------------------------------------ pagination


def test_pagination_covers_every_user_once_in_order(
    emulator: SpanningEmulator, session: requests.Session
) -> None:
    users, links = _crawl(session, f"{emulator.base_url}/external/users?size=50&status=false")
    expected = sorted(TENANT, key=sort_key)
    assert [u["msId"] for u in users] == [u["msId"] for u in expected]
    assert users == expected  # payloads exactly as generated, no backupSummary
    assert all(link.startswith(f"{emulator.base_url}/external/users?") for link in links)
    assert len(emulator.requests) == math.ceil(len(TENANT) / 50)


@pytest.mark.parametrize(("count", "size"), [(0, 10), (10, 5), (11, 5), (1, 1000), (7, 7)])
def test_request_count_is_ceil_users_over_size(
    count: int, size: int, session: requests.Session
) -> None:
    with SpanningEmulator(generate_users(count, seed=3)) as emu:
        users, _ = _crawl(session, f"{emu.base_url}/external/users?size={size}&status=false")
        assert len(users) == count
        assert len(emu.requests) == max(1, math.ceil(count / size))


@pytest.mark.parametrize(
    ("last_link", "expected"), [("empty", ""), ("null", None), ("absent", "absent")]
)
def test_last_page_link_spellings(
    last_link: str, expected: object, session: requests.Session
) -> None:
    with SpanningEmulator(generate_users(3), last_link=last_link) as emu:  # type: ignore[arg-type]
        page = session.get(f"{emu.base_url}/external/users?size=3", timeout=5).json()
        assert page.get("nextLink", "absent") == expected


def test_relative_links_and_echoed_parameters(session: requests.Session) -> None:
    with SpanningEmulator(TENANT, link_style="relative") as emu:
        url = f"{emu.base_url}/external/users?size=20&status=false&inActiveDirectory=true"
        link = session.get(url, timeout=5).json()["nextLink"]
        assert link.startswith("/external/users?msIdOffset=")
        query = parse_qs(urlsplit(link).query)
        assert query["size"] == ["20"]
        assert query["status"] == ["false"]
        assert query["inActiveDirectory"] == ["true"]


def test_sort_prop_offset_with_special_characters_round_trips(session: requests.Session) -> None:
    upns = [
        "anna+test.1@contoso.example",
        "josé.o'brien.2@contoso.example",
        "jean-luc.müller.3@contoso.example",
        "John.Smith.4@Contoso.example",
        "guest_gmail.com#EXT#@contoso.onmicrosoft.example",
        "a b&c=d%e.5@contoso.example",
        "zoë.🚀.6@contoso.example",
    ]
    tenant = [_user(upn, f"00000000-0000-4000-8000-00000000000{i}") for i, upn in enumerate(upns)]
    tenant.append(_user(upns[0], "00000000-0000-4000-8000-0000000000ff"))  # a UPN tie: msId decides
    with SpanningEmulator(tenant) as emu:
        users, links = _crawl(session, f"{emu.base_url}/external/users?size=1&status=false")
    assert users == sorted(tenant, key=sort_key)
    for link, previous in zip(links, users, strict=False):
        query = parse_qs(urlsplit(link).query)
        assert query["sortPropOffset"] == [previous["userPrincipalName"]]
        assert query["msIdOffset"] == [previous["msId"]]
        assert not {"#", "+", " "} & set(link)


def test_in_active_directory_filter(emulator: SpanningEmulator, session: requests.Session) -> None:
    for wanted in (True, False):
        query = f"size=40&status=false&inActiveDirectory={str(wanted).lower()}"
        url = f"{emulator.base_url}/external/users?{query}"
        users, _ = _crawl(session, url)
        assert users == [
            u for u in sorted(TENANT, key=sort_key) if u["inActiveDirectory"] is wanted
        ]


def test_status_true_adds_backup_summary(
    emulator: SpanningEmulator, session: requests.Session
) -> None:
    for query, present in (("status=true", True), ("", True), ("status=false", False)):
        users = session.get(f"{emulator.base_url}/external/users?size=5&{query}", timeout=5).json()[
            "users"
        ]
        assert all(("backupSummary" in u) is present for u in users)
    summary = session.get(f"{emulator.base_url}/external/users?status=true", timeout=5).json()[
        "users"
    ][0]
    assert summary["backupSummary"][0]["type"] == "mail"


# ------------------------------------------------------------------ validation and errors


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("size=1001", "querystring/size must be <= 1000"),
        ("size=0", "querystring/size must be >= 1"),
        ("size=abc", "querystring/size must be integer"),
        ("size=10&size=10", "querystring/size must be integer"),
        ("status=yes", "querystring/status must be boolean"),
        ("inActiveDirectory=1", "querystring/inActiveDirectory must be boolean"),
    ],
)
def test_validation_errors(
    query: str, message: str, emulator: SpanningEmulator, session: requests.Session
) -> None:
    response = session.get(f"{emulator.base_url}/external/users?{query}", timeout=5)
    assert response.status_code == 400
    assert response.json() == {
        "statusCode": 400,
        "code": "FST_ERR_VALIDATION",
        "error": "Bad Request",
        "message": message,
    }


def test_max_page_size_is_configurable(session: requests.Session) -> None:
    with SpanningEmulator(TENANT, max_page_size=100) as emu:
        response = session.get(f"{emu.base_url}/external/users?size=101", timeout=5)
        assert response.json()["message"] == "querystring/size must be <= 100"
        assert session.get(f"{emu.base_url}/external/users?size=100", timeout=5).ok


@pytest.mark.parametrize(
    "auth",
    [
        (DEFAULT_ADMIN_EMAIL, "00000000-0000-0000-0000-000000000000"),
        ("someone@contoso.example", DEFAULT_API_KEY),
        None,
    ],
    ids=["wrong-key", "wrong-email", "no-auth"],
)
def test_unauthorized(auth: tuple[str, str] | None, emulator: SpanningEmulator) -> None:
    for path in ("/external/users", "/external/tenant"):
        response = requests.get(emulator.base_url + path, auth=auth, timeout=5)
        assert response.status_code == 401
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"
        assert response.json() == {"code": "Unauthorized", "message": ""}


def test_malformed_authorization_header(emulator: SpanningEmulator) -> None:
    for header in ("Basic !!!", "Bearer " + DEFAULT_API_KEY, "Basic"):
        response = requests.get(
            f"{emulator.base_url}/external/users", headers={"Authorization": header}, timeout=5
        )
        assert response.status_code == 401


def test_unknown_routes_are_plain_404s(
    emulator: SpanningEmulator, session: requests.Session
) -> None:
    for path in ("/users", "//external/users", "/external/users/", "/external"):
        response = session.get(f"{emulator.base_url}{path}?size=5", timeout=5)
        assert response.status_code == 404
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert response.text == f"Cannot GET {path}"
    response = session.post(f"{emulator.base_url}/external/users", json={"a": 1}, timeout=5)
    assert (response.status_code, response.text) == (404, "Cannot POST /external/users")


def test_tenant_counts(emulator: SpanningEmulator, session: requests.Session) -> None:
    tenant = session.get(f"{emulator.base_url}/external/tenant", timeout=5).json()
    assigned = [u for u in TENANT if u["assigned"]]
    archived = [u for u in assigned if u["isArchive"]]
    assert tenant["users"] == len(TENANT)
    assert tenant["assigned"] == len(assigned)
    assert tenant["assignedArchive"] == len(archived)
    assert tenant["assignedStandard"] == len(assigned) - len(archived)
    assert tenant["licenses"] >= tenant["assigned"]
    assert tenant["status"] == "paid"


def test_single_user(emulator: SpanningEmulator, session: requests.Session) -> None:
    for user in TENANT[:40]:
        upn = str(user["userPrincipalName"])
        response = session.get(
            f"{emulator.base_url}/external/users/{quote(upn, safe='')}", timeout=5
        )
        assert response.json() == user
    response = session.get(
        f"{emulator.base_url}/external/users/nobody%40contoso.example", timeout=5
    )
    assert response.status_code == 404
    assert response.json() == {"statusCode": 404, "code": "NotFound", "message": "User not found"}


def test_request_log_and_set_users(emulator: SpanningEmulator, session: requests.Session) -> None:
    session.get(f"{emulator.base_url}/external/users?size=5", timeout=5)
    (record,) = emulator.requests
    assert (record.number, record.method, record.path) == (1, "GET", "/external/users?size=5")
    assert (record.status, record.fault) == (200, None)
    assert record.headers["Authorization"].startswith("Basic ")
    emulator.set_users(generate_users(3, seed=9))
    emulator.clear_requests()
    users, _ = _crawl(session, f"{emulator.base_url}/external/users?size=1000")
    assert len(users) == 3
    assert [r.number for r in emulator.requests] == [1]


def test_page_hook_replaces_the_page(emulator: SpanningEmulator, session: requests.Session) -> None:
    def hostile(number: int, page: dict[str, object]) -> dict[str, object]:
        return {"users": [{"unexpected": number}], "nextLink": None, "seen": len(page["users"])}  # type: ignore[arg-type]

    emulator.page_hook = hostile
    page = session.get(f"{emulator.base_url}/external/users?size=7&status=false", timeout=5).json()
    assert page == {"users": [{"unexpected": 1}], "nextLink": None, "seen": 7}


# ------------------------------------------------------------------ faults


def _faulty(plan: FaultPlan) -> SpanningEmulator:
    return SpanningEmulator(generate_users(20), faults=plan)


@pytest.mark.parametrize(("retry_after", "header"), [("7", "7"), (None, None)])
def test_fault_429(retry_after: str | None, header: str | None, session: requests.Session) -> None:
    with _faulty(FaultPlan(at={1: "429"}, retry_after=retry_after)) as emu:
        url = f"{emu.base_url}/external/users?size=5"
        response = session.get(url, timeout=5)
        assert response.status_code == 429
        assert response.text == "Too many requests, please try again later."
        assert response.headers.get("Retry-After") == header
        assert session.get(url, timeout=5).status_code == 200  # the retry gets the real page
        assert [(r.status, r.fault) for r in emu.requests] == [(429, "429"), (200, None)]


@pytest.mark.parametrize(
    ("kind", "status", "content_type", "marker"),
    [
        ("500", 500, "application/json", '"statusCode":500'),
        ("500:html", 500, "text/html", "<title>500 Internal Server Error</title>"),
        ("502", 502, "text/html", "<title>502 Bad Gateway</title>"),
        ("503:json", 503, "application/json", '"statusCode":503'),
        ("504", 504, "text/html", "<title>504 Gateway Time-out</title>"),
        ("504:empty", 504, None, ""),
        ("html200", 200, "text/html", "maintenance"),
    ],
)
def test_fault_status_bodies(
    kind: str, status: int, content_type: str | None, marker: str, session: requests.Session
) -> None:
    with _faulty(FaultPlan(every=2, kind=kind)) as emu:
        url = f"{emu.base_url}/external/users?size=5&status=false"
        assert session.get(url, timeout=5).status_code == 200
        response = session.get(url, timeout=5)
        assert response.status_code == status
        assert response.headers.get("Content-Type", "").split(";")[0] == (content_type or "")
        assert marker in response.text
        assert response.headers["Content-Length"] == str(len(response.content))


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("reset-before", requests.ConnectionError),
        ("reset-during", requests.exceptions.ChunkedEncodingError),
    ],
)
def test_fault_connection_resets(
    kind: str, error: type[Exception], session: requests.Session
) -> None:
    with _faulty(FaultPlan(at={1: kind})) as emu:
        url = f"{emu.base_url}/external/users?size=20&status=false"
        with pytest.raises(error):
            session.get(url, timeout=5)
        assert len(session.get(url, timeout=5).json()["users"]) == 20


def test_fault_truncate_gives_invalid_json(session: requests.Session) -> None:
    with _faulty(FaultPlan(at={1: "truncate"})) as emu:
        response = session.get(f"{emu.base_url}/external/users?size=20", timeout=5)
        assert response.status_code == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(response.content)


def test_fault_hang_times_out_and_stop_does_not_wait(session: requests.Session) -> None:
    emu = _faulty(FaultPlan(at={1: "hang"}, hang_seconds=20)).start()
    with pytest.raises(requests.Timeout):
        session.get(f"{emu.base_url}/external/users", timeout=0.3)
    assert session.get(f"{emu.base_url}/external/users", timeout=5).ok
    started = time.monotonic()
    emu.stop()
    assert time.monotonic() - started < 2


def test_fault_plan_rules() -> None:
    plan = FaultPlan(every=3, kind="503", at={3: "429", 4: "504:empty"})
    assert [None if (f := plan.fault_for(n)) is None else f.kind for n in range(1, 8)] == [
        None, None, "429", "504:empty", None, "503", None,
    ]  # fmt: skip
    for bad in ("418", "500:xml", "reset", "hang:json", ""):
        with pytest.raises(ValueError, match="unknown fault kind"):
            parse_fault(bad)
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultPlan(at={1: "teapot"})


def test_refuses_non_loopback_host() -> None:
    with pytest.raises(ValueError, match="loopback"):
        SpanningEmulator([], host="0.0.0.0")


# ------------------------------------------------------------------ tenant generation


def test_every_tag_spelling_appears() -> None:
    seen = {tag for user in generate_users(300) for tag in user.get("tags") or []}  # type: ignore[attr-defined]
    assert seen == set(TAG_SPELLINGS)


def test_generated_tenant_shape() -> None:
    users = generate_users(2000)
    upns = [str(u["userPrincipalName"]) for u in users]
    assert len({upn.casefold() for upn in upns}) == len(users)
    assert all(isinstance(u["inActiveDirectory"], bool) for u in users)
    assert all(("displayName" in u) != ("userDisplayName" in u) for u in users)
    assert 100 < sum("userDisplayName" in u for u in users) < 300
    assert 100 < sum("tags" not in u for u in users) < 300
    assert any(u.get("tags", ...) is None for u in users)
    assert any(u.get("tags") == [] for u in users)
    assert any(u["email"] != u["userPrincipalName"] for u in users)
    assert any(any(ord(c) > 0xFFFF for c in str(u.get("displayName", ""))) for u in users)
    for marker in ("+", "'", "-", "é", "#EXT#"):
        assert any(marker in upn for upn in upns), marker
    assert any(upn != upn.lower() for upn in upns)
    assert any("extra" in u or "lastSeen" in u for u in users)
    for user in users:
        expected_roles(user)  # every tag is in the table


def test_generate_users_is_deterministic() -> None:
    assert generate_users(50, seed=4) == generate_users(50, seed=4)
    assert generate_users(50, seed=4) != generate_users(50, seed=5)
    assert generate_users(10, seed=4) == generate_users(50, seed=4)[:10]


def _flags(admin: bool = False, archive: bool = False, deleted: bool = False) -> dict[str, object]:
    return {"isAdmin": admin, "isArchive": archive, "isDeleted": deleted}


@pytest.mark.parametrize(
    ("user", "roles"),
    [
        ({"tags": ["GLOBAL_ADMIN", "VIP"], **_flags(archive=True)}, ["global_admin", "archived"]),
        (_flags(), ["user"]),
        ({"tags": None, **_flags()}, ["user"]),
        ({"tags": [], **_flags()}, []),
        ({"tags": ["VIP", "Legacy Import"], **_flags()}, []),
        (_flags(admin=True), ["user", "spanning_admin"]),
        ({"tags": ["Spanning Admin"], **_flags(admin=True)}, ["spanning_admin"]),
        (
            {"tags": ["Archive", "shared-mailbox"], **_flags(deleted=True)},
            ["shared_mailbox", "archived", "deleted_from_microsoft"],
        ),
        (
            {"tags": ["Deleted From Microsoft", "No Microsoft License", "User"]},
            ["user", "no_microsoft_license", "deleted_from_microsoft"],
        ),
        ({"tags": ["archived(read-only)", "ARCHIVED (READ-ONLY)", "Archived"]}, ["archived"]),
        ({"tags": ["Global  Admin"], "isAdmin": "true", "isArchive": 1}, ["global_admin"]),
    ],
)  # fmt: skip
def test_expected_roles_hand_written(user: dict[str, object], roles: list[str]) -> None:
    assert expected_roles(user) == roles


def test_expected_roles_rejects_tags_missing_from_the_table() -> None:
    with pytest.raises(KeyError):
        expected_roles({"tags": ["Not In The Table"]})


def test_tag_table_covers_every_role_by_its_display_name() -> None:
    assert all(TAG_SPELLINGS[ROLE_NAMES[role]] == role for role in ROLE_IDS)
    assert {role for role in TAG_SPELLINGS.values() if role} == set(ROLE_IDS)


def test_expected_output_shape() -> None:
    users = generate_users(300)
    output = expected_output(users)
    assert output["roles"] == [{"id": role, "name": ROLE_NAMES[role]} for role in ROLE_IDS]
    records = output["users"]
    assert [r["msId"] for r in records] == [u["msId"] for u in sorted(users, key=sort_key)]
    assert all(len(r) == 10 and r["displayName"] is not None for r in records)
    roles_of = {
        r["msId"]: [m["roleId"] for m in output["role_memberships"] if m["msId"] == r["msId"]]
        for r in records
    }
    for record in records:
        roles = roles_of[record["msId"]]
        assert record["disabled"] is ("archived" in roles or "deleted_from_microsoft" in roles)
    no_tags = next(u for u in users if "tags" not in u)
    assert next(r for r in records if r["msId"] == no_tags["msId"])["tags"] is None


# ------------------------------------------------------------------ command line


def test_cli_write_expected(tmp_path: Path) -> None:
    assert cli_main(["--users", "120", "--seed", "2", "--write-expected", str(tmp_path)]) == 0
    streams = {
        name: [
            json.loads(line)
            for line in (tmp_path / f"{name}.jsonl").read_text("utf-8").splitlines()
        ]
        for name in ("users", "roles", "role_memberships")
    }
    assert len(streams["users"]) == 120
    assert len(streams["roles"]) == 7
    msids = {u["msId"] for u in streams["users"]}
    assert {m["msId"] for m in streams["role_memberships"]} <= msids
    assert streams == expected_output(generate_users(120, seed=2))


def test_cli_write_users_and_serve_them_back(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    assert cli_main(["--users", "15", "--write-users", str(path)]) == 0
    assert json.loads(path.read_text("utf-8")) == generate_users(15)
    assert cli_main(["--users-file", str(path), "--write-expected", str(tmp_path / "out")]) == 0
    assert len((tmp_path / "out" / "users.jsonl").read_text("utf-8").splitlines()) == 15


def test_cli_refuses_non_loopback_host(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["--host", "192.168.1.10"])
    assert exit_info.value.code == 2
    assert "loopback" in capsys.readouterr().err


def test_cli_serves_in_a_subprocess(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "SPANNING_EMULATOR_API_KEY": "k-e-y"}
    command = [sys.executable, "-m", "tap_spanning.emulator", "--port", "0", "--users", "30"]
    process = subprocess.Popen(
        [*command, "--ready-file", str(ready)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not ready.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        base_url = ready.read_text("utf-8").strip()
        response = requests.get(
            f"{base_url}/external/tenant", auth=(DEFAULT_ADMIN_EMAIL, "k-e-y"), timeout=5
        )
        assert response.json()["users"] == 30
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert stdout.startswith(f"spanning-emulator: serving 30 users at {base_url} (admin_email=")
    assert "SPANNING_EMULATOR_API_KEY" in stdout
    assert "k-e-y" not in stdout + stderr
