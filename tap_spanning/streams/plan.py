"""The run's plan (tenant_pass.RunPlan), made from the streams the catalog wants.

Read by the run when it begins, in the writer's thread: every wanted per-tenant
stream's part of the credentials pass, in the streams' order, and the users pages pass
if a stream riding it is wanted.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from tap_spanning.streams.base import TenantStream
from tap_spanning.tenant_pass import RunPlan

if TYPE_CHECKING:
    from singer_sdk import Stream


def run_plan(streams: Iterable[Stream]) -> RunPlan:
    """The plan of a run syncing `streams` (every stream of the tap, in sync order)."""
    per_tenant = [stream for stream in streams if isinstance(stream, TenantStream)]
    wanted = [stream for stream in per_tenant if stream.wanted]
    return RunPlan(
        with_credentials=[stream.with_credentials for stream in wanted],
        pages=next(
            (fetch for stream in wanted if (fetch := stream.pages_fetch()) is not None), None
        ),
        failed_in={stream.rides: stream.name for stream in per_tenant if stream.names_its_pass},
    )
