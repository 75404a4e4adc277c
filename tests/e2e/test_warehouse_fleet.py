"""A fleet in one warehouse through Meltano (docs/many-tenants.md), with hard delete.

Three tenants land side by side in one schema. Then tenant B changes and tenant C leaves
the list: the next sync leaves A intact, B changed and C gone. A run in which B fails
deletes nothing anywhere. The same for PostgreSQL (ACTIVATE_VERSION) and DuckDB (the
fresh-file refresh of scripts/duckdb_refresh.sh).
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from spanning_emulator import EmulatedTenant, FleetEmulator, expected_output, generate_users

from tests.named_tenants import named_tenants, serving
from tests.warehouse import (
    FOREIGN_ENV_PREFIXES,
    MELTANO_TIMEOUT,
    PROJECT_DIR,
    PostgresServer,
    duckdb_tables,
    meltano,
    pg_database,
    postgres,
    postgres_tables,
    private_meltano_dir,
    require_plugin,
)

__all__ = ["pg_database", "postgres"]  # fixtures used here

pytestmark = pytest.mark.e2e


def tenants() -> list[EmulatedTenant]:
    return named_tenants(
        (
            ("acme", 120, 31, "127.0.0.1"),
            ("globex", 90, 32, "127.0.0.2"),
            ("initech", 60, 33, "127.0.0.3"),
        ),
        "{name}-key-0000-1111-2222-{seed:012d}",
    )


def changed(users: Sequence[Mapping[str, object]]) -> list[dict[str, object]]:
    """Every third user gone, and five who stay given Global Admin and nothing else."""
    kept = [dict(user) for index, user in enumerate(users) if index % 3]
    for user in kept[:5]:
        user["tags"] = ["GLOBAL_ADMIN"]
    return kept


@pytest.fixture
def fleet() -> Iterator[FleetEmulator]:
    yield from serving(tenants())


def fleet_env(
    tmp_path: Path, fleet: FleetEmulator, listed: Sequence[str], **loader: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_ENV_PREFIXES)}
    entries = [
        {
            "tenant_id": t.tenant_id,
            "admin_email": t.admin_email,
            "base_url": fleet.base_url(t.tenant_id),
        }
        for t in fleet.tenants
        if t.tenant_id in listed
    ]
    env.update(
        MELTANO_DATABASE_URI=f"sqlite:///{tmp_path / 'meltano.db'}",
        MELTANO_SYS_DIR_ROOT=str(private_meltano_dir(tmp_path / "meltano")),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        # The project's demo config is the one-tenant form: blank it for a fleet (and a
        # one-tenant key a developer's .env may hold).
        TAP_SPANNING_BASE_URL="",
        TAP_SPANNING_ADMIN_EMAIL="",
        TAP_SPANNING_API_KEY="",
        TAP_SPANNING_TENANTS=json.dumps(entries),
        TAP_SPANNING_TENANT_API_KEYS=json.dumps(
            {t.tenant_id: t.api_key for t in fleet.tenants if t.tenant_id in listed}
        ),
        TAP_SPANNING_PAGE_SIZE="50",
        TAP_SPANNING_MAX_RETRY_WAIT="0.01",
    )
    env.update(loader)
    return env


def truth(fleet: FleetEmulator, listed: Sequence[str]) -> dict[str, set[str]]:
    """Every expected row of users and role_memberships, as sorted JSON, for these tenants."""
    rows: dict[str, set[str]] = {"users": set(), "role_memberships": set()}
    for tenant in fleet.tenants:
        if tenant.tenant_id in listed:
            expected = expected_output(tenant.users, tenant_id=tenant.tenant_id)
            for stream in rows:
                rows[stream] |= {json.dumps(r, sort_keys=True) for r in expected[stream]}
    return rows


def landed(fetch: Any) -> dict[str, set[str]]:
    rows: dict[str, set[str]] = {}
    for stream in ("users", "role_memberships"):
        columns, values = fetch(f"SELECT * FROM {stream}")
        out = set()
        for value in values:
            record = {
                c: v
                for c, v in zip(columns, value, strict=True)
                # The run's version: the currency tests check it (test_warehouse_currency.py).
                if not c.lower().startswith("_sdc") and c != "sync_version"
            }
            if isinstance(record.get("tags"), str):
                record["tags"] = json.loads(record["tags"])
            out.add(json.dumps(record, sort_keys=True))
        rows[stream] = out
    return rows


def normalised(rows: dict[str, set[str]]) -> dict[str, set[str]]:
    """Column names lower-cased (target-duckdb lower-cases them), for comparison."""
    return {
        stream: {
            json.dumps({k.lower(): v for k, v in json.loads(r).items()}, sort_keys=True)
            for r in values
        }
        for stream, values in rows.items()
    }


def three_syncs(fleet: FleetEmulator, sync: Any, fetch_rows: Any) -> None:
    """Land three tenants; change B and drop C; then fail B: nothing deleted anywhere."""
    sync(["acme", "globex", "initech"], succeed=True)
    assert normalised(fetch_rows()) == normalised(truth(fleet, ["acme", "globex", "initech"]))

    globex = next(t for t in fleet.tenants if t.tenant_id == "globex")
    fleet.set_users("globex", changed(globex.users))
    sync(["acme", "globex"], succeed=True)
    after = fetch_rows()
    assert normalised(after) == normalised(truth(fleet, ["acme", "globex"]))

    fleet.set_users("globex", generate_users(10, seed=99))  # would delete most of B
    sync(["acme", "globex"], succeed=False, break_tenant="globex")
    assert fetch_rows() == after


def test_postgres_holds_a_fleet_side_by_side(
    fleet: FleetEmulator, postgres: PostgresServer, pg_database: str, tmp_path: Path
) -> None:
    require_plugin("extractors", "tap-spanning")
    require_plugin("loaders", "target-postgres")

    def sync(listed: list[str], *, succeed: bool, break_tenant: str | None = None) -> None:
        env = fleet_env(tmp_path, fleet, listed, **postgres.loader_env(pg_database))
        if break_tenant:
            keys = json.loads(env["TAP_SPANNING_TENANT_API_KEYS"])
            keys[break_tenant] = "wrong-key-0000-0000-0000"
            env["TAP_SPANNING_TENANT_API_KEYS"] = json.dumps(keys)
            # The tenant fails alone: the others' rows are written, nothing is activated.
            env["TAP_SPANNING_FAILURE_MODE"] = "isolate"
        meltano(env, "run", "tap-spanning", "target-postgres", succeed=succeed)

    def fetch_rows() -> dict[str, set[str]]:
        with postgres_tables(postgres.url_for(pg_database)) as fetch:
            return landed(fetch)

    three_syncs(fleet, sync, fetch_rows)


def test_duckdb_refresh_holds_a_fleet_and_survives_a_failed_run(
    fleet: FleetEmulator, tmp_path: Path
) -> None:
    require_plugin("extractors", "tap-spanning")
    require_plugin("loaders", "target-duckdb")
    database = tmp_path / "warehouse" / "spanning.duckdb"

    def sync(listed: list[str], *, succeed: bool, break_tenant: str | None = None) -> None:
        env = fleet_env(tmp_path, fleet, listed, TARGET_DUCKDB_PATH=str(database))
        if break_tenant:
            keys = json.loads(env["TAP_SPANNING_TENANT_API_KEYS"])
            keys[break_tenant] = "wrong-key-0000-0000-0000"
            env["TAP_SPANNING_TENANT_API_KEYS"] = json.dumps(keys)
            # The tenant fails alone: the others' rows are written, nothing is activated.
            env["TAP_SPANNING_FAILURE_MODE"] = "isolate"
        done = subprocess.run(
            ["bash", "scripts/duckdb_refresh.sh"],
            cwd=PROJECT_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=MELTANO_TIMEOUT,
            check=False,
        )
        output = done.stdout + done.stderr
        tail = output[-3000:]
        assert (done.returncode == 0) == succeed, tail
        if not succeed:
            # The tap's failure line, somewhere in Meltano's log: the loader's own lines,
            # as it loads what the tap wrote, may come after it.
            assert "1 of 2 tenants failed: globex (credentials refused)" in output, tail
            assert "is unchanged" in tail.splitlines()[-1]

    def fetch_rows() -> dict[str, set[str]]:
        with duckdb_tables(database) as fetch:
            return landed(fetch)

    three_syncs(fleet, sync, fetch_rows)


def test_a_second_refresh_refuses_at_once_naming_the_first(
    fleet: FleetEmulator, tmp_path: Path
) -> None:
    """scripts/duckdb_refresh.sh holds a lock on <live>.lock: while another refresh holds
    it, a second one exits 1 before it loads anything, naming the holder, and creates or
    removes nothing (before, two overlapping runs lost the first one's sync to a raw mv)."""
    require_plugin("loaders", "target-duckdb")
    database = tmp_path / "warehouse" / "spanning.duckdb"
    database.parent.mkdir()
    database.write_bytes(b"a live file, not to be touched")
    lock = database.parent / "spanning.duckdb.lock"
    holder = "pid 4242, started 2026-12-04T02:00:00Z"
    with lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write_text(f"{holder}\n")
        done = subprocess.run(
            ["bash", "scripts/duckdb_refresh.sh"],
            cwd=PROJECT_DIR,
            env=fleet_env(tmp_path, fleet, ["acme"], TARGET_DUCKDB_PATH=str(database)),
            capture_output=True,
            text=True,
            timeout=MELTANO_TIMEOUT,
            check=False,
        )
    assert done.returncode == 1, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == (
        f"duckdb_refresh: another refresh of {database} is running ({holder}; lock {lock}): "
        "not starting a second"
    )
    assert database.read_bytes() == b"a live file, not to be touched"
    assert sorted(p.name for p in database.parent.iterdir()) == [
        "spanning.duckdb",
        "spanning.duckdb.lock",
    ]
    assert fleet.requests == []  # nothing was synced
