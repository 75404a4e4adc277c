"""The three streams: `users`, `roles` and `role_memberships`.

`role_memberships` is a child of `users` computed from each user's record, with no
request of its own. The SDK would sync a child once per parent record, writing a
SCHEMA message, log lines and state for each user; instead `users` hands its child
one batch per page, and the child writes its SCHEMA once per run and its state once
at the end (spanning.md, "Output rules"). Every stream's ACTIVATE_VERSION waits for
the end of its stream (see FullTableStream).
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from datetime import datetime
from functools import cached_property
from typing import Any, ClassVar

import requests
from singer_sdk import Stream
from singer_sdk import typing as th
from singer_sdk.helpers._batch import BatchConfig
from singer_sdk.helpers._util import utc_now
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.helpers.types import Context
from singer_sdk.mapper import RemoveRecordTransform, SameRecordTransform
from singer_sdk.singerlib import RecordMessage

from tap_spanning.client import SpanningError, SpanningStream, page_of
from tap_spanning.records import UserError, UserRecord, membership_records, quote, user_record
from tap_spanning.roles import ROLES
from tap_spanning.writer import BufferedMsgSpecWriter

# Distinct unknown tags named one by one in the log before a single summary line.
UNKNOWN_TAGS_LOGGED = 50


def _keep_all(_record: dict[str, Any]) -> bool:
    return True


class FullTableStream(Stream):
    """What the three streams share: when ACTIVATE_VERSION is sent, how RECORDs are written.

    ACTIVATE_VERSION waits until the stream's last record is out. The SDK sends it before
    the first record; a loader with hard delete (target-postgres) then drops the previous
    sync's rows at once, so a sync that fails half-way would leave the warehouse with half
    the tenant. Sent after the last record, a failed sync activates nothing and the
    previous table stays whole.

    RECORDs skip the SDK's per-record steps when those cannot change them: our records are
    built field by field from the schema, so with every property selected and no stream
    map or flattening, removing deselected properties, conforming types and mapping all
    hand the record back as it was. Otherwise the SDK's path runs as usual.
    """

    # The time the current page was fetched: the records' time_extracted.
    extracted_at: datetime | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The SDK's table version is this // 1000: whole seconds, so two runs in one
        # second would share a version and the second would delete nothing. Scaled, the
        # version is the run's start in milliseconds.
        self._initialized_at *= 1000
        self._pending_version: int | None = None

    def _write_activate_version_message(self, full_table_version: int) -> None:
        self._pending_version = full_table_version

    def activate_pending_version(self) -> None:
        """Send the ACTIVATE_VERSION held back during the run, if any (once)."""
        if self._pending_version is not None:
            super()._write_activate_version_message(self._pending_version)
            self._pending_version = None

    # A stream synced once per run activates when that sync has written everything:
    # its last RECORD, or its last BATCH. role_memberships, synced once per page, turns
    # this off and activates after the last page (finish_run).
    activates_when_synced = True

    def _sync_records(
        self, context: Context | None = None, *, write_messages: bool = True
    ) -> Generator[dict[str, Any], Any, Any]:
        yield from super()._sync_records(context, write_messages=write_messages)
        if write_messages and self.activates_when_synced:
            self.activate_pending_version()

    def _sync_batches(self, batch_config: BatchConfig, context: Context | None = None) -> None:
        super()._sync_batches(batch_config, context=context)
        if self.activates_when_synced:
            self.activate_pending_version()

    @cached_property
    def _records_pass_through(self) -> bool:
        maps = self.stream_maps
        return (
            len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and not maps[0].flattening_enabled
            and all(self.mask[("properties", name)] for name in self.schema["properties"])
        )

    def _write_record_message(self, record: dict[str, Any]) -> None:
        if not self._records_pass_through:
            super()._write_record_message(record)
            return
        stream = self.stream_maps[0].stream_alias
        extracted_at = self.extracted_at or utc_now()
        writer = self._tap.message_writer
        if isinstance(writer, BufferedMsgSpecWriter):
            writer.write_record(stream, record, self._stream_version, extracted_at)
        else:
            self._tap.write_message(
                RecordMessage(
                    stream, record, version=self._stream_version, time_extracted=extracted_at
                )
            )
        self.state_manager.is_flushed = False


class UsersStream(FullTableStream, SpanningStream):
    """Every user of the tenant: `GET /external/users`, page by page."""

    name = "users"
    path = "/users"
    primary_keys: ClassVar[list[str]] = ["msId"]
    replication_key = None
    # Records are built field by field from the contract, already JSON-typed.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    # There are no bookmarks to save mid-stream: one STATE at the end, whatever the size.
    STATE_MSG_FREQUENCY = 2**62

    schema = th.PropertiesList(
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
    ).to_dict()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unknown_tags: set[str] = set()
        self._page_number = 0
        # msIds of the previous page: keyset pages must not overlap (see _page_users).
        self._previous_page: set[str] = set()

    def get_url_params(self, context: Any, next_page_token: str | None) -> dict[str, Any]:
        # Only the first request: later ones follow nextLink, which carries these.
        return {"size": self.settings.page_size, "status": "false"}

    def parse_response(self, response: requests.Response) -> Iterable[dict[str, Any]]:
        """Yield the page's records, then hand their memberships to the child stream."""
        self._page_number += 1
        self.extracted_at = utc_now()
        users = self._page_users(page_of(response).users)
        # Built before the users are written: writing may strip deselected properties.
        memberships = self._page_memberships(users)
        for user in users:
            yield user.record
        # Runs once the consumer has written the page's last user.
        if memberships is not None:
            self._memberships_stream.write_page(memberships, self._page_number)

    def _page_users(self, raw_users: list[Any]) -> list[UserRecord]:
        """Records of one page; an overlap with the previous page is dropped, once.

        Keyset pages should never overlap. If a page repeats users of the page before
        (an offset that is inclusive, say), the repeats are dropped with a warning so
        that no user is emitted twice. A page of nothing but repeats means pagination
        is not advancing, and a page listing one msId twice cannot be trusted: both
        fail the sync.
        """
        users: list[UserRecord] = []
        seen: set[str] = set()
        repeats = 0
        for raw in raw_users:
            try:
                user = user_record(raw)
            except UserError as exc:
                raise SpanningError(f"Page {self._page_number} of users: {exc}") from None
            msid = user.record["msId"]
            if msid in seen:
                raise SpanningError(
                    f"Page {self._page_number} of users lists msId {msid} twice; "
                    "the response cannot be trusted"
                )
            seen.add(msid)
            if msid in self._previous_page:
                repeats += 1
                continue
            if user.unmatched_tags:
                self._note_unknown_tags(user.unmatched_tags)
            users.append(user)
        if repeats:
            if not users:
                raise SpanningError(
                    f"Page {self._page_number} of users only repeats the previous page: "
                    "pagination is not advancing"
                )
            self.logger.warning(
                "Page %d of users repeats %d users of the previous page; they are emitted once",
                self._page_number,
                repeats,
            )
        self._previous_page = seen
        return users

    def _note_unknown_tags(self, tags: list[str]) -> None:
        for tag in tags:
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

    @cached_property
    def _memberships_stream(self) -> RoleMembershipsStream:
        return next(c for c in self.child_streams if isinstance(c, RoleMembershipsStream))

    def _page_memberships(self, users: list[UserRecord]) -> list[dict[str, Any]] | None:
        """The page's memberships, or None when no one asked for them."""
        child = self._memberships_stream
        if not (child.selected or child.has_selected_descendents):
            return None
        child.extracted_at = self.extracted_at
        # As the SDK does for children: a user a stream map filters out has none. A map
        # that removes the users stream from the output removes no user, though.
        primary_map = self.stream_maps[0]
        keep = (
            _keep_all
            if isinstance(primary_map, RemoveRecordTransform)
            else primary_map.get_filter_result
        )
        return [
            membership
            for user in users
            if keep(user.record)
            for membership in membership_records(user)
        ]

    def generate_child_contexts(
        self, record: dict[str, Any], context: Any
    ) -> Iterable[dict[str, Any] | None]:
        # No child sync per user: parse_response hands the child a page at a time.
        return ()

    def get_records(self, context: Any) -> Iterable[dict[str, Any]]:
        yield from super().get_records(context)
        # Every page is in: the last user and its memberships have been written.
        self._memberships_stream.finish_run()


class RoleMembershipsStream(FullTableStream):
    """Who holds which role: one record per (role, user), from the user's record."""

    name = "role_memberships"
    parent_stream_type = UsersStream
    primary_keys: ClassVar[list[str]] = ["roleId", "msId"]
    replication_key = None
    # The context is a page number, not a partition: keep no state per page.
    state_partitioning_keys: ClassVar[list[str]] = []
    activates_when_synced = False
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    schema = th.PropertiesList(
        th.Property("roleId", th.StringType, required=True),
        th.Property("msId", th.StringType, required=True),
        th.Property("userPrincipalName", th.StringType),
    ).to_dict()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._page: list[dict[str, Any]] = []
        self._synced = False
        self._schema_written = False  # BATCH mode syncs every page
        self._written_directly = 0
        self._holding_state = True

    def write_page(self, memberships: list[dict[str, Any]], page_number: int) -> None:
        """Emit one page of memberships.

        The first page goes through the SDK's sync: SCHEMA, table version, log lines.
        Later pages need none of that again, so their records are written directly
        (through the same _write_record_message, maps and all), which keeps the log to
        a few lines per run rather than per page. BATCH mode syncs every page: each
        page becomes a batch file.
        """
        if self._synced and self.selected and self.get_batch_config(self.config) is None:
            for membership in memberships:
                self._write_record_message(membership)
            self._written_directly += len(memberships)
            return
        self._synced = True
        self._page = memberships
        self.sync(context={"users_page": page_number})

    def get_records(self, context: Any) -> Iterable[dict[str, Any]]:
        records, self._page = self._page, []
        return records

    def _write_schema_message(self) -> None:
        if not self._schema_written:
            self._schema_written = True
            super()._write_schema_message()

    def _write_state_message(self) -> None:
        if not self._holding_state:
            super()._write_state_message()

    def finish_run(self) -> None:
        """After the last page: the stream's one STATE message and its ACTIVATE_VERSION."""
        if self._written_directly:
            self.logger.info(
                "Wrote %d more role_memberships records after the first page",
                self._written_directly,
            )
        self._holding_state = False
        self._write_state_message()
        self.activate_pending_version()


class RolesStream(FullTableStream):
    """The seven role tiers, whatever the tenant holds."""

    name = "roles"
    primary_keys: ClassVar[list[str]] = ["id"]
    replication_key = None

    schema = th.PropertiesList(
        th.Property("id", th.StringType, required=True),
        th.Property("name", th.StringType, required=True),
        th.Property("description", th.StringType, required=True),
    ).to_dict()

    def get_records(self, context: Any) -> Iterable[dict[str, Any]]:
        for role in ROLES:
            yield {"id": role.id, "name": role.name, "description": role.description}
