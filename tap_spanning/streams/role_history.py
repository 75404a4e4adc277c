"""`role_membership_history`: who held which role, kept across runs (docs/streams.md).

`role_memberships` is the current state: each run replaces it. This history keeps what it
forgets. Each tenant's whole role set (the same rows as `role_memberships`) is sent under
the run's `sync_version` when it differs from the set last sent (one digest a tenant in
the Singer state, streams/history.py), when it was never sent, or with `full_refresh`;
else nothing is sent for the tenant, and `tenant_syncs.role_set_sent` says which. The
warehouse compares consecutive sets of a tenant's complete runs for the grants and
revocations (the mart role_changes). Never activated: it is a history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from singer_sdk import typing as th
from typing_extensions import override

from tap_spanning.day_digests import EMPTY_DIGEST, WHOLE_SET, DayDigestMap
from tap_spanning.records import membership_records
from tap_spanning.streams.history import SendsChangedTenantDays

if TYPE_CHECKING:
    from singer_sdk.helpers.types import Record

    from tap_spanning.records import UserRecord


class RoleMembershipHistoryStream(SendsChangedTenantDays):
    """Each tenant's role set, sent again whenever it changed."""

    name = "role_membership_history"
    # Off unless asked for, like the backup histories (meltano.yml selects every stream).
    selected_by_default = False
    primary_keys: ClassVar[list[str]] = ["tenant_id", "sync_version", "roleId", "msId"]
    activates = False  # a history: ACTIVATE_VERSION would delete the sets sent before

    schema = th.PropertiesList(
        th.Property("tenant_id", th.StringType, required=True),
        th.Property("roleId", th.StringType, required=True),
        th.Property("msId", th.StringType, required=True),
        th.Property("userPrincipalName", th.StringType),
        th.Property(
            "sync_version",
            th.IntegerType,
            required=True,
            description="The run that sent this set (a set is every row of one version)",
        ),
    ).to_dict()

    @override
    def page_records(self, users: list[UserRecord]) -> list[Record]:
        return [membership for user in users for membership in membership_records(user)]

    @override
    def day_of(self, record: Record) -> str:
        return WHOLE_SET  # one digest for the tenant's whole set

    @override
    def end_tenant(self, tenant_id: str, *, complete: bool) -> None:
        super().end_tenant(tenant_id, complete=complete)
        if complete and self.wanted:
            sent = not self.sent_days.active or WHOLE_SET in self.sent_days.last_chosen
            self.run.tenants[tenant_id].sets_sent[self.name] = sent

    @override
    def tenant_digests(self, digests: DayDigestMap) -> DayDigestMap:
        # No role held by anyone is a set too: a change when the last one sent was not.
        return digests or {WHOLE_SET: EMPTY_DIGEST}
