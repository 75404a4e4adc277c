"""docs/warehouse.md's "Load into a warehouse", PostgreSQL, run as written
(tests/first_hour.py): the block starts the project's private cluster and loads, and psql
reads the tables (its input on stdin) as the emulator's ground truth says."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from spanning_emulator import expected_output, generate_users, tenant_summary

from tests.documented import blocks_at
from tests.first_hour import (
    LOAD,
    PROJECT,
    assert_no_key,
    base_env,
    new_key,
    run,
    run_block,
    scratch,
    serving,
    unavailable,
)

__all__ = ["scratch"]  # the fixture used here

pytestmark = pytest.mark.e2e


def project_postgres() -> dict[str, str]:
    """Start the project's private cluster (as `make test` does); where its data lives."""
    env = base_env()
    started = run("postgres.sh start", ["bash", "scripts/postgres.sh", "start"], PROJECT, env)
    if started.returncode != 0:
        unavailable(f"bash scripts/postgres.sh start failed:\n{started.tail()}")
    status = run("postgres.sh status", ["bash", "scripts/postgres.sh", "status"], PROJECT, env)
    match = re.search(r"data in (\S+)/data\b", status.stderr)
    assert status.returncode == 0, f"postgres.sh status:\n{status.tail()}"
    assert match, f"postgres.sh status names no data directory:\n{status.tail()}"
    # The scratch project's scripts/postgres.sh then manages that cluster, not a new one.
    return {"TAP_SPANNING_PG_DIR": match[1]}


PSQL_INPUT = """\
SELECT 'users=' || count(*) AS x FROM users;
SELECT 'role:' || "roleId" || '=' || count(*) AS x FROM role_memberships GROUP BY "roleId";
SELECT 'tenant:' || tenant_id || '=' || licenses || '/' || assigned || '/' || status AS x
FROM tenants;
"""


def test_load_into_postgres_as_the_readme_shows(scratch: Path) -> None:
    """The PostgreSQL block: start the cluster, load, and psql reads the tables (on stdin)."""
    (block,) = blocks_at(*LOAD, "PostgreSQL")
    cluster = project_postgres()
    key = new_key()
    users = generate_users(250, seed=33, profile="realistic")
    with serving(users, "admin@contoso.example", key) as emulator:
        env = base_env(
            TAP_SPANNING_BASE_URL=emulator.base_url,
            TAP_SPANNING_ADMIN_EMAIL=emulator.admin_email,
            TAP_SPANNING_API_KEY=key,
        )
        env.update(cluster)
        ran = run_block(block, scratch, env, stdin=PSQL_INPUT).ok()
    assert_no_key(key, ran.output)
    truth = expected_output(users)
    summary = tenant_summary(users)
    assert f"users={len(truth['users'])}" in ran.stdout, ran.stdout
    roles = Counter(str(m["roleId"]) for m in truth["role_memberships"])
    shown = dict(re.findall(r"role:(\w+)=(\d+)", ran.stdout))
    assert shown == {role: str(count) for role, count in roles.items()}
    tenant = f"tenant:default={summary['licenses']}/{summary['assigned']}/{summary['status']}"
    assert tenant in ran.stdout
