"""Users Spanning does not protect, and the other changes a tenant goes through between
nights: a user never backed up, a user whose backups stop on a day, license counters
overridden, tags changed, a key revoked. Read over real HTTP, parsed by hand
(tests/backup_reading.py): the users' items and the tenant's summaries agree, and both are
what EmulatedTenant.expected_backups says.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import requests
from spanning_emulator import USER_BACKUP_TYPES, EmulatedTenant, FleetEmulator, tenant_summary

from tests.backup_reading import (
    COUNTS,
    TODAY,
    USERS,
    WEEK,
    WINDOW,
    as_record,
    backed_up,
    count,
    crawl,
    read_date,
    summary,
    tenant_auth,
)

STOP_DAY = WEEK[3]
BACKED_UP = [user for user in USERS if backed_up(user)]
NEVER = str(BACKED_UP[2]["msId"])
STOPPED = str(BACKED_UP[5]["msId"])


def protected_tenant(**options: Any) -> EmulatedTenant:
    return EmulatedTenant(
        "protected", USERS, "admin@protected.example", "key-protected", today=TODAY, **options
    )


def neighbour() -> EmulatedTenant:
    return EmulatedTenant("other", USERS[:10], "admin@other.example", "key-other", today=TODAY)


def served(fleet: FleetEmulator, tenant_id: str) -> tuple[list[dict[str, Any]], list[Any]]:
    """(users with their items of the week, the tenant's summary items of the week)."""
    tenant = fleet.tenant(tenant_id)
    with requests.Session() as http:
        http.auth = tenant_auth(tenant)
        base = fleet.base_url(tenant_id)
        users, _ = crawl(http, f"{base}/external/users?size=50&status=true&{WINDOW}")
        return users, summary(http, base, WINDOW)


def items_by_user(users: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    return {str(user["msId"]): list(user.get("backupSummary") or []) for user in users}


def summed_user_items(users: Sequence[Mapping[str, Any]]) -> Counter[tuple[str, str, str]]:
    """successful/partial/failed per (day, workload), summed over every user's items."""
    sums: Counter[tuple[str, str, str]] = Counter()
    for items in items_by_user(users).values():
        for item in items:
            day = read_date(item["date"])[1].isoformat()
            for name in COUNTS[1:]:
                sums[(day, str(item["type"]), name)] += count(item["backup"][name])
    return sums


def summary_counts(items: Sequence[Mapping[str, Any]]) -> Counter[tuple[str, str, str]]:
    sums: Counter[tuple[str, str, str]] = Counter()
    for item in items:
        if item["type"] in USER_BACKUP_TYPES:
            day = read_date(item["date"])[1].isoformat()
            for name in COUNTS[1:]:
                sums[(day, str(item["type"]), name)] += count(item["backup"][name])
    return sums


def test_a_user_never_backed_up_and_one_stopped_have_no_items_and_the_summaries_agree() -> None:
    tenant = protected_tenant(never_backed_up=frozenset({NEVER}), stopped_from={STOPPED: STOP_DAY})
    with FleetEmulator([tenant, neighbour()]) as fleet:
        users, summary_items = served(fleet, "protected")
    items = items_by_user(users)
    assert items[NEVER] == []
    stopped_days = {read_date(item["date"])[1] for item in items[STOPPED]}
    assert stopped_days == set(WEEK[:3])  # the days before STOP_DAY, each kept
    assert len(items[STOPPED]) == 3 * len(USER_BACKUP_TYPES)
    # Every other backed-up user keeps the whole week.
    for user in BACKED_UP:
        if str(user["msId"]) not in (NEVER, STOPPED):
            assert len(items[str(user["msId"])]) == len(WEEK) * len(USER_BACKUP_TYPES)
    assert summary_counts(summary_items) == summed_user_items(users)
    # Both endpoints are what the tenant's ground truth says.
    expected = tenant.expected_backups()
    assert [as_record(item) for item in summary_items] == [
        {k: v for k, v in r.items() if k != "tenant_id"} for r in expected["backup_summaries"]
    ]
    served_records = Counter(
        (str(user["msId"]), *sorted(as_record(item).items()))
        for user in users
        for item in user.get("backupSummary") or []
    )
    wanted = Counter(
        (
            str(r["msId"]),
            *sorted(
                (k, v)
                for k, v in r.items()
                if k not in ("tenant_id", "msId", "userPrincipalName", "userId")
            ),
        )
        for r in expected["user_backups"]
    )
    assert served_records == wanted
    assert not any(r["msId"] == NEVER for r in expected["user_backups"])
    assert {r["date"] for r in expected["user_backups"] if r["msId"] == STOPPED} == {
        day.isoformat() for day in WEEK[:3]
    }


def test_the_unprotected_users_change_the_summaries_and_nothing_else() -> None:
    """The same tenant without the options: the users' items and summaries of every day
    before STOP_DAY differ only by the user never backed up."""
    plain = protected_tenant().expected_backups()
    options = protected_tenant(
        never_backed_up=frozenset({NEVER}), stopped_from={STOPPED: STOP_DAY}
    ).expected_backups()
    kept = [r for r in plain["user_backups"] if r["msId"] != NEVER]
    kept = [r for r in kept if r["msId"] != STOPPED or str(r["date"]) < STOP_DAY.isoformat()]
    assert options["user_backups"] == kept
    assert options["backup_summaries"] != plain["backup_summaries"]


def test_options_changed_while_serving() -> None:
    """set_backup_options, set_counters, set_users and set_api_key change what is served
    from the next request; the neighbour is untouched."""
    with FleetEmulator([protected_tenant(), neighbour()]) as fleet:
        users, before = served(fleet, "protected")
        assert items_by_user(users)[NEVER]
        fleet.set_backup_options("protected", never_backed_up=frozenset({NEVER}))
        assert fleet.tenant("protected").never_backed_up == frozenset({NEVER})
        users, after = served(fleet, "protected")
        assert items_by_user(users)[NEVER] == []
        assert summary_counts(after) == summed_user_items(users) != summary_counts(before)
        fleet.set_backup_options("protected", stopped_from={STOPPED: TODAY})
        users, _ = served(fleet, "protected")
        assert TODAY not in {read_date(i["date"])[1] for i in items_by_user(users)[STOPPED]}

        # Counters: overridden, then back to what the users add up to.
        tenant = fleet.tenant("protected")
        http = requests.Session()
        http.auth = tenant_auth(tenant)
        url = fleet.base_url("protected") + "/external/tenant"
        counters = {**tenant_summary(USERS), "assignedStandard": 999, "licenses": 5}
        fleet.set_counters("protected", counters)
        assert http.get(url, timeout=5).json() == counters
        fleet.set_counters("protected", None)
        assert http.get(url, timeout=5).json() == tenant_summary(USERS)

        # Tags: a user given Global Admin is served so; the options stay.
        changed = [dict(user) for user in USERS]
        changed[7]["tags"] = ["User", "Global Admin"]
        fleet.set_users("protected", changed)
        by_id = {
            u["msId"]: u for u in crawl(http, fleet.base_url("protected") + "/external/users")[0]
        }
        assert by_id[changed[7]["msId"]]["tags"] == ["User", "Global Admin"]
        assert fleet.tenant("protected").never_backed_up == frozenset({NEVER})

        # A key revoked: the old one gets 401, the new one is served.
        fleet.set_api_key("protected", "key-protected-2")
        assert http.get(url, timeout=5).status_code == 401
        http.auth = ("admin@protected.example", "key-protected-2")
        assert http.get(url, timeout=5).status_code == 200
        other = requests.get(
            fleet.base_url("other") + "/external/tenant", auth=tenant_auth(neighbour()), timeout=5
        )
        assert other.status_code == 200
        assert other.json() == tenant_summary(USERS[:10])
        http.close()


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="never_backed_up"):
        FleetEmulator([protected_tenant(never_backed_up={NEVER})]).stop()
    with pytest.raises(ValueError, match="stopped_from"):
        FleetEmulator([protected_tenant(stopped_from={STOPPED: "2026-11-27"})]).stop()
    # A second tenant of the same admin: a key of its own is fine, its neighbour's is not.
    twin = EmulatedTenant("twin", USERS[:5], "admin@protected.example", "key-twin", today=TODAY)
    with FleetEmulator([protected_tenant(), twin]) as fleet:
        fleet.set_api_key("protected", "key-protected-3")
        with pytest.raises(ValueError, match="same admin email and key"):
            fleet.set_api_key("protected", "key-twin")
        assert fleet.tenant("protected").api_key == "key-protected-3"
        with pytest.raises(TypeError, match="not backup options"):
            fleet.set_backup_options("protected", counters={})
        with pytest.raises(ValueError, match="stopped_from"):
            fleet.set_backup_options("protected", stopped_from={STOPPED: "today"})
