"""The emulator's hostile tenants (spanning_emulator.hostile), from a plain HTTP client.

Each case is checked against the same tenant served honestly: one fleet serves a tenant,
the test reads every answer a tap reads (the counters, the week's summary, every users
page with and without status=true), turns the case on with `set_hostile`, reads them
again, and the difference must be exactly what the case is written to send, by hand
here. The honest tenant beside it must not change at all.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from spanning_emulator import (
    DATE_FORMATS,
    HOSTILE_CASE_NAMES,
    HOSTILE_CASES,
    DateFormat,
    EmulatedTenant,
    FleetEmulator,
    SpanningEmulator,
    generate_fleet,
    generate_users,
    reason_names,
    sort_key,
)
from spanning_emulator.cli import main as cli_main

from tests.backup_reading import TODAY, WINDOW, backed_up, crawl, read_date, tenant_auth

USERS = generate_users(140, seed=23, profile="realistic")
NEIGHBOUR_USERS = generate_users(60, seed=24, profile="realistic")
PAGE = 40  # 140 users: 4 pages
SUMMARY = "/external/tenant/backups/summary"
EMULATOR_ROOT = Path(__file__).resolve().parents[2] / "emulator"

Json = Any


@dataclass
class Answers:
    """Everything a tap reads of one tenant, and the day of every Date header."""

    counters: Json
    summary: Json
    pages: list[bytes]  # the users pages, status=true with the week, as sent
    users: list[dict[str, Any]]  # their users
    plain_users: list[dict[str, Any]]  # the users pages with status=false
    header_days: set[dt.date]


def header_day(response: requests.Response) -> dt.date:
    return email.utils.parsedate_to_datetime(response.headers["Date"]).date()


def read_all(fleet: FleetEmulator, tenant_id: str) -> Answers:
    tenant = fleet.tenant(tenant_id)
    base = fleet.base_url(tenant_id)
    days: set[dt.date] = set()
    with requests.Session() as http:
        http.auth = tenant_auth(tenant)
        counters = http.get(f"{base}/external/tenant", timeout=5)
        summary = http.get(f"{base}{SUMMARY}?{WINDOW}", timeout=5)
        days |= {header_day(counters), header_day(summary)}
        pages: list[bytes] = []
        url = f"{base}/external/users?size={PAGE}&status=true&{WINDOW}"
        while url:
            page = http.get(url, timeout=5)
            assert page.status_code == 200, page.text
            days.add(header_day(page))
            pages.append(page.content)
            url = page.json().get("nextLink") or ""
        plain, _ = crawl(http, f"{base}/external/users?size={PAGE}&status=false")
    users = [user for body in pages for user in json.loads(body)["users"]]
    return Answers(counters.json(), summary.json(), pages, users, plain, days)


def target_user(users: list[dict[str, Any]]) -> dict[str, Any]:
    """The one user the per-user cases break: the first with a license, in API order."""
    return next(user for user in sorted(users, key=sort_key) if backed_up(user))


@pytest.fixture
def fleet() -> Iterator[FleetEmulator]:
    tenants = [
        EmulatedTenant("honest", NEIGHBOUR_USERS, "admin@honest.example", "key-honest"),
        EmulatedTenant("hostile", USERS, "admin@hostile.example", "key-hostile"),
    ]
    with FleetEmulator(tenants, today=TODAY) as emulator:
        yield emulator


def test_the_cases_are_those_of_the_issue() -> None:
    assert HOSTILE_CASE_NAMES == (
        "count-1e20", "count-1e40", "count-1e300", "negative", "null-backup", "null-count",
        "successful-over-total", "duplicate-day", "day-2099", "day-1950", "lying-date",
        "licenses-1e40", "negative-counter", "huge-pages",
    )  # fmt: skip
    completing = {name for name, row in HOSTILE_CASES.items() if not row.fails}
    assert completing == {"lying-date", "huge-pages"}
    for name, row in HOSTILE_CASES.items():
        assert row.description, name
        assert bool(row.reason_names) == row.fails, name
    assert reason_names("duplicate-day", TODAY) == (TODAY.isoformat(),)
    assert reason_names("day-1950", TODAY) == ("1950-06-01",)
    assert reason_names("licenses-1e40", TODAY) == ("licenses",)


# ------------------------------------------------------------------ what each case changes


def with_backup(item: Json, **counts: object) -> Json:
    return {**item, "backup": {**item["backup"], **counts}}


def last_changed(change: Callable[[Json], Json]) -> Callable[[Json], Json]:
    """The items with the last one changed."""
    return lambda items: [*items[:-1], change(items[-1])]


# case -> the summary (or the target user's backupSummary) it sends, from the honest one.
SUMMARY_CASES: dict[str, Callable[[Json], Json]] = {
    "count-1e20": last_changed(lambda i: with_backup(i, total=10**20, successful=10**20)),
    "count-1e40": last_changed(lambda i: with_backup(i, total=10**40, successful=10**40)),
    "count-1e300": last_changed(lambda i: with_backup(i, total=1e300, successful=1e300)),
    "null-backup": last_changed(lambda i: {**i, "backup": None}),
    "successful-over-total": last_changed(
        lambda i: with_backup(i, successful=int(i["backup"]["total"]) + 1)
    ),
}
USER_CASES: dict[str, Callable[[Json], Json]] = {
    "negative": last_changed(lambda i: with_backup(i, failed=-1)),
    "null-count": last_changed(lambda i: with_backup(i, successful=None)),
    "duplicate-day": lambda items: [*items, items[-1]],
}
COUNTER_CASES: dict[str, Callable[[Json], Json]] = {
    "licenses-1e40": lambda counters: {**counters, "licenses": 10**40},
    "negative-counter": lambda counters: {**counters, "assigned": -3},
}
DATE_CASES = {
    "day-2099": (SUMMARY, dt.date(2099, 1, 1)),
    "day-1950": ("users", dt.date(1950, 6, 1)),
}


def spelling(index: int) -> tuple[DateFormat, bool]:
    """A date format and counts-as-text for the index-th case: every spelling gets a turn."""
    return DATE_FORMATS[index % len(DATE_FORMATS)], index % 2 == 1


CASES = [
    (name, *spelling(index))
    for index, name in enumerate(HOSTILE_CASE_NAMES)
    if name != "huge-pages"
] + [(name, date_format, False) for name in DATE_CASES for date_format in DATE_FORMATS]


@pytest.mark.parametrize(("case", "date_format", "as_text"), CASES)
def test_each_case_changes_exactly_what_it_says(
    fleet: FleetEmulator, case: str, date_format: DateFormat, as_text: bool
) -> None:
    fleet.set_backup_options("hostile", date_format=date_format, counts_as_text=as_text)
    honest = read_all(fleet, "hostile")
    neighbour = read_all(fleet, "honest")
    fleet.set_hostile("hostile", case)
    served = read_all(fleet, "hostile")
    assert fleet.tenant("hostile").fails is HOSTILE_CASES[case].fails
    assert read_all(fleet, "honest") == neighbour  # the tenant beside it is untouched
    assert neighbour.header_days == {TODAY}
    assert honest.header_days == {TODAY}
    assert served.plain_users == honest.plain_users  # status=false: no item to break
    assert len(served.pages) == len(honest.pages)

    counters, summary, users = honest.counters, honest.summary, honest.users
    if case in COUNTER_CASES:
        counters = COUNTER_CASES[case](counters)
    elif case in SUMMARY_CASES:
        summary = SUMMARY_CASES[case](summary)
    elif case in USER_CASES or DATE_CASES.get(case, ("",))[0] == "users":
        target = target_user(users)
        assert target["backupSummary"], "the target user has items in the week"
        items = target["backupSummary"]
        if case in USER_CASES:
            changed = USER_CASES[case](items)
        else:
            changed = [*items[:-1], {**items[-1], "date": served_date(served, target)}]
        users = [{**u, "backupSummary": changed} if u is target else u for u in users]
    elif case == "day-2099":
        summary = [*summary[:-1], {**summary[-1], "date": served.summary[-1]["date"]}]
    else:
        assert case == "lying-date", case
        assert served.header_days == {dt.date(1970, 1, 1)}
    if case != "lying-date":
        assert served.header_days == {TODAY}
    assert served.counters == counters
    assert served.summary == summary
    assert served.users == users
    if case in DATE_CASES:  # the bad day, spelled as the tenant spells its dates
        where, day = DATE_CASES[case]
        date = served.summary[-1]["date"] if where == SUMMARY else served_date(served, None)
        assert read_date(date) == (date_format, day)
    if case in ("count-1e20", "count-1e40"):  # exact JSON integers, not floats
        assert f'"total":{10 ** int(case[-2:])}' in json.dumps(
            served.summary, separators=(",", ":")
        )


def served_date(served: Answers, target: dict[str, Any] | None) -> Json:
    """The date of the target user's last item as served."""
    wanted = sort_key(target if target is not None else target_user(served.users))
    user = next(u for u in served.users if sort_key(u) == wanted)
    return user["backupSummary"][-1]["date"]


def test_count_1e300_is_sent_as_a_json_float(fleet: FleetEmulator) -> None:
    fleet.set_hostile("hostile", "count-1e300")
    tenant = fleet.tenant("hostile")
    url = f"{fleet.base_url('hostile')}{SUMMARY}?{WINDOW}"
    body = requests.get(url, auth=tenant_auth(tenant), timeout=5).text
    assert body.count('"total":1e+300') == 1
    assert body.count('"successful":1e+300') == 1


def test_set_hostile_back_to_none_serves_the_honest_tenant(fleet: FleetEmulator) -> None:
    honest = read_all(fleet, "hostile")
    for case in HOSTILE_CASE_NAMES:
        fleet.set_hostile("hostile", case)
        assert read_all(fleet, "hostile") != honest, case
    fleet.set_hostile("hostile", None)
    assert read_all(fleet, "hostile") == honest


def test_a_window_without_kept_days_has_nothing_to_break(fleet: FleetEmulator) -> None:
    tenant = fleet.tenant("hostile")
    far = "start=0&end=1000"
    url = f"{fleet.base_url('hostile')}{SUMMARY}?{far}"
    for case in ("null-backup", "day-2099"):
        fleet.set_hostile("hostile", case)
        assert requests.get(url, auth=tenant_auth(tenant), timeout=5).json() == []


# ------------------------------------------------------------------ huge pages


def test_huge_pages_are_just_under_16_mib_a_thousand_users() -> None:
    users = generate_users(1000, seed=25, profile="realistic")
    tenant = EmulatedTenant("big", users, "admin@big.example", "key-big", hostile="huge-pages")
    with FleetEmulator([tenant], today=TODAY) as fleet:
        base = fleet.base_url("big")
        with requests.Session() as http:
            http.auth = tenant_auth(tenant)
            for query in ("status=false", f"status=true&{WINDOW}"):
                page = http.get(f"{base}/external/users?size=1000&{query}", timeout=30)
                fleet.set_hostile("big", None)
                honest = http.get(f"{base}/external/users?size=1000&{query}", timeout=30)
                fleet.set_hostile("big", "huge-pages")
                assert 15 * 2**20 * 0.99 < len(page.content) < 16 * 2**20, len(page.content)
                served = page.json()
                notes = [user.pop("notes") for user in served["users"]]
                assert served == honest.json()  # the padding is all that changed
                assert all(note and set(note) == {"x"} for note in notes)
                small = http.get(f"{base}/external/users?size=10&{query}", timeout=5)
                assert len(small.content) < len(page.content) / 50
            other = http.get(f"{base}/external/tenant", timeout=5).json()
            assert other == tenant.served_counters()
            assert "notes" not in http.get(f"{base}{SUMMARY}?{WINDOW}", timeout=5).text


# ------------------------------------------------------------------ the Python API


def test_one_tenant_emulator_serves_a_case_too() -> None:
    with SpanningEmulator(USERS, today=TODAY, hostile="negative-counter") as emulator:
        auth = (emulator.admin_email, emulator.api_key)
        counters = requests.get(f"{emulator.base_url}/external/tenant", auth=auth, timeout=5)
        assert counters.json()["assigned"] == -3
    with SpanningEmulator(USERS, today=TODAY, hostile="lying-date") as emulator:
        auth = (emulator.admin_email, emulator.api_key)
        answer = requests.get(f"{emulator.base_url}/external/tenant", auth=auth, timeout=5)
        assert header_day(answer) == dt.date(1970, 1, 1)


def test_unknown_cases_and_impossible_ones_are_refused(fleet: FleetEmulator) -> None:
    unlicensed = [{**user, "assigned": False} for user in USERS]
    with pytest.raises(ValueError, match="unknown hostile case 'count-1e9'"):
        FleetEmulator([EmulatedTenant("a", USERS, "a@a.example", "k", hostile="count-1e9")])
    with pytest.raises(ValueError, match="tenant a: hostile case negative needs a user"):
        FleetEmulator([EmulatedTenant("a", unlicensed, "a@a.example", "k", hostile="negative")])
    with pytest.raises(ValueError, match="unknown hostile case"):
        fleet.set_hostile("hostile", "everything")
    with pytest.raises(ValueError, match="unknown hostile case"):
        SpanningEmulator(USERS, hostile="Negative")
    # A case about the summary or the counters needs nobody in particular.
    FleetEmulator([EmulatedTenant("a", [], "a@a.example", "k", hostile="count-1e20")]).stop()


# ------------------------------------------------------------------ the command line


def jsonl(path: Path) -> list[object]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_write_fleet_expects_nothing_of_a_tenant_a_tap_fails(tmp_path: Path) -> None:
    argv = ["--tenants", "6", "--seed", "3", "--port", "9123", "--today", TODAY.isoformat()]
    tenants = generate_fleet(6, seed=3, today=TODAY)
    licensed = [t.tenant_id for t in tenants if any(map(backed_up, t.users))]
    counting, duplicating, lying = licensed[:3]
    hostile = {counting: "count-1e20", duplicating: "duplicate-day", lying: "lying-date"}
    flags = [item for pair in hostile.items() for item in ("--tenant-hostile", "=".join(pair))]
    assert cli_main([*argv, "--write-fleet", str(tmp_path / "honest")]) == 0
    assert cli_main([*argv, *flags, "--write-fleet", str(tmp_path / "hostile")]) == 0

    honest_files = files(tmp_path / "honest")
    hostile_files = files(tmp_path / "hostile")
    document = json.loads(hostile_files.pop("expected/hostile.json"))
    assert set(document) == {"about", "tenants"}
    assert "fails" in document["about"]
    assert document["tenants"] == {
        counting: {
            "case": "count-1e20",
            "description": HOSTILE_CASES["count-1e20"].description,
            "fails": True,
            "reason_names": ["total", "successful"],
        },
        duplicating: {
            "case": "duplicate-day",
            "description": HOSTILE_CASES["duplicate-day"].description,
            "fails": True,
            "reason_names": [TODAY.isoformat()],
        },
        lying: {
            "case": "lying-date",
            "description": HOSTILE_CASES["lying-date"].description,
            "fails": False,
            "reason_names": [],
        },
    }
    # The failed tenants' files are there and empty; every other file is as without hostility.
    assert set(hostile_files) == set(honest_files)
    for path, text in hostile_files.items():
        if Path(path).parent.name in (counting, duplicating):
            assert text == "", path
            assert honest_files[path], path
        else:
            assert text == honest_files[path], path
    streams = {p.split("/")[-1] for p in hostile_files if p.startswith(f"expected/{lying}/")}
    assert streams == {
        "users.jsonl", "role_memberships.jsonl", "tenants.jsonl",
        "backup_summaries.jsonl", "user_backups.jsonl",
    }  # fmt: skip
    assert jsonl(tmp_path / "hostile" / "expected" / lying / "users.jsonl")


def files(directory: Path) -> dict[str, str]:
    return {
        str(path.relative_to(directory)): path.read_text("utf-8")
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def fleet_ids(count: int) -> list[str]:
    return [tenant.tenant_id for tenant in generate_fleet(count)]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tenants", "3", "--tenant-hostile", "nobody=negative"], "no tenant 'nobody'"),
        (["--tenants", "3", "--tenant-hostile", f"{fleet_ids(3)[0]}=bogus"], "'bogus'"),
        (["--tenants", "3", "--tenant-hostile", fleet_ids(3)[0]], "TENANT_ID=CASE"),
        (
            [
                "--tenants", "3",
                "--tenant-hostile", f"{fleet_ids(3)[0]}=negative",
                "--tenant-hostile", f"{fleet_ids(3)[0]}=lying-date",
            ],
            "named twice",
        ),
        (["--tenant-hostile", "a=negative"], "need --tenants K"),
    ],
)  # fmt: skip
def test_cli_hostile_flag_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli_main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_help_lists_every_case(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli_main(["--help"])
    # argparse wraps lines after a hyphen: join those back.
    text = re.sub(r"-\s+", "-", " ".join(capsys.readouterr().out.split()))
    for name in HOSTILE_CASE_NAMES:
        assert name in text
