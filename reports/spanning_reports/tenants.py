"""The fleet as the page lists it: each tenant's fleet_overview row beside its sync health.

Nothing here decides what needs attention: fleet_overview's flag columns and attention_score,
and the bands of attention_thresholds, do (transform/models/marts/marts.yml). This orders the
tenants by that score and hands the rows to the templates, which word each flag from its
column and the number beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from spanning_reports.marts import Marts, ReportError, Row
from spanning_reports.values import count, flag, num, text


@dataclass(frozen=True)
class Thresholds:
    """The one row of attention_thresholds: the bands the charts draw."""

    backup_target_pct: float
    backup_bad_pct: float
    global_admin_min: int
    global_admin_max: int
    global_admin_flag_at: int
    seat_use_max_pct: float
    failing_users_pattern_at: int

    @classmethod
    def from_row(cls, row: Row) -> Thresholds:
        return cls(
            backup_target_pct=num(row["backup_target_pct"]) or 0.0,
            backup_bad_pct=num(row["backup_bad_pct"]) or 0.0,
            global_admin_min=count(row["global_admin_min"]),
            global_admin_max=count(row["global_admin_max"]),
            global_admin_flag_at=count(row["global_admin_flag_at"]),
            seat_use_max_pct=num(row["seat_use_max_pct"]) or 0.0,
            failing_users_pattern_at=count(row["failing_users_pattern_at"]),
        )


def thresholds(marts: Marts) -> Thresholds:
    rows = marts["attention_thresholds"]
    if len(rows) != 1:
        raise ReportError(
            f"{marts.source}: attention_thresholds holds {len(rows)} rows, not one: build the "
            "marts again"
        )
    return Thresholds.from_row(rows[0])


@dataclass(frozen=True)
class Tenant:
    """One tenant: its fleet_overview row and its tenant_sync_health row."""

    tenant_id: str
    overview: Row
    sync: Row

    def get(self, column: str) -> float | None:
        return num(self.overview.get(column))

    def has(self, column: str) -> bool:
        """A flag column of fleet_overview."""
        return flag(self.overview.get(column))

    def __getitem__(self, column: str) -> Any:
        return self.overview.get(column)

    @property
    def name(self) -> str:
        """tenant_name, '' when the tenant was never named."""
        return text(self.overview.get("tenant_name"))

    @property
    def label(self) -> str:
        """As a chart names it: "name (id)", or the id of a tenant never named."""
        return f"{self.name} ({self.tenant_id})" if self.name else self.tenant_id

    @property
    def offboarded(self) -> bool:
        """No longer listed in the tap's tenants: its history kept, counted in no figure."""
        return flag(self.overview.get("is_offboarded"))

    @property
    def attention_score(self) -> int:
        return count(self.overview.get("attention_score"))

    @property
    def never_synced(self) -> bool:
        return self.has("is_never_synced")

    @property
    def sync_failing(self) -> bool:
        """Failing, but synced once: the never synced are a group of their own."""
        return self.has("is_sync_failing") and not self.never_synced


def build_tenants(marts: Marts) -> list[Tenant]:
    """Every tenant of fleet_overview, by attention_score (highest first), the offboarded
    last; tenant_id breaks ties."""
    syncs = {text(row["tenant_id"]): row for row in marts["tenant_sync_health"]}
    tenants = [
        Tenant(text(row["tenant_id"]), row, syncs.get(text(row["tenant_id"]), {}))
        for row in marts["fleet_overview"]
    ]
    return sorted(tenants, key=lambda t: (t.offboarded, -t.attention_score, t.tenant_id))


# The marts whose rows belong to a tenant and add up to the fleet's figures.
PER_TENANT_ROWS = (
    "access_review",
    "license_waste",
    "backup_health_daily",
    "failing_users",
    "alerts",
    "role_changes",
)


def without_offboarded(marts: Marts, tenants: Sequence[Tenant]) -> Marts:
    """The marts less the rows of offboarded tenants, which no fleet figure counts (their
    backup history stays in the warehouse)."""
    gone = {tenant.tenant_id for tenant in tenants if tenant.offboarded}
    if not gone:
        return marts
    rows = dict(marts.rows)
    for mart in PER_TENANT_ROWS:
        rows[mart] = [row for row in marts[mart] if text(row["tenant_id"]) not in gone]
    return Marts(marts.source, marts.schema, rows, marts.freshness)
