"""The users pages family: `users`, and the streams computed from its pages.

`users` leads the users pages pass (tenant_pass.py): `UsersPages` is what each tenant's
worker fetches, `GET /external/users` page by page, shaped into checked records there.
The writer's thread hands each page to the `users` stream, which writes its records and
hands the page to its children (`PageChildStream`), whose records are computed from the
users, with no request of their own. The hand-off is one protocol owned by the child:
`begin_run`, `add_page` for each page, `end_tenant` when a tenant's pages are all in (or it
failed), `end_run` (docs/streams.md, "What a sync emits").
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any, ClassVar

import msgspec
from singer_sdk import typing as th
from singer_sdk.mapper import RemoveRecordTransform, StreamMap
from typing_extensions import override

from tap_spanning.records import PageSequence, TenantPage, UserRecord, membership_records
from tap_spanning.redaction import quote
from tap_spanning.streams.base import SYNC_VERSION, TenantStream, pages_limit
from tap_spanning.tenant_pass import Pass

if TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context, Record

    from tap_spanning.backups import BackupWindow
    from tap_spanning.budget import Hold, ResponseBudget
    from tap_spanning.client import TenantClient
    from tap_spanning.run import SyncRun
    from tap_spanning.tenant_pass import PagesFetch, TenantAnswer

# Distinct unknown tags named one by one in the log before a single summary line.
UNKNOWN_TAGS_LOGGED = 50


def page_bound(users: object, page_size: int) -> int | None:
    """The most pages a tenant may send: twice what its `users` counter needs, plus 2.

    Counters move while a sync runs (users are added), hence the slack; a tenant past it
    is sending pages that never end (docs/many-tenants.md). None when
    the counter is missing: the checks on the pages themselves still hold.
    """
    if not isinstance(users, int) or isinstance(users, bool) or users < 0:
        return None
    return 2 * max(1, math.ceil(users / page_size)) + 2


@dataclass(frozen=True)
class UsersPages:
    """The users pages pass of one run (`tenant_pass.PagesFetch`), run in the workers:
    it holds what it needs, read in the writer's thread when the run began."""

    page_size: int
    sync_version: int
    logger: logging.Logger
    # The days of backup status each user is asked with, if a child wants them.
    backup_days: Sequence[Callable[[TenantAnswer], BackupWindow | None]]

    def priority(self, answer: TenantAnswer) -> float:
        """A tenant's `users` counter, for the largest first; missing counts as large."""
        users = answer.counters.get("users")
        return users if isinstance(users, int) else math.inf

    def pages(
        self,
        client: TenantClient,
        answer: TenantAnswer,
        page_limit: int | None,
        budget: ResponseBudget,
    ) -> Iterator[tuple[object, Hold | None]]:
        """The tenant's pages as checked records (`TenantPage`), bounded by its counter
        (`page_bound`), each with the room it holds in `budget`."""
        tenant_id = answer.tenant.tenant_id
        bound = page_bound(answer.counters.get("users"), self.page_size)
        window = next(
            (days for asked in self.backup_days if (days := asked(answer)) is not None), None
        )
        sequence = PageSequence(tenant_id, self.sync_version, backups=window)
        pages = client.users_pages(
            page_limit=page_limit, max_pages=bound, backups=window, budget=budget
        )
        for page, fetched_at, hold in pages:
            try:
                users = sequence.users_of(page)
            except BaseException:
                if hold is not None:
                    hold.release()
                raise
            if sequence.repeats_dropped:
                self.logger.warning(
                    "Tenant %s: page %d of users repeats %d users of the previous "
                    "page; they are emitted once",
                    tenant_id,
                    sequence.page_number,
                    sequence.repeats_dropped,
                )
            yield TenantPage(tenant_id, users, fetched_at), hold


class UsersStream(TenantStream):
    """Every user of every tenant: `GET /external/users`, page by page."""

    name = "users"
    rides = Pass.USERS_PAGES
    names_its_pass = True
    tally = "users"
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
    def pages_fetch(self) -> PagesFetch:
        run = self.run
        return UsersPages(
            page_size=run.settings.page_size,
            sync_version=run.version,
            logger=run.logger,
            backup_days=[c.backup_days_asked for c in self.page_children if c.wanted],
        )

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

        def tenant_done(tenant_id: str, complete: bool) -> None:
            for child in children:
                child.end_tenant(tenant_id, complete=complete)

        for page in run.pages(page_limit=pages_limit(limit), tenant_done=tenant_done):
            assert isinstance(page, TenantPage)  # what UsersPages makes
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
            run.note_written(self.name, page.tenant_id, len(users))
            run.note_page()
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


class PageChildStream(TenantStream):
    """A child of `users` computed from each page of users: no request of its own.

    The run lifecycle, driven by `users`:
    - `begin_run`: the SCHEMA (once) and a held table version;
    - `add_page`: the page's records, written at once (RECORD), or spooled to a
      temporary file (BATCH, which the SDK writes in one sync at the end); a history
      holds them until `end_tenant` (streams/history.py);
    - `end_tenant`: a tenant's pages are all in, or it failed;
    - `end_run`: the BATCH sync, then ACTIVATE_VERSION if every tenant completed (and
      the stream is not a history).
    """

    parent_stream_type = UsersStream
    rides = Pass.USERS_PAGES
    # No state per parent record: one STATE for the run.
    state_partitioning_keys: ClassVar[list[str]] = []

    _current: _ChildRun | None = None

    def page_records(self, users: list[UserRecord]) -> list[Record]:
        """This stream's records for one page of users."""
        raise NotImplementedError

    def backup_days_asked(self, answer: TenantAnswer) -> BackupWindow | None:
        """The days of backup status every user of the tenant's pages must carry for
        this stream (asked with each users request), if any. None by default."""
        return None

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
        self.extracted_at = extracted_at
        self.take(tenant_id, records)

    def take(self, tenant_id: str, records: list[Record]) -> None:
        """A page's records of a tenant: written at once (a history holds them until the
        tenant's last page, streams/history.py)."""
        run = self._current
        assert run is not None  # add_page checked
        if run.spool is not None:
            for record in records:
                run.spool.write(run.encoder.encode(record) + b"\n")
        else:
            for record in records:
                self.write_record(record)
        self.run.note_written(self.name, tenant_id, len(records))

    def write_lines(self, tenant_id: str, lines: Iterable[bytes]) -> None:
        """Write a tenant's records held as encoded lines (each ends with a newline)."""
        run = self._current
        assert run is not None  # a run is under way
        count = 0
        if run.spool is not None:
            for line in lines:
                run.spool.write(line)
                count += 1
        else:
            decode = msgspec.json.Decoder(dict[str, Any]).decode
            for line in lines:
                self.write_record(decode(line))
                count += 1
        self.run.note_written(self.name, tenant_id, count)

    def end_tenant(self, tenant_id: str, *, complete: bool) -> None:
        """A tenant's pages are all in (`complete`), or it failed. Nothing by default."""

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
            return
        self.records_out()
        if complete:
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
    tally = "role memberships"
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
