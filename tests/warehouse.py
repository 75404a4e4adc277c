"""The end-to-end tests' warehouse: Meltano runs in the project directory, DuckDB and
PostgreSQL read back, and a generated tenant with the ground truth of its tables.

Each test serves a generated tenant from an in-process emulator on loopback, runs
`meltano run tap-spanning <loader>` in the project directory (the project's own meltano.yml,
with the emulator's URL and key and the loader's destination passed as environment
variables), and compares the landed tables, row by row, with `expected_output`. Meltano's
system database (and so its state) is a fresh SQLite file per test, so runs never share state.

Outside CI a missing loader, driver or database server skips with the reason; under CI
(CI=true) it fails: `.ci/run` starts PostgreSQL (scripts/postgres.sh) and `make test`
installs the plugins first.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from spanning_emulator import (
    TAG_SPELLINGS,
    EmulatedTenant,
    SpanningEmulator,
    expected_output,
    expected_roles,
    expected_tenant_record,
    generate_users,
    tenant_summary,
)

from bench.nightly import postgres_loader_env
from tests.leaks import ADMIN_EMAIL

PROJECT_DIR = Path(__file__).resolve().parent.parent
DOCS = PROJECT_DIR / "docs"  # its SQL blocks are run by the tests that import this
IN_CI = os.environ.get("CI") == "true"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:54329/postgres"
PG_SCHEMA = "spanning"  # target-postgres' default_target_schema in meltano.yml
TENANT_SIZE = 600
SEED = 20240611
PAGE_SIZE = 50  # 600 users: 12 pages a sync
MELTANO_TIMEOUT = 300

# Contract columns of each stream and its key (docs/streams.md).
STREAM_KEYS: dict[str, tuple[str, ...]] = {
    "users": ("tenant_id", "msId"),
    "roles": ("id",),
    "role_memberships": ("tenant_id", "roleId", "msId"),
    "tenants": ("tenant_id",),
}
COLUMNS: dict[str, tuple[str, ...]] = {
    "users": (
        "tenant_id",
        "msId",
        "userPrincipalName",
        "email",
        "displayName",
        "assigned",
        "isAdmin",
        "isDeleted",
        "isArchive",
        "tags",
        "disabled",
    ),
    "roles": ("id", "name", "description"),
    "role_memberships": ("tenant_id", "roleId", "msId", "userPrincipalName"),
    "tenants": (
        "tenant_id",
        "name",
        "region",
        "base_url",
        "licenses",
        "archivedLicenses",
        "users",
        "assigned",
        "assignedStandard",
        "assignedArchive",
        "status",
    ),
}
# Variables of the developer's shell that would change what meltano does here.
FOREIGN_ENV_PREFIXES = ("TAP_SPANNING_", "TARGET_DUCKDB_", "TARGET_POSTGRES_", "MELTANO_")

Row = dict[str, Any]
Fetch = Callable[[str], tuple[list[str], list[tuple[Any, ...]]]]


def unavailable(reason: str) -> None:
    """Skip, or under CI fail: there a missing warehouse means a broken setup."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a missing warehouse is a failure, not a skip)")
    pytest.skip(reason)


def import_or_unavailable(module: str, package: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        unavailable(f"the {module} module is missing: pip install '{package}' (dev extras)")


# ----------------------------------------------------------------------------- meltano


def meltano_executable() -> Path:
    found = shutil.which("meltano", path=str(Path(sys.executable).parent))
    if found is None:
        unavailable(f"no meltano next to {sys.executable}: run `make install`")
    return Path(str(found))


def require_plugin(kind: str, name: str) -> None:
    executable = PROJECT_DIR / ".meltano" / kind / name / "venv" / "bin" / name
    if not executable.exists():
        unavailable(f"{name} is not installed in .meltano/: run `make meltano-install`")


@dataclass
class MeltanoRun:
    args: tuple[str, ...]
    returncode: int
    output: str
    seconds: float


def meltano(env: Mapping[str, str], *args: str, succeed: bool = True) -> MeltanoRun:
    """Run meltano in the project directory; fail the test if it does not end as wanted."""
    started = time.monotonic()
    done = subprocess.run(
        [str(meltano_executable()), *args],
        cwd=PROJECT_DIR,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=MELTANO_TIMEOUT,
        check=False,
    )
    run = MeltanoRun(args, done.returncode, done.stdout + done.stderr, time.monotonic() - started)
    tail = "\n".join(run.output.splitlines()[-40:])
    if succeed:
        assert run.returncode == 0, f"meltano {' '.join(args)} exited {run.returncode}:\n{tail}"
    else:
        assert run.returncode != 0, f"meltano {' '.join(args)} exited 0:\n{tail}"
    print(f"meltano {' '.join(args)}: {run.seconds:.1f}s")
    return run


def private_meltano_dir(path: Path) -> Path:
    """A `.meltano` of one's own (MELTANO_SYS_DIR_ROOT: run files, catalog cache) on the
    project's installed plugins, so that Meltano runs of several tests do not share one
    (tests run side by side). Made once: a second call for the same path returns it."""
    path.mkdir(parents=True, exist_ok=True)
    for kind in ("extractors", "loaders", "utilities"):
        if not (path / kind).is_symlink():
            (path / kind).symlink_to(PROJECT_DIR / ".meltano" / kind, target_is_directory=True)
    return path


def meltano_env(
    tmp_path: Path, emulator: SpanningEmulator, api_key: str, **loader: str
) -> dict[str, str]:
    """The process environment for meltano: tap settings, loader settings, private state."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_ENV_PREFIXES)}
    env.update(
        # A fresh system database and run files: state, run history and locks of this test only.
        MELTANO_DATABASE_URI=f"sqlite:///{tmp_path / 'meltano.db'}",
        MELTANO_SYS_DIR_ROOT=str(private_meltano_dir(tmp_path / "meltano")),
        TAP_SPANNING_BASE_URL=emulator.base_url,
        TAP_SPANNING_ADMIN_EMAIL=ADMIN_EMAIL,
        TAP_SPANNING_API_KEY=api_key,
        TAP_SPANNING_PAGE_SIZE=str(PAGE_SIZE),
    )
    env.update(loader)
    return env


# ----------------------------------------------------------------------------- tenants


def tenant() -> list[dict[str, object]]:
    return generate_users(TENANT_SIZE, seed=SEED)


def memberships(users: Sequence[Mapping[str, object]]) -> set[tuple[str, str]]:
    return {(str(m["roleId"]), str(m["msId"])) for m in expected_output(users)["role_memberships"]}


def changed_tenant(users: Sequence[Mapping[str, object]]) -> list[dict[str, object]]:
    """The tenant a week later: users deleted, tags taken away and given, newcomers.

    Tags are spellings from TAG_SPELLINGS, so expected_output stays the ground truth.
    """
    changed = [dict(copy.deepcopy(user)) for user in users]
    # 30 users deleted from the tenant, among them every 20th and a Global Admin.
    admin = next(i for i, user in enumerate(changed) if "global_admin" in expected_roles(user))
    gone = {i for i in range(0, len(changed), 20)} | {admin}
    kept = [user for i, user in enumerate(changed) if i not in gone]
    # A role tag taken away from 20 users, where no other tag or flag grants that role.
    taken = 0
    for user in kept[5:]:
        tags = user.get("tags")
        if taken == 20 or not isinstance(tags, list):
            continue
        for tag in tags:
            role = TAG_SPELLINGS[tag]
            rest = [t for t in tags if t != tag]
            if role is not None and role not in expected_roles({**user, "tags": rest}):
                user["tags"] = rest
                taken += 1
                break
    # Global Admin given to 15 users who do not hold it (some with no tags key at all).
    given = 0
    for user in kept[200:]:
        if given == 15 or "global_admin" in expected_roles(user):
            continue
        tags = user.get("tags")
        user["tags"] = [*(tags if isinstance(tags, list) else []), "GLOBAL_ADMIN"]
        given += 1
    # Two users deleted from Microsoft (disabled now), and five newcomers.
    for user in kept[300:302]:
        user["isDeleted"] = True
    newcomers = generate_users(len(users) + 5, seed=SEED)[len(users) :]
    return kept + newcomers


def check_change_is_meaningful(
    before: Sequence[Mapping[str, object]], after: Sequence[Mapping[str, object]]
) -> tuple[set[str], set[tuple[str, str]]]:
    """(msIds removed, memberships lost by users who stay); both non-empty."""
    ids_before = {str(user["msId"]) for user in before}
    ids_after = {str(user["msId"]) for user in after}
    removed = ids_before - ids_after
    lost = memberships(before) - memberships(after)
    lost_by_staying = {(role, msid) for role, msid in lost if msid in ids_after}
    gained = memberships(after) - memberships(before)
    assert len(removed) >= 30
    assert len(ids_after - ids_before) == 5
    assert len(lost_by_staying) >= 20, "the change must take roles away from users who stay"
    assert any(role == "global_admin" for role, _ in gained)
    return removed, lost_by_staying


# ----------------------------------------------------------------------------- tables


def landed_rows(fetch: Fetch, stream: str) -> list[Row]:
    """Every row of a table, with the contract's column names, without `_sdc_*` columns and
    the run's `sync_version`.

    target-duckdb lower-cases column names; target-postgres keeps them: both map back.
    """
    columns, rows = fetch(f"SELECT * FROM {stream}")
    by_lower = {name.lower(): name for name in COLUMNS[stream]}
    names = [by_lower.get(column.lower(), column) for column in columns]
    # The run's version is checked by the tests of currency (test_warehouse_currency.py).
    kept = [n for n in names if not n.lower().startswith("_sdc_") and n != "sync_version"]
    assert sorted(kept) == sorted(COLUMNS[stream]), f"{stream}: columns {names}"
    assert (stream == "roles") != ("sync_version" in names), f"{stream}: sync_version"
    result = []
    for row in rows:
        record = {name: value for name, value in zip(names, row, strict=True) if name in kept}
        if stream == "users" and isinstance(record["tags"], str):
            record["tags"] = json.loads(record["tags"])  # DuckDB: a JSON column
        result.append(record)
    return result


def keyed(stream: str, rows: Sequence[Mapping[str, Any]]) -> dict[tuple[Any, ...], Row]:
    table: dict[tuple[Any, ...], Row] = {}
    for row in rows:
        key = tuple(row[column] for column in STREAM_KEYS[stream])
        assert key not in table, f"{stream}: key {key} twice"
        table[key] = dict(row)
    return table


def expected_tables(
    users: Sequence[Mapping[str, object]], base_url: str
) -> dict[str, list[dict[str, object]]]:
    """expected_output(users), and the tenants record of the emulator serving them."""
    return {
        **expected_output(users),
        "tenants": [expected_tenant_record("default", tenant_summary(users), base_url)],
    }


def assert_tables_match(
    fetch: Fetch, users: Sequence[Mapping[str, object]], base_url: str
) -> dict[str, int]:
    """Each table holds exactly the ground truth: every row, every contract column."""
    expected = expected_tables(users, base_url)
    counts = {}
    for stream in STREAM_KEYS:
        rows = landed_rows(fetch, stream)
        actual, wanted = keyed(stream, rows), keyed(stream, expected[stream])
        missing = sorted(set(wanted) - set(actual))[:5]
        extra = sorted(set(actual) - set(wanted))[:5]
        assert not missing, f"{stream}: rows missing, e.g. keys {missing}"
        assert not extra, f"{stream}: unexpected rows, e.g. keys {extra}"
        wrong = [(actual[k], wanted[k]) for k in wanted if actual[k] != wanted[k]][:3]
        assert not wrong, f"{stream}: rows differ (landed, expected): {wrong}"
        assert len(rows) == len(expected[stream])
        counts[stream] = len(rows)
    print(f"tables match: {counts}")
    return counts


def assert_members_per_role(fetch: Fetch, users: Sequence[Mapping[str, object]]) -> None:
    """A join answers "who are the members of each role" as the ground truth does."""
    _, rows = fetch(
        'SELECT r.id, r.name, u."userPrincipalName" '
        "FROM roles AS r "
        'JOIN role_memberships AS m ON m."roleId" = r.id '
        'JOIN users AS u ON u."tenant_id" = m."tenant_id" AND u."msId" = m."msId"'
    )
    expected = expected_output(users)
    names = {role["id"]: role["name"] for role in expected["roles"]}
    wanted = Counter(
        (m["roleId"], names[str(m["roleId"])], m["userPrincipalName"])
        for m in expected["role_memberships"]
    )
    assert Counter(tuple(row) for row in rows) == wanted


# ----------------------------------------------------------------------------- DuckDB


@contextmanager
def duckdb_tables(path: Path) -> Iterator[Fetch]:
    duckdb = import_or_unavailable("duckdb", "duckdb==1.0.0")
    connection = duckdb.connect(str(path), read_only=True)

    def fetch(sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        cursor = connection.execute(sql)
        return [d[0] for d in cursor.description], cursor.fetchall()

    try:
        yield fetch
    finally:
        connection.close()


# ----------------------------------------------------------------------------- PostgreSQL


@dataclass
class PostgresServer:
    url: str  # an admin connection, e.g. postgresql://postgres@127.0.0.1:54329/postgres

    def url_for(self, database: str) -> str:
        parts = urlsplit(self.url)
        return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))

    def loader_env(self, database: str) -> dict[str, str]:
        """TARGET_POSTGRES_* settings for meltano, from the URL (as the bench makes them)."""
        return postgres_loader_env(self.url, database)


def psycopg_module() -> Any:
    return import_or_unavailable("psycopg", "psycopg[binary]")


@pytest.fixture
def postgres() -> PostgresServer:
    return postgres_server()


def postgres_server() -> PostgresServer:
    """The server of TAP_SPANNING_TEST_PG_URL (else the private cluster's), once it answers."""
    psycopg = psycopg_module()
    url = os.environ.get("TAP_SPANNING_TEST_PG_URL") or DEFAULT_PG_URL
    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.OperationalError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        unavailable(
            f"no PostgreSQL at {url} ({first_line}): run `bash scripts/postgres.sh start` "
            "or set TAP_SPANNING_TEST_PG_URL"
        )
    return PostgresServer(url)


@pytest.fixture
def pg_database(postgres: PostgresServer) -> Iterator[str]:
    """A database of this test's own, dropped afterwards."""
    psycopg = psycopg_module()
    name = f"tap_spanning_e2e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres.url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(postgres.url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def postgres_tables(url: str) -> Iterator[Fetch]:
    with psycopg_module().connect(url, autocommit=True) as connection:
        connection.execute(f"SET search_path TO {PG_SCHEMA}")

        def fetch(sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
            cursor = connection.execute(sql)
            assert cursor.description is not None
            return [d.name for d in cursor.description], cursor.fetchall()

        yield fetch


def small_tenant(name: str, size: int, seed: int, host: str, **options: Any) -> EmulatedTenant:
    """A tenant of the e2e fleets: `size` realistic users of `seed` at <name>.example, its
    admin, a key made of its name and seed, on `host`; `options` as EmulatedTenant takes them
    (date_format, counts_as_text, ...)."""
    return EmulatedTenant(
        tenant_id=name,
        users=generate_users(size, seed, "realistic", domain=f"{name}.example"),
        admin_email=f"admin@{name}.example",
        api_key=f"{name}-key-0000-1111-2222-{seed:012d}",
        host=host,
        **options,
    )
