"""Shards: a fleet split over several runs (docs/many-tenants.md, "Shards").

A tenant's shard is a hash of its `tenant_id` (without case, as ids are compared) modulo
`shard_count`: stable while the count stays, whatever else the list holds, so a tenant
never moves between runs of the same shard. Pure functions.
"""

from __future__ import annotations

import hashlib


def shard_of(tenant_id: str, shard_count: int) -> int:
    """The shard (0 .. shard_count - 1) that holds `tenant_id`."""
    digest = hashlib.sha256(tenant_id.casefold().encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shard_count


def shard_version(started_ms: int, shard_count: int, shard_index: int) -> int:
    """The run's sync_version: its start in milliseconds, moved down to the nearest one
    equal to `shard_index` modulo `shard_count`.

    Shards started in the same millisecond would otherwise share a version, and the
    warehouse would take them for one run (a tenant of one shard would look offboarded
    when the other ran again). At most shard_count - 1 ms earlier than the start, and still
    increasing from one run of a shard to the next.
    """
    if shard_count <= 1:
        return started_ms
    return started_ms - (started_ms - shard_index) % shard_count
