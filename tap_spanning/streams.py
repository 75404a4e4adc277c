"""The streams: `users`, `role_memberships`, `tenants` and `roles`. They shape records.

Every stream is handed the run (`SyncRun`) it belongs to, and asks it for typed results:
`users` for its tenants' pages (`TenantPage`), which it hands to its child
`role_memberships`, whose records are computed from the users, with no request of
their own. The hand-off is one protocol owned by the child: `begin_run`, `add_page`
for each page, `end_run` (README, "Output rules").

A stream holding tenant data is activated (ACTIVATE_VERSION) only after its last
RECORD or BATCH, and only when every tenant completed (README, "Many tenants").

The streams are synced in the order of their `sync_phase`: tenant data first (no
record before every tenant's credentials are proven), then the static `roles`.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any, ClassVar

import msgspec
from singer_sdk import typing as th
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import RemoveRecordTransform, StreamMap
from typing_extensions import override

from tap_spanning.backups import BACKUP_TYPES, MAX_COUNT
from tap_spanning.records import TENANT_COUNTERS, UserRecord, membership_records
from tap_spanning.redaction import quote
from tap_spanning.roles import ROLES
from tap_spanning.sdk_seam.singer import SeamStream

if TYPE_CHECKING:
    from singer_sdk import Stream, Tap
    from singer_sdk.helpers.types import Context, Record

    from tap_spanning.run import SyncRun

# Distinct unknown tags named one by one in the log before a single summary line.
UNKNOWN_TAGS_LOGGED = 50
# When a stream is synced: the streams that read tenants first, so that no record is
# written before every tenant's credentials are proven; then the static ones.
TENANT_DATA_PHASE = 0
STATIC_PHASE = 1
# Last: the record of how each tenant's part of the run went (tenant_syncs).
RUN_RECORD_PHASE = 2

SYNC_VERSION = th.Property(
    "sync_version",
    th.IntegerType,
    required=True,
    description=(
        "The run that wrote the row: its start in milliseconds since the epoch (the "
        "ACTIVATE_VERSION version). Current rows: README, \"Many tenants\""
    ),
)


# Every count the tap emits: what every warehouse holds exactly (README, "Many tenants").
COUNT = th.IntegerType(minimum=0, maximum=MAX_COUNT)


def users_page_limit(record_limit: int | None) -> int | None:
    """The users pages a tenant sends: all, or under `--test` (a record limit) one."""
    return None if record_limit is None else 1


class FullTableStream(SeamStream):
    """What the streams share: the run, when they activate, what BATCH files hold."""

    replication_key = None
    # Records are built field by field from the contract, already JSON-typed.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    # There are no bookmarks to save mid-stream: one STATE at the end, whatever the size.
    STATE_MSG_FREQUENCY = 2**62
    # When the stream is synced (sync_order); every stream class sets its own.
    sync_phase: ClassVar[int] = TENANT_DATA_PHASE

    @override
    def __init__(self, tap: Tap, run: SyncRun) -> None:
        super().__init__(tap)
        self.run = run  # this run's tenants, failures and counters

    @property
    @override
    def run_version(self) -> int:
        # The run's, not the tap's start: a run begun before the tap was built
        # (head_start.py) is older than the tap.
        return self.run.version

    def tenant_data_complete(self) -> bool:
        """May this stream be activated? Tenant data: only if every tenant completed."""
        return self.run.complete()

    @cached_property
    def batch_mode(self) -> bool:
        """True when records go to BATCH files rather than RECORD messages."""
        return self.get_batch_config(self.config) is not None

    def stream_records(self, context: Context | None) -> Iterable[Record]:
        """The stream's records, in order."""
        raise NotImplementedError

    def selected_properties(self, record: Record) -> Record:
        """The record without deselected properties (what a BATCH file may hold)."""
        return {name: value for name, value in record.items() if self.mask[("properties", name)]}

    def limited_records(self, context: Context | None) -> Iterator[Record]:
        """The records, no more than `--test` takes from a stream (ABORT_AT_RECORD_COUNT).

        Past the limit the SDK aborts the stream and logs an error although the test
        passed: the records after it are read (every tenant is still checked) but not
        handed over.
        """
        limit = self.ABORT_AT_RECORD_COUNT
        # Every sync proves every tenant's credentials before its first record, and so
        # has a run and a summary line, even roles alone. The users pass starts with it.
        self.run.preflight(users_page_limit=users_page_limit(limit))
        for index, record in enumerate(self.stream_records(context)):
            if limit is None or index < limit:
                yield record

    @override
    def get_records(self, context: Context | None) -> Iterable[Record]:
        if self.batch_mode:
            # The SDK batches records as get_records yields them, before its own
            # selection step: deselected properties must not reach the files.
            for record in self.limited_records(context):
                yield self.selected_properties(record)
            return
        yield from self.limited_records(context)
        # The SDK wrote each record before asking for the next: all are out.
        if self.tenant_data_complete():
            self.activate_version()

    @override
    def get_batches(self, batch_config: Any, context: Context | None = None) -> Iterable[Any]:
        yield from super().get_batches(batch_config, context)
        # The SDK wrote each BATCH message before asking for the next: all are out.
        if self.tenant_data_complete():
            self.activate_version()


class UsersStream(FullTableStream):
    """Every user of every tenant: `GET /external/users`, page by page."""

    name = "users"
    primary_keys: ClassVar[list[str]] = ["tenant_id", "msId"]

    schema = th.PropertiesList(
        th.Property("tenant_id", th.StringType, required=True, description="Tenant, as set"),
        th.Property("msId", th.StringType, required=True, description="Microsoft Entra object id"),
        th.Property("userPrincipalName", th.StringType),
        th.Property("email", th.StringType),
        th.Property("displayName", th.StringType, description="displayName, or userDisplayName"),
        th.Property("assigned", th.BooleanType, description="Holds a Spanning license"),
        th.Property("isAdmin", th.BooleanType, description="Spanning admin"),
        th.Property("isDeleted", th.BooleanType, description="Deleted from Microsoft Entra"),
        th.Property("isArchive", th.BooleanType, description="Archived (read-only) license"),
        th.Property("tags", th.ArrayType(th.StringType), description="Console labels, as sent"),
        th.Property(
            "disabled",
            th.BooleanType,
            required=True,
            description="Archived or deleted from Microsoft",
        ),
        SYNC_VERSION,
    ).to_dict()

    @override
    def __init__(self, tap: Tap, run: SyncRun) -> None:
        super().__init__(tap, run)
        self._unknown_tags: set[str] = set()

    @cached_property
    def page_children(self) -> list[PageChildStream]:
        """The child streams this one hands its pages to."""
        return [c for c in self.child_streams if isinstance(c, PageChildStream)]

    @override
    def stream_records(self, context: Context | None) -> Iterable[Record]:
        run = self.run
        # --test: the SDK stops a stream after this many records, logging an error; one
        # page a tenant and no more records than that proves the connection cleanly.
        limit = self.ABORT_AT_RECORD_COUNT
        children = self.page_children
        for child in children:
            child.begin_run(self.stream_maps[0], limit)
        written = 0
        for page in run.users_pages(page_limit=users_page_limit(limit)):
            users = page.users
            if limit is not None:
                users = users[: max(0, limit - written)]
            self.extracted_at = page.extracted_at
            self._note_unknown_tags(users)
            # Computed from the whole records, before the SDK strips deselected properties.
            for child in children:
                child.add_page(page.tenant_id, users, page.extracted_at)
            for user in users:
                yield user.record
            written += len(users)
            run.note_page(page.tenant_id, len(users))
        for child in children:
            child.end_run(self.tenant_data_complete())
        run.stop_if_no_tenant_answered()

    def _note_unknown_tags(self, users: list[UserRecord]) -> None:
        for user in users:
            for tag in user.unmatched_tags:
                if tag in self._unknown_tags or len(self._unknown_tags) > UNKNOWN_TAGS_LOGGED:
                    continue
                self._unknown_tags.add(tag)
                if len(self._unknown_tags) > UNKNOWN_TAGS_LOGGED:
                    self.logger.info(
                        "More than %d distinct tags name no role; no more are listed",
                        UNKNOWN_TAGS_LOGGED,
                    )
                else:
                    self.logger.info(
                        "Tag %s names no Spanning role: kept in users.tags, no membership",
                        quote(tag),
                    )

    @override
    def generate_child_contexts(self, record: Record, context: Context | None) -> Iterable[Any]:
        # No child sync per user: the child is handed a page at a time (add_page).
        return ()


def _keep_all(_record: Record) -> bool:
    return True


@dataclass
class _ChildRun:
    """A page-fed child's state during one run of its parent."""

    keep: Callable[[Record], bool]
    limit: int | None
    written: int = 0
    spool: IO[bytes] | None = None  # BATCH mode: records wait here for the one sync
    complete: bool = False
    encoder: msgspec.json.Encoder = field(default_factory=msgspec.json.Encoder)


class PageChildStream(FullTableStream):
    """A child of `users` computed from each page of users: no request of its own.

    The run lifecycle, driven by `users`:
    - `begin_run`: the SCHEMA (once) and a held table version;
    - `add_page`: the page's records, written at once (RECORD), or spooled to a
      temporary file (BATCH, which the SDK writes in one sync at the end);
    - `end_run`: the BATCH sync, then ACTIVATE_VERSION if every tenant completed (and
      the stream is not a history).
    """

    parent_stream_type = UsersStream
    # No state per parent record: one STATE for the run.
    state_partitioning_keys: ClassVar[list[str]] = []

    _current: _ChildRun | None = None

    def page_records(self, users: list[UserRecord]) -> list[Record]:
        """This stream's records for one page of users."""
        raise NotImplementedError

    def note_written(self, tenant_id: str, count: int) -> None:
        """`count` records of the tenant were written (for its tenant_syncs row)."""

    @property
    def wanted(self) -> bool:
        """True when the catalog asks for this stream."""
        return self.selected or self.has_selected_descendents

    def begin_run(self, users_map: StreamMap, limit: int | None) -> None:
        """Start a run: `users_map` is the users stream's primary stream map."""
        # As the SDK does for children: a user that a stream map filters out has no
        # records here. A map that removes the users stream itself removes no user.
        keep = (
            _keep_all
            if isinstance(users_map, RemoveRecordTransform)
            else users_map.get_filter_result
        )
        self._current = _ChildRun(keep, limit)
        if not self.wanted:
            return
        if self.batch_mode:
            self._current.spool = tempfile.TemporaryFile()  # noqa: SIM115  # closed in end_run
        else:
            self.write_schema()
            self.hold_version()

    def add_page(self, tenant_id: str, users: list[UserRecord], extracted_at: datetime) -> None:
        """The records of one page of a tenant's users."""
        run = self._current
        if run is None or not self.wanted:
            return
        records = self.page_records([u for u in users if run.keep(u.record)])
        if run.limit is not None:
            records = records[: max(0, run.limit - run.written)]
        run.written += len(records)
        self.note_written(tenant_id, len(records))
        if run.spool is not None:
            for record in records:
                run.spool.write(run.encoder.encode(record) + b"\n")
            return
        self.extracted_at = extracted_at
        for record in records:
            self.write_record(record)

    def end_run(self, complete: bool) -> None:
        """After the last page: BATCH files if any, then activation if all completed."""
        run = self._current
        if run is None or not self.wanted:
            return
        run.complete = complete
        if run.spool is not None:
            run.spool.seek(0)
            try:
                self.sync()  # BATCH: the SDK's own sync, one run's worth of records
            finally:
                run.spool.close()
        elif complete:
            self.activate_version()

    @override
    def tenant_data_complete(self) -> bool:
        return self._current is not None and self._current.complete

    @override
    def stream_records(self, context: Context | None) -> Iterator[Record]:
        run = self._current
        if run is None or run.spool is None:  # only the BATCH sync of end_run asks
            return
        decode = msgspec.json.Decoder(dict[str, Any]).decode
        for line in run.spool:
            yield decode(line)


class RoleMembershipsStream(PageChildStream):
    """Who holds which role: one record per (tenant, role, user), from the user's record."""

    name = "role_memberships"
    primary_keys: ClassVar[list[str]] = ["tenant_id", "roleId", "msId"]

    schema = th.PropertiesList(
        th.Property("tenant_id", th.StringType, required=True),
        th.Property("roleId", th.StringType, required=True),
        th.Property("msId", th.StringType, required=True),
        th.Property("userPrincipalName", th.StringType),
        SYNC_VERSION,
    ).to_dict()

    @override
    def page_records(self, users: list[UserRecord]) -> list[Record]:
        return [membership for user in users for membership in membership_records(user)]

    @override
    def note_written(self, tenant_id: str, count: int) -> None:
        self.run.note_memberships(tenant_id, count)


def _backup_properties(*leading: th.Property[Any]) -> dict[str, Any]:
    """A backup stream's schema: its keys, then a day of one workload (README, "Backup
    health": counts are accounts or sites, items are the data's item counts)."""
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
    """Backup types outside the five known, each logged once (README, "Backup health")."""

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


class UserBackupsStream(PageChildStream):
    """Each user's backup status per day and workload, from the users pages. A history."""

    name = "user_backups"
    # Off unless asked for (a catalog, or Meltano's `select`): README, "Backup health".
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
    def page_records(self, users: list[UserRecord]) -> list[Record]:
        records = [backup for user in users for backup in user.backups]
        self._unknown.note(records)
        return records


class BackupSummariesStream(FullTableStream):
    """Each tenant's backup status per day and workload. A history."""

    name = "backup_summaries"
    # Off unless asked for (a catalog, or Meltano's `select`): README, "Backup health".
    selected_by_default = False
    primary_keys: ClassVar[list[str]] = ["tenant_id", "date", "type"]
    activates = False  # a history: ACTIVATE_VERSION would delete the days Spanning forgot

    schema = _backup_properties()

    @override
    def stream_records(self, context: Context | None) -> Iterable[Record]:
        # Fetched with the credentials, before any record: no request here.
        unknown = _UnknownTypes(self.logger)
        for records in self.run.backup_summaries():
            unknown.note(records)
            yield from records


class TenantsStream(FullTableStream):
    """Each tenant's license counters: `GET /external/tenant`, one request a tenant."""

    name = "tenants"
    primary_keys: ClassVar[list[str]] = ["tenant_id"]

    schema = th.PropertiesList(
        th.Property("tenant_id", th.StringType, required=True, description="Tenant, as set"),
        th.Property("region", th.StringType, description="Spanning region; null on loopback"),
        th.Property("base_url", th.StringType, description="The host the tenant is read from"),
        *(
            th.Property(name, COUNT, description=meaning)
            for name, meaning in TENANT_COUNTERS.items()
        ),
        th.Property("status", th.StringType, description="trial, paid, expired, or as sent"),
        SYNC_VERSION,
    ).to_dict()

    @override
    def stream_records(self, context: Context | None) -> Iterable[Record]:
        # The counters came with the credentials, before any record: no request here.
        for tenant, counters in self.run.tenant_counters():
            yield {
                "tenant_id": tenant.tenant_id,
                "region": tenant.region,
                "base_url": str(tenant.origin),
                **counters,
                "sync_version": self.run.version,
            }


class RolesStream(FullTableStream):
    """The seven role tiers, whatever the tenants hold."""

    name = "roles"
    primary_keys: ClassVar[list[str]] = ["id"]
    sync_phase = STATIC_PHASE

    schema = th.PropertiesList(
        th.Property("id", th.StringType, required=True),
        th.Property("name", th.StringType, required=True),
        th.Property("description", th.StringType, required=True),
    ).to_dict()

    @override
    def tenant_data_complete(self) -> bool:
        return True  # not tenant data: the same seven records for every fleet

    @override
    def stream_records(self, context: Context | None) -> Iterable[Record]:
        for role in ROLES:
            yield {"id": role.id, "name": role.name, "description": role.description}


class TenantSyncsStream(FullTableStream):
    """One record per tenant per run: how its part of the run went. A history.

    Written after every other record of the run, failed tenants included: it is how
    the warehouse learns which tenants are current (README, "Many tenants").
    """

    name = "tenant_syncs"
    primary_keys: ClassVar[list[str]] = ["tenant_id", "sync_version"]
    sync_phase = RUN_RECORD_PHASE
    activates = False  # a history: ACTIVATE_VERSION would delete the earlier runs

    schema = th.PropertiesList(
        th.Property("tenant_id", th.StringType, required=True, description="Tenant, as set"),
        SYNC_VERSION,
        th.Property("started_at", th.DateTimeType, description="The tenant's first request"),
        th.Property("finished_at", th.DateTimeType, description="The tenant's last request"),
        th.Property(
            "status",
            th.StringType,
            required=True,
            allowed_values=["complete", "failed"],
            description="complete: every selected stream completed for the tenant",
        ),
        th.Property("reason", th.StringType, description="Why it failed, in one line"),
        th.Property("users", th.IntegerType, required=True, description="Users read"),
        th.Property(
            "role_memberships", th.IntegerType, required=True, description="Memberships written"
        ),
        th.Property("requests", th.IntegerType, required=True, description="Requests made"),
        th.Property("retries", th.IntegerType, required=True, description="Tries retried"),
        th.Property(
            "backup_last_day",
            th.DateType,
            description=(
                "The last day of the backup window asked (UTC): the tenant's latest backup "
                "day, whatever dates the warehouse holds; null without backup streams"
            ),
        ),
    ).to_dict()

    @override
    def stream_records(self, context: Context | None) -> Iterable[Record]:
        for part in self.run.tenants.values():
            failure = part.failure
            yield {
                "tenant_id": part.tenant.tenant_id,
                "sync_version": self.run.version,
                "started_at": _iso(part.started_at),
                "finished_at": _iso(part.finished_at),
                "status": "complete" if failure is None else "failed",
                "reason": None if failure is None else failure.message,
                "users": part.users,
                "role_memberships": part.memberships,
                "requests": part.requests,
                "retries": part.retries,
                "backup_last_day": (
                    None if part.backup_window is None else part.backup_window.days()[1]
                ),
            }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


# Every stream the tap discovers. A new stream is one class here (README, "Development").
STREAM_TYPES: tuple[type[FullTableStream], ...] = (
    UsersStream,
    RoleMembershipsStream,
    UserBackupsStream,
    TenantsStream,
    BackupSummariesStream,
    RolesStream,
    TenantSyncsStream,
)


def sync_order(streams: dict[str, Stream]) -> dict[str, Stream]:
    """`streams` in the order they are synced: by phase, then as in STREAM_TYPES.

    A reordering, never a filter: no stream can be left out of the sync.
    """

    def rank(item: tuple[str, Stream]) -> tuple[int, int]:
        stream = item[1]
        declared = type(stream) in STREAM_TYPES
        position = STREAM_TYPES.index(type(stream)) if declared else len(STREAM_TYPES)
        return getattr(stream, "sync_phase", STATIC_PHASE), position

    return dict(sorted(streams.items(), key=rank))
