"""A stdlib-only emulator of the Spanning Backup for Office 365 API, for tests.

One tenant (`SpanningEmulator`) or an MSP's fleet of them (`FleetEmulator`), plus
the ground truth of what a tap must output for them (`expected_output`, and for the
backup status `expected_backup_summaries` and `expected_user_backups`). A tenant may be
hostile (`HOSTILE_CASES`): it sends values a correct tap must refuse.
"""

from .admission import PageHook, RequestRecord
from .backups import (
    BACKUP_TYPES,
    BROKEN_DATE,
    DATE_FORMATS,
    KEPT_DAYS,
    USER_BACKUP_TYPES,
    BackupHistory,
    BackupStyle,
    DateFormat,
    expected_backup_summaries,
    expected_user_backups,
    trailing_days,
    utc_today,
)
from .emulated import TENANT_ID_PATTERN, EmulatedTenant
from .faults import FAULT_KINDS, RETRIED_FAULTS, Fault, FaultKind, FaultPlan, parse_fault
from .fleet import generate_fleet, tenant_sizes
from .fleet_server import FleetEmulator
from .hostile import HOSTILE_CASE_NAMES, HOSTILE_CASES, HostileCase, hostile_case, reason_names
from .hosts import REGIONS, is_loopback_host, split_location
from .query import DEFAULT_PAGE_SIZE
from .routes import LastLink, LinkStyle
from .server import DEFAULT_ADMIN_EMAIL, DEFAULT_API_KEY, SpanningEmulator
from .tenant import (
    DEFAULT_TENANT_ID,
    PROFILES,
    ROLE_DESCRIPTIONS,
    ROLE_IDS,
    ROLE_NAMES,
    TAG_SPELLINGS,
    TENANT_COUNTERS,
    Profile,
    expected_output,
    expected_roles,
    expected_roles_stream,
    expected_tenant_record,
    generate_users,
    load_users,
    sort_key,
    tenant_summary,
)

__all__ = [
    "BACKUP_TYPES",
    "BROKEN_DATE",
    "DATE_FORMATS",
    "DEFAULT_ADMIN_EMAIL",
    "DEFAULT_API_KEY",
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_TENANT_ID",
    "FAULT_KINDS",
    "HOSTILE_CASES",
    "HOSTILE_CASE_NAMES",
    "KEPT_DAYS",
    "PROFILES",
    "REGIONS",
    "RETRIED_FAULTS",
    "ROLE_DESCRIPTIONS",
    "ROLE_IDS",
    "ROLE_NAMES",
    "TAG_SPELLINGS",
    "TENANT_COUNTERS",
    "TENANT_ID_PATTERN",
    "USER_BACKUP_TYPES",
    "BackupHistory",
    "BackupStyle",
    "DateFormat",
    "EmulatedTenant",
    "Fault",
    "FaultKind",
    "FaultPlan",
    "FleetEmulator",
    "HostileCase",
    "LastLink",
    "LinkStyle",
    "PageHook",
    "Profile",
    "RequestRecord",
    "SpanningEmulator",
    "expected_backup_summaries",
    "expected_output",
    "expected_roles",
    "expected_roles_stream",
    "expected_tenant_record",
    "expected_user_backups",
    "generate_fleet",
    "generate_users",
    "hostile_case",
    "is_loopback_host",
    "load_users",
    "parse_fault",
    "reason_names",
    "sort_key",
    "split_location",
    "tenant_sizes",
    "tenant_summary",
    "trailing_days",
    "utc_today",
]
