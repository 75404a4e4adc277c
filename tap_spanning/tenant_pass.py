"""What the run asks of the streams: which pass each rides, and how it fetches.

The run (run.py) has two passes over the fleet (docs/many-tenants.md): the
credentials (every tenant's `GET /external/tenant`) and the users pages. It knows no
stream: when it begins it asks for a `RunPlan`, made from the streams the catalog
wants (streams/plan.py), and runs it:
- in the credentials pass, once the tenant's credentials answered, each wanted stream's
  `with_credentials` hook, in the streams' order, in the tenant's worker: a stream
  riding the credentials pass fetches there what its records come from (its own client
  call), and keeps it in the tenant's `TenantAnswer`;
- in the users pages pass, if a stream riding it is wanted, the plan's `PagesFetch`:
  the tenant's pages, each handed to the one writer, the largest tenant first.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tap_spanning.budget import Hold, ResponseBudget
    from tap_spanning.client import TenantClient
    from tap_spanning.settings import Tenant


class Pass(enum.Enum):
    """The pass a per-tenant stream rides: where its records come from."""

    # The tenant's answer to `GET /external/tenant`, and what is fetched with it.
    CREDENTIALS = "credentials"
    # The pages of `GET /external/users`.
    USERS_PAGES = "users pages"


@dataclass
class TenantAnswer:
    """What one tenant's credentials pass brought back.

    `counters` is its answer to `GET /external/tenant`, `server_date` that answer's Date
    header (the tenant's own clock). `fetched` holds what each stream riding the pass
    fetched with it, by stream name; `shared` the values several streams derive from the
    answer, computed once (by their key's owner).
    """

    tenant: Tenant
    counters: dict[str, Any]
    server_date: str | None
    fetched: dict[str, Any] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)


# A stream's part of the credentials pass: runs in the tenant's worker.
CredentialsHook = Callable[["TenantClient", TenantAnswer], None]


class PagesFetch(Protocol):
    """The users pages pass of one run: what each tenant's worker fetches, in order."""

    def priority(self, answer: TenantAnswer) -> float:
        """The larger, the sooner the tenant's pages are fetched."""
        ...

    def pages(
        self,
        client: TenantClient,
        answer: TenantAnswer,
        page_limit: int | None,
        budget: ResponseBudget,
    ) -> Iterator[tuple[object, Hold | None]]:
        """The tenant's pages, each with the room it holds in the run's `budget`."""
        ...


@dataclass(frozen=True)
class RunPlan:
    """What the passes fetch for the streams the catalog wants (streams/plan.py).

    `failed_in` names, for each pass, where a tenant failing in it failed (its log line).
    """

    with_credentials: Sequence[CredentialsHook]
    pages: PagesFetch | None
    failed_in: dict[Pass, str]
