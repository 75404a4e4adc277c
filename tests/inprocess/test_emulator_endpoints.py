"""The emulator's endpoints of one tenant, from a plain HTTP client on loopback: the users
pages and their links, validation and errors, the tenant counters, one user, the request log.
"""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from spanning_emulator import (
    DEFAULT_ADMIN_EMAIL,
    DEFAULT_API_KEY,
    USER_BACKUP_TYPES,
    SpanningEmulator,
    generate_users,
    sort_key,
)

from tests.emulator_helpers import (
    TENANT,
    follow_next_links,
)


def _user(upn: str, ms_id: str, **fields: object) -> dict[str, object]:
    return {"userPrincipalName": upn, "msId": ms_id, "inActiveDirectory": True, **fields}


# ------------------------------------------------------------------ pagination


def test_pagination_covers_every_user_once_in_order(
    emulator: SpanningEmulator, session: requests.Session
) -> None:
    users, links = follow_next_links(
        session, f"{emulator.base_url}/external/users?size=50&status=false"
    )
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
        users, _ = follow_next_links(
            session, f"{emu.base_url}/external/users?size={size}&status=false"
        )
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
        users, links = follow_next_links(
            session, f"{emu.base_url}/external/users?size=1&status=false"
        )
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
        users, _ = follow_next_links(session, url)
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
    users, _ = follow_next_links(session, f"{emulator.base_url}/external/users?size=1000")
    assert len(users) == 3
    assert [r.number for r in emulator.requests] == [1]


def test_page_hook_replaces_the_page(emulator: SpanningEmulator, session: requests.Session) -> None:
    def hostile(number: int, page: dict[str, object]) -> dict[str, object]:
        return {"users": [{"unexpected": number}], "nextLink": None, "seen": len(page["users"])}  # type: ignore[arg-type]

    emulator.page_hook = hostile
    page = session.get(f"{emulator.base_url}/external/users?size=7&status=false", timeout=5).json()
    assert page == {"users": [{"unexpected": 1}], "nextLink": None, "seen": 7}


def test_http_absolute_link_style_is_gone() -> None:
    with pytest.raises(ValueError, match="link_style"):
        SpanningEmulator([], link_style="http-absolute")  # type: ignore[arg-type]


def test_refuses_non_loopback_host() -> None:
    with pytest.raises(ValueError, match="loopback"):
        SpanningEmulator([], host="0.0.0.0")
