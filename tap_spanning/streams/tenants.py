"""The tenants' own streams: `tenants` (their counters), `roles`, and `tenant_syncs`.

`tenants` rides the credentials pass: its records are each tenant's answer to
`GET /external/tenant`, which proves its credentials. `roles` is the same seven records
for every fleet. `tenant_syncs` is written last: how each tenant's part of the run went.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, ClassVar

from singer_sdk import typing as th
from typing_extensions import override

from tap_spanning.clock import backup_today
from tap_spanning.records import TENANT_COUNTERS
from tap_spanning.roles import ROLES
from tap_spanning.streams.backups import asked_backup_window
from tap_spanning.streams.base import (
    COUNT,
    RUN_RECORD_PHASE,
    STATIC_PHASE,
    SYNC_VERSION,
    FullTableStream,
    TenantStream,
)
from tap_spanning.streams.role_history import RoleMembershipHistoryStream
from tap_spanning.streams.users import RoleMembershipsStream, UsersStream
from tap_spanning.tenant_pass import Pass

if TYPE_CHECKING:
    from singer_sdk.helpers.types import Context, Record


# The license counters each tenant_syncs record carries (its column: the counter's
# name in GET /external/tenant), so that the warehouse keeps their history.
LICENSE_COUNTERS = {
    "licenses": "licenses",
    "archived_licenses": "archivedLicenses",
    "assigned_standard": "assignedStandard",
    "assigned_archive": "assignedArchive",
}
ROLE_HISTORY = RoleMembershipHistoryStream.name


class TenantsStream(TenantStream):
    """Each tenant's license counters: `GET /external/tenant`, one request a tenant."""

    name = "tenants"
    rides = Pass.CREDENTIALS
    names_its_pass = True
    primary_keys: ClassVar[list[str]] = ["tenant_id"]

    schema = th.PropertiesList(
        th.Property("tenant_id", th.StringType, required=True, description="Tenant, as set"),
        th.Property("name", th.StringType, description="The client's name, as set; null unset"),
        th.Property("region", th.StringType, description="Spanning region; null on loopback"),
        th.Property("base_url", th.StringType, description="The host the tenant is read from"),
        *(
            th.Property(name, COUNT, description=meaning)
            for name, meaning in TENANT_COUNTERS.items()
        ),
        th.Property("status", th.StringType, description="trial, paid, expired, or as sent"),
        SYNC_VERSION,
    ).to_dict()

    @override
    def stream_records(self, context: Context | None) -> Iterable[Record]:
        # The counters came with the credentials, before any record: no request here.
        for answer in self.run.answers():
            tenant = answer.tenant
            yield {
                "tenant_id": tenant.tenant_id,
                "name": tenant.name,
                "region": tenant.region,
                "base_url": str(tenant.origin),
                **answer.counters,
                "sync_version": self.run.version,
            }


class RolesStream(FullTableStream):
    """The seven role tiers, whatever the tenants hold."""

    name = "roles"
    primary_keys: ClassVar[list[str]] = ["id"]
    sync_phase = STATIC_PHASE

    schema = th.PropertiesList(
        th.Property("id", th.StringType, required=True),
        th.Property("name", th.StringType, required=True),
        th.Property("description", th.StringType, required=True),
    ).to_dict()

    @override
    def tenant_data_complete(self) -> bool:
        return True  # not tenant data: the same seven records for every fleet

    @override
    def stream_records(self, context: Context | None) -> Iterable[Record]:
        if self.run.settings.shard_index > 0:
            # Shard 0 writes them: two shards' loaders upserting the same keys at once
            # collide (docs/many-tenants.md, "Shards").
            return
        for role in ROLES:
            yield {"id": role.id, "name": role.name, "description": role.description}


class TenantSyncsStream(FullTableStream):
    """One record per tenant per run: how its part of the run went. A history.

    Written after every other record of the run, failed tenants included: it is how
    the warehouse learns which tenants are current (docs/many-tenants.md).
    """

    name = "tenant_syncs"
    primary_keys: ClassVar[list[str]] = ["tenant_id", "sync_version"]
    sync_phase = RUN_RECORD_PHASE
    activates = False  # a history: ACTIVATE_VERSION would delete the earlier runs

    schema = th.PropertiesList(
        th.Property("tenant_id", th.StringType, required=True, description="Tenant, as set"),
        SYNC_VERSION,
        th.Property("name", th.StringType, description="The client's name in this run, as set"),
        th.Property(
            "day",
            th.DateType,
            required=True,
            description=(
                "The tenant's today in this run (UTC): its host's Date header, unless more "
                "than a day from this machine's clock"
            ),
        ),
        th.Property("started_at", th.DateTimeType, description="The tenant's first request"),
        th.Property("finished_at", th.DateTimeType, description="The tenant's last request"),
        th.Property(
            "status",
            th.StringType,
            required=True,
            allowed_values=["complete", "failed"],
            description="complete: every selected stream completed for the tenant",
        ),
        th.Property("reason", th.StringType, description="Why it failed, in one line"),
        th.Property("users", th.IntegerType, required=True, description="Users read"),
        th.Property(
            "role_memberships", th.IntegerType, required=True, description="Memberships written"
        ),
        th.Property("requests", th.IntegerType, required=True, description="Requests made"),
        th.Property("retries", th.IntegerType, required=True, description="Tries retried"),
        th.Property(
            "backup_last_day",
            th.DateType,
            description=(
                "The last day of the backup window asked (UTC): the tenant's latest backup "
                "day, whatever dates the warehouse holds; null without backup streams"
            ),
        ),
        *(
            th.Property(column, COUNT, description=f"{TENANT_COUNTERS[counter]}, read this run")
            for column, counter in LICENSE_COUNTERS.items()
        ),
        th.Property(
            "role_set_sent",
            th.BooleanType,
            description=(
                "role_membership_history: true when this run sent the tenant's role set, "
                "false when it was unchanged; null when the tenant failed or it is not selected"
            ),
        ),
    ).to_dict()

    @override
    def stream_records(self, context: Context | None) -> Iterable[Record]:
        for part in self.run.tenants.values():
            failure = part.failure
            answer = part.answer
            window = None if answer is None else asked_backup_window(answer)
            counters = {} if answer is None else answer.counters
            if window is not None:
                day = window.days()[1]
            else:
                server_date = None if answer is None else answer.server_date
                day = backup_today(server_date, datetime.now(timezone.utc)).day.isoformat()
            yield {
                "tenant_id": part.tenant.tenant_id,
                "sync_version": self.run.version,
                "name": part.tenant.name,
                "day": day,
                "started_at": _iso(part.started_at),
                "finished_at": _iso(part.finished_at),
                "status": "complete" if failure is None else "failed",
                "reason": None if failure is None else failure.message,
                "users": part.written[UsersStream.name],
                "role_memberships": part.written[RoleMembershipsStream.name],
                "requests": part.requests,
                "retries": part.retries,
                "backup_last_day": None if window is None else window.days()[1],
                **{column: counters.get(counter) for column, counter in LICENSE_COUNTERS.items()},
                "role_set_sent": (
                    None if failure is not None else part.sets_sent.get(ROLE_HISTORY)
                ),
            }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")
