"""A loopback HTTP emulator of the Spanning Backup for Office 365 API, with faults:
`SpanningEmulator` serves one tenant on one address.

An MSP's fleet of tenants is fleet_server.py's `FleetEmulator`. What both serve on, and
how a request is answered or faulted, is listener.py; the paths and their answers are
routes.py's route table.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, final

from .admission import (
    Admission,
    PageHook,
    RequestRecord,
    ServedBackups,
    credentials,
    same_credentials,
)
from .backups import BackupStyle, DateFormat, as_day, utc_today
from .faults import FaultPlan
from .hostile import check_hostile
from .listener import Listener
from .routes import LastLink, LinkStyle
from .snapshot import Snapshot
from .tenant import DEFAULT_TENANT_ID, generate_users
from .wire import Response

if TYPE_CHECKING:  # typing_extensions for mypy only: the emulator is stdlib-only at run time
    from typing_extensions import override
elif sys.version_info >= (3, 12):
    from typing import override
else:

    def override(method: object) -> object:
        return method


DEFAULT_ADMIN_EMAIL = "admin@contoso.example"
DEFAULT_API_KEY = "5f0c2a8e-7d1b-4c3e-9a6f-2b8d4e1c7a90"
DEFAULT_USER_COUNT = 100


@final
class SpanningEmulator(Listener):
    """The Spanning API on loopback: users, tenant, single user, backup status, Basic
    auth, faults.

    One tenant on one address; every request is numbered (from 1) for `faults`,
    whatever its credentials.

    Backup status (backups.py): `date_format`, `counts_as_text` and `user_id_as_text`
    say how it is spelled (the attribute `backup_style`); `today` (None: the real UTC
    today, asked at each request) picks the 7 days kept; `settle_day` redraws that
    day's counts. All three may be changed on a running emulator. status=true without
    start/end answers today's items, as the API does; `legacy_summary` instead splices
    an old placeholder backupSummary there (and when status is absent). `hostile`: a
    case of hostile.HOSTILE_CASES, as for a fleet's tenant.
    """

    def __init__(
        self,
        users: Sequence[Mapping[str, object]] | None = None,
        *,
        admin_email: str = DEFAULT_ADMIN_EMAIL,
        api_key: str = DEFAULT_API_KEY,
        host: str = "127.0.0.1",
        port: int = 0,
        max_page_size: int = 1000,
        latency: float = 0.0,
        link_style: LinkStyle = "absolute",
        last_link: LastLink = "empty",
        faults: FaultPlan | None = None,
        verbose: bool = False,
        tenant_id: str = DEFAULT_TENANT_ID,
        date_format: DateFormat = "iso",
        counts_as_text: bool = False,
        user_id_as_text: bool = False,
        today: dt.date | None = None,
        settle_day: dt.date | None = None,
        legacy_summary: bool = False,
        hostile: str | None = None,
    ) -> None:
        served = generate_users(DEFAULT_USER_COUNT) if users is None else users
        check_hostile(hostile, served)
        self.hostile = hostile
        self.admin_email = admin_email
        self.api_key = api_key
        self.latency = latency
        self.faults = faults or FaultPlan()
        self.tenant_id = tenant_id
        self.page_hook: PageHook | None = None
        self.backup_style = BackupStyle(date_format, counts_as_text, user_id_as_text)
        self.today = today
        self.settle_day = settle_day
        self._snapshot = Snapshot(served, tenant_id=tenant_id)
        self._log: list[RequestRecord] = []
        self._count = 0
        super().__init__(
            host,
            port,
            max_page_size=max_page_size,
            link_style=link_style,
            last_link=last_link,
            verbose=verbose,
            legacy_summary=legacy_summary,
        )

    def start(self) -> SpanningEmulator:
        """Serve in a daemon thread; returns self."""
        self.start_thread()
        return self

    @override
    def __enter__(self) -> SpanningEmulator:
        return self.start()

    @override
    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- tenant and request log

    def set_users(self, users: Sequence[Mapping[str, object]]) -> None:
        """Replace the tenant atomically (requests in flight keep the old one)."""
        self._snapshot = Snapshot(users, tenant_id=self.tenant_id)

    @property
    def user_count(self) -> int:
        """Users in the current tenant."""
        return self._snapshot.count

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the log of every request received so far."""
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> None:
        """Empty the log and restart request numbering at 1 (fault plans count from there)."""
        with self._lock:
            self._log.clear()
            self._count = 0

    def next_request_number(self) -> int:
        """Number the request just received (from 1, every request counts)."""
        with self._lock:
            self._count += 1
            return self._count

    @override
    def record(self, entry: RequestRecord) -> None:
        """Append to the request log."""
        with self._lock:
            self._log.append(entry)

    @override
    def admit(self, authorization: str | None) -> Admission:
        return self._admission(authorization, self.next_request_number())

    def respond(self, method: str, target: str, authorization: str | None, number: int) -> Response:
        """The normal (fault-free) answer to one request."""
        return self.answer(method, target, self._admission(authorization, number))

    def _admission(self, authorization: str | None, number: int) -> Admission:
        authorised = same_credentials(credentials(authorization), self.admin_email, self.api_key)
        backups = ServedBackups(
            self.backup_style,
            as_day(self.today) if self.today is not None else utc_today(),
            self.settle_day,
        )
        return Admission(
            number,
            self.tenant_id if authorised else None,
            self._snapshot if authorised else None,
            self.faults,
            self.latency,
            self.page_hook,
            backups,
            self.hostile,
        )
