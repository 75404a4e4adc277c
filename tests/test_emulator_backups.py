"""The emulator's backup status: the summary endpoint, backupSummary on users, the
history behind them, and the expected records of the backup streams.

Everything is read over real HTTP and parsed here by hand (the date formats too), so
the emulator's expected_* functions are checked against what it serves.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from spanning_emulator import (
    BACKUP_TYPES,
    DATE_FORMATS,
    DEFAULT_ADMIN_EMAIL,
    DEFAULT_API_KEY,
    USER_BACKUP_TYPES,
    EmulatedTenant,
    FaultPlan,
    FleetEmulator,
    SpanningEmulator,
    expected_backup_summaries,
    expected_user_backups,
    generate_fleet,
    generate_users,
    sort_key,
)
from spanning_emulator.cli import main as cli_main

AUTH = (DEFAULT_ADMIN_EMAIL, DEFAULT_API_KEY)
TODAY = dt.date(2026, 11, 27)
WEEK = [TODAY - dt.timedelta(days=back) for back in range(6, -1, -1)]
USERS = generate_users(140, seed=11, profile="realistic")
TORTURE = generate_users(90, seed=5)
SUMMARY = "/external/tenant/backups/summary"
DAY_MS = 86_400_000
COUNTS = ("total", "successful", "partial", "failed")
DATA = {
    "created": "items_created",
    "deleted": "items_deleted",
    "failed": "items_failed",
    "total": "items_total",
    "attempts": "attempts",
}


def ms(day: dt.date, hour: int = 0) -> int:
    return (day - dt.date(1970, 1, 1)).days * DAY_MS + hour * 3_600_000


WINDOW = f"start={ms(WEEK[0])}&end={ms(TODAY, 24) - 1}"


# ------------------------------------------------------------------ a hand-written reader


_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(Z|([+-])(\d{2}):(\d{2}))"
)


@functools.lru_cache(maxsize=4096)  # a tenant's items share a handful of dates
def read_date(value: object) -> tuple[str, dt.date]:
    """(format, UTC date) of a served `date`, read without the emulator's help."""
    epoch = dt.date(1970, 1, 1)
    if isinstance(value, int) and not isinstance(value, bool):
        return "epoch_ms", epoch + dt.timedelta(days=value // DAY_MS)
    assert isinstance(value, str), value
    if re.fullmatch(r"-?\d{9,}", value):  # before 1970 too (a hostile tenant's day)
        return "epoch_ms_text", epoch + dt.timedelta(days=int(value) // DAY_MS)
    if match := re.fullmatch(r"(\d{2})/(\d{2})/(\d{4})", value):
        month, day, year = map(int, match.groups())
        return "mdy", dt.date(year, month, day)
    if match := re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", value):
        year, month, day = map(int, match.groups())
        return "iso", dt.date(year, month, day)
    match = _DATETIME.fullmatch(value)
    assert match is not None, f"unreadable date {value!r}"
    year, month, day, hour, minute, second = map(int, match.groups()[:6])
    local = dt.datetime(year, month, day, hour, minute, second)
    if match.group(7) != "Z":
        sign = 1 if match.group(8) == "+" else -1
        local -= sign * dt.timedelta(hours=int(match.group(9)), minutes=int(match.group(10)))
    return "datetime", local.date()


def count(value: object) -> int:
    """A served count: an integer, or its text."""
    if isinstance(value, str):
        assert re.fullmatch(r"\d+", value), value
        return int(value)
    assert isinstance(value, int)
    assert not isinstance(value, bool)
    return value


def as_record(item: Mapping[str, Any]) -> dict[str, object]:
    """A served item as the tap's record would hold it (without tenant and user)."""
    _, day = read_date(item["date"])
    backup = item["backup"]
    data = backup.get("data") or {}
    record: dict[str, object] = {"date": day.isoformat(), "type": item["type"]}
    record.update((name, count(backup[name])) for name in COUNTS)
    for name, field in DATA.items():
        assert name not in data or type(data[name]) is int
        record[field] = data.get(name)
    return record


# ------------------------------------------------------------------ helpers


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        http.auth = AUTH
        yield http


def summary(http: requests.Session, base_url: str, query: str = "") -> list[dict[str, Any]]:
    response = http.get(f"{base_url}{SUMMARY}{'?' + query if query else ''}", timeout=5)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    items = response.json()
    assert isinstance(items, list)
    return items


def crawl(http: requests.Session, url: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Follow nextLink to the end: (users, links followed)."""
    users: list[dict[str, Any]] = []
    links: list[str] = []
    base = f"{urlsplit(url).scheme}://{urlsplit(url).netloc}"
    while url:
        response = http.get(url, timeout=5)
        assert response.status_code == 200, response.text
        page = response.json()
        users += page["users"]
        url = page.get("nextLink") or ""
        if url:
            links.append(url)
            url = url if url.startswith("http") else base + url
    return users, links


def days_of(items: Sequence[Mapping[str, Any]]) -> list[dt.date]:
    return sorted({read_date(item["date"])[1] for item in items})


def backed_up(user: Mapping[str, object]) -> bool:
    return user.get("assigned") is True and user.get("isArchive") is not True


def tenant_auth(tenant: EmulatedTenant) -> tuple[str, str]:
    return tenant.admin_email, tenant.api_key


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


# ------------------------------------------------------------------ a fleet: every shape


@pytest.fixture(scope="module")
def fleet_tenants() -> list[EmulatedTenant]:
    return generate_fleet(12, seed=1, today=TODAY)


@pytest.fixture(scope="module")
def fleet_served(
    fleet_tenants: list[EmulatedTenant],
) -> dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """tenant_id -> (summary items of the week, users with status=true for the week)."""
    served: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
    with FleetEmulator(fleet_tenants) as emu:
        for tenant in fleet_tenants:
            with requests.Session() as http:
                http.auth = tenant_auth(tenant)
                base = emu.base_url(tenant.tenant_id)
                items = summary(http, base, WINDOW)
                users, _ = crawl(http, f"{base}/external/users?size=1000&status=true&{WINDOW}")
            served[tenant.tenant_id] = (items, users)
        log = emu.requests
    for tenant in fleet_tenants:
        mine = [r for r in log if r.tenant_id == tenant.tenant_id]
        assert [r.number for r in mine] == list(range(1, len(mine) + 1))
        assert mine[0].path.startswith(SUMMARY + "?")
    return served


def test_every_date_format_appears_across_the_fleet(
    fleet_tenants: list[EmulatedTenant],
    fleet_served: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]],
) -> None:
    formats: set[str] = set()
    text_counts = text_ids = 0
    for tenant in fleet_tenants:
        items, users = fleet_served[tenant.tenant_id]
        user_items = [i for u in users for i in u.get("backupSummary") or []]
        seen = {read_date(i["date"])[0] for i in [*items, *user_items]}
        assert seen == {tenant.date_format}  # one format per tenant
        formats |= seen
        assert days_of(items) == WEEK
        assert days_of(user_items) == (WEEK if user_items else [])
        text_counts += any(isinstance(i["backup"]["total"], str) for i in items)
        text_ids += any(isinstance(i["userId"], str) for i in user_items)
    assert formats == set(DATE_FORMATS)
    assert 0 < text_counts < len(fleet_tenants)
    assert 0 < text_ids < len(fleet_tenants)


def test_tenant_summary_is_the_sum_over_its_users(
    fleet_tenants: list[EmulatedTenant],
    fleet_served: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]],
) -> None:
    chronic = drive_partial = 0
    for tenant in fleet_tenants:
        items, users = fleet_served[tenant.tenant_id]
        sums: dict[tuple[dt.date, str], Counter[str]] = {}
        for user in users:
            failed_types: dict[str, int] = Counter()
            for item in user.get("backupSummary") or []:
                assert item["type"] in USER_BACKUP_TYPES
                backup = item["backup"]
                key = (read_date(item["date"])[1], item["type"])
                totals = sums.setdefault(key, Counter())
                totals.update({name: count(backup[name]) for name in COUNTS})
                failed_types[item["type"]] += count(backup["failed"])
                drive_partial += item["type"] == "DRIVE" and count(backup["partial"]) == 1
            chronic += any(failed == len(WEEK) for failed in failed_types.values())
        for item in items:
            record = as_record(item)
            key = (read_date(item["date"])[1], item["type"])
            if item["type"] == "SPSITE":
                assert key not in sums
                continue
            got = {name: record[name] for name in COUNTS}
            assert got == {name: sums.get(key, Counter())[name] for name in COUNTS}, key
            assert record["total"] == sum(backed_up(u) for u in tenant.users)
    assert chronic >= len(fleet_tenants) // 2  # a few accounts fail one workload every day
    assert drive_partial > 10
    # Most accounts succeed most days.
    everything = [
        count(item["backup"]["successful"])
        for _, users in fleet_served.values()
        for user in users
        for item in user.get("backupSummary") or []
    ]
    assert sum(everything) > 0.9 * len(everything)


def test_expected_records_agree_with_what_is_served(
    fleet_tenants: list[EmulatedTenant],
    fleet_served: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]],
) -> None:
    for tenant in fleet_tenants:
        items, users = fleet_served[tenant.tenant_id]
        want = {"tenant_id": tenant.tenant_id}
        expected = tenant.expected_backups()  # the tenant's own today: generate_fleet's
        assert expected["backup_summaries"] == [{**want, **as_record(item)} for item in items]
        assert expected["user_backups"] == [
            {
                **want,
                "msId": user["msId"],
                "userPrincipalName": user["userPrincipalName"],
                "userId": str(item["userId"]),
                **as_record(item),
            }
            for user in users
            for item in user.get("backupSummary") or []
        ]
        records = [*expected["backup_summaries"], *expected["user_backups"]]
        assert all("sync_version" not in r for r in records)
        if tenant.user_count < 100:  # the functions behind it, on the smaller tenants
            assert expected == {
                "backup_summaries": expected_backup_summaries(
                    tenant.users, tenant.tenant_id, today=TODAY
                ),
                "user_backups": expected_user_backups(tenant.users, tenant.tenant_id, today=TODAY),
            }


def test_expected_records_of_fewer_days() -> None:
    whole = expected_backup_summaries(USERS, "x", today=TODAY)
    for days in (1, 3, 7):
        assert expected_backup_summaries(USERS, "x", days=days, today=TODAY) == whole[-5 * days :]
        by_user = expected_user_backups(USERS, "x", days=days, today=TODAY)
        assert {r["date"] for r in by_user} == {d.isoformat() for d in WEEK[7 - days :]}
    for days in (0, 8):
        with pytest.raises(ValueError, match="days"):
            expected_backup_summaries(USERS, days=days, today=TODAY)
    record = expected_user_backups(USERS, "x", today=TODAY)[0]
    assert list(record) == [
        "tenant_id", "msId", "userPrincipalName", "userId", "date", "type", "total",
        "successful", "partial", "failed", "items_created", "items_deleted", "items_failed",
        "items_total", "attempts",
    ]  # fmt: skip
    assert isinstance(record["userId"], str)


# ------------------------------------------------------------------ today, settling, broken


def test_moving_today_shifts_the_window_and_keeps_the_overlap(
    session: requests.Session,
) -> None:
    tomorrow = TODAY + dt.timedelta(days=1)
    wide = f"start=0&end={ms(TODAY, 24 * 30)}"
    with SpanningEmulator(USERS, today=TODAY, date_format="mdy") as emu:
        before = summary(session, emu.base_url, wide)
        users_before, _ = crawl(session, f"{emu.base_url}/external/users?status=true&{wide}")
        emu.today = tomorrow
        after = summary(session, emu.base_url, wide)
        users_after, _ = crawl(session, f"{emu.base_url}/external/users?status=true&{wide}")
    assert days_of(before) == WEEK
    assert days_of(after) == [*WEEK[1:], tomorrow]
    assert after[:30] == before[5:]
    for old, new in zip(users_before, users_after, strict=True):
        if old.get("backupSummary"):
            assert new["backupSummary"][:24] == old["backupSummary"][4:]
    assert (
        expected_backup_summaries(USERS, today=tomorrow)[:30]
        == (expected_backup_summaries(USERS, today=TODAY)[5:])
    )
    # The fleet's today, and one tenant's own.
    tenants = generate_fleet(2, seed=3)
    with FleetEmulator(tenants, today=TODAY) as emu:
        first, second = tenants
        emu.set_today(tomorrow, second.tenant_id)
        for tenant, last in ((first, TODAY), (second, tomorrow)):
            with requests.Session() as http:
                http.auth = tenant_auth(tenant)
                items = summary(http, emu.base_url(tenant.tenant_id))
            assert days_of(items) == [last]
        emu.set_today(tomorrow)
        with requests.Session() as http:
            http.auth = tenant_auth(first)
            assert days_of(summary(http, emu.base_url(first.tenant_id))) == [tomorrow]


def test_settle_day_changes_that_day_only(session: requests.Session) -> None:
    settled = WEEK[4]
    with SpanningEmulator(USERS, today=TODAY) as emu:
        before = summary(session, emu.base_url, WINDOW)
        emu.settle_day = settled
        after = summary(session, emu.base_url, WINDOW)
    changed = {read_date(a["date"])[1] for a, b in zip(after, before, strict=True) if a != b}
    assert changed == {settled}
    expected = expected_backup_summaries(USERS, today=TODAY, settle_day=settled)
    assert expected == [{"tenant_id": "default", **as_record(item)} for item in after]


def test_a_broken_date_format_and_options_changed_while_serving(
    session: requests.Session,
) -> None:
    tenant = EmulatedTenant("t-broken", USERS, "a@broken.example", "k")
    with FleetEmulator([tenant], today=TODAY) as emu:
        session.auth = tenant_auth(tenant)
        base = emu.base_url("t-broken")
        assert {i["date"] for i in summary(session, base)} == {TODAY.isoformat()}
        emu.set_backup_options("t-broken", date_format="broken", counts_as_text=True)
        items = summary(session, base, WINDOW)
        users, _ = crawl(session, f"{base}/external/users?status=true&{WINDOW}")
        with pytest.raises(TypeError, match="users"):
            emu.set_backup_options("t-broken", users=[])
        with pytest.raises(ValueError, match="date_format"):
            emu.set_backup_options("t-broken", date_format="dmy")
    assert {i["date"] for i in items} == {"someday"}
    assert all(isinstance(i["backup"]["total"], str) for i in items)
    assert {i["date"] for u in users for i in u.get("backupSummary") or []} == {"someday"}
    with pytest.raises(ValueError, match="date_format"):
        FleetEmulator([EmulatedTenant("t", USERS, "a@t.example", "k", date_format="dmy")])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="date_format"):
        SpanningEmulator(USERS, date_format="someday")  # type: ignore[arg-type]


def test_history_does_not_depend_on_the_other_users() -> None:
    """A user's days are its own: removing other users changes only the sums."""
    whole = expected_user_backups(USERS, "x", today=TODAY)
    half = USERS[::2]
    kept = {u["msId"] for u in half}
    assert expected_user_backups(half, "x", today=TODAY) == [r for r in whole if r["msId"] in kept]


# ------------------------------------------------------------------ command line


def _jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_cli_writes_the_backup_streams(tmp_path: Path) -> None:
    argv = ["--users", "40", "--seed", "2", "--today", TODAY.isoformat()]
    assert cli_main([*argv, "--write-expected", str(tmp_path / "one")]) == 0
    users = generate_users(40, seed=2)
    assert _jsonl(tmp_path / "one" / "backup_summaries.jsonl") == expected_backup_summaries(
        users, today=TODAY
    )
    assert _jsonl(tmp_path / "one" / "user_backups.jsonl") == expected_user_backups(
        users, today=TODAY
    )
    fleet_argv = ["--tenants", "3", "--port", "9123", "--today", TODAY.isoformat()]
    assert cli_main([*fleet_argv, "--write-fleet", str(tmp_path / "fleet")]) == 0
    for tenant in generate_fleet(3, today=TODAY):
        folder = tmp_path / "fleet" / "expected" / tenant.tenant_id
        expected = tenant.expected_backups()
        assert _jsonl(folder / "backup_summaries.jsonl") == expected["backup_summaries"]
        assert _jsonl(folder / "user_backups.jsonl") == expected["user_backups"]
        assert {r["date"] for r in expected["backup_summaries"]} == {d.isoformat() for d in WEEK}


def test_cli_backup_flag_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, message in (
        (["--tenants", "2", "--date-format", "mdy"], "--date-format"),
        (["--tenants", "2", "--counts-as-text"], "--counts-as-text"),
        (["--today", "27/11/2026"], "YYYY-MM-DD"),
        (["--date-format", "dmy"], "invalid choice"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            cli_main(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
