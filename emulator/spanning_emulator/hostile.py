"""Hostile tenants: one tenant of a fleet sends values that no tap may load.

A tenant is hostile by one case (`EmulatedTenant.hostile`, or `--tenant-hostile
TENANT_ID=CASE` on the command line), a row of HOSTILE_CASES. What the tenant holds
stays honest (its users, counters and backup history, so `expected_output` and
`EmulatedTenant.expected_backups` still say what it holds); the case changes how one
answer is served: one value of one item, one counter, the Date header, or the size of
every users page.

Which item: the summary cases break the last item of GET
/external/tenant/backups/summary (the newest day's last workload); the per-user cases
the last item of the `backupSummary` of the tenant's first backed-up user in API order,
so they show only when the users are asked with status=true (user_backups selected).
An answer with no such item (a window outside the kept days) is served unchanged.

For every case but lying-date and huge-pages a correct tap fails that tenant alone
(`fails`), its reason naming one of `reason_names`; for those two it completes with
exact data (a Date header decades off is ignored; an unknown field is not loaded).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .backups import BackupStyle, format_date
from .query import SUMMARY_PATH, TENANT_PATH, USERS_PATH
from .snapshot import Snapshot
from .tenant import sort_key
from .wire import Response, dumps

# The Date header of lying-date: the epoch's day, at the real time of day.
LYING_DATE = dt.date(1970, 1, 1)
# huge-pages: each user is padded to this many bytes, so a page of 1,000 users is about
# 15 MiB, just under the tap's 16 MiB bound on one response (a full page must still load).
HUGE_USER_BYTES = 15 * 2**20 // 1000
HUGE_FIELD = "notes"
_FAR_FUTURE = dt.date(2099, 1, 1)
_FAR_PAST = dt.date(1950, 6, 1)
# reason_names' stand-in for the newest day served (the last day of the window asked).
NEWEST_DAY = "{newest_day}"

Item = dict[str, Any]
# Changes the items (or counters) in place; gets how the tenant spells its dates.
Change = Callable[[Any, BackupStyle], None]


@dataclass(frozen=True)
class HostileCase:
    """One row of HOSTILE_CASES."""

    name: str
    description: str  # one line: what the tenant sends
    route: str | None  # the answer it changes (None: the Date header only)
    change: Change | None  # applied to the decoded answer (None: served otherwise)
    fails: bool  # a correct tap fails the tenant alone (else it completes, data exact)
    reason_names: tuple[str, ...] = ()  # a failed tenant's reason names one of these


def _backup(item: Item) -> dict[str, Any]:
    backup = item.get("backup")
    if not isinstance(backup, dict):
        raise TypeError("a backup item without a backup object")
    return backup


def _counts(value: object) -> Change:
    def change(items: list[Item], _style: BackupStyle) -> None:
        _backup(items[-1]).update(total=value, successful=value)

    return change


def _count(name: str, value: object) -> Change:
    def change(items: list[Item], _style: BackupStyle) -> None:
        _backup(items[-1])[name] = value

    return change


def _null_backup(items: list[Item], _style: BackupStyle) -> None:
    items[-1]["backup"] = None


def _over_total(items: list[Item], _style: BackupStyle) -> None:
    backup = _backup(items[-1])
    backup["successful"] = int(backup["total"]) + 1  # total may be sent as text


def _duplicate(items: list[Item], _style: BackupStyle) -> None:
    items.append(json.loads(json.dumps(items[-1])))


def _dated(day: dt.date) -> Change:
    def change(items: list[Item], style: BackupStyle) -> None:
        items[-1]["date"] = format_date(day, style.date_format)

    return change


def _counter(name: str, value: int) -> Change:
    def change(counters: dict[str, Any], _style: BackupStyle) -> None:
        counters[name] = value

    return change


def _table(*rows: HostileCase) -> Mapping[str, HostileCase]:
    table = {row.name: row for row in rows}
    if len(table) != len(rows):
        raise ValueError("two rows of HOSTILE_CASES have the same name")
    return MappingProxyType(table)


_COUNT_NAMES = ("total", "successful")
HOSTILE_CASES: Mapping[str, HostileCase] = _table(
    HostileCase(
        "count-1e20",
        "a summary item's backup.total and successful are 10**20 (over 2^53-1)",
        SUMMARY_PATH, _counts(10**20), True, _COUNT_NAMES,
    ),
    HostileCase(
        "count-1e40",
        "a summary item's backup.total and successful are 10**40",
        SUMMARY_PATH, _counts(10**40), True, _COUNT_NAMES,
    ),
    HostileCase(
        "count-1e300",
        "a summary item's backup.total and successful are 1e300 (a JSON float)",
        SUMMARY_PATH, _counts(1e300), True, _COUNT_NAMES,
    ),
    HostileCase(
        "negative",
        "one user's backupSummary item has backup.failed -1",
        USERS_PATH, _count("failed", -1), True, ("failed",),
    ),
    HostileCase(
        "null-backup",
        'a summary item is "backup": null',
        SUMMARY_PATH, _null_backup, True, ("backup", "total"),
    ),
    HostileCase(
        "null-count",
        "one user's backupSummary item has backup.successful null",
        USERS_PATH, _count("successful", None), True, ("successful",),
    ),
    HostileCase(
        "successful-over-total",
        "a summary item's backup.successful is its total + 1",
        SUMMARY_PATH, _over_total, True, ("successful",),
    ),
    HostileCase(
        "duplicate-day",
        "one user's backupSummary holds its newest item twice (same date and type)",
        USERS_PATH, _duplicate, True, (NEWEST_DAY,),
    ),
    HostileCase(
        "day-2099",
        "a summary item is dated 2099-01-01 (in the tenant's date format)",
        SUMMARY_PATH, _dated(_FAR_FUTURE), True, (_FAR_FUTURE.isoformat(),),
    ),
    HostileCase(
        "day-1950",
        "one user's backupSummary item is dated 1950-06-01 (in the tenant's date format)",
        USERS_PATH, _dated(_FAR_PAST), True, (_FAR_PAST.isoformat(),),
    ),
    HostileCase(
        "lying-date",
        "every answer's Date header says 1970-01-01; the data is honest",
        None, None, False,
    ),
    HostileCase(
        "licenses-1e40",
        "/external/tenant answers licenses 10**40",
        TENANT_PATH, _counter("licenses", 10**40), True, ("licenses",),
    ),
    HostileCase(
        "negative-counter",
        "/external/tenant answers assigned -3",
        TENANT_PATH, _counter("assigned", -3), True, ("assigned",),
    ),
    HostileCase(
        "huge-pages",
        f"every user carries an unknown {HUGE_FIELD!r} padding it to {HUGE_USER_BYTES} bytes "
        "(a page of 1000 users is about 15 MiB)",
        USERS_PATH, None, False,
    ),
)  # fmt: skip
HOSTILE_CASE_NAMES: tuple[str, ...] = tuple(HOSTILE_CASES)


def hostile_case(name: str) -> HostileCase:
    """The row of a case name; ValueError naming the cases otherwise."""
    row = HOSTILE_CASES.get(name)
    if row is None:
        raise ValueError(f"unknown hostile case {name!r}: use {', '.join(HOSTILE_CASE_NAMES)}")
    return row


def _backed_up(user: Mapping[str, object]) -> bool:
    """A user the emulator's history backs up (so one with backupSummary items)."""
    return user.get("assigned") is True and user.get("isArchive") is not True


def check_hostile(name: str | None, users: Sequence[Mapping[str, object]]) -> None:
    """ValueError for an unknown case, or a per-user case on a tenant with nobody backed up."""
    if name is None:
        return
    row = hostile_case(name)
    if row.route == USERS_PATH and row.change is not None and not any(map(_backed_up, users)):
        raise ValueError(f"hostile case {name} needs a user with a license (assigned, not archive)")


def reason_names(name: str, newest_day: dt.date) -> tuple[str, ...]:
    """What a failed tenant's reason must name (one of them), the newest day filled in."""
    return tuple(
        newest_day.isoformat() if word == NEWEST_DAY else word
        for word in hostile_case(name).reason_names
    )


def date_header_day(name: str | None, today: dt.date | None) -> dt.date | None:
    """The day the Date header says: the tenant's today, unless its case lies."""
    return LYING_DATE if name == "lying-date" else today


def rewrite(
    name: str | None, target: str, response: Response, snapshot: Snapshot, style: BackupStyle
) -> Response:
    """The answer as a hostile tenant serves it (unchanged for other routes and errors)."""
    row = None if name is None else hostile_case(name)
    if row is None or response.status != 200 or row.route != target.partition("?")[0]:
        return response
    if row.name == "huge-pages":
        return dataclasses.replace(response, body=_padded(response.body))
    value = json.loads(response.body)
    if not _changed(row, value, snapshot, style):
        return response
    return dataclasses.replace(response, body=dumps(value))


def _changed(row: HostileCase, value: Any, snapshot: Snapshot, style: BackupStyle) -> bool:
    """Apply the row's change to the decoded answer; False when it holds nothing to change."""
    if row.change is None:
        return False
    if row.route == USERS_PATH:
        return _change_user(value, snapshot, row.change, style)
    if row.route == SUMMARY_PATH and not value:
        return False  # no day of the window is kept
    row.change(value, style)
    return True


def _change_user(
    page: dict[str, Any], snapshot: Snapshot, change: Change, style: BackupStyle
) -> bool:
    """Break the target user's last backupSummary item, if that user is on this page."""
    backed_up = snapshot.backups.backed_up
    if not backed_up:
        return False
    wanted = backed_up[0].key
    for user in page.get("users", ()):
        items = user.get("backupSummary")
        if sort_key(user) == wanted and isinstance(items, list) and items:
            change(items, style)
            return True
    return False


def _padded(body: bytes) -> bytes:
    """A users page whose every user carries HUGE_FIELD, padding it to HUGE_USER_BYTES."""
    page = json.loads(body)
    head = b'"' + HUGE_FIELD.encode() + b'":"'
    users = []
    for user in page.pop("users"):
        raw = dumps(user)
        comma = b"" if raw == b"{}" else b","
        pad = max(0, HUGE_USER_BYTES - len(raw) - len(comma) - len(head) - 1)
        users.append(raw[:-1] + comma + head + b"x" * pad + b'"}')
    rest = dumps(page)[1:-1]
    return b'{"users":[' + b",".join(users) + b"]" + (b"," + rest if rest else b"") + b"}"


def parse_hostile(items: Iterable[str], known: Iterable[str]) -> dict[str, str]:
    """TENANT_ID=CASE items (of --tenant-hostile) as {tenant_id: case}; ValueError on a
    bad item, an unknown tenant or case, or a tenant named twice."""
    known_ids = set(known)
    cases: dict[str, str] = {}
    for item in items:
        tenant_id, equals, name = item.partition("=")
        if not equals or not tenant_id or not name:
            raise ValueError(f"--tenant-hostile expects TENANT_ID=CASE, got {item!r}")
        if tenant_id not in known_ids:
            raise ValueError(f"--tenant-hostile: no tenant {tenant_id!r} in this fleet")
        if tenant_id in cases:
            raise ValueError(f"--tenant-hostile: tenant {tenant_id} named twice (one case each)")
        hostile_case(name)
        cases[tenant_id] = name
    return cases
