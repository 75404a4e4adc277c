"""The streams, by family: what every stream shares (base), the users pages (users) and
the role sets they keep (role_history), the backup status (backups), the tenants' own
(tenants); and the run's plan made from them.

A new per-tenant stream is one class in its family's module, added to STREAM_TYPES
(docs/development.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tap_spanning.streams.backups import BackupSummariesStream, UserBackupsStream
from tap_spanning.streams.base import STATIC_PHASE, FullTableStream, TenantStream
from tap_spanning.streams.history import SendsChangedDays
from tap_spanning.streams.plan import run_plan
from tap_spanning.streams.role_history import RoleMembershipHistoryStream
from tap_spanning.streams.tenants import RolesStream, TenantsStream, TenantSyncsStream
from tap_spanning.streams.users import RoleMembershipsStream, UsersStream

if TYPE_CHECKING:
    from singer_sdk import Stream

__all__ = [
    "STREAM_TYPES",
    "BackupSummariesStream",
    "FullTableStream",
    "RoleMembershipHistoryStream",
    "RoleMembershipsStream",
    "RolesStream",
    "TenantStream",
    "TenantSyncsStream",
    "TenantsStream",
    "UserBackupsStream",
    "UsersStream",
    "history_streams",
    "run_plan",
    "sync_order",
    "tallies",
]

# Every stream the tap discovers, in its order.
STREAM_TYPES: tuple[type[FullTableStream], ...] = (
    UsersStream,
    RoleMembershipsStream,
    RoleMembershipHistoryStream,
    UserBackupsStream,
    TenantsStream,
    BackupSummariesStream,
    RolesStream,
    TenantSyncsStream,
)


def tallies() -> dict[str, str]:
    """The streams the run's closing line counts: stream name to what its records are."""
    return {
        vars(stream_type)["name"]: stream_type.tally
        for stream_type in STREAM_TYPES
        if issubclass(stream_type, TenantStream) and stream_type.tally is not None
    }


def history_streams() -> set[str]:
    """The streams that send only the days that changed, keeping digests in the state."""
    return {
        vars(stream_type)["name"]
        for stream_type in STREAM_TYPES
        if issubclass(stream_type, SendsChangedDays)
    }


def sync_order(streams: dict[str, Stream]) -> dict[str, Stream]:
    """`streams` in the order they are synced: by phase, then as in STREAM_TYPES.

    A reordering, never a filter: no stream can be left out of the sync.
    """

    def rank(item: tuple[str, Stream]) -> tuple[int, int]:
        stream = item[1]
        declared = type(stream) in STREAM_TYPES
        position = STREAM_TYPES.index(type(stream)) if declared else len(STREAM_TYPES)
        return getattr(stream, "sync_phase", STATIC_PHASE), position

    return dict(sorted(streams.items(), key=rank))
