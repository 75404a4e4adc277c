"""A stdlib-only emulator of the Spanning Backup for Office 365 API, for tests."""

from .server import (
    DEFAULT_ADMIN_EMAIL,
    DEFAULT_API_KEY,
    DEFAULT_PAGE_SIZE,
    Fault,
    FaultPlan,
    RequestRecord,
    SpanningEmulator,
    is_loopback_host,
    parse_fault,
)
from .tenant import (
    ROLE_IDS,
    ROLE_NAMES,
    TAG_SPELLINGS,
    expected_output,
    expected_roles,
    generate_users,
    load_users,
    sort_key,
)

__all__ = [
    "DEFAULT_ADMIN_EMAIL",
    "DEFAULT_API_KEY",
    "DEFAULT_PAGE_SIZE",
    "ROLE_IDS",
    "ROLE_NAMES",
    "TAG_SPELLINGS",
    "Fault",
    "FaultPlan",
    "RequestRecord",
    "SpanningEmulator",
    "expected_output",
    "expected_roles",
    "generate_users",
    "is_loopback_host",
    "load_users",
    "parse_fault",
    "sort_key",
]
