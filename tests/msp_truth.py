"""The ground truth of the MSP marts (docs/alerts.md and the marts' contract) after a run of
nights: computed only from the emulator's model of each tenant (EmulatedTenant: its users,
counters, backup history and protection options) and the night plan (each tenant's day, name,
and whether its run completed), never from a mart.

A night's run of a tenant is a `TenantRun`; `MartTruth(runs, sync_versions)` holds every
mart's expected rows after the runs given. The one thing read from the warehouse is each
run's sync_version (the tap's clock: from the raw tenant_syncs table, never a mart), which
role_changes and license_history name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tests.msp_alert_truth import tenant_alerts
from tests.msp_tenant_truth import Row, TenantRun, TenantTruth, protection

__all__ = [
    "MART_COLUMNS",
    "MART_KEYS",
    "SYNC_COLUMNS",
    "MartTruth",
    "Row",
    "TenantRun",
    "protection",
]


class MartTruth:
    """Every mart's expected rows after the runs given (any order), by tenant."""

    def __init__(
        self, runs: Sequence[TenantRun], sync_versions: Mapping[tuple[str, int], int]
    ) -> None:
        by_tenant: dict[str, list[TenantRun]] = {}
        for run in sorted(runs, key=lambda run: run.night):
            by_tenant.setdefault(run.tenant.tenant_id, []).append(run)
        self.tenants = {
            tenant_id: TenantTruth(
                tenant_id,
                tenant_runs,
                {run.night: sync_versions[(tenant_id, run.night)] for run in tenant_runs},
            )
            for tenant_id, tenant_runs in sorted(by_tenant.items())
        }

    def _all(self, mart: str) -> list[Row]:
        if mart == "alerts":
            return [row for truth in self.tenants.values() for row in tenant_alerts(truth)]
        return [row for truth in self.tenants.values() for row in getattr(truth, mart)]

    def marts(self) -> dict[str, list[Row]]:
        """Each mart compared whole: its rows (alerts without summary)."""
        return {
            "tenant_names": [
                {"tenant_id": t.tenant_id, "tenant_name": t.name} for t in self.tenants.values()
            ],
            "user_protection": self._all("user_protection"),
            "unprotected_users": self._all("unprotected_users"),
            "license_history": self._all("license_history"),
            "license_high_water": self._all("license_high_water"),
            "role_changes": self._all("role_changes"),
            "alerts": self._all("alerts"),
            "fleet_overview": [truth.coverage for truth in self.tenants.values()],
        }

    def tenant_syncs(self) -> list[Row]:
        """The tap's tenant_syncs rows (the columns of the MSP marts' inputs)."""
        rows: list[Row] = []
        for truth in self.tenants.values():
            for run in truth.runs:
                counters = run.counters if run.complete else {}
                rows.append(
                    {
                        "tenant_id": truth.tenant_id,
                        "sync_version": truth.version(run),
                        "name": run.name,
                        "day": run.day.isoformat(),
                        "status": "complete" if run.complete else "failed",
                        "licenses": counters.get("licenses"),
                        "archived_licenses": counters.get("archivedLicenses"),
                        "assigned_standard": counters.get("assignedStandard"),
                        "assigned_archive": counters.get("assignedArchive"),
                        "role_set_sent": truth.role_set_sent(run),
                    }
                )
        return rows


# Every mart compared, with its key columns (a row's identity) and the columns compared.
MART_KEYS: dict[str, tuple[str, ...]] = {
    "tenant_names": ("tenant_id",),
    "user_protection": ("tenant_id", "ms_id", "workload"),
    "unprotected_users": ("tenant_id", "ms_id"),
    "license_history": ("tenant_id", "day"),
    "license_high_water": ("tenant_id", "month"),
    "role_changes": ("tenant_id", "sync_version", "role_id", "ms_id", "change"),
    "alerts": ("alert_key",),
    "fleet_overview": ("tenant_id",),
}
# The marts' columns in the contract's order (fleet_overview: the coverage ones).
MART_COLUMNS: dict[str, tuple[str, ...]] = {
    "tenant_names": ("tenant_id", "tenant_name"),
    "user_protection": (
        "tenant_id", "tenant_name", "ms_id", "user_principal_name", "display_name", "workload",
        "protection", "last_success_day", "days_since_success", "latest_day", "is_unprotected",
    ),
    "unprotected_users": (
        "tenant_id", "tenant_name", "ms_id", "user_principal_name", "display_name",
        "unprotected_workloads", "never_backed_up", "last_success_day", "days_since_success",
    ),
    "license_history": (
        "tenant_id", "tenant_name", "day", "sync_version", "licenses", "archived_licenses",
        "assigned_standard", "assigned_archive",
    ),
    "license_high_water": (
        "tenant_id", "tenant_name", "month", "days_observed", "peak_assigned_standard",
        "peak_assigned_archive", "peak_day", "licenses", "archived_licenses", "is_over_licenses",
    ),
    "role_changes": (
        "tenant_id", "tenant_name", "day", "sync_version", "role_id", "role_name", "ms_id",
        "user_principal_name", "change",
    ),
    "alerts": (
        "alert_key", "tenant_id", "tenant_name", "kind", "subject", "severity", "status",
        "first_seen", "last_seen", "resolved_on", "summary",
    ),
    "fleet_overview": (
        "tenant_id", "protectable_users", "protected_users", "unprotected_users",
        "shared_mailboxes", "not_protectable_users", "coverage_pct",
    ),
}  # fmt: skip
SYNC_COLUMNS = (
    "tenant_id", "sync_version", "name", "day", "status", "licenses", "archived_licenses",
    "assigned_standard", "assigned_archive", "role_set_sent",
)  # fmt: skip
