"""Backup dates written as ISO date-times read the same on every supported Python: 3.10's
datetime.fromisoformat refuses fractions of other than 3 or 6 digits and offsets without
a colon, which 3.11 reads (README, "Python versions")."""

from __future__ import annotations

import pytest

from tap_spanning.backups import backup_date


@pytest.mark.parametrize(
    ("sent", "day"),
    [
        ("2026-12-04T23:30:00.1234567Z", "2026-12-04"),
        ("2026-12-04T23:30:00.1Z", "2026-12-04"),
        ("2026-12-04T23:30:00+0000", "2026-12-04"),
        ("2026-12-04T23:30:00-0500", "2026-12-05"),  # 04:30 UTC the next day
        ("2026-12-04T00:30:00.12+0100", "2026-12-03"),  # 23:30 UTC the day before
        ("2026-12-04T23:30:00.123456789-05:00", "2026-12-05"),
        ("2026-12-04 10:00:00", "2026-12-04"),
    ],
)
def test_iso_date_times_in_every_spelling(sent: str, day: str) -> None:
    assert backup_date(sent) == day
