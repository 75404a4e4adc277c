"""A stdlib-only emulator of the Spanning Backup for Office 365 API, for tests.

One tenant (`SpanningEmulator`) or an MSP's fleet of them (`FleetEmulator`), plus
the ground truth of what a tap must output for them.
"""

from .faults import FAULT_KINDS, RETRIED_FAULTS, FaultKind
from .fleet import generate_fleet, tenant_sizes
from .hosts import REGIONS, is_loopback_host, split_location
from .server import (
    DEFAULT_ADMIN_EMAIL,
    DEFAULT_API_KEY,
    DEFAULT_PAGE_SIZE,
    TENANT_ID_PATTERN,
    EmulatedTenant,
    Fault,
    FaultPlan,
    FleetEmulator,
    LastLink,
    LinkStyle,
    PageHook,
    RequestRecord,
    SpanningEmulator,
    parse_fault,
)
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
    "DEFAULT_ADMIN_EMAIL",
    "DEFAULT_API_KEY",
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_TENANT_ID",
    "FAULT_KINDS",
    "PROFILES",
    "REGIONS",
    "RETRIED_FAULTS",
    "ROLE_DESCRIPTIONS",
    "ROLE_IDS",
    "ROLE_NAMES",
    "TAG_SPELLINGS",
    "TENANT_COUNTERS",
    "TENANT_ID_PATTERN",
    "EmulatedTenant",
    "Fault",
    "FaultKind",
    "FaultPlan",
    "FleetEmulator",
    "LastLink",
    "LinkStyle",
    "PageHook",
    "Profile",
    "RequestRecord",
    "SpanningEmulator",
    "expected_output",
    "expected_roles",
    "expected_roles_stream",
    "expected_tenant_record",
    "generate_fleet",
    "generate_users",
    "is_loopback_host",
    "load_users",
    "parse_fault",
    "sort_key",
    "split_location",
    "tenant_sizes",
    "tenant_summary",
]
