"""A tenant as served: its users sorted and serialised once, so pages are cheap."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .backup_history import BackupHistory
from .tenant import DEFAULT_TENANT_ID, sort_key, tenant_summary
from .wire import dumps

# The placeholder backupSummary of status absent (and of status=true without start/end
# unless the server is told otherwise): what the emulator always sent there.
_BACKUP_SUMMARY: list[dict[str, object]] = [
    {"type": kind, "status": "success", "lastBackupDate": "2024-05-01T02:00:00.000Z", "count": 1}
    for kind in ("mail", "drive", "calendar", "contacts", "sharepoint")
]
_SUMMARY_JSON = dumps(_BACKUP_SUMMARY)


@dataclass(frozen=True)
class View:
    """Users in API order, as sort keys (for bisect) and pre-serialised JSON."""

    keys: list[tuple[str, str]]
    raw: list[bytes]


class Snapshot:
    """One immutable tenant, sorted and serialised once so pages are cheap."""

    def __init__(
        self,
        users: Sequence[Mapping[str, object]],
        counters: Mapping[str, object] | None = None,
        *,
        tenant_id: str = DEFAULT_TENANT_ID,
        never_backed_up: frozenset[str] = frozenset(),
        stopped_from: Mapping[str, dt.date] | None = None,
    ) -> None:
        ordered = sorted(users, key=sort_key)
        self._ordered = ordered
        self.tenant_id = tenant_id
        self._never_backed_up = never_backed_up
        self._stopped_from = dict(stopped_from or {})
        self._history: BackupHistory | None = None
        self._history_lock = threading.Lock()
        keys = [sort_key(user) for user in ordered]
        raw = [dumps(user) for user in ordered]
        in_ad = [user.get("inActiveDirectory") is True for user in ordered]
        self.count = len(ordered)
        self.views: dict[str | None, View] = {None: View(keys, raw)}
        for wanted in (True, False):
            picked = [i for i, flag in enumerate(in_ad) if flag is wanted]
            self.views[str(wanted).lower()] = View(
                [keys[i] for i in picked], [raw[i] for i in picked]
            )
        self.by_upn = {key[0]: body for key, body in zip(keys, raw, strict=True)}
        self.by_folded_upn: dict[str, bytes] = {}
        for key, body in zip(keys, raw, strict=True):
            self.by_folded_upn.setdefault(key[0].casefold(), body)
        self.tenant = dumps(tenant_summary(ordered) if counters is None else dict(counters))

    @property
    def backups(self) -> BackupHistory:
        """The tenant's backup history, built on first use (most tests never ask)."""
        with self._history_lock:
            if self._history is None:
                self._history = BackupHistory(
                    self._ordered,
                    self.tenant_id,
                    never_backed_up=self._never_backed_up,
                    stopped_from=self._stopped_from,
                )
            return self._history

    def user(self, upn: str) -> bytes | None:
        """A user by UPN; UPNs are case-insensitive in Microsoft Entra."""
        return self.by_upn.get(upn) or self.by_folded_upn.get(upn.casefold())


def with_summary(raw: bytes, summary: bytes = _SUMMARY_JSON) -> bytes:
    """Splice backupSummary (serialised; default: the placeholder) into a
    pre-serialised user object."""
    comma = b"" if raw == b"{}" else b","
    return raw[:-1] + comma + b'"backupSummary":' + summary + b"}"
