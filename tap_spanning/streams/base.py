"""What every stream shares: the run, when it is synced, when it activates, BATCH files.

Every stream is handed the run (`SyncRun`) it belongs to. A per-tenant stream
(`TenantStream`) declares which pass of the run it rides (tenant_pass.py): the
credentials pass, whose answer and what the stream fetches with it its records come
from, or the users pages. The run knows no stream; it asks the streams for its plan
(streams/plan.py).

A stream holding tenant data is activated (ACTIVATE_VERSION) only after its last
RECORD or BATCH, and only when every tenant completed (docs/many-tenants.md).

The streams are synced in the order of their `sync_phase`: tenant data first (no
record before every tenant's credentials are proven), then the static `roles`, then the
record of the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from singer_sdk import typing as th
from singer_sdk.helpers.conform import TypeConformanceLevel
from typing_extensions import override

from tap_spanning.backups import MAX_COUNT
from tap_spanning.sdk_seam import SeamStream

if TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context, Record

    from tap_spanning.client import TenantClient
    from tap_spanning.run import SyncRun
    from tap_spanning.tenant_pass import PagesFetch, Pass, TenantAnswer

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
        "ACTIVATE_VERSION version). Current rows: docs/many-tenants.md"
    ),
)


# Every count the tap emits: what every warehouse holds exactly (docs/many-tenants.md).
COUNT = th.IntegerType(minimum=0, maximum=MAX_COUNT)


def pages_limit(record_limit: int | None) -> int | None:
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
        # The run's: the table version and every record's sync_version are one number.
        return self.run.version

    @property
    def wanted(self) -> bool:
        """True when the catalog asks for this stream, or for one of its children."""
        return self.selected or self.has_selected_descendents

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

    def records_out(self) -> None:
        """Every record of the run is written (its RECORD or BATCH messages are out):
        what a stream's state covers may be written now (streams/history.py). Nothing by
        default."""

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
        # has a run and a summary line, even roles alone. The users pages pass starts
        # with it.
        self.run.preflight(page_limit=pages_limit(limit))
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
        self.records_out()
        if self.tenant_data_complete():
            self.activate_version()

    @override
    def get_batches(self, batch_config: Any, context: Context | None = None) -> Iterable[Any]:
        yield from super().get_batches(batch_config, context)
        # The SDK wrote each BATCH message before asking for the next: all are out.
        self.records_out()
        if self.tenant_data_complete():
            self.activate_version()


class TenantStream(FullTableStream):
    """A stream of every tenant's data: it rides one pass of the run (tenant_pass.py).

    Riding the credentials pass, its records come from each tenant's `TenantAnswer`
    (`self.run.answers()`): the counters, or what its `with_credentials` fetched. Riding
    the users pages, they come from each page of users (streams/users.py).
    """

    # The pass the stream rides: every per-tenant stream class declares its own.
    rides: ClassVar[Pass]
    # When a tenant fails in the pass, the log line says it failed in the stream that
    # names the pass (one stream a pass).
    names_its_pass: ClassVar[bool] = False
    # What the run's closing line calls this stream's records, if it counts them.
    tally: ClassVar[str | None] = None

    def with_credentials(self, client: TenantClient, answer: TenantAnswer) -> None:
        """In the tenant's worker, once its credentials answered: fetch what this
        stream's records come from (its client call), into `answer.fetched[self.name]`.
        Called only when the stream is wanted. Nothing by default."""

    def pages_fetch(self) -> PagesFetch | None:
        """The users pages pass, if this stream leads it (built in the writer's thread,
        when the run begins). None by default."""
        return None
