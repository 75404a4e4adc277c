"""Shards split a fleet by a hash of tenant_id (tap_spanning/shards.py)."""

from __future__ import annotations

import hashlib
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from tap_spanning.shards import shard_of, shard_version

IDS = st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True)


@given(IDS, st.integers(min_value=1, max_value=1024))
def test_a_tenant_has_one_shard_whatever_its_case(tenant_id: str, count: int) -> None:
    shard = shard_of(tenant_id, count)
    assert 0 <= shard < count
    assert shard_of(tenant_id.upper(), count) == shard_of(tenant_id.lower(), count) == shard


def test_the_shard_is_the_documented_hash() -> None:
    # docs/many-tenants.md, "Shards": the first 8 bytes of SHA-256 of the lower-cased id, as
    # a big-endian number, modulo shard_count. A change would move tenants between shards.
    for tenant_id in ("contoso", "Fabrikam-EU", "t0007-fourth-coffee"):
        digest = hashlib.sha256(tenant_id.lower().encode()).hexdigest()
        for count in (2, 3, 16):
            assert shard_of(tenant_id, count) == int(digest[:16], 16) % count


def test_shards_share_a_fleet_evenly() -> None:
    sizes = Counter(shard_of(f"t{n:04d}-client", 4) for n in range(4000))
    assert set(sizes) == {0, 1, 2, 3}
    assert all(900 <= size <= 1100 for size in sizes.values()), sizes


@given(
    st.integers(min_value=1_600_000_000_000, max_value=2_000_000_000_000),
    st.integers(min_value=1, max_value=64),
    st.data(),
)
def test_shard_versions_never_meet_and_stay_close_to_the_start(
    started: int, count: int, data: st.DataObject
) -> None:
    index = data.draw(st.integers(min_value=0, max_value=count - 1))
    version = shard_version(started, count, index)
    assert started - count < version <= started
    if count > 1:
        assert version % count == index
        # Two shards started in the same millisecond get two versions.
        other = (index + 1) % count
        assert shard_version(started, count, other) != version
    else:
        assert version == started
    # A later start of the same shard gets a later version.
    assert shard_version(started + count, count, index) > version
