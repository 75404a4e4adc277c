"""Which day is today for the backup streams: the server's, unless its clock is off.

The backup window ends on the day the server counts as today, so that a tenant whose
host runs a little ahead of or behind this machine is asked for the days it holds. A
`Date` header more than a day from this machine's clock is a broken or lying clock,
not a time zone: the window asked would be decades off, so this machine's clock is
used instead (docs/many-tenants.md and docs/backup-health.md).
"""

from __future__ import annotations

import contextlib
import email.utils
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

# How far the server's clock may be from this machine's before it is not trusted, and a
# margin for the header's whole seconds and the time between the server writing it and
# the tap reading it (a busy machine), so that a server exactly a day behind is within.
MAX_CLOCK_SKEW = timedelta(days=1)
_READING_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True)
class Today:
    """The day the backup window ends, and the server's clock when it was not trusted."""

    day: date
    distrusted: datetime | None = None


def backup_today(server_date: str | None, now: datetime) -> Today:
    """Today (UTC) by the server's `Date` header when it is within MAX_CLOCK_SKEW of
    `now` (this machine's clock, aware), else by `now`."""
    moment = _parsed(server_date)
    if moment is None:
        return Today(now.astimezone(timezone.utc).date())
    if abs(moment - now) > MAX_CLOCK_SKEW + _READING_MARGIN:
        return Today(now.astimezone(timezone.utc).date(), distrusted=moment)
    return Today(moment.astimezone(timezone.utc).date())


def _parsed(server_date: str | None) -> datetime | None:
    if not server_date:
        return None
    with contextlib.suppress(TypeError, ValueError, IndexError, OverflowError):
        moment = email.utils.parsedate_to_datetime(server_date)
        if moment.tzinfo is not None:
            return moment
    return None
