"""Data of a tenant's that the tap cannot trust: the failures the record shaping raises.

Each kind carries the few words the run's last line gives for a tenant it failed
(docs/operations.md, "Failure behaviour"), so that the run (run.py) reports any of them, a new
stream's included, without knowing it.
"""

from __future__ import annotations

from typing import ClassVar


class TenantDataError(ValueError):
    """A tenant's answer that cannot be turned into records: it fails the tenant alone,
    and asking again would not change it. The message names what is wrong, scrubbed
    again by the run before it is shown."""

    reason: ClassVar[str] = "unreadable data"
