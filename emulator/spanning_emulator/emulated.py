"""A client tenant of a FleetEmulator: who it is, what it holds, how it answers."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .backups import (
    KEPT_DAYS,
    BackupHistory,
    BackupStyle,
    DateFormat,
    check_date_format,
    expected_backup_summaries,
    expected_user_backups,
)
from .faults import FaultPlan
from .hostile import check_hostile, hostile_case
from .hosts import is_loopback_host
from .snapshot import Snapshot
from .tenant import tenant_summary

TENANT_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass
class EmulatedTenant:
    """One client tenant of a FleetEmulator, on the regional host `host`.

    `counters` None: GET /external/tenant answers what the users add up to
    (tenant_summary); a dict is sent as it is (a test can send status "suspended",
    or leave a counter out).

    Backup status: `date_format`, `counts_as_text` and `user_id_as_text` spell it
    (see BackupStyle); `today` (None: the fleet's, else the real UTC today) picks the
    7 days kept; `settle_day` redraws that day's counts. What Spanning protects:
    `never_backed_up` (msIds of users it never backs up: no backupSummary items on any
    day) and `stopped_from` (msId -> the first day it no longer backs the user up); the
    tenant's summaries leave both out, as the users' items do.

    `hostile`: a case of hostile.HOSTILE_CASES (None: an honest tenant). It changes
    what is served, never what the tenant holds: expected_backups and served_counters
    stay its honest data (`fails` says whether a correct tap fails it instead).
    """

    tenant_id: str
    users: Sequence[Mapping[str, object]] = field(repr=False)
    admin_email: str
    api_key: str = field(repr=False)
    host: str = "127.0.0.1"
    faults: FaultPlan = field(default_factory=FaultPlan)
    latency: float = 0.0
    counters: dict[str, object] | None = None
    date_format: DateFormat = "iso"
    counts_as_text: bool = False
    user_id_as_text: bool = False
    today: dt.date | None = None
    settle_day: dt.date | None = None
    never_backed_up: frozenset[str] = frozenset()
    stopped_from: Mapping[str, dt.date] = field(default_factory=dict)
    hostile: str | None = None

    @property
    def backup_style(self) -> BackupStyle:
        """How this tenant spells its backup status."""
        return BackupStyle(self.date_format, self.counts_as_text, self.user_id_as_text)

    @property
    def fails(self) -> bool:
        """Whether a correct tap fails this tenant (its hostile case says so)."""
        return self.hostile is not None and hostile_case(self.hostile).fails

    def expected_backups(
        self, days: int = KEPT_DAYS, today: dt.date | None = None
    ) -> dict[str, list[dict[str, object]]]:
        """Records of backup_summaries and user_backups (without sync_version) for the
        last `days` days ending `today` (default: this tenant's today, else the real
        UTC today)."""
        when, settle = today or self.today, self.settle_day
        history = self.backup_history()
        return {
            "backup_summaries": expected_backup_summaries(
                self.users, days=days, today=when, settle_day=settle, history=history
            ),
            "user_backups": expected_user_backups(
                self.users, days=days, today=when, settle_day=settle, history=history
            ),
        }

    def backup_history(self) -> BackupHistory:
        """The model of this tenant's backups, its protection options applied."""
        return BackupHistory(
            self.users,
            self.tenant_id,
            never_backed_up=self.never_backed_up,
            stopped_from=self.stopped_from,
        )

    def snapshot(self) -> Snapshot:
        """The tenant as served: its users, counters and backup history."""
        return Snapshot(
            self.users,
            self.counters,
            tenant_id=self.tenant_id,
            never_backed_up=self.never_backed_up,
            stopped_from=self.stopped_from,
        )

    @property
    def user_count(self) -> int:
        """Users in this tenant."""
        return len(self.users)

    def served_counters(self) -> dict[str, object]:
        """What GET /external/tenant answers for this tenant (its hostile case aside)."""
        return tenant_summary(self.users) if self.counters is None else dict(self.counters)


class TenantState:
    """A tenant as served: its current definition, snapshot and request count."""

    def __init__(self, tenant: EmulatedTenant) -> None:
        self.tenant = tenant
        self.snapshot = tenant.snapshot()
        self.count = 0


def check_tenants(tenants: Sequence[EmulatedTenant]) -> None:
    """ValueError naming the first tenant a fleet cannot serve, or two that clash."""
    if not tenants:
        raise ValueError("a fleet needs at least one tenant")
    seen: set[str] = set()
    credentials: set[tuple[str, str, str]] = set()
    for tenant in tenants:
        if not TENANT_ID_PATTERN.fullmatch(tenant.tenant_id):
            raise ValueError(
                f"tenant_id {tenant.tenant_id!r}: use 1-64 letters, digits, '.', '_' or '-'"
            )
        if tenant.tenant_id in seen:
            raise ValueError(f"tenant_id {tenant.tenant_id!r} appears twice")
        seen.add(tenant.tenant_id)
        if not is_loopback_host(tenant.host):
            raise ValueError(
                f"tenant {tenant.tenant_id}: refusing to serve on {tenant.host!r}: "
                "the emulator binds loopback addresses only"
            )
        if tenant.latency < 0:
            raise ValueError(f"tenant {tenant.tenant_id}: latency must be >= 0")
        try:
            _check_protection(tenant)
            check_date_format(tenant.date_format)
            check_hostile(tenant.hostile, tenant.users)
        except ValueError as error:
            raise ValueError(f"tenant {tenant.tenant_id}: {error}") from None
        key = (tenant.host, tenant.admin_email.casefold(), tenant.api_key)
        if key in credentials:
            raise ValueError(
                f"tenant {tenant.tenant_id}: another tenant on {tenant.host} has the same "
                "admin email and key"
            )
        credentials.add(key)


def _check_protection(tenant: EmulatedTenant) -> None:
    """ValueError unless never_backed_up is a frozenset of msIds and stopped_from maps
    msIds to dates."""
    never = tenant.never_backed_up
    if not isinstance(never, frozenset) or not all(isinstance(m, str) for m in never):
        raise ValueError("never_backed_up must be a frozenset of msIds")
    for ms_id, day in tenant.stopped_from.items():
        if not isinstance(ms_id, str) or not isinstance(day, dt.date):
            raise ValueError(f"stopped_from maps an msId to a date, not {ms_id!r}: {day!r}")
