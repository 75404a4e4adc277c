"""The digest of a tenant's day (tap_spanning/day_digests.py): what changes it, and what not."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from tap_spanning.day_digests import (
    DayDigests,
    days_to_send,
    sent_days_problem,
    state_problem,
)

ENCODE = msgspec.json.Encoder().encode


def record(msid: str, day: str, failed: int, version: int) -> dict[str, Any]:
    return {"tenant_id": "t1", "msId": msid, "date": day, "type": "MAIL", "failed": failed,
            "sync_version": version}  # fmt: skip


def digests(records: list[dict[str, Any]], version: int) -> dict[str, str]:
    found = DayDigests(version)
    for one in records:
        found.add(one["date"], ENCODE(one))
    return found.digests()


def test_a_day_has_one_digest_whatever_the_order_and_the_run() -> None:
    night_1 = [record("a", "2026-12-01", 0, 111), record("b", "2026-12-01", 1, 111)]
    night_2 = [record("b", "2026-12-01", 1, 222), record("a", "2026-12-01", 0, 222)]
    assert digests(night_1, 111) == digests(night_2, 222)
    (digest,) = digests(night_1, 111).values()
    assert len(digest) == 16
    assert int(digest, 16) >= 0


def test_one_field_one_record_or_a_record_more_changes_its_day_alone() -> None:
    base = [record("a", "2026-12-01", 0, 1), record("a", "2026-12-02", 0, 1)]
    before = digests(base, 1)
    changed = digests([record("a", "2026-12-01", 1, 1), base[1]], 1)
    assert days_to_send(before, changed) == {"2026-12-01"}
    more = digests([*base, record("b", "2026-12-02", 0, 1)], 1)
    assert days_to_send(before, more) == {"2026-12-02"}
    # A record twice is not the record once: the sum counts it twice.
    twice = digests([*base, base[0]], 1)
    assert days_to_send(before, twice) == {"2026-12-01"}
    # A day never sent is sent; a day sent and unchanged is not.
    assert days_to_send({}, before) == set(before)
    assert days_to_send(before, before) == set()


def test_a_record_not_ending_with_the_runs_version_is_refused() -> None:
    with pytest.raises(ValueError, match="sync_version"):
        DayDigests(5).add("2026-12-01", ENCODE(record("a", "2026-12-01", 0, 6)))


@pytest.mark.parametrize(
    ("sent", "problem"),
    [
        ({"t1": {"2026-12-01": "0123456789abcdef"}}, None),
        ({}, None),
        ([], "must be an object of tenants"),
        ({"t1": ["2026-12-01"]}, "must map each tenant to an object of days"),
        ({"t1": {"12/01/2026": "0123456789abcdef"}}, "must map each day (YYYY-MM-DD, or 'set')"),
        ({"t1": {"2026-12-01": "0123456789ABCDEF"}}, "a digest of 16 hex digits"),
        ({"t1": {"2026-12-01": 5}}, "a digest of 16 hex digits"),
    ],
)
def test_the_shape_of_sent_days(sent: object, problem: str | None) -> None:
    found = sent_days_problem(sent)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found
    state = {"bookmarks": {"user_backups": {"sent_days": sent}, "users": {}}}
    named = state_problem(state)
    assert (named is None) == (problem is None)
    if named is not None:
        assert named.startswith("bookmarks.user_backups.sent_days must")
