"""Tests of the Spanning API emulator itself, from a plain HTTP client on loopback."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import socket
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from spanning_emulator import (
    DEFAULT_ADMIN_EMAIL,
    DEFAULT_API_KEY,
    FAULT_KINDS,
    RETRIED_FAULTS,
    ROLE_DESCRIPTIONS,
    ROLE_IDS,
    ROLE_NAMES,
    TAG_SPELLINGS,
    USER_BACKUP_TYPES,
    EmulatedTenant,
    FaultKind,
    FaultPlan,
    FleetEmulator,
    SpanningEmulator,
    expected_output,
    expected_roles,
    expected_tenant_record,
    generate_fleet,
    generate_users,
    parse_fault,
    sort_key,
    tenant_summary,
)
from spanning_emulator.cli import main as cli_main
from spanning_emulator.faults import Behaviour, Canned

AUTH = (DEFAULT_ADMIN_EMAIL, DEFAULT_API_KEY)
PROJECT_ROOT = Path(__file__).resolve().parents[1]
EMULATOR_ROOT = PROJECT_ROOT / "emulator"  # the spanning-emulator project
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
    def users(query: str) -> list[dict[str, Any]]:
        url = f"{emulator.base_url}/external/users?size=1000&{query}"
        found: list[dict[str, Any]] = session.get(url, timeout=5).json()["users"]
        return found

    assert not any("backupSummary" in user for user in users("status=false"))
    assert all("backupSummary" in user for user in users(""))  # the API's default: true
    # status=true without start/end: today's items only, of the per-user workloads.
    items = [item for user in users("status=true") for item in user.get("backupSummary") or []]
    assert items
    assert {item["type"] for item in items} <= set(USER_BACKUP_TYPES)
    assert len({json.dumps(item["date"]) for item in items}) == 1


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
    with pytest.raises(ValueError, match="unknown fault kind") as error:
        FaultPlan(at={1: "teapot"})
    assert all(name in str(error.value) for name in FAULT_KINDS)  # the message lists them
    for row in FAULT_KINDS.values():
        assert all(parse_fault(spelling).row is row for spelling in row.spellings)
    assert set(RETRIED_FAULTS) <= set(FAULT_KINDS)


def test_cli_help_lists_every_fault_kind(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert all(name in text for name in FAULT_KINDS)


# ------------------------------------------------------------------ every fault kind, by the table

FAULT_TARGET = "/external/tenant"  # a short answer: trickling it takes little time
TRICKLE = 0.005  # faults.TRICKLE_INTERVAL while these tests run
HANG = 0.3  # FaultPlan.hang_seconds
BASIC = "Basic " + base64.b64encode(f"{DEFAULT_ADMIN_EMAIL}:{DEFAULT_API_KEY}".encode()).decode()


def _ask(sock: socket.socket, target: str = FAULT_TARGET) -> None:
    request = f"GET {target} HTTP/1.1\r\nHost: emulator\r\nAuthorization: {BASIC}\r\n\r\n"
    sock.sendall(request.encode())


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response, as long as its Content-Length: (status, headers lower-cased, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before the end of the headers: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines)}
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "closed before the end of the body"
        body += chunk
    return int(status_line.split(" ")[1]), headers, body


def _read_until_closed(sock: socket.socket) -> tuple[bytes, str]:
    """Every byte sent until the server closes the connection, and how: 'fin' or 'rst'."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data, "rst"
        if not chunk:
            return data, "fin"
        data += chunk


def _normal_body(emu: SpanningEmulator) -> bytes:
    return emu.respond("GET", FAULT_TARGET, BASIC, 0).body


def _logged_status(emu: SpanningEmulator) -> int | None:
    return emu.requests[0].status


def _assert_kept_alive(emu: SpanningEmulator, sock: socket.socket) -> None:
    """The same connection answers the next request normally."""
    _ask(sock)
    assert _read_response(sock)[::2] == (200, _normal_body(emu))


def _served_canned(emu: SpanningEmulator, sock: socket.socket, kind: str, served: Canned) -> None:
    canned = served.make(parse_fault(kind), emu.faults)
    status, headers, body = _read_response(sock)
    assert (status, headers.get("content-type"), body) == (
        canned.status,
        canned.content_type,
        canned.body,
    )
    assert all(headers[name.lower()] == value for name, value in canned.headers)
    assert _logged_status(emu) == canned.status
    _assert_kept_alive(emu, sock)


def _served_reset_before(emu: SpanningEmulator, sock: socket.socket) -> None:
    assert _read_until_closed(sock) == (b"", "rst")
    assert _logged_status(emu) is None


def _served_reset_during(emu: SpanningEmulator, sock: socket.socket) -> None:
    full = _normal_body(emu)
    data, end = _read_until_closed(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert f"\r\nContent-Length: {len(full)}".encode() in head  # promises the whole body
    assert (body, end) == (full[: len(full) // 2], "fin")
    assert _logged_status(emu) == 200


def _served_truncate(emu: SpanningEmulator, sock: socket.socket) -> None:
    full = _normal_body(emu)
    status, _, body = _read_response(sock)
    assert (status, body) == (200, full[: len(full) // 2])  # Content-Length to match
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)
    assert _logged_status(emu) == 200
    _assert_kept_alive(emu, sock)


def _served_hang(emu: SpanningEmulator, sock: socket.socket) -> None:
    started = time.monotonic()
    assert _read_until_closed(sock) == (b"", "fin")
    assert time.monotonic() - started >= HANG
    assert _logged_status(emu) is None


def _served_trickle(emu: SpanningEmulator, sock: socket.socket) -> None:
    full = _normal_body(emu)
    started = time.monotonic()
    data, end = _read_until_closed(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\nServer: ")  # the real status and headers
    assert (body, end) == (full, "fin")
    assert time.monotonic() - started >= len(full) * TRICKLE
    assert _logged_status(emu) == 200


def _served_slow_headers(emu: SpanningEmulator, sock: socket.socket) -> None:
    full = _normal_body(emu)
    started = time.monotonic()
    data, end = _read_until_closed(sock)
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
        f"Content-Length: {len(full)}\r\n\r\n"
    )
    assert (data, end) == (head.encode() + full, "fin")
    assert time.monotonic() - started >= len(data) * TRICKLE
    assert _logged_status(emu) == 200


# How each Behaviour row of FAULT_KINDS looks from the client, its request just sent.
SERVED_BY_BEHAVIOUR: dict[str, Callable[[SpanningEmulator, socket.socket], None]] = {
    "reset-before": _served_reset_before,
    "reset-during": _served_reset_during,
    "truncate": _served_truncate,
    "hang": _served_hang,
    "trickle": _served_trickle,
    "slow-headers": _served_slow_headers,
}


@pytest.mark.parametrize("row", FAULT_KINDS.values(), ids=lambda row: row.name)
def test_each_fault_kind_is_served_as_its_row_says(
    row: FaultKind, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every spelling of every row: a canned row sends its response and keeps the
    connection; a behaviour row needs its check in SERVED_BY_BEHAVIOUR."""
    monkeypatch.setattr("spanning_emulator.faults.TRICKLE_INTERVAL", TRICKLE)
    served = row.served
    if isinstance(served, Behaviour):
        assert row.name in SERVED_BY_BEHAVIOUR, f"no check of how {row.name!r} is served"
    for kind in row.spellings:
        plan = FaultPlan(at={1: kind}, retry_after="7", hang_seconds=HANG)
        with _faulty(plan) as emu:
            with socket.create_connection((emu.server_name, emu.server_port), timeout=5) as sock:
                _ask(sock)
                if isinstance(served, Canned):
                    _served_canned(emu, sock, kind, served)
                else:
                    SERVED_BY_BEHAVIOUR[row.name](emu, sock)
            assert (emu.requests[0].number, emu.requests[0].fault) == (1, kind)
            with socket.create_connection((emu.server_name, emu.server_port), timeout=5) as sock:
                _assert_kept_alive(emu, sock)  # the next request, on a new connection


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
    assert output["roles"] == [
        {"id": role, "name": ROLE_NAMES[role], "description": ROLE_DESCRIPTIONS[role]}
        for role in ROLE_IDS
    ]
    records = output["users"]
    assert [r["msId"] for r in records] == [u["msId"] for u in sorted(users, key=sort_key)]
    assert all(len(r) == 11 and r["displayName"] is not None for r in records)
    assert all(r["tenant_id"] == "default" for r in records + output["role_memberships"])
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




def test_http_absolute_link_style_is_gone() -> None:
    with pytest.raises(ValueError, match="link_style"):
        SpanningEmulator([], link_style="http-absolute")  # type: ignore[arg-type]


# ------------------------------------------------------------------ profiles

# Computed from the generator as it was before profiles existed: "torture" must not move.
TORTURE_SHA256 = {
    (300, 1): "d8c4156fd8356876206369d144d583225be9efa7cbfdefc9bb5446d4b33da890",
    (2500, 1): "ac114553e66ca7a9064ba8cfc15fed4f5f003a312e900fed284854613d394c8e",
    (120, 2): "298d9b004ce7fe0f6567a75040df94c6efe6ca289b192095f57b79b0cb102ba5",
}
TORTURE_SEED_5_FIRST = {
    "userPrincipalName": "björn.ødegaard.0@contoso.example",
    "email": "björn.ødegaard.0@contoso.example",
    "userDisplayName": "Björn Ødegaard",
    "msId": "3fc1ea36-f17f-4374-86a5-387777330bdb",
    "assigned": True,
    "isAdmin": False,
    "isDeleted": False,
    "isArchive": False,
    "tags": ["User", "USER"],
    "inActiveDirectory": True,
}


@pytest.mark.parametrize(("count", "seed"), list(TORTURE_SHA256))
def test_torture_profile_is_unchanged(count: int, seed: int) -> None:
    for users in (generate_users(count, seed), generate_users(count, seed, "torture")):
        encoded = json.dumps(users, ensure_ascii=False).encode()
        assert hashlib.sha256(encoded).hexdigest() == TORTURE_SHA256[count, seed]


def test_torture_profile_fixed_record() -> None:
    first = generate_users(3, seed=5)[0]
    assert first == TORTURE_SEED_5_FIRST
    assert list(first) == list(TORTURE_SEED_5_FIRST)  # key order too


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="profile"):
        generate_users(3, 1, "chaos")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="domain"):
        generate_users(3, 1, "torture", domain="x.example")


@pytest.mark.parametrize("seed", [1, 2])
def test_realistic_profile_proportions(seed: int) -> None:
    users = generate_users(3000, seed, "realistic")
    count = len(users)

    def share(predicate: Any) -> float:
        return sum(1 for user in users if predicate(user)) / count

    def tags(user: dict[str, object]) -> list[str]:
        return user.get("tags") or []  # type: ignore[return-value]

    assert 0.01 <= share(lambda u: "Global Admin" in tags(u)) <= 0.03
    assert 0.05 <= share(lambda u: "Shared Mailbox" in tags(u)) <= 0.10
    assert 0.005 <= share(lambda u: u["isArchive"] is True) <= 0.05
    assert 0.005 <= share(lambda u: u["isDeleted"] is True) <= 0.05
    assert 0.01 <= share(lambda u: u["isAdmin"] is True) <= 0.03
    assert share(lambda u: u.get("tags") == ["User"]) >= 0.70
    assert 0.03 <= share(lambda u: "tags" not in u) <= 0.07
    unknown = {tag for user in users for tag in tags(user) if TAG_SPELLINGS[tag] is None}
    assert unknown
    assert unknown <= {"VIP", "Finance", "Contractor", "Legacy Import"}
    assert 0 < share(lambda u: any(TAG_SPELLINGS[t] is None for t in tags(u))) <= 0.05
    known = {tag for user in users for tag in tags(user) if TAG_SPELLINGS[tag] is not None}
    assert known <= set(ROLE_NAMES.values())  # the console's display strings only
    # Every Global Admin is a Spanning admin.
    assert all(u["isAdmin"] is True for u in users if "Global Admin" in tags(u))
    # Plain names and UPNs on one domain, no emoji, no duplicates.
    upns = [str(u["userPrincipalName"]) for u in users]
    assert {upn.partition("@")[2] for upn in upns} == {"contoso.example"}
    assert len({upn.casefold() for upn in upns}) == count
    assert all(re.fullmatch(r"[a-z0-9.-]+@contoso\.example", upn) for upn in upns)
    assert all(str(u["displayName"]).isascii() and "userDisplayName" not in u for u in users)
    for user in users:
        expected_roles(user)  # every tag is in the hand-written table


def test_realistic_profile_is_deterministic_and_takes_a_domain() -> None:
    assert generate_users(40, 3, "realistic") == generate_users(40, 3, "realistic")
    assert generate_users(40, 3, "realistic") != generate_users(40, 4, "realistic")
    users = generate_users(40, 3, "realistic", domain="fabrikam.example")
    assert all(str(u["userPrincipalName"]).endswith("@fabrikam.example") for u in users)


# ------------------------------------------------------------------ ground truth


ROLE_DESCRIPTIONS_BY_HAND = {
    "user": "A standard backed-up user mailbox.",
    "shared_mailbox": "A shared mailbox backed up by Spanning.",
    "global_admin": "A Microsoft 365 Global Administrator.",
    "spanning_admin": (
        "An administrator of the Spanning Backup console (every Global Admin is one)."
    ),
    "archived": "Holds an archive license: the backup is kept read-only, no new backups.",
    "no_microsoft_license": "Has no Microsoft 365 license that Spanning can back up.",
    "deleted_from_microsoft": (
        "Deleted from Microsoft Entra ID; the backup is still held in Spanning."
    ),
}


def test_expected_output_carries_tenant_id_first() -> None:
    users = generate_users(40, seed=6)
    output = expected_output(users, tenant_id="t0042-fabrikam")
    assert list(output["users"][0]) == [
        "tenant_id", "msId", "userPrincipalName", "email", "displayName", "assigned",
        "isAdmin", "isDeleted", "isArchive", "tags", "disabled",
    ]  # fmt: skip
    assert list(output["role_memberships"][0]) == [
        "tenant_id", "roleId", "msId", "userPrincipalName",
    ]  # fmt: skip
    assert {r["tenant_id"] for r in output["users"] + output["role_memberships"]} == {
        "t0042-fabrikam"
    }
    assert output["roles"] == [
        {"id": role, "name": ROLE_NAMES[role], "description": ROLE_DESCRIPTIONS_BY_HAND[role]}
        for role in ROLE_IDS
    ]
    default = expected_output(users)
    assert {r["tenant_id"] for r in default["users"]} == {"default"}


def test_expected_tenant_record() -> None:
    counters = {"licenses": 15, "users": 26, "status": "paid", "unknown": 1}
    record = expected_tenant_record("t0001-contoso", counters, "http://127.0.0.2:41234")
    assert record == {
        "tenant_id": "t0001-contoso",
        "region": None,
        "base_url": "http://127.0.0.2:41234",
        "licenses": 15,
        "archivedLicenses": None,
        "users": 26,
        "assigned": None,
        "assignedStandard": None,
        "assignedArchive": None,
        "status": "paid",
    }
    assert list(record) == [
        "tenant_id", "region", "base_url", "licenses", "archivedLicenses", "users",
        "assigned", "assignedStandard", "assignedArchive", "status",
    ]  # fmt: skip
    for location in ("eu", "https://o365-api-eu.spanningbackup.com/external/"):
        eu = expected_tenant_record("x", counters, location)
        assert (eu["region"], eu["base_url"]) == ("eu", "https://o365-api-eu.spanningbackup.com")
    with pytest.raises(ValueError, match="loopback"):
        expected_tenant_record("x", counters, "https://example.com")


# ------------------------------------------------------------------ a fleet of tenants

KEY_A = "11111111-1111-4111-8111-111111111111"
KEY_B = "22222222-2222-4222-8222-222222222222"
KEY_C = "33333333-3333-4333-8333-333333333333"


def _fleet_tenants(**overrides: Mapping[str, object]) -> list[EmulatedTenant]:
    tenants = [
        EmulatedTenant(
            "t1-contoso", generate_users(45, 11, "realistic"), "admin@t1.example", KEY_A
        ),
        EmulatedTenant("t2-fabrikam", generate_users(23, 12), "admin@t2.example", KEY_B),
        EmulatedTenant(
            "t3-northwind",
            generate_users(30, 13, "realistic"),
            "admin@t3.example",
            KEY_C,
            host="127.0.0.2",
        ),
    ]
    return [EmulatedTenant(**{**t.__dict__, **overrides.get(t.tenant_id, {})}) for t in tenants]


@pytest.fixture
def fleet() -> Iterator[FleetEmulator]:
    with FleetEmulator(_fleet_tenants()) as emu:
        yield emu


CREDENTIALS = {
    "t1-contoso": ("admin@t1.example", KEY_A),
    "t2-fabrikam": ("admin@t2.example", KEY_B),
    "t3-northwind": ("admin@t3.example", KEY_C),
}


def _get(url: str, auth: tuple[str, str] | None, **kwargs: Any) -> requests.Response:
    return requests.get(url, auth=auth, timeout=5, **kwargs)


def test_fleet_paginates_each_tenant_on_its_own_host(fleet: FleetEmulator) -> None:
    urls = {tenant_id: fleet.base_url(tenant_id) for tenant_id in CREDENTIALS}
    assert urls["t1-contoso"] == urls["t2-fabrikam"]
    assert urlsplit(urls["t1-contoso"]).hostname == "127.0.0.1"
    assert urlsplit(urls["t3-northwind"]).hostname == "127.0.0.2"
    # One port for every host (port 0: the first listener picks, the others follow).
    assert urlsplit(urls["t3-northwind"]).port == urlsplit(urls["t1-contoso"]).port
    assert fleet.base_urls == [urls["t1-contoso"], urls["t3-northwind"]]
    for tenant_id, auth in CREDENTIALS.items():
        with requests.Session() as http:
            http.auth = auth
            users, links = _crawl(http, f"{urls[tenant_id]}/external/users?size=10&status=false")
        tenant = fleet.tenant(tenant_id)
        assert users == sorted(tenant.users, key=sort_key)
        assert links
        assert all(link.startswith(f"{urls[tenant_id]}/external/users?") for link in links)
    log = fleet.requests
    for tenant_id in CREDENTIALS:
        mine = [r for r in log if r.tenant_id == tenant_id]
        assert len(mine) == math.ceil(fleet.tenant(tenant_id).user_count / 10)
        assert [r.number for r in mine] == list(range(1, len(mine) + 1))
        assert {r.host for r in mine} == {urlsplit(urls[tenant_id]).hostname}
    assert [r.received_at for r in log] == sorted(r.received_at for r in log)


def test_fleet_relative_links_and_last_link() -> None:
    with FleetEmulator(_fleet_tenants(), link_style="relative", last_link="absent") as emu:
        url = f"{emu.base_url('t3-northwind')}/external/users?size=20&status=false"
        first = _get(url, CREDENTIALS["t3-northwind"]).json()
        assert first["nextLink"].startswith("/external/users?msIdOffset=")
        last = _get(emu.base_url("t3-northwind") + first["nextLink"], CREDENTIALS["t3-northwind"])
        assert "nextLink" not in last.json()


def test_fleet_tells_tenants_apart_by_credentials() -> None:
    # Two tenants on one host with the same admin email: the key decides.
    tenants = _fleet_tenants(**{"t2-fabrikam": {"admin_email": "admin@t1.example"}})
    with FleetEmulator(tenants) as emu:
        url = f"{emu.base_url('t1-contoso')}/external/tenant"
        for key, tenant_id in ((KEY_A, "t1-contoso"), (KEY_B, "t2-fabrikam")):
            response = _get(url, ("ADMIN@T1.example", key))  # the email ignores case
            assert response.status_code == 200
            assert response.json()["users"] == emu.tenant(tenant_id).user_count
        wrong = _get(url, ("admin@t1.example", KEY_C))
        assert (wrong.status_code, wrong.json()) == (401, {"code": "Unauthorized", "message": ""})
        assert [r.tenant_id for r in emu.requests] == ["t1-contoso", "t2-fabrikam", None]


def test_fleet_keys_are_region_scoped(fleet: FleetEmulator) -> None:
    fleet.set_faults("t3-northwind", FaultPlan(at={1: "503"}))
    # t3 lives on 127.0.0.2: its credentials on 127.0.0.1 are a wrong key there.
    wrong_host = fleet.base_url("t1-contoso")
    for path in ("/external/users", "/external/tenant"):
        response = _get(wrong_host + path, CREDENTIALS["t3-northwind"])
        assert (response.status_code, response.json()) == (
            401,
            {"code": "Unauthorized", "message": ""},
        )
    # And t1's on 127.0.0.2.
    assert (
        _get(
            fleet.base_url("t3-northwind") + "/external/tenant", CREDENTIALS["t1-contoso"]
        ).status_code
        == 401
    )
    log = fleet.requests
    assert [(r.tenant_id, r.number, r.fault, r.status) for r in log] == [(None, 0, None, 401)] * 3
    assert [r.host for r in log] == ["127.0.0.1", "127.0.0.1", "127.0.0.2"]
    # None of them counted as t3's request 1: its own first request gets the fault.
    right = _get(fleet.base_url("t3-northwind") + "/external/tenant", CREDENTIALS["t3-northwind"])
    assert right.status_code == 503
    # Unknown routes stay 404 whoever asks, as on the real host.
    assert _get(wrong_host + "/users", CREDENTIALS["t3-northwind"]).status_code == 404


def test_fleet_faults_count_each_tenants_requests(fleet: FleetEmulator) -> None:
    fleet.set_faults("t1-contoso", FaultPlan(at={2: "503"}))
    fleet.set_faults("t2-fabrikam", FaultPlan(every=3, kind="429", retry_after="4"))
    base = fleet.base_url("t1-contoso")

    def hammer(tenant_id: str, statuses: list[int]) -> None:
        with requests.Session() as http:
            http.auth = CREDENTIALS[tenant_id]
            for _ in range(6):
                statuses.append(http.get(f"{base}/external/users?size=5", timeout=5).status_code)

    results: dict[str, list[int]] = {"t1-contoso": [], "t2-fabrikam": []}
    threads = [threading.Thread(target=hammer, args=item) for item in results.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Whatever the interleaving, each tenant's plan hits its own n-th request.
    assert results["t1-contoso"] == [200, 503, 200, 200, 200, 200]
    assert results["t2-fabrikam"] == [200, 200, 429, 200, 200, 429]
    t2 = [r for r in fleet.requests if r.tenant_id == "t2-fabrikam"]
    assert [(r.number, r.fault) for r in t2 if r.fault] == [(3, "429"), (6, "429")]
    fleet.clear_requests()  # numbering restarts at 1 for every tenant
    assert fleet.requests == []
    assert _get(f"{base}/external/users", CREDENTIALS["t1-contoso"]).status_code == 200
    assert _get(f"{base}/external/users", CREDENTIALS["t1-contoso"]).status_code == 503


def test_fleet_latency_is_per_tenant() -> None:
    tenants = _fleet_tenants(**{"t1-contoso": {"latency": 0.4}})
    with FleetEmulator(tenants) as emu:
        base = emu.base_url("t1-contoso")
        started = time.monotonic()
        assert _get(f"{base}/external/tenant", CREDENTIALS["t2-fabrikam"]).ok
        fast = time.monotonic() - started
        started = time.monotonic()
        assert _get(f"{base}/external/tenant", CREDENTIALS["t1-contoso"]).ok
        slow = time.monotonic() - started
        started = time.monotonic()
        assert _get(f"{base}/external/tenant", ("nobody@t1.example", KEY_A)).status_code == 401
        unknown = time.monotonic() - started
        emu.set_latency("t1-contoso", 0.0)
        started = time.monotonic()
        assert _get(f"{base}/external/tenant", CREDENTIALS["t1-contoso"]).ok
        after = time.monotonic() - started
    assert slow >= 0.4
    assert fast < 0.3
    assert unknown < 0.3
    assert after < 0.3


def test_fleet_counters_override() -> None:
    counters: dict[str, object] = {"licenses": 40, "users": 2, "status": "suspended"}
    tenants = _fleet_tenants(**{"t2-fabrikam": {"counters": counters}})
    with FleetEmulator(tenants) as emu:
        base = emu.base_url("t1-contoso")
        served = _get(f"{base}/external/tenant", CREDENTIALS["t2-fabrikam"]).json()
        assert served == counters  # missing counters left out, unknown status kept
        computed = _get(f"{base}/external/tenant", CREDENTIALS["t1-contoso"]).json()
        users = emu.tenant("t1-contoso").users
        assigned = [u for u in users if u["assigned"] is True]
        archived = [u for u in assigned if u["isArchive"] is True]
        assert computed["users"] == len(users)
        assert computed["assigned"] == len(assigned)
        assert computed["assignedArchive"] == len(archived)
        assert computed["status"] == "paid"
        assert computed == emu.tenant("t1-contoso").served_counters() == tenant_summary(users)
        # set_users keeps the override.
        emu.set_users("t2-fabrikam", generate_users(3, 99))
        assert _get(f"{base}/external/tenant", CREDENTIALS["t2-fabrikam"]).json() == counters
        users_page = _get(f"{base}/external/users", CREDENTIALS["t2-fabrikam"]).json()
        assert len(users_page["users"]) == 3
        assert emu.tenant("t2-fabrikam").user_count == 3


def test_fleet_single_user_route(fleet: FleetEmulator) -> None:
    user = fleet.tenant("t3-northwind").users[4]
    upn = quote(str(user["userPrincipalName"]), safe="")
    url = f"{fleet.base_url('t3-northwind')}/external/users/{upn}"
    assert _get(url, CREDENTIALS["t3-northwind"]).json() == user
    other = fleet.tenant("t1-contoso").users[0]
    url = f"{fleet.base_url('t1-contoso')}/external/users/{quote(str(other['userPrincipalName']))}"
    assert _get(url, CREDENTIALS["t2-fabrikam"]).status_code == 404  # not t2's user


def test_fleet_validation() -> None:
    good = _fleet_tenants()
    with pytest.raises(ValueError, match="at least one"):
        FleetEmulator([])
    with pytest.raises(ValueError, match="twice"):
        FleetEmulator([good[0], good[0]])
    with pytest.raises(ValueError, match="tenant_id"):
        FleetEmulator(_fleet_tenants(**{"t1-contoso": {"tenant_id": "bad id!"}}))
    with pytest.raises(ValueError, match="loopback"):
        FleetEmulator(_fleet_tenants(**{"t1-contoso": {"host": "10.0.0.1"}}))
    with pytest.raises(ValueError, match="same admin email and key"):
        FleetEmulator(
            _fleet_tenants(**{"t2-fabrikam": {"admin_email": "ADMIN@t1.example", "api_key": KEY_A}})
        )
    with FleetEmulator(good) as emu, pytest.raises(KeyError, match="unknown tenant"):
        emu.base_url("nope")
    assert "api_key" not in repr(good[0])
    assert KEY_A not in repr(good[0])


def test_fleet_with_a_fixed_port() -> None:
    with FleetEmulator(_fleet_tenants()) as first:
        port = urlsplit(first.base_url("t1-contoso")).port
    assert port is not None
    with FleetEmulator(_fleet_tenants(), port=port) as again:
        assert {urlsplit(url).port for url in again.base_urls} == {port}
        with pytest.raises(OSError, match="in use"):
            FleetEmulator(_fleet_tenants(), port=port)


# ------------------------------------------------------------------ generate_fleet


def test_generate_fleet_is_deterministic() -> None:
    first = generate_fleet(12, seed=5, hosts=("127.0.0.1", "127.0.0.2"))
    assert first == generate_fleet(12, seed=5, hosts=("127.0.0.1", "127.0.0.2"))
    other = generate_fleet(12, seed=6, hosts=("127.0.0.1", "127.0.0.2"))
    assert [t.api_key for t in first] != [t.api_key for t in other]
    assert [t.host for t in first] == ["127.0.0.1", "127.0.0.2"] * 6


def test_generate_fleet_shape_and_size_spread() -> None:
    fleet = generate_fleet(1000, seed=3, hosts=("127.0.0.1", "127.0.0.2", "127.0.0.3"))
    sizes = [len(t.users) for t in fleet]
    median = statistics.median(sizes)
    assert 150_000 <= sum(sizes) <= 250_000
    assert max(sizes) > 10 * median
    assert 2 <= sum(size > 2000 for size in sizes) <= 30
    assert sum(size < 50 for size in sizes) >= 300
    assert sum(size <= 1 for size in sizes) >= 3
    ids = [t.tenant_id for t in fleet]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"t[0-9]{4}-[a-z0-9-]+", i) and len(i) <= 64 for i in ids)
    assert ids[0].startswith("t0001-")
    assert ids[-1].startswith("t1000-")
    assert all(t.admin_email == f"admin@{t.tenant_id}.example" for t in fleet)
    keys = [t.api_key for t in fleet]
    assert len(set(keys)) == len(keys)
    assert all(str(uuid.UUID(key)) == key for key in keys)
    assert [t.host for t in fleet[:4]] == ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.1"]
    statuses = [t.served_counters()["status"] for t in fleet]
    assert 60 <= statuses.count("trial") <= 140
    assert 5 <= statuses.count("expired") <= 60
    assert statuses.count("paid") == 1000 - statuses.count("trial") - statuses.count("expired")
    big = max(fleet, key=lambda t: len(t.users))
    assert all(str(u["userPrincipalName"]).endswith(f"@{big.tenant_id}.example") for u in big.users)
    # Users differ from tenant to tenant.
    first_ids = [t.users[0]["msId"] for t in fleet if t.users]
    assert len(set(first_ids)) == len(first_ids)


# ------------------------------------------------------------------ fleet command line


def _fleet_files(directory: Path) -> dict[str, str]:
    return {
        str(path.relative_to(directory)): path.read_text("utf-8")
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def test_cli_write_fleet(tmp_path: Path) -> None:
    hosts = ("127.0.0.1", "127.0.0.2")
    argv = ["--tenants", "6", "--seed", "4", "--hosts", ",".join(hosts), "--port", "9123"]
    assert cli_main([*argv, "--write-fleet", str(tmp_path)]) == 0
    tenants = generate_fleet(6, seed=4, hosts=hosts)
    config = json.loads((tmp_path / "tap-config.json").read_text("utf-8"))
    assert config == {
        "tenants": [
            {
                "tenant_id": t.tenant_id,
                "admin_email": t.admin_email,
                "base_url": f"http://{t.host}:9123",
            }
            for t in tenants
        ],
        "page_size": 1000,
    }
    env_lines = (tmp_path / "tenant-keys.env").read_text("utf-8").splitlines()
    assert len(env_lines) == 1
    name, _, value = env_lines[0].partition("=")
    assert name == "TAP_SPANNING_TENANT_API_KEYS"
    assert value.startswith("'")
    assert value.endswith("'")
    assert json.loads(value[1:-1]) == {t.tenant_id: t.api_key for t in tenants}
    assert (tmp_path / "tenant-keys.env").stat().st_mode & 0o077 == 0
    # The keys are in the .env file and nowhere else.
    for relative, text in _fleet_files(tmp_path).items():
        if relative != "tenant-keys.env":
            assert not any(t.api_key in text for t in tenants), relative

    def jsonl(path: Path) -> list[dict[str, object]]:
        return [json.loads(line) for line in path.read_text("utf-8").splitlines()]

    expected = tmp_path / "expected"
    assert jsonl(expected / "roles.jsonl") == expected_output([])["roles"]
    for tenant in tenants:
        folder = expected / tenant.tenant_id
        output = expected_output(tenant.users, tenant.tenant_id)
        assert jsonl(folder / "users.jsonl") == output["users"]
        assert jsonl(folder / "role_memberships.jsonl") == output["role_memberships"]
        (record,) = jsonl(folder / "tenants.jsonl")
        assert record == expected_tenant_record(
            tenant.tenant_id, tenant.served_counters(), f"http://{tenant.host}:9123"
        )
        assert record["users"] == len(tenant.users)
    assert sorted(p.name for p in expected.iterdir()) == sorted(
        ["roles.jsonl", *(t.tenant_id for t in tenants)]
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tenants", "3", "--users", "10"], "--users"),
        (["--tenants", "3", "--api-key", "k"], "--api-key"),
        (["--tenants", "3", "--hosts", "127.0.0.1,10.1.1.1"], "loopback"),
        (["--tenants", "3", "--tenant-fault", "nobody:1=500"], "nobody"),
        (["--tenants", "3", "--tenant-latency-ms", "nobody=5"], "nobody"),
        (["--tenants", "3", "--port", "0", "--write-fleet", "x"], "--port"),
        (["--write-fleet", "x"], "--tenants"),
        (["--tenant-fault", "a:1=500"], "--tenants"),
    ],
)
def test_cli_fleet_flag_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_profile_flag(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    assert cli_main(["--users", "25", "--profile", "realistic", "--write-users", str(path)]) == 0
    assert json.loads(path.read_text("utf-8")) == generate_users(25, 1, "realistic")


