"""The emulator's backup status over HTTP: the summary endpoint, and backupSummary on the
users pages asked with status=true.

Everything is read over real HTTP and parsed by hand (tests/backup_reading.py).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from spanning_emulator import (
    BACKUP_TYPES,
    USER_BACKUP_TYPES,
    FaultPlan,
    SpanningEmulator,
    sort_key,
)

from tests.backup_reading import (
    COUNTS,
    DATA,
    SUMMARY,
    TODAY,
    TORTURE,
    USERS,
    WEEK,
    WINDOW,
    backed_up,
    count,
    crawl,
    ms,
    read_date,
    summary,
)

# ------------------------------------------------------------------ the summary endpoint


def test_summary_serves_the_kept_days_of_the_window(session: requests.Session) -> None:
    with SpanningEmulator(USERS, today=TODAY) as emu:
        week = summary(session, emu.base_url, WINDOW)
        assert len(week) == 7 * 5
        assert [(read_date(i["date"])[1], i["type"]) for i in week] == [
            (day, kind) for day in WEEK for kind in BACKUP_TYPES
        ]
        for item in week:
            assert set(item) == {"date", "type", "backup"}
            backup = item["backup"]
            assert set(COUNTS) <= set(backup) <= {*COUNTS, "data"}
            assert backup["total"] == backup["successful"] + backup["partial"] + backup["failed"]
            if backup.get("data") is not None:
                assert set(backup["data"]) <= set(DATA)
                assert all(type(v) is int for v in backup["data"].values())
        # Without start/end: today only.
        today = summary(session, emu.base_url)
        assert [(i["date"], i["type"]) for i in today] == [
            (TODAY.isoformat(), kind) for kind in BACKUP_TYPES
        ]
        assert today == week[-5:]
        # Days before the kept week are gone; a window can pick days; a future one is empty.
        assert summary(session, emu.base_url, f"start=0&end={ms(TODAY, 30)}") == week
        one_day = summary(session, emu.base_url, f"start={ms(WEEK[2], 3)}&end={ms(WEEK[2], 4)}")
        assert one_day == week[10:15]
        assert summary(session, emu.base_url, f"start={ms(WEEK[5])}") == week[25:]
        assert summary(session, emu.base_url, f"end={ms(WEEK[1], 1)}") == week[:10]
        assert summary(session, emu.base_url, f"start={ms(TODAY, 48)}&end={ms(TODAY, 72)}") == []
        assert summary(session, emu.base_url, f"start={ms(TODAY)}&end={ms(WEEK[0])}") == []
        # Every shape of backup.data shows up in a week: full, null, absent, partial.
        shapes = Counter(
            "absent"
            if "data" not in i["backup"]
            else "null"
            if i["backup"]["data"] is None
            else "full"
            if len(i["backup"]["data"]) == len(DATA)
            else "partial"
            for i in week
        )
        assert set(shapes) == {"full", "null", "absent", "partial"}
        assert shapes["full"] > len(week) / 2


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("start=abc", "querystring/start must be integer"),
        ("end=1.5", "querystring/end must be integer"),
        ("start=2026-11-27", "querystring/start must be integer"),
        ("start=", "querystring/start must be integer"),
        ("start=1&start=2", "querystring/start must be integer"),
        ("start=1&end=" + "9" * 40, "querystring/end must be integer"),
    ],
)
def test_summary_validates_start_and_end(
    query: str, message: str, session: requests.Session
) -> None:
    body = {"statusCode": 400, "code": "FST_ERR_VALIDATION", "error": "Bad Request"}
    with SpanningEmulator(USERS, today=TODAY) as emu:
        for path in (SUMMARY, "/external/users"):
            for extra in ("", "&status=true", "&status=false"):
                if path == SUMMARY and extra:
                    continue
                response = session.get(f"{emu.base_url}{path}?{query}{extra}", timeout=5)
                assert response.status_code == 400
                assert response.json() == {**body, "message": message}


def test_summary_auth_routes_faults_and_request_log(session: requests.Session) -> None:
    plan = FaultPlan(at={2: "503"})
    with SpanningEmulator(USERS, today=TODAY, faults=plan) as emu:
        refused = requests.get(emu.base_url + SUMMARY, auth=("a@b.example", "nope"), timeout=5)
        assert (refused.status_code, refused.json()) == (
            401,
            {"code": "Unauthorized", "message": ""},
        )
        assert session.get(emu.base_url + SUMMARY, timeout=5).status_code == 503
        assert session.get(emu.base_url + SUMMARY, timeout=5).status_code == 200
        for path in (SUMMARY + "/", "/external/tenant/backups", "/external/backups/summary"):
            response = session.get(emu.base_url + path, timeout=5)
            assert (response.status_code, response.text) == (404, f"Cannot GET {path}")
        log = emu.requests
        assert [(r.number, r.status, r.fault) for r in log[:3]] == [
            (1, 401, None),
            (2, 503, "503"),
            (3, 200, None),
        ]
        assert log[2].path == SUMMARY
        assert log[2].tenant_id == "default"


# ------------------------------------------------------------------ users with status=true


def _strip(user: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in user.items() if name != "backupSummary"}


def _query(link: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(link).query, keep_blank_values=True)


@pytest.mark.parametrize("link_style", ["absolute", "relative"])
def test_status_true_pages_like_status_false_and_carries_the_window(
    link_style: str, session: requests.Session
) -> None:
    with SpanningEmulator(TORTURE, today=TODAY, link_style=link_style) as emu:  # type: ignore[arg-type]
        base = f"{emu.base_url}/external/users?size=7"
        plain, plain_links = crawl(session, f"{base}&status=false")
        rich, rich_links = crawl(session, f"{base}&status=true&{WINDOW}")
        emu.clear_requests()
        assert len(rich_links) == len(plain_links) == -(-len(TORTURE) // 7) - 1
        assert [_strip(u) for u in rich] == plain == sorted(TORTURE, key=sort_key)
        window = dict(_query("?" + WINDOW))
        for plain_link, rich_link in zip(plain_links, rich_links, strict=True):
            assert urlsplit(plain_link).path == urlsplit(rich_link).path
            got = _query(rich_link)
            assert dict(got)["status"] == "true"
            assert {name: dict(got)[name] for name in ("start", "end")} == window
            carried = [(n, "false" if n == "status" else v) for n, v in got if n not in window]
            assert carried == _query(plain_link)
    absent_key = empty = 0
    for user in rich:
        items = user.get("backupSummary")
        if not backed_up(user):
            assert items in (None, [])
            absent_key += items is None
            empty += items == []
            continue
        assert items is not None
        assert [(read_date(i["date"])[1], i["type"]) for i in items] == [
            (day, kind) for day in WEEK for kind in USER_BACKUP_TYPES
        ]
        for item in items:
            assert set(item) == {"userId", "date", "type", "backup"}
            assert item["userId"] == items[0]["userId"]
            assert item["userId"] != user["msId"]
            assert count(item["backup"]["total"]) == 1
    assert absent_key
    assert empty  # both spellings of "no backups" show up


def test_status_false_and_absent_are_as_before(session: requests.Session) -> None:
    with SpanningEmulator(TORTURE, today=TODAY) as emu:
        ordered = sorted(TORTURE, key=sort_key)
        body = session.get(f"{emu.base_url}/external/users?size=1000&status=false", timeout=5)
        compact = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False)
        assert body.content == f'{{"users":{compact},"nextLink":""}}'.encode()
        # status absent: the placeholder summary, start/end or not.
        for query in ("", f"&{WINDOW}"):
            users = session.get(f"{emu.base_url}/external/users?size=3{query}", timeout=5).json()
            assert [u["backupSummary"][0]["type"] for u in users["users"]] == ["mail"] * 3
    with SpanningEmulator(TORTURE, today=TODAY, legacy_summary=True) as emu:
        # status=true without start/end, with legacy_summary: the placeholder.
        page = session.get(f"{emu.base_url}/external/users?size=3&status=true", timeout=5)
        assert page.json()["users"][0]["backupSummary"][0]["type"] == "mail"
    with SpanningEmulator(TORTURE, today=TODAY) as emu:
        users, _ = crawl(session, f"{emu.base_url}/external/users?size=40&status=true")
        with_items = [u for u in users if u.get("backupSummary")]
        assert len(with_items) == sum(backed_up(u) for u in TORTURE)
        for user in with_items:
            assert [(i["date"], i["type"]) for i in user["backupSummary"]] == [
                (TODAY.isoformat(), kind) for kind in USER_BACKUP_TYPES
            ]


def test_status_true_with_the_in_active_directory_filter(session: requests.Session) -> None:
    with SpanningEmulator(USERS, today=TODAY) as emu:
        url = f"{emu.base_url}/external/users?size=9&status=true&inActiveDirectory=true&{WINDOW}"
        users, links = crawl(session, url)
        assert all("inActiveDirectory=true" in link and "start=" in link for link in links)
        wanted = [u for u in sorted(USERS, key=sort_key) if u["inActiveDirectory"] is True]
        assert [_strip(u) for u in users] == wanted
        assert all(len(u["backupSummary"]) == 28 for u in users if backed_up(u))
