"""What a history stream last sent of each tenant's days: one digest per tenant and day.

`user_backups` and `backup_summaries` keep, in the Singer state, a digest of each day they
sent of each tenant (docs/backup-health.md, "Only what changed"). The next run sends a day
again only when its digest differs, or when it was never sent: the pages read are the
same, but the rows written and loaded are those of the days that changed.

A day's digest is the sum, modulo 2**64, of a 64-bit BLAKE2b hash of each record of that
day as it is encoded, `sync_version` left out (it changes every run): the same records in
any order give the same digest, and one field of one record changed gives another. Pure
functions and plain data; the streams decide when a digest is kept (streams/history.py).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

# The bookmark key, within each history stream's bookmark, that holds its digests:
# {"bookmarks": {"user_backups": {"sent_days": {tenant_id: {day: digest}}}}}.
SENT_DAYS = "sent_days"
_DIGEST_BYTES = 8
_MODULUS = 1 << (8 * _DIGEST_BYTES)
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_DIGEST = re.compile(r"[0-9a-f]{16}")
# A bookmark named in a message only when its name looks like a stream's: never a key.
_STREAM_NAME = re.compile(r"[a-z_]{1,40}")

# A history that sends a tenant's whole set at once (role_membership_history) keeps one
# digest a tenant, under this key in place of a day: {tenant_id: {"set": digest}}.
WHOLE_SET = "set"
# The digest of no records: a set that became empty is a change too.
EMPTY_DIGEST = f"{0:016x}"

# A tenant's days and their digests: {"2026-12-04": "3f09c1d2a4b5e6f7", ...}.
DayDigestMap = dict[str, str]


def version_suffix(sync_version: int) -> bytes:
    """How an encoded record ends: its last field is the run's `sync_version`
    (records.py and backups.py build every record so)."""
    return b',"sync_version":%d}' % sync_version


class DayDigests:
    """The digests of one tenant's days, summed record by record as they are encoded."""

    def __init__(self, sync_version: int) -> None:
        self._suffix = version_suffix(sync_version)
        self._sums: dict[str, int] = {}

    def add(self, day: str, encoded: bytes) -> None:
        """Count one record of `day`, as msgspec encoded it (sync_version last)."""
        if not encoded.endswith(self._suffix):  # built otherwise: not one of the tap's
            raise ValueError("a history record must end with the run's sync_version")
        content = encoded[: -len(self._suffix)]
        value = int.from_bytes(hashlib.blake2b(content, digest_size=_DIGEST_BYTES).digest(), "big")
        self._sums[day] = (self._sums.get(day, 0) + value) % _MODULUS

    def digests(self) -> DayDigestMap:
        """Each day counted, and its digest (16 hex digits)."""
        return {day: f"{total:016x}" for day, total in sorted(self._sums.items())}


def days_to_send(before: Mapping[str, str], now: Mapping[str, str]) -> set[str]:
    """The days of `now` whose digest is not the one sent before (new days included)."""
    return {day for day, digest in now.items() if before.get(day) != digest}


def sent_days_problem(value: object) -> str | None:
    """What is wrong with a bookmark's `sent_days`, in words that quote none of it
    (None: it is well formed)."""
    if not isinstance(value, dict):
        return "must be an object of tenants"
    for days in value.values():
        if not isinstance(days, dict):
            return "must map each tenant to an object of days"
        for day, digest in days.items():
            known_day = isinstance(day, str) and (day == WHOLE_SET or _DAY.fullmatch(day))
            if not (known_day and isinstance(digest, str) and _DIGEST.fullmatch(digest)):
                return (
                    f"must map each day (YYYY-MM-DD, or {WHOLE_SET!r}) to a digest of 16 hex digits"
                )
    return None


def state_problem(state: Mapping[str, Any]) -> str | None:
    """The first bookmark of a Singer state whose `sent_days` is malformed, and what is
    wrong with it (None: none is)."""
    bookmarks = state.get("bookmarks", {})
    if not isinstance(bookmarks, dict):
        return None  # the state's own shape is json_files.py's to judge
    for stream, bookmark in bookmarks.items():
        if isinstance(bookmark, dict) and SENT_DAYS in bookmark:
            problem = sent_days_problem(bookmark[SENT_DAYS])
            if problem is not None:
                name = f"bookmarks.{stream}" if _STREAM_NAME.fullmatch(stream) else "a bookmark"
                return f"{name}.{SENT_DAYS} {problem}"
    return None
