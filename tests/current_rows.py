"""A warehouse read through the current-rows views dbt builds, and what they must show.

The views are applied unchanged to PostgreSQL, to a DuckDB file, or to an in-memory DuckDB
database of JSONL files; every expectation comes from the emulator's ground truth
(`expected_output`).
"""

from __future__ import annotations

import json
import tempfile
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spanning_emulator import (
    expected_output,
    expected_tenant_record,
    tenant_summary,
)

from tests.e2e.test_current_views import build_current_views, postgres_connection
from tests.warehouse import (
    COLUMNS,
    PG_SCHEMA,
    PROJECT_DIR,
    Fetch,
    PostgresServer,
    Row,
    import_or_unavailable,
    keyed,
    postgres_server,
    psycopg_module,
)

# The warehouses whose current-rows views dbt has built: the views follow every later load,
# so each warehouse gets them once, after its first load (docs/many-tenants.md).
_VIEWS_BUILT: set[str] = set()


def with_current_views(adapter: str, **connection: str) -> None:
    """The documented command (`meltano invoke dbt-<adapter> run --select current`), once per
    warehouse."""
    where = f"{adapter} {sorted(connection.items())}"
    if where not in _VIEWS_BUILT:
        with tempfile.TemporaryDirectory(prefix="current-views-") as scratch:
            build_current_views(Path(scratch), adapter, **connection)
        _VIEWS_BUILT.add(where)

CURRENT_STREAMS = ("users", "role_memberships", "tenants")
SYNC_COLUMNS = (
    "tenant_id",
    "sync_version",
    "started_at",
    "finished_at",
    "status",
    "reason",
    "users",
    "role_memberships",
    "requests",
    "retries",
)
Users = dict[str, list[dict[str, object]]]  # tenant id -> users


# ----------------------------------------------------------------------------- warehouses


@dataclass
class Snapshot:
    """What a warehouse holds after a run, read through the current-rows views."""

    current: dict[str, list[Row]]  # users, role_memberships, tenants: contract + sync_version
    syncs: list[Row]  # tenant_syncs, every row
    raw_users: list[Row]  # users table: tenant_id, msId, sync_version of every row
    failing: list[Row]  # docs/many-tenants.md, "Which tenants are failing", as written


def named_rows(fetch: Fetch, sql: str, names: Sequence[str]) -> list[Row]:
    """Rows as dicts named as in the contract, without `_sdc_*` columns.

    target-duckdb lower-cases column names; read_json_auto types GUID-shaped strings as
    UUID (the emulator's msIds are canonical lower-case GUIDs, so str() gives them back).
    """
    columns, rows = fetch(sql)
    by_lower = {name.lower(): name for name in names}
    keys = [by_lower.get(column.lower(), column) for column in columns]
    result = []
    for row in rows:
        record: Row = {}
        for key, value in zip(keys, row, strict=True):
            if key.lower().startswith("_sdc_"):
                continue
            record[key] = str(value) if isinstance(value, uuid.UUID) else value
        if isinstance(record.get("tags"), str):
            record["tags"] = json.loads(record["tags"])  # target-duckdb: a JSON column
        result.append(record)
    return result


def read_snapshot(fetch: Fetch) -> Snapshot:
    current = {
        stream: named_rows(
            fetch, f"SELECT * FROM current_{stream}", (*COLUMNS[stream], "sync_version")
        )
        for stream in CURRENT_STREAMS
    }
    syncs = named_rows(fetch, "SELECT * FROM tenant_syncs", SYNC_COLUMNS)
    raw_users = named_rows(
        fetch, 'SELECT tenant_id, "msId", sync_version FROM users', COLUMNS["users"]
    )
    failing = named_rows(fetch, failing_tenants_query(), ())
    return Snapshot(current, syncs, raw_users, failing)


def failing_tenants_query() -> str:
    """docs/many-tenants.md: the SQL block after "Which tenants are failing"."""
    readme = (PROJECT_DIR / "docs" / "many-tenants.md").read_text(encoding="utf-8")
    after = readme.split("Which tenants are failing, since when, and why:", 1)[1]
    return after.split("```sql\n", 1)[1].split("```", 1)[0]


@contextmanager
def postgres_views(url: str) -> Iterator[Fetch]:
    """The tap's schema, with the current-rows views dbt builds there."""
    with_current_views("postgres", **postgres_connection(url), schema=PG_SCHEMA)
    with psycopg_module().connect(url, autocommit=True) as connection:
        connection.execute(f"SET search_path TO {PG_SCHEMA}")

        def fetch(sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
            cursor = connection.execute(sql)
            assert cursor.description is not None
            return [d.name for d in cursor.description], cursor.fetchall()

        yield fetch


@contextmanager
def duckdb_views(
    path: Path | None, jsonl: Mapping[str, Sequence[Path]] | None = None
) -> Iterator[Fetch]:
    """A DuckDB file, with the current-rows views dbt builds in it; for `jsonl`, a new file of
    the files' lines, a table per stream, and its views built anew."""
    duckdb = import_or_unavailable("duckdb", "duckdb==1.0.0")
    scratch = None
    if path is None:
        scratch = tempfile.TemporaryDirectory(prefix="jsonl-warehouse-")
        path = Path(scratch.name) / "jsonl.duckdb"
        with duckdb.connect(str(path)) as loading:
            for stream, files in (jsonl or {}).items():
                assert files, stream
                assert not [f for f in files if "'" in str(f)]
                listed = ", ".join(f"'{f}'" for f in files)
                loading.execute(
                    f"CREATE TABLE {stream} AS SELECT * "
                    f"FROM read_json_auto([{listed}], union_by_name = true)"
                )
    with_current_views("duckdb", path=str(path), schema="main")
    connection = duckdb.connect(str(path))
    try:

        def fetch(sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
            cursor = connection.execute(sql)
            return [d[0] for d in cursor.description], cursor.fetchall()

        yield fetch
    finally:
        connection.close()
        if scratch is not None:
            scratch.cleanup()


class Databases:
    """PostgreSQL databases of this module, created on demand and dropped at the end."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._server: PostgresServer | None = None
        self.created: list[str] = []

    def server(self) -> PostgresServer:
        with self._lock:
            if self._server is None:
                self._server = postgres_server()
            return self._server

    def create(self) -> str:
        server = self.server()
        name = f"tap_spanning_currency_{uuid.uuid4().hex[:12]}"
        with psycopg_module().connect(server.url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        with self._lock:
            self.created.append(name)
        return name

    def drop_all(self) -> None:
        if self._server is None:
            return
        with psycopg_module().connect(self._server.url, autocommit=True) as admin:
            for name in self.created:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ----------------------------------------------------------------------------- judging


def expected_current(users: Users, base_urls: Mapping[str, str]) -> dict[str, list[Row]]:
    """The rows the current_* views must show: every tenant as of `users`."""
    rows: dict[str, list[Row]] = {stream: [] for stream in CURRENT_STREAMS}
    for tid, tenant_users in users.items():
        expected = expected_output(tenant_users, tenant_id=tid)
        rows["users"] += expected["users"]
        rows["role_memberships"] += expected["role_memberships"]
        rows["tenants"].append(
            expected_tenant_record(tid, tenant_summary(tenant_users), base_urls[tid])
        )
    return rows


def assert_current(
    snapshot: Snapshot, users: Users, base_urls: Mapping[str, str], when: str
) -> None:
    """The views hold exactly each tenant's expected rows, every contract column."""
    wanted_rows = expected_current(users, base_urls)
    problems = []
    for stream in CURRENT_STREAMS:
        landed = [
            {k: v for k, v in row.items() if k != "sync_version"}
            for row in snapshot.current[stream]
        ]
        actual, wanted = keyed(stream, landed), keyed(stream, wanted_rows[stream])
        for tid in users:
            mine = {k for k in actual if k[0] == tid}
            theirs = {k for k in wanted if k[0] == tid}
            missing, extra = sorted(theirs - mine), sorted(mine - theirs)
            wrong = [
                (actual[k], wanted[k]) for k in sorted(mine & theirs) if actual[k] != wanted[k]
            ]
            if missing or extra or wrong:
                problems.append(
                    f"current_{stream} of {tid}: {len(missing)} missing (e.g. {missing[:2]}), "
                    f"{len(extra)} not current (e.g. {extra[:2]}), {len(wrong)} differ "
                    f"(landed, expected: {wrong[:1]})"
                )
        strays = sorted({k[0] for k in actual} - set(users))
        if strays:
            problems.append(f"current_{stream} holds tenants not synced: {strays}")
    assert not problems, f"{when}:\n" + "\n".join(problems)


def versions_by_run(syncs: Sequence[Row]) -> list[int]:
    return sorted({int(row["sync_version"]) for row in syncs})


def last_complete(syncs: Sequence[Row]) -> dict[str, int]:
    found: dict[str, int] = {}
    for row in syncs:
        if row["status"] == "complete":
            found[row["tenant_id"]] = max(found.get(row["tenant_id"], 0), int(row["sync_version"]))
    return found


def assert_versions_of_current_rows(snapshot: Snapshot, when: str) -> None:
    """Every current row of a tenant carries the version of the tenant's last complete run."""
    latest = last_complete(snapshot.syncs)
    for stream in CURRENT_STREAMS:
        wrong = sorted(
            {
                (row["tenant_id"], row["sync_version"], latest.get(row["tenant_id"]))
                for row in snapshot.current[stream]
                if row["sync_version"] != latest.get(row["tenant_id"])
            }
        )
        assert not wrong, f"{when}: current_{stream} rows of another version: {wrong[:5]}"
