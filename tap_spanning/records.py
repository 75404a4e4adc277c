"""From API payloads to the tap's records. Pure functions: no I/O, no logging.

A page whose shape is wrong (not an object, `users` not a list) may be a proxy's
error page or a cut-off body, so it raises `PageError`, which the client retries.
A user whose content is wrong raises `UserError`, which fails the tenant at once:
asking again will not change the tenant's data, and a user is never dropped.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from tap_spanning.redaction import quote
from tap_spanning.roles import is_disabled, roles_for_user


class PageError(ValueError):
    """The body of a 200 response is not a page of users."""


class UserError(ValueError):
    """A user in a page cannot be turned into a record."""


class PagesNotAdvancing(UserError):
    """A tenant's pages repeat users they already gave: pagination is not advancing."""


# How many of a tenant's latest users are remembered to catch a page that repeats an
# earlier one: enough for several pages, the same whatever the tenant's size.
REPEAT_WINDOW_USERS = 2_000


@dataclass(frozen=True)
class UsersPage:
    """One page of `GET /external/users`."""

    users: list[Any]
    next_link: str | None


@dataclass(frozen=True)
class TenantPage:
    """One page of a tenant's users as records, checked, and when the page came back."""

    tenant_id: str
    users: list[UserRecord]
    extracted_at: datetime


@dataclass(frozen=True)
class UserRecord:
    """A `users` record, with the role ids and unmatched tags derived from it, and its
    `user_backups` records when they were asked for."""

    record: dict[str, Any]
    role_ids: list[str]
    unmatched_tags: list[str]
    backups: list[dict[str, Any]] = field(default_factory=list)


def parse_page(payload: object) -> UsersPage:
    """Check the shape of a users page; the last page's nextLink is "", null or absent."""
    if not isinstance(payload, dict):
        raise PageError(f"expected a JSON object with 'users', got {type(payload).__name__}")
    if "users" not in payload:
        raise PageError(f"the JSON object has no 'users' (keys: {quote(sorted(payload)[:10])})")
    users = payload["users"]
    if not isinstance(users, list):
        raise PageError(f"'users' is {type(users).__name__}, not a list")
    next_link = payload.get("nextLink")
    if next_link == "":
        next_link = None
    if next_link is not None and not isinstance(next_link, str):
        raise PageError(f"'nextLink' is {type(next_link).__name__}, not a string")
    return UsersPage(users, next_link)


_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


def _flag(user: Mapping[str, Any], name: str, msid: str) -> bool | None:
    """A boolean field; "true"/"false" strings and 0/1 are normalised, null stays null."""
    value = user.get(name)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise UserError(f"user {msid}: {name} is {quote(value)}, not a boolean")


def _text(user: Mapping[str, Any], name: str, msid: str) -> str | None:
    value = user.get(name)
    if value is None or isinstance(value, str):
        return value
    raise UserError(f"user {msid}: {name} is {quote(value)}, not a string")


def _tags(user: Mapping[str, Any], msid: str) -> list[str] | None:
    tags = user.get("tags")
    if tags is None:
        return None
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise UserError(f"user {msid}: tags is {quote(tags)}, not a list of strings")
    return tags


def user_record(user: object, tenant_id: str, sync_version: int) -> UserRecord:
    """Turn one API user into a `users` record and its roles (README, "Streams and fields").

    `sync_version` is the run's version, on every record of tenant data (README, "Many
    tenants": the current-rows rule).
    """
    if not isinstance(user, dict):
        raise UserError(f"a user is {quote(user)}, not a JSON object")
    msid = user.get("msId")
    if not isinstance(msid, str) or not msid.strip():
        upn = user.get("userPrincipalName")
        raise UserError(f"a user has no msId (userPrincipalName {quote(upn)}); it cannot be keyed")
    display_name = _text(user, "displayName", msid)
    if display_name is None:
        display_name = _text(user, "userDisplayName", msid)
    tags = _tags(user, msid)
    is_admin = _flag(user, "isAdmin", msid)
    is_deleted = _flag(user, "isDeleted", msid)
    is_archive = _flag(user, "isArchive", msid)
    role_ids, unmatched = roles_for_user(
        tags, is_admin=bool(is_admin), is_archive=bool(is_archive), is_deleted=bool(is_deleted)
    )
    record = {
        "tenant_id": tenant_id,
        "msId": msid,
        "userPrincipalName": _text(user, "userPrincipalName", msid),
        "email": _text(user, "email", msid),
        "displayName": display_name,
        "assigned": _flag(user, "assigned", msid),
        "isAdmin": is_admin,
        "isDeleted": is_deleted,
        "isArchive": is_archive,
        "tags": tags,
        "disabled": is_disabled(role_ids),
        "sync_version": sync_version,
    }
    return UserRecord(record, role_ids, unmatched)


def membership_records(user: UserRecord) -> list[dict[str, Any]]:
    """The `role_memberships` records of one user."""
    record = user.record
    tenant_id, msid, upn = record["tenant_id"], record["msId"], record["userPrincipalName"]
    version = record["sync_version"]
    return [
        {
            "tenant_id": tenant_id,
            "roleId": role_id,
            "msId": msid,
            "userPrincipalName": upn,
            "sync_version": version,
        }
        for role_id in user.role_ids
    ]


class PageSequence:
    """The checks that span one tenant's pages: no user twice, pages that advance.

    Keyset pages should never overlap. If a page repeats users of the page just before
    (an offset that is inclusive, say), the repeats are dropped, counted in
    `repeats_dropped`, so that they are not emitted twice. A page of nothing but those
    repeats, or a page that repeats a user of an earlier page, means pagination is not
    advancing (`PagesNotAdvancing`); a page listing one msId twice cannot be trusted
    (`UserError`). The earlier pages are remembered up to REPEAT_WINDOW_USERS users, so
    that memory stays flat whatever the tenant's size; the counters' page bound
    (README, "Many tenants") catches a loop longer than that.
    """

    def __init__(
        self, tenant_id: str, sync_version: int, *, backups: BackupWindow | None = None
    ) -> None:
        self.tenant_id = tenant_id
        self.sync_version = sync_version
        self.backups = backups  # each user's backupSummary too, for these days
        self.page_number = 0
        self.repeats_dropped = 0
        self._previous_page: set[str] = set()
        # msId -> page number, for the pages before the previous one, oldest first.
        self._earlier: dict[str, int] = {}
        self._earlier_pages: deque[set[str]] = deque()

    def users_of(self, page: UsersPage) -> list[UserRecord]:
        """The records of the next page, in the order sent."""
        self.page_number += 1
        number = self.page_number
        users: list[UserRecord] = []
        seen: set[str] = set()
        repeats = 0
        for raw in page.users:
            try:
                user = user_record(raw, self.tenant_id, self.sync_version)
                if self.backups is not None:
                    user = replace(user, backups=user_backup_records(raw, user, self.backups))
            except (UserError, BackupError) as exc:
                raise type(exc)(f"page {number} of users: {exc}") from None
            msid = user.record["msId"]
            if msid in seen:
                raise UserError(
                    f"page {number} of users lists msId {msid} twice; "
                    "the response cannot be trusted"
                )
            seen.add(msid)
            if msid in self._previous_page:
                repeats += 1
                continue
            if msid in self._earlier:
                raise PagesNotAdvancing(
                    f"page {number} of users repeats msId {msid} of page "
                    f"{self._earlier[msid]}: pagination is not advancing"
                )
            users.append(user)
        if repeats and not users:
            raise PagesNotAdvancing(
                f"page {number} of users only repeats the previous page: "
                "pagination is not advancing"
            )
        self.repeats_dropped = repeats
        self._remember(self._previous_page, number - 1)
        self._previous_page = seen
        return users

    def _remember(self, page: set[str], number: int) -> None:
        self._earlier.update(dict.fromkeys(page, number))
        self._earlier_pages.append(page)
        while len(self._earlier) > REPEAT_WINDOW_USERS and self._earlier_pages:
            for msid in self._earlier_pages.popleft():
                self._earlier.pop(msid, None)


# The counters of `GET /external/tenant`, and what each counts (the `tenants` schema).
TENANT_COUNTERS = {
    "licenses": "Standard licenses bought",
    "archivedLicenses": "Archive licenses bought",
    "users": "Users in the tenant",
    "assigned": "Licenses assigned",
    "assignedStandard": "Standard licenses assigned",
    "assignedArchive": "Archive licenses assigned",
}


class CounterError(ValueError):
    """A license counter no warehouse can hold (negative, fractional, too large): the
    tenant fails, and asking again would not change it."""


def parse_tenant(payload: object) -> dict[str, Any]:
    """The counters of `GET /external/tenant`: missing ones are None, status as sent."""
    if not isinstance(payload, dict):
        raise PageError(f"expected a JSON object of counters, got {type(payload).__name__}")
    counters: dict[str, Any] = {}
    for name in TENANT_COUNTERS:
        value = payload.get(name)
        if isinstance(value, bool | str | list | dict):
            raise PageError(f"counter {name} is {quote(value)}, not a whole number")
        count = None if value is None else count_value(value)
        if value is not None and (count is None or isinstance(value, float)):
            raise CounterError(
                f"counter {name} of GET /external/tenant is not a whole number from 0 to "
                f"{MAX_COUNT}"
            )
        counters[name] = count
    status = payload.get("status")
    if status is not None and not isinstance(status, str):
        raise PageError(f"status is {quote(status)}, not a string")
    counters["status"] = status
    return counters


# ---------------------------------------------------------------- backup status

# The workloads Spanning reports (README, "Backup health"); others are kept as sent.
BACKUP_TYPES = ("MAIL", "CALENDAR", "CONTACT", "DRIVE", "SPSITE")
BACKUP_COUNTS = ("total", "successful", "partial", "failed")
# backup.data's item counts, and the record fields they fill.
BACKUP_ITEM_COUNTS = {
    "created": "items_created",
    "deleted": "items_deleted",
    "failed": "items_failed",
    "total": "items_total",
    "attempts": "attempts",
}
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MONTH_FIRST = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_EPOCH_MS_TEXT = re.compile(r"-?\d{1,15}")
_WHOLE_TEXT = re.compile(r"\d{1,16}")
# The largest count the tap emits: the largest integer every warehouse (and a JSON reader
# using doubles) holds exactly. A larger one fails its tenant alone (README, "Output rules").
MAX_COUNT = 2**53 - 1


class BackupError(ValueError):
    """A backup item whose shape the tap cannot read: it fails the tenant. The message
    names the field, never its content (a day's count says nothing, but a stray value
    might hold anything)."""


def backup_date(value: object) -> str | None:
    """The UTC date (YYYY-MM-DD) of a backup item's `date`, in any shape seen; None if
    it fits none: an ISO date, an ISO date-time (any offset; none means UTC),
    MM/DD/YYYY, or epoch milliseconds as a number or as text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _epoch_ms_date(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    month_first = _MONTH_FIRST.fullmatch(text)
    try:
        if _ISO_DATE.fullmatch(text):
            found = date.fromisoformat(text)
        elif month_first:
            month, day, year = (int(part) for part in month_first.groups())
            found = date(year, month, day)
        elif _EPOCH_MS_TEXT.fullmatch(text):
            return _epoch_ms_date(int(text))
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
            found = moment.astimezone(timezone.utc).date()
    except ValueError:
        return None
    return found.isoformat()


def _epoch_ms_date(milliseconds: float) -> str | None:
    try:
        return datetime.fromtimestamp(milliseconds / 1000, timezone.utc).date().isoformat()
    except (OverflowError, OSError, ValueError):
        return None


def count_value(value: object) -> int | None:
    """A count as the tap emits it (an integer from 0 to MAX_COUNT), or None when the
    value is not one: negative, fractional, too large for a warehouse, or not a number.
    Text of digits is read too (one client types `total` as a string)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not value.is_integer():
            return None  # fractional, or NaN and the infinities
        value = int(value)
    elif isinstance(value, str):
        if not _WHOLE_TEXT.fullmatch(value.strip()):
            return None
        value = int(value.strip())
    if isinstance(value, int) and 0 <= value <= MAX_COUNT:
        return value
    return None


def _count(value: object, field: str, *, required: bool = False) -> int | None:
    """A count of a backup item; None when absent and allowed to be."""
    if value is None:
        if required:
            raise BackupError(f"{field} is null; every backup item has its counts")
        return None
    count = count_value(value)
    if count is None:
        raise BackupError(f"{field} is not a whole number from 0 to {MAX_COUNT}")
    return count


def backup_record(item: object, where: str, window: BackupWindow) -> dict[str, Any]:
    """The fields of one backup item (a day of one workload), as the streams hold them.

    A day outside the window asked, a count no warehouse holds, or a part larger than
    its total raises BackupError: the tenant's answer cannot be trusted, and asking
    again would not change it.
    """
    if not isinstance(item, dict):
        raise BackupError(f"{where} is not a JSON object")
    day = backup_date(item.get("date"))
    if day is None:
        raise BackupError(
            f"{where}: date is not a date the tap reads (an ISO date or date-time, "
            "MM/DD/YYYY, or epoch milliseconds)"
        )
    first, last = window.days()
    if not first <= day <= last:
        raise BackupError(f"{where}: date {day} is outside the days asked ({first} to {last})")
    kind = item.get("type")
    if not isinstance(kind, str) or not kind.strip():
        raise BackupError(f"{where}: type is not a text")
    backup = item.get("backup")
    if not isinstance(backup, dict):
        what = "null" if backup is None else "not a JSON object"
        raise BackupError(f"{where} ({day} {quote(kind)}): backup is {what}")
    data = backup.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BackupError(f"{where}: backup.data is not a JSON object")
    record: dict[str, Any] = {"date": day, "type": kind}
    for name in BACKUP_COUNTS:
        record[name] = _count(backup.get(name), f"{where}: backup.{name}", required=True)
    for name in BACKUP_COUNTS[1:]:
        if record[name] > record["total"]:
            raise BackupError(
                f"{where} ({day} {quote(kind)}): backup.{name} ({record[name]}) is more "
                f"than backup.total ({record['total']})"
            )
    for name, target in BACKUP_ITEM_COUNTS.items():
        record[target] = _count(data.get(name), f"{where}: backup.data.{name}")
    return record


def _no_day_twice(records: list[dict[str, Any]], where: str) -> None:
    """Two items with one (date, type) leave no way to tell which one is true."""
    seen: set[tuple[str, str]] = set()
    for record in records:
        key = (record["date"], record["type"])
        if key in seen:
            raise BackupError(
                f"{where} lists {record['date']} {quote(record['type'])} twice; the "
                "response cannot be trusted"
            )
        seen.add(key)


def backup_summary_records(
    payload: object, tenant_id: str, sync_version: int, window: BackupWindow
) -> list[dict[str, Any]]:
    """The `backup_summaries` records of `GET /external/tenant/backups/summary`."""
    if not isinstance(payload, list):
        raise PageError(f"expected a JSON array of days, got {type(payload).__name__}")
    records = [
        {
            "tenant_id": tenant_id,
            **backup_record(item, f"backup summary item {index}", window),
            "sync_version": sync_version,
        }
        for index, item in enumerate(payload, start=1)
    ]
    _no_day_twice(records, "the backup summary")
    return records


def user_backup_records(
    raw: dict[str, Any], user: UserRecord, window: BackupWindow
) -> list[dict[str, Any]]:
    """The `user_backups` records of one user's `backupSummary` (none when absent)."""
    items = raw.get("backupSummary")
    if items is None:
        return []
    record = user.record
    msid = record["msId"]
    if not isinstance(items, list):
        raise BackupError(f"user {msid}: backupSummary is not a list")
    found: list[dict[str, Any]] = []
    for index, item in enumerate(items, start=1):
        where = f"user {msid}: backupSummary item {index}"
        fields = backup_record(item, where, window)
        user_id = item.get("userId")
        if isinstance(user_id, bool) or not isinstance(user_id, str | int | None):
            raise BackupError(f"{where}: userId is not a number or a text")
        found.append(
            {
                "tenant_id": record["tenant_id"],
                "msId": msid,
                "userPrincipalName": record["userPrincipalName"],
                "userId": None if user_id is None else str(user_id),
                **fields,
                "sync_version": record["sync_version"],
            }
        )
    _no_day_twice(found, f"user {msid}: backupSummary")
    return found


@dataclass(frozen=True)
class BackupWindow:
    """The days the backup streams read: [start, end] in epoch milliseconds, UTC."""

    start_ms: int
    end_ms: int

    @classmethod
    def ending(cls, today: date, days: int) -> BackupWindow:
        """`days` days up to and including `today` (UTC)."""
        first = datetime.combine(today - timedelta(days=days - 1), time.min, timezone.utc)
        after = datetime.combine(today + timedelta(days=1), time.min, timezone.utc)
        return cls(int(first.timestamp() * 1000), int(after.timestamp() * 1000) - 1)

    def days(self) -> tuple[str, str]:
        """The first and last day asked (YYYY-MM-DD, UTC)."""
        return _epoch_ms_date(self.start_ms) or "", _epoch_ms_date(self.end_ms) or ""

    def query(self) -> dict[str, str]:
        """The query parameters that ask for these days."""
        return {"start": str(self.start_ms), "end": str(self.end_ms)}
