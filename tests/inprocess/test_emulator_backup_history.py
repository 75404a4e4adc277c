"""The backup history behind the emulator's status: every shape across a fleet, the expected
records of the backup streams against what is served, and today moving, days settling and
options changed while serving.

Everything is read over real HTTP and parsed by hand (tests/backup_reading.py).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest
import requests
from spanning_emulator import (
    DATE_FORMATS,
    USER_BACKUP_TYPES,
    EmulatedTenant,
    FleetEmulator,
    SpanningEmulator,
    expected_backup_summaries,
    expected_user_backups,
    generate_fleet,
)

from tests.backup_reading import (
    COUNTS,
    SUMMARY,
    TODAY,
    USERS,
    WEEK,
    WINDOW,
    as_record,
    backed_up,
    count,
    crawl,
    days_of,
    ms,
    read_date,
    summary,
    tenant_auth,
)

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
