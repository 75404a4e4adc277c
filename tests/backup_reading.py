"""The emulator's backup status read by hand: its week, the served date formats and counts,
and the summary and users pages fetched over real HTTP.

Everything is parsed here without the emulator's help, so that its expected_* functions
are checked against what it serves.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import requests
from spanning_emulator import (
    EmulatedTenant,
    generate_users,
)

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
