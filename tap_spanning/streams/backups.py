"""The backup status family: `backup_summaries` and `user_backups`, two histories.

Both read the same trailing days of each tenant (`backup_window`), computed once from the
tenant's own clock in its credentials pass. `backup_summaries` rides the credentials
pass: `GET /external/tenant/backups/summary` is asked in the same worker, right after
the tenant's credentials answered. `user_backups` rides the users pages: each users
request asks for every user's backupSummary of those days (docs/backup-health.md).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, ClassVar

from singer_sdk import typing as th
from typing_extensions import override

from tap_spanning.backups import BACKUP_TYPES, BackupWindow, backup_summary_records
from tap_spanning.clock import backup_today
from tap_spanning.redaction import quote
from tap_spanning.streams.base import COUNT, SYNC_VERSION, TenantStream
from tap_spanning.streams.history import SendsChangedDays, SendsChangedTenantDays
from tap_spanning.tenant_pass import Pass

if TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context, Record

    from tap_spanning.client import TenantClient
    from tap_spanning.records import UserRecord
    from tap_spanning.run import SyncRun
    from tap_spanning.tenant_pass import TenantAnswer

# Where a tenant's window is kept in its answer (TenantAnswer.shared).
_WINDOW = "backup_window"


def backup_window(run: SyncRun, answer: TenantAnswer) -> BackupWindow:
    """The days the backup streams read of a tenant: `backup_days` up to its today.

    Computed once, in the tenant's credentials pass, from its answer's Date header; a
    host whose clock is more than a day off is named once a run, and this machine's
    clock is used.
    """
    window = asked_backup_window(answer)
    if window is None:
        today = backup_today(answer.server_date, datetime.now(timezone.utc))
        if today.distrusted is not None:
            host = str(answer.tenant.origin)
            run.warn_once(
                f"clock of {host}",
                "Host %s sent a Date header of %s, more than a day from this machine's "
                "clock: the backup window ends on this machine's today (%s) instead",
                host,
                today.distrusted.isoformat(),
                today.day.isoformat(),
            )
        window = BackupWindow.ending(today.day, run.settings.backup_days)
        answer.shared[_WINDOW] = window
    return window


def asked_backup_window(answer: TenantAnswer) -> BackupWindow | None:
    """The tenant's backup window, if a backup stream asked for it this run."""
    window = answer.shared.get(_WINDOW)
    return window if isinstance(window, BackupWindow) else None


def _backup_properties(*leading: th.Property[Any]) -> dict[str, Any]:
    """A backup stream's schema: its keys, then a day of one workload
    (docs/backup-health.md: counts are accounts or sites, items are the data's item
    counts)."""
    return th.PropertiesList(
        th.Property("tenant_id", th.StringType, required=True, description="Tenant, as set"),
        *leading,
        th.Property("date", th.DateType, required=True, description="The day, UTC"),
        th.Property(
            "type",
            th.StringType,
            required=True,
            description="MAIL, CALENDAR, CONTACT, DRIVE or SPSITE, or as sent",
        ),
        th.Property("total", COUNT, description="Accounts (or sites) backed up"),
        th.Property("successful", COUNT, description="... whose backup succeeded"),
        th.Property("partial", COUNT, description="... partly backed up"),
        th.Property("failed", COUNT, description="... whose backup failed"),
        th.Property("items_created", COUNT, description="Items backed up, new"),
        th.Property("items_deleted", COUNT, description="Items seen deleted"),
        th.Property("items_failed", COUNT, description="Items that failed"),
        th.Property("items_total", COUNT, description="Items looked at"),
        th.Property("attempts", COUNT, description="Backup attempts"),
        SYNC_VERSION,
    ).to_dict()


class _UnknownTypes:
    """Backup types outside the five known, each logged once (docs/backup-health.md)."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.seen: set[str] = set()

    def note(self, records: Iterable[Record]) -> None:
        for record in records:
            kind = record["type"]
            if kind not in BACKUP_TYPES and kind not in self.seen and len(self.seen) < 20:
                self.seen.add(kind)
                self.logger.info(
                    "Backup type %s is not one of the known five: kept as sent", quote(kind)
                )


class UserBackupsStream(SendsChangedTenantDays):
    """Each user's backup status per day and workload, from the users pages. A history:
    a tenant's records of the days sent before are held until its last page, then those
    of the days that changed are sent (streams/history.py)."""

    name = "user_backups"
    # Off unless asked for (a catalog, or Meltano's `select`): docs/backup-health.md.
    selected_by_default = False
    primary_keys: ClassVar[list[str]] = ["tenant_id", "msId", "date", "type"]
    activates = False  # a history: ACTIVATE_VERSION would delete the days Spanning forgot

    schema = _backup_properties(
        th.Property("msId", th.StringType, required=True, description="Microsoft Entra id"),
        th.Property("userPrincipalName", th.StringType),
        th.Property("userId", th.StringType, description="Spanning's own number for the user"),
    )

    @override
    def __init__(self, tap: Tap, run: SyncRun) -> None:
        super().__init__(tap, run)
        self._unknown = _UnknownTypes(self.logger)

    @override
    def with_credentials(self, client: TenantClient, answer: TenantAnswer) -> None:
        backup_window(self.run, answer)  # its days, from the credentials' Date header

    @override
    def backup_days_asked(self, answer: TenantAnswer) -> BackupWindow | None:
        return asked_backup_window(answer)

    @override
    def page_records(self, users: list[UserRecord]) -> list[Record]:
        records = [backup for user in users for backup in user.backups]
        self._unknown.note(records)
        return records

    @override
    def day_of(self, record: Record) -> str:
        day: str = record["date"]
        return day


class BackupSummariesStream(SendsChangedDays, TenantStream):
    """Each tenant's backup status per day and workload. A history: the days that changed
    are sent (streams/history.py)."""

    name = "backup_summaries"
    rides = Pass.CREDENTIALS
    # Off unless asked for (a catalog, or Meltano's `select`): docs/backup-health.md.
    selected_by_default = False
    primary_keys: ClassVar[list[str]] = ["tenant_id", "date", "type"]
    activates = False  # a history: ACTIVATE_VERSION would delete the days Spanning forgot

    schema = _backup_properties()

    @override
    def with_credentials(self, client: TenantClient, answer: TenantAnswer) -> None:
        window = backup_window(self.run, answer)
        tenant_id, version = answer.tenant.tenant_id, self.run.version
        answer.fetched[self.name] = client.backup_summary(
            window, lambda payload: backup_summary_records(payload, tenant_id, version, window)
        )

    @override
    def stream_records(self, context: Context | None) -> Iterable[Record]:
        # Fetched with the credentials, before any record: no request here.
        unknown = _UnknownTypes(self.logger)
        for answer in self.run.answers():
            records: list[Record] | None = answer.fetched.get(self.name)
            if records is not None:
                unknown.note(records)
                yield from self.sent_days.changed_records(answer.tenant.tenant_id, records)
