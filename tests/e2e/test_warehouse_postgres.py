"""End to end through Meltano into PostgreSQL: removals land (hard delete), and a failed
sync keeps the previous tables (tests/warehouse.py runs Meltano).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from spanning_emulator import (
    FaultPlan,
    SpanningEmulator,
)

from tests.warehouse import (
    STREAM_KEYS,
    TENANT_SIZE,
    PostgresServer,
    assert_members_per_role,
    assert_tables_match,
    changed_tenant,
    check_change_is_meaningful,
    meltano,
    meltano_env,
    pg_database,
    postgres,
    postgres_tables,
    require_plugin,
    tenant,
)

pytestmark = pytest.mark.e2e
__all__ = ["pg_database", "postgres"]  # fixtures, requested by name for PostgreSQL


@dataclass
class ServedTenant:
    """A generated tenant served by an emulator, and where meltano loads it."""

    users: list[dict[str, object]]
    emulator: SpanningEmulator
    url: str  # this test's database, to read back
    loader_env: dict[str, str]  # target-postgres' settings for that database


@pytest.fixture
def served(
    start_emulator: Callable[..., SpanningEmulator], postgres: PostgresServer, pg_database: str
) -> ServedTenant:
    require_plugin("extractors", "tap-spanning")
    require_plugin("loaders", "target-postgres")
    users = tenant()
    return ServedTenant(
        users,
        start_emulator(users),
        postgres.url_for(pg_database),
        postgres.loader_env(pg_database),
    )


def test_postgres_through_meltano_removals_land(
    served: ServedTenant, api_key: str, tmp_path: Path
) -> None:
    """Sync, change the tenant, sync again: the tables equal the new tenant exactly."""
    users, emulator, url = served.users, served.emulator, served.url
    env = meltano_env(tmp_path, emulator, api_key, **served.loader_env)

    meltano(env, "run", "tap-spanning", "target-postgres")
    with postgres_tables(url) as fetch:
        assert_tables_match(fetch, users, emulator.base_url)
        assert_members_per_role(fetch, users)

    later = changed_tenant(users)
    removed, lost = check_change_is_meaningful(users, later)
    emulator.set_users(later)
    meltano(env, "run", "tap-spanning", "target-postgres")
    with postgres_tables(url) as fetch:
        assert_tables_match(fetch, later, emulator.base_url)
        _, rows = fetch('SELECT "msId" FROM users')
        assert not {row[0] for row in rows} & removed
        _, rows = fetch('SELECT "roleId", "msId" FROM role_memberships')
        landed_pairs = {tuple(row) for row in rows}
        assert not landed_pairs & lost
        assert not {msid for _, msid in landed_pairs} & removed
        for table in STREAM_KEYS:  # hard delete: gone, not merely marked
            _, rows = fetch(f"SELECT count(*) FROM {table} WHERE _sdc_deleted_at IS NOT NULL")
            assert rows == [(0,)]
        assert_members_per_role(fetch, later)


def test_postgres_failed_sync_keeps_the_previous_tables(
    served: ServedTenant, api_key: str, tmp_path: Path
) -> None:
    """A sync that fails on page 5 must not take users out of the warehouse."""
    users, emulator, url = served.users, served.emulator, served.url
    env = meltano_env(
        tmp_path,
        emulator,
        api_key,
        TAP_SPANNING_MAX_RETRIES="2",
        TAP_SPANNING_MAX_RETRY_WAIT="0",
        **served.loader_env,
    )
    meltano(env, "run", "tap-spanning", "target-postgres")

    emulator.clear_requests()  # numbering restarts at 1: pages 1-4 answer, then only 500s
    emulator.faults = FaultPlan(at={number: "500" for number in range(5, 100)})
    meltano(env, "run", "tap-spanning", "target-postgres", succeed=False)
    with postgres_tables(url) as fetch:
        _, rows = fetch("SELECT count(*) FROM users")
        assert rows == [(TENANT_SIZE,)], "a failed sync deleted users from the warehouse"
        assert_tables_match(fetch, users, emulator.base_url)
