"""Backup status, from API payloads to records: pure functions, no I/O, no logging.

`GET /external/tenant/backups/summary` and each user's `backupSummary` hold one item per
day and workload. An item the tap cannot trust (a count no warehouse holds, a part larger
than its total, a day outside the window asked, a day listed twice) raises BackupError,
which fails its tenant alone: asking again would not change it (docs/backup-health.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from tap_spanning.data_errors import TenantDataError
from tap_spanning.redaction import quote

# The workloads Spanning reports (docs/backup-health.md); others are kept as sent.
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
# using doubles) holds exactly. A larger one fails its tenant alone (docs/many-tenants.md).
MAX_COUNT = 2**53 - 1


class PageError(ValueError):
    """The body of a 200 response is not what was asked for (a page of users, the
    counters, an array of days): a proxy's page or a cut-off body, retried."""


class BackupError(TenantDataError):
    """A backup item whose shape the tap cannot read: it fails the tenant. The message
    names the field, never its content (a day's count says nothing, but a stray value
    might hold anything)."""

    reason = "unreadable backup status"


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
            moment = _iso_moment(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
            found = moment.astimezone(timezone.utc).date()
    except ValueError:
        return None
    return found.isoformat()


# What Python 3.10's datetime.fromisoformat refuses and 3.11 reads: a fraction of other
# than 3 or 6 digits, an offset without its colon.
_FRACTION = re.compile(r"\.(\d+)")
_OFFSET_WITHOUT_COLON = re.compile(r"([+-]\d{2})(\d{2})$")


def _iso_moment(text: str) -> datetime:
    """An ISO date-time as every supported Python reads it (README, "Python versions")."""
    text = text.replace("Z", "+00:00").replace("z", "+00:00")
    text = _OFFSET_WITHOUT_COLON.sub(r"\1:\2", text)
    text = _FRACTION.sub(lambda found: "." + (found.group(1) + "000000")[:6], text, count=1)
    return datetime.fromisoformat(text)


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
    raw: Mapping[str, Any], record: Mapping[str, Any], window: BackupWindow
) -> list[dict[str, Any]]:
    """The `user_backups` records of one user's `backupSummary` (none when absent);
    `record` is the user's `users` record."""
    items = raw.get("backupSummary")
    if items is None:
        return []
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
