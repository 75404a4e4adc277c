"""Backup status as served, and the records the tap's backup streams are expected to
produce from it.

The history itself (which days are kept, every backup's result and items) is
backup_history.py's `BackupHistory`; its names are offered here too, as this module has
always offered them. How it is served (the date format, counts as text, userId as text)
is a per-tenant `BackupStyle`; it changes the JSON, never the expected records.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from .backup_history import (
    BACKUP_TYPES,
    DATA_FIELDS,
    KEPT_DAYS,
    USER_BACKUP_TYPES,
    BackupHistory,
    DataShape,
    Outcome,
    Shape,
    as_day,
    data_fields,
    day_start_ms,
    kept_days,
    trailing_days,
    utc_today,
    window_days,
)
from .tenant import DEFAULT_TENANT_ID

__all__ = [
    "BACKUP_TYPES",
    "BROKEN_DATE",
    "DATA_FIELDS",
    "DATE_FORMATS",
    "KEPT_DAYS",
    "USER_BACKUP_TYPES",
    "BackupHistory",
    "BackupStyle",
    "DataShape",
    "DateFormat",
    "Outcome",
    "Shape",
    "as_day",
    "check_date_format",
    "day_start_ms",
    "expected_backup_summaries",
    "expected_user_backups",
    "format_date",
    "kept_days",
    "summary_items",
    "trailing_days",
    "user_items",
    "utc_today",
    "window_days",
]

DateFormat = Literal["iso", "datetime", "mdy", "epoch_ms", "epoch_ms_text", "broken"]
# The readable formats; "broken" ("date": "someday") is for failure tests only.
DATE_FORMATS: tuple[DateFormat, ...] = ("iso", "datetime", "mdy", "epoch_ms", "epoch_ms_text")
_ALL_DATE_FORMATS: tuple[DateFormat, ...] = (*DATE_FORMATS, "broken")
BROKEN_DATE = "someday"

# Expected record field of each backup.data field.
_RECORD_FIELDS = {
    "created": "items_created",
    "deleted": "items_deleted",
    "failed": "items_failed",
    "total": "items_total",
    "attempts": "attempts",
}
# ISO date-times whose UTC date is the date they stand for: (local time, offset).
_DATETIME_SHAPES = (
    ("02:00:00", "Z"),
    ("21:00:00", "-02:00"),  # 23:00Z, the same day
    ("08:30:00", "+05:30"),  # 03:00Z
    ("04:15:07.000", "Z"),
)
_EPOCH_TIMES_MS = (2 * 3_600_000, 21 * 3_600_000 + 30 * 60_000)  # 02:00Z or 21:30Z


def check_date_format(value: str) -> DateFormat:
    """The format, or ValueError naming the known ones."""
    for known in _ALL_DATE_FORMATS:
        if value == known:
            return known
    raise ValueError(f"unknown date_format {value!r}: use one of {', '.join(_ALL_DATE_FORMATS)}")


# ---------------------------------------------------------------- serving


@dataclass(frozen=True)
class BackupStyle:
    """How a tenant spells its backup status (never what it means).

    date_format: "iso" 2026-11-27, "datetime" an ISO date-time whose UTC date is the
    day, "mdy" 11/27/2026, "epoch_ms" a number, "epoch_ms_text" the same as text,
    "broken" "someday" (unreadable, for failure tests). counts_as_text: `total`
    always, and `successful`, `partial`, `failed` on some items, as strings.
    user_id_as_text: `userId` as a string.
    """

    date_format: DateFormat = "iso"
    counts_as_text: bool = False
    user_id_as_text: bool = False

    def __post_init__(self) -> None:
        check_date_format(self.date_format)


def format_date(day: dt.date, date_format: DateFormat) -> object:
    """The `date` of an item of `day` in `date_format`."""
    if date_format == "iso":
        return day.isoformat()
    if date_format == "mdy":
        return f"{day.month:02d}/{day.day:02d}/{day.year:04d}"
    if date_format == "datetime":
        clock, offset = _DATETIME_SHAPES[day.toordinal() % len(_DATETIME_SHAPES)]
        return f"{day.isoformat()}T{clock}{offset}"
    if date_format in ("epoch_ms", "epoch_ms_text"):
        instant = day_start_ms(day) + _EPOCH_TIMES_MS[day.toordinal() % len(_EPOCH_TIMES_MS)]
        return instant if date_format == "epoch_ms" else str(instant)
    return BROKEN_DATE


def _item(
    day: dt.date,
    kind: str,
    outcome: Outcome,
    shape: DataShape,
    style: BackupStyle,
) -> dict[str, object]:
    counts: dict[str, object] = {
        "total": outcome.total,
        "partial": outcome.partial,
        "failed": outcome.failed,
        "successful": outcome.successful,
    }
    if style.counts_as_text:
        texts = ("total", "partial", "failed", "successful")
        every = (day.toordinal() + BACKUP_TYPES.index(kind)) % 2 == 1
        counts.update((name, str(counts[name])) for name in (texts if every else texts[:1]))
    kept, fields = shape
    if kept != "absent":
        counts["data"] = data_fields(outcome, kept, fields)
    return {"date": format_date(day, style.date_format), "type": kind, "backup": counts}


def summary_items(
    history: BackupHistory,
    days: Sequence[dt.date],
    style: BackupStyle,
    settle_day: dt.date | None = None,
) -> list[dict[str, object]]:
    """GET /external/tenant/backups/summary: one item per day (oldest first) per type."""
    items: list[dict[str, object]] = []
    for day in days:
        outcomes = history.tenant_outcomes(day, settled=day == settle_day)
        for kind in BACKUP_TYPES:
            shape = history.tenant_data_shape(day, kind)
            items.append(_item(day, kind, outcomes[kind], shape, style))
    return items


def user_items(
    history: BackupHistory,
    key: tuple[str, str],
    days: Sequence[dt.date],
    style: BackupStyle,
    settle_day: dt.date | None = None,
) -> list[dict[str, object]] | None:
    """A user's `backupSummary` for `days`; None: no backupSummary key at all."""
    account = history.by_key.get(key)
    if account is None or not account.backed_up:
        return [] if account is None or account.empty_when_none else None
    user_id: object = str(account.user_id) if style.user_id_as_text else account.user_id
    items: list[dict[str, object]] = []
    for day in filter(account.backs_up_on, days):
        outcomes = history.account_day(account, day, settled=day == settle_day)
        for kind in USER_BACKUP_TYPES:
            outcome, shape = outcomes[kind]
            items.append({"userId": user_id, **_item(day, kind, outcome, shape, style)})
    return items


# ---------------------------------------------------------------- expected output


def _record_counts(outcome: Outcome, shape: DataShape) -> dict[str, object]:
    data = data_fields(outcome, *shape) or {}
    record: dict[str, object] = {
        "total": outcome.total,
        "successful": outcome.successful,
        "partial": outcome.partial,
        "failed": outcome.failed,
    }
    record.update((field, data.get(name)) for name, field in _RECORD_FIELDS.items())
    return record


def expected_backup_summaries(
    users: Sequence[Mapping[str, object]],
    tenant_id: str = DEFAULT_TENANT_ID,
    *,
    days: int = KEPT_DAYS,
    today: dt.date | None = None,
    settle_day: dt.date | None = None,
    history: BackupHistory | None = None,
) -> list[dict[str, object]]:
    """Records of the backup_summaries stream (without sync_version) for the last
    `days` days (1..7) ending `today` (default: the real UTC today), ordered by
    (date, type) as served. `history` may pass a BackupHistory of the same users and
    tenant, to reuse its cache.
    """
    model = history if history is not None else BackupHistory(users, tenant_id)
    records: list[dict[str, object]] = []
    for day in trailing_days(as_day(today or utc_today()), days):
        outcomes = model.tenant_outcomes(day, settled=day == settle_day)
        for kind in BACKUP_TYPES:
            record: dict[str, object] = {
                "tenant_id": model.tenant_id,
                "date": day.isoformat(),
                "type": kind,
            }
            record.update(_record_counts(outcomes[kind], model.tenant_data_shape(day, kind)))
            records.append(record)
    return records


def expected_user_backups(
    users: Sequence[Mapping[str, object]],
    tenant_id: str = DEFAULT_TENANT_ID,
    *,
    days: int = KEPT_DAYS,
    today: dt.date | None = None,
    settle_day: dt.date | None = None,
    history: BackupHistory | None = None,
) -> list[dict[str, object]]:
    """Records of the user_backups stream (without sync_version): backed-up users in
    API order, then each one's items by (date, type) as served."""
    model = history if history is not None else BackupHistory(users, tenant_id)
    window = trailing_days(as_day(today or utc_today()), days)
    records: list[dict[str, object]] = []
    for account in model.backed_up:
        for day in filter(account.backs_up_on, window):
            outcomes = model.account_day(account, day, settled=day == settle_day)
            for kind in USER_BACKUP_TYPES:
                outcome, shape = outcomes[kind]
                record: dict[str, object] = {
                    "tenant_id": model.tenant_id,
                    "msId": account.user.get("msId"),
                    "userPrincipalName": account.user.get("userPrincipalName"),
                    "userId": str(account.user_id),
                    "date": day.isoformat(),
                    "type": kind,
                }
                record.update(_record_counts(outcome, shape))
                records.append(record)
    return records
