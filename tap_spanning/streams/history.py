"""The histories send only the days that changed (docs/backup-health.md, "Only what changed").

`user_backups` and `backup_summaries` are histories: the warehouse keeps every day they
ever sent. Each keeps, in its bookmark of the Singer state, a digest of each day it sent
of each tenant (day_digests.py). A run computes every day's digest from the records it
read, sends the days whose digest differs from the state it was given (and the days
never sent), and, once those records are out, writes the new digests to the state:
- a tenant that failed keeps the digests it had, so its days are sent again next time;
- a tenant no longer configured is dropped from the state;
- without a state (a first run, a cleared state) or with `full_refresh`, every day is
  sent, and the digests are written all the same;
- under `--test` (a record limit) every record read is sent and the state is untouched.

Meltano stores the states the loader hands back, and the loaders (target-duckdb,
target-postgres) hand one back only once they have committed the records before it, so a
loader that fails mid-night loses nothing: the state Meltano kept is the night before's
(tests/e2e/test_warehouse_nights.py kills one).
"""

from __future__ import annotations

import tempfile
from array import array
from collections.abc import Iterable, Iterator
from functools import cached_property
from typing import IO, TYPE_CHECKING

import msgspec
from typing_extensions import override

from tap_spanning.day_digests import SENT_DAYS, DayDigestMap, DayDigests, days_to_send
from tap_spanning.streams.base import FullTableStream
from tap_spanning.streams.users import PageChildStream

if TYPE_CHECKING:
    from collections.abc import Callable

    from singer_sdk.helpers.types import Record

# A tenant's records are held in memory up to this many bytes, then on disk.
SPOOL_BYTES_IN_MEMORY = 4 << 20


class SendsChangedDays(FullTableStream):
    """A history stream that sends a tenant's day only when it changed since it was sent."""

    @cached_property
    def sent_days(self) -> SentDays:
        """This run's digests, beside the ones it was given."""
        return SentDays(self)

    @override
    def records_out(self) -> None:
        self.sent_days.commit()


class SentDays:
    """What a history stream sent of each tenant's days, before this run and in it."""

    def __init__(self, stream: FullTableStream) -> None:
        self.stream = stream
        self.encode = msgspec.json.Encoder().encode
        # Each tenant's digests of this run, written to the state once its records are out.
        self.pending: dict[str, DayDigestMap] = {}
        self.days_read = 0
        self.days_sent = 0
        self.last_chosen: set[str] = set()  # the days `choose` chose last

    @property
    def active(self) -> bool:
        """False under `--test`: every record read is sent, and the state is untouched."""
        return self.stream.ABORT_AT_RECORD_COUNT is None

    @cached_property
    def before(self) -> dict[str, DayDigestMap]:
        """The digests of the state the run was given (none under `full_refresh`)."""
        if self.stream.run.settings.full_refresh:
            return {}
        sent = self.stream.stream_state.get(SENT_DAYS)
        return sent if isinstance(sent, dict) else {}

    def sent_before(self, tenant_id: str) -> set[str]:
        """The days of a tenant the state given has a digest of."""
        return set(self.before.get(tenant_id, {}))

    def choose(self, tenant_id: str, digests: DayDigestMap) -> set[str]:
        """The days of a tenant to send: those whose digest is not the one sent before.
        Its digests are kept for the state."""
        days = days_to_send(self.before.get(tenant_id, {}), digests)
        self.last_chosen = days
        self.pending[tenant_id] = digests
        self.days_read += len(digests)
        self.days_sent += len(days)
        return days

    def changed_records(self, tenant_id: str, records: list[Record]) -> list[Record]:
        """A tenant's records of the days that changed, from all its records at once."""
        if not self.active:
            return records
        digests = DayDigests(self.stream.run.version)
        for record in records:
            digests.add(record["date"], self.encode(record))
        days = self.choose(tenant_id, digests.digests())
        return [record for record in records if record["date"] in days]

    def commit(self) -> None:
        """Every record chosen is out: the digests join the state, which is written now.

        A tenant that failed in the run keeps the digests it had; a tenant no longer
        configured is dropped."""
        if not self.active:
            return
        run = self.stream.run
        failed = run.failures
        state = self.stream.stream_state
        kept = state.get(SENT_DAYS)
        before = kept if isinstance(kept, dict) else {}
        now: dict[str, DayDigestMap] = {}
        for tenant_id in run.tenants:
            if tenant_id in self.pending and tenant_id not in failed:
                now[tenant_id] = self.pending[tenant_id]
            elif tenant_id in before:
                now[tenant_id] = before[tenant_id]
        state[SENT_DAYS] = now
        self.pending.clear()
        if self.days_read:
            self.stream.logger.info(
                "%s: sent %d of %d tenant days read; %d unchanged since the state given",
                self.stream.name,
                self.days_sent,
                self.days_read,
                self.days_read - self.days_sent,
            )
        # Public: marks the stream's state as changed and writes a STATE message.
        self.stream.finalize_state_progress_markers(state)


class DaySpool:
    """One tenant's records of a history stream, as its pages come: each one's digest is
    counted; a record of a day sent before is held until the tenant's last page (in memory
    up to SPOOL_BYTES_IN_MEMORY, then on disk), when its day's digest says whether it is
    sent; a record of a day never sent is handed back to be written at once (it will be
    sent whatever its digest, so holding it would only cost time)."""

    def __init__(
        self, sync_version: int, sent_before: set[str], day_of: Callable[[Record], str]
    ) -> None:
        self.digests = DayDigests(sync_version)
        self._day_of_record = day_of
        self.encode = msgspec.json.Encoder().encode
        self._sent_before = sent_before
        self._held: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES_IN_MEMORY)  # noqa: SIM115  # closed in close()
        self._day_numbers: dict[str, int] = {}
        self._day_of = array("I")  # each held record's day, numbered as met

    def add(self, records: Iterable[Record]) -> list[Record]:
        """Count a page's records; hold those of days sent before, return the others."""
        now: list[Record] = []
        for record in records:
            day = self._day_of_record(record)
            encoded = self.encode(record)
            self.digests.add(day, encoded)
            if day not in self._sent_before:
                now.append(record)
                continue
            self._day_of.append(self._day_numbers.setdefault(day, len(self._day_numbers)))
            self._held.write(encoded)
            self._held.write(b"\n")
        return now

    def lines(self, days: set[str] | None = None) -> Iterator[bytes]:
        """The held records of `days` (None: every one held), in the order read."""
        self._held.seek(0)
        if days is None:
            yield from self._held
            return
        wanted = {number for day, number in self._day_numbers.items() if day in days}
        for line, number in zip(self._held, self._day_of, strict=True):
            if number in wanted:
                yield line

    def close(self) -> None:
        self._held.close()


class SendsChangedTenantDays(SendsChangedDays, PageChildStream):
    """A history fed by the users pages: a tenant's records of the days sent before are
    held (DaySpool) until its last page, then those of the days that changed are sent."""

    def day_of(self, record: Record) -> str:
        """The day a record counts in (a key of the digests)."""
        raise NotImplementedError

    @cached_property
    def _held(self) -> dict[str, DaySpool]:
        """Each tenant's records so far, until its last page."""
        return {}

    @override
    def take(self, tenant_id: str, records: list[Record]) -> None:
        if not self.sent_days.active:
            super().take(tenant_id, records)
            return
        held = self._held.get(tenant_id)
        if held is None:
            sent_before = self.sent_days.sent_before(tenant_id)
            held = self._held[tenant_id] = DaySpool(self.run.version, sent_before, self.day_of)
        now = held.add(records)
        if now:
            super().take(tenant_id, now)

    @override
    def end_tenant(self, tenant_id: str, *, complete: bool) -> None:
        if not self.wanted or not self.sent_days.active:  # under --test all was written
            return
        held = self._held.pop(tenant_id, None)
        try:
            if not complete:  # it failed: every record read is sent, and its digests stay
                days = None
            else:
                digests = {} if held is None else held.digests.digests()
                days = self.sent_days.choose(tenant_id, self.tenant_digests(digests))
            if held is not None:
                self.write_lines(tenant_id, held.lines(days))
        finally:
            if held is not None:
                held.close()

    def tenant_digests(self, digests: DayDigestMap) -> DayDigestMap:
        """The digests to compare of a tenant whose pages are all in: those counted."""
        return digests

    @override
    def end_run(self, complete: bool) -> None:
        # A tenant never said done (the run stopped early): what it read is sent.
        for tenant_id in list(self._held):
            self.end_tenant(tenant_id, complete=False)
        super().end_run(complete)
