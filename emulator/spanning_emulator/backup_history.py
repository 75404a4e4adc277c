"""The backup history of a tenant: which days Spanning keeps, and a deterministic model
of every backup in them.

The model (`BackupHistory`) decides, for every backed-up account, day and workload,
whether the backup succeeded, was partial or failed and how many items it moved; the
tenant summary of a per-user workload is the sum over its accounts, and SharePoint
sites (SPSITE) have counts of their own. A (tenant, day) always has the same history,
whatever "today" is: only which days are kept (today and the 6 before it, UTC)
depends on today. A `settle_day` redraws that one day, as a backup still running
settles into its final counts.

How the history is spelled on the wire, and the records a tap must make of it, are in
backups.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from .tenant import DEFAULT_TENANT_ID, sort_key

# Served in this order (alphabetical), so a summary is ordered by (date, type).
BACKUP_TYPES: tuple[str, ...] = ("CALENDAR", "CONTACT", "DRIVE", "MAIL", "SPSITE")
USER_BACKUP_TYPES: tuple[str, ...] = ("CALENDAR", "CONTACT", "DRIVE", "MAIL")
KEPT_DAYS = 7  # today and the 6 days before it, UTC
DATA_FIELDS: tuple[str, ...] = ("created", "deleted", "failed", "total", "attempts")

_DAY_MS = 86_400_000
_EPOCH = dt.date(1970, 1, 1)
# Items moved by one account's (or one site's) backup on an ordinary day, at most.
_SCALE = {"MAIL": 120, "CALENDAR": 12, "CONTACT": 4, "DRIVE": 40, "SPSITE": 300}
_CHRONIC_PER_MILLE = 30  # about 3% of backed-up accounts fail one workload every day
_FLAKY_DRIVE_PER_MILLE = 100  # about 10% of accounts are sometimes partial on DRIVE
_FLAKY_DRIVE_DAYS = 96  # /256: such an account is partial on DRIVE on ~37% of days

Shape = Literal["full", "null", "absent", "partial"]
DataShape = tuple[Shape, tuple[str, ...]]  # how much of backup.data is sent: its fields


def utc_today() -> dt.date:
    """Today's date in UTC."""
    return dt.datetime.now(dt.timezone.utc).date()


def as_day(value: dt.date) -> dt.date:
    """A date (a datetime's date part)."""
    return value.date() if isinstance(value, dt.datetime) else value


def kept_days(today: dt.date) -> list[dt.date]:
    """The days Spanning still keeps on `today`, oldest first."""
    return [today - dt.timedelta(days=back) for back in range(KEPT_DAYS - 1, -1, -1)]


def trailing_days(today: dt.date, days: int = KEPT_DAYS) -> list[dt.date]:
    """The last `days` days (1..7), today included, oldest first: the tap's window."""
    if not 1 <= days <= KEPT_DAYS:
        raise ValueError(f"days must be 1..{KEPT_DAYS}, not {days}")
    return kept_days(today)[KEPT_DAYS - days :]


def day_start_ms(day: dt.date) -> int:
    """Epoch milliseconds of the day's UTC midnight."""
    return (day - _EPOCH).days * _DAY_MS


def window_days(start: int | None, end: int | None, today: dt.date) -> list[dt.date]:
    """Kept days that overlap [start, end] (epoch ms, both inclusive), oldest first.

    Neither bound: today only. One bound: unbounded on the other side.
    """
    if start is None and end is None:
        return [today]
    low = start if start is not None else -(1 << 80)
    high = end if end is not None else 1 << 80
    return [
        day
        for day in kept_days(today)
        if day_start_ms(day) <= high and day_start_ms(day) + _DAY_MS > low
    ]


def _digest(*parts: object) -> bytes:
    text = "|".join(map(str, parts))
    return hashlib.blake2b(text.encode("utf-8"), digest_size=32).digest()


def _number(*parts: object) -> int:
    return int.from_bytes(_digest(*parts)[:8], "big")


class Outcome(NamedTuple):
    """One backup (of an account, a site, or a whole tenant's summed): accounts or
    sites by result, and the items it moved."""

    successful: int
    partial: int
    failed: int
    created: int
    deleted: int
    failed_items: int
    items_total: int
    attempts: int

    @property
    def total(self) -> int:
        """Accounts or sites backed up: successful + partial + failed."""
        return self.successful + self.partial + self.failed

    def data(self) -> dict[str, int]:
        """backup.data in full."""
        return {
            "created": self.created,
            "deleted": self.deleted,
            "failed": self.failed_items,
            "total": self.items_total,
            "attempts": self.attempts,
        }


def _add(outcomes: Sequence[Outcome]) -> Outcome:
    sums = [0] * 8
    for one in outcomes:
        sums[0] += one.successful
        sums[1] += one.partial
        sums[2] += one.failed
        sums[3] += one.created
        sums[4] += one.deleted
        sums[5] += one.failed_items
        sums[6] += one.items_total
        sums[7] += one.attempts
    return Outcome(*sums)


def _one(kind: str, result: str, draws: bytes) -> Outcome:
    """One account's or site's backup of one workload: `draws` are 3 random bytes."""
    scale = _SCALE[kind]
    if result == "failed":
        failed_items = draws[2] % 4  # often 0: the account itself could not be reached
        return Outcome(0, 0, 1, 0, 0, failed_items, failed_items, 3)
    created = draws[0] * scale // 255
    deleted = draws[1] * scale // 1020
    failed_items = 1 + draws[2] % 5 if result == "partial" else 0
    attempts = 2 if result == "partial" else 1
    total = created + deleted + failed_items
    if result == "partial":
        return Outcome(0, 1, 0, created, deleted, failed_items, total, attempts)
    return Outcome(1, 0, 0, created, deleted, failed_items, total, attempts)


def _result(draw: int) -> str:
    """An ordinary account's day: ~1% failed, ~1.5% partial, else successful."""
    if draw >= 253:
        return "failed"
    if draw >= 249:
        return "partial"
    return "successful"


@dataclass(frozen=True)
class _Account:
    """A user as the history knows it: in API order, backed up or not."""

    key: tuple[str, str]
    ms_id: str  # as text, for the draws
    user: Mapping[str, object]
    user_id: int
    backed_up: bool  # on some day: an assigned, active user Spanning has not left out
    stops_on: dt.date | None  # no backups on this day and later (None: never stops)
    chronic: str | None  # the workload that fails every day
    flaky_drive: bool
    empty_when_none: bool  # not backed up: "backupSummary": [] (else no key at all)

    def backs_up_on(self, day: dt.date) -> bool:
        """Whether Spanning backed this account up on `day`."""
        return self.backed_up and (self.stops_on is None or day < self.stops_on)


class BackupHistory:
    """The backup history of one tenant's users (and its SharePoint sites).

    Deterministic: each account's days are drawn from its msId and the date; the
    tenant's (sites, which days' data is null, absent or partial) from `tenant_id`.
    Unassigned or archived users are not backed up and have no items; nor are the msIds
    of `never_backed_up` (a user Spanning misses), nor, from its day on, a user of
    `stopped_from` (msId -> the first day without backups). The tenant's summaries
    sum the accounts backed up that day, so both endpoints agree.
    """

    def __init__(
        self,
        users: Sequence[Mapping[str, object]],
        tenant_id: str = DEFAULT_TENANT_ID,
        *,
        never_backed_up: frozenset[str] = frozenset(),
        stopped_from: Mapping[str, dt.date] | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.never_backed_up = frozenset(never_backed_up)
        self.stopped_from = dict(stopped_from or {})
        self.accounts = [self._account(user) for user in sorted(users, key=sort_key)]
        self.by_key = {account.key: account for account in self.accounts}
        self.backed_up = [account for account in self.accounts if account.backed_up]
        count = len(self.backed_up)
        spare = _number("sites", tenant_id) % 4
        self.sites = 0 if count == 0 else 1 + count // 12 + spare
        self._lock = threading.Lock()
        self._days: dict[tuple[dt.date, bool], dict[str, Outcome]] = {}

    def _account(self, user: Mapping[str, object]) -> _Account:
        key = sort_key(user)
        ms_id, upn = key[1], key[0]
        draw = _digest("account", self.tenant_id, ms_id, upn)
        backed_up = (
            user.get("assigned") is True
            and user.get("isArchive") is not True
            and ms_id not in self.never_backed_up
        )
        chronic_draw = int.from_bytes(draw[0:2], "big") % 1000
        chronic = (
            USER_BACKUP_TYPES[draw[2] % len(USER_BACKUP_TYPES)]
            if chronic_draw < _CHRONIC_PER_MILLE
            else None
        )
        flaky = int.from_bytes(draw[3:5], "big") % 1000 < _FLAKY_DRIVE_PER_MILLE
        user_id = 1_000_000 + int.from_bytes(draw[5:9], "big") % 9_000_000_000
        stops_on = self.stopped_from.get(ms_id)
        return _Account(
            key, ms_id, user, user_id, backed_up, stops_on, chronic, flaky, draw[9] % 2 == 0
        )

    # -- the model

    def account_day(
        self, account: _Account, day: dt.date, *, settled: bool = False
    ) -> dict[str, tuple[Outcome, DataShape]]:
        """One backed-up account's backups of `day` by per-user workload, and how much
        of each one's data its item sends (full most of the time)."""
        draws = _digest("day", self.tenant_id, account.ms_id, day.isoformat(), settled)
        outcomes: dict[str, tuple[Outcome, DataShape]] = {}
        for index, kind in enumerate(USER_BACKUP_TYPES):
            mine = draws[4 * index : 4 * index + 4]
            if account.chronic == kind:
                result = "failed"
            elif kind == "DRIVE" and account.flaky_drive and mine[0] < _FLAKY_DRIVE_DAYS:
                result = "partial"
            else:
                result = _result(mine[0])
            shape_draw = int.from_bytes(draws[16 + 2 * index : 18 + 2 * index], "big")
            turn = shape_draw % 60
            shape = _shape(turn if turn < 3 else 9, shape_draw // 60)
            outcomes[kind] = (_one(kind, result, mine[1:]), shape)
        return outcomes

    def _sites(self, day: dt.date, settled: bool) -> Outcome:
        sites: list[Outcome] = []
        for site in range(self.sites):
            draws = _digest("site", self.tenant_id, site, day.isoformat(), settled)
            # One site of a larger tenant never backs up.
            result = "failed" if site == 0 and self.sites >= 5 else _result(draws[0])
            sites.append(_one("SPSITE", result, draws[1:4]))
        return _add(sites)

    def tenant_outcomes(self, day: dt.date, *, settled: bool = False) -> dict[str, Outcome]:
        """The tenant's backups of `day`, by workload: per-user ones summed over accounts."""
        cache_key = (day, settled)
        with self._lock:
            cached = self._days.get(cache_key)
        if cached is not None:
            return cached
        per_account = [
            self.account_day(account, day, settled=settled)
            for account in self.backed_up
            if account.backs_up_on(day)
        ]
        summed = {
            kind: _add([outcomes[kind][0] for outcomes in per_account])
            for kind in USER_BACKUP_TYPES
        }
        summed["SPSITE"] = self._sites(day, settled)
        result = {kind: summed[kind] for kind in BACKUP_TYPES}
        with self._lock:
            self._days[cache_key] = result
        return result

    # -- how much of backup.data is sent

    def tenant_data_shape(self, day: dt.date, kind: str) -> DataShape:
        """Whether the summary's data is full, null, absent or partial (and its fields).

        Each shape shows up in every 7-day window of every tenant.
        """
        offset = _number("shape", self.tenant_id)
        turn = (day.toordinal() + 3 * BACKUP_TYPES.index(kind) + offset) % 10
        return _shape(turn, _number("fields", self.tenant_id, day.isoformat(), kind))


# The partial shapes: every non-empty subset of the fields but the whole set.
_SUBSETS = [
    tuple(name for bit, name in enumerate(DATA_FIELDS) if mask & (1 << bit))
    for mask in range(1, (1 << len(DATA_FIELDS)) - 1)
]


def _shape(turn: int, fields_draw: int) -> DataShape:
    """turn 0: null, 1: absent, 2: partial (some fields missing), else full."""
    if turn == 0:
        return "null", ()
    if turn == 1:
        return "absent", ()
    if turn == 2:
        return "partial", _SUBSETS[fields_draw % len(_SUBSETS)]
    return "full", DATA_FIELDS


def data_fields(outcome: Outcome, shape: Shape, fields: tuple[str, ...]) -> dict[str, int] | None:
    """The data actually sent: None when null or absent."""
    if shape in ("null", "absent"):
        return None
    full = outcome.data()
    return {name: full[name] for name in fields}
