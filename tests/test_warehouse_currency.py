"""sql/current_rows.sql's current-rows rule, end to end through Meltano (README, "Many tenants").

A fleet of six tenants (uneven sizes, three loopback hosts, several pages each) is synced
three times into four warehouses side by side: PostgreSQL with hard delete (the project's
default), PostgreSQL without it, DuckDB (a plain `meltano run`, no refresh script) and
JSONL (`meltano run tap-spanning target-jsonl`, a destination folder per run, every line
of every run loaded into DuckDB afterwards). Every tenant's users change before run 2, and
run 2 gives one tenant a wrong key: it fails alone, the others complete (PostgreSQL with hard
delete and DuckDB run in Meltano's `prod` environment, whose failure_mode nightly exits 0 on
such a night; the others set TAP_SPANNING_FAILURE_MODE=isolate and exit 1).
After each run the views of sql/current_rows.sql, applied unchanged to the warehouse, must
show each healthy tenant exactly as its last run found it (so removals landed), the failed
tenant exactly as run 1 found it, and tenant_syncs must hold every run. Run 3, with the key
fixed, brings the failed tenant up to date.

Also: two sharded jobs (3 + 3 tenants, no ACTIVATE_VERSION) loading one PostgreSQL schema
each keep their own tenants current; and `meltano config test` over 49 tenants fails,
naming the one refused tenant, before any record.

Every expectation comes from the emulator's ground truth (`expected_output`). The Meltano
runs of one step run at the same time, each with a private `.meltano` (plugins linked from
the project's): an editable tap is never served from the catalog cache, so concurrent runs
sharing `.meltano/run/tap-spanning/tap.properties.json` would rewrite it under each other.
The three tracks (the four warehouses, the shards, the config test) start together when the
first test of this module needs them; each test judges what its track recorded.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from spanning_emulator import (
    EmulatedTenant,
    FleetEmulator,
    expected_output,
    expected_roles,
    expected_tenant_record,
    generate_fleet,
    generate_users,
    tenant_summary,
)

from tests.tapdriver import run_tap
from tests.test_warehouse import (
    COLUMNS,
    PG_SCHEMA,
    PROJECT_DIR,
    Fetch,
    MeltanoRun,
    PostgresServer,
    Row,
    import_or_unavailable,
    keyed,
    meltano,
    postgres_server,
    psycopg_module,
    require_plugin,
)
from tests.test_warehouse_fleet import fleet_env

pytestmark = pytest.mark.e2e

CURRENT_ROWS_SQL = PROJECT_DIR / "sql" / "current_rows.sql"
HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
PAGE_SIZE = 25  # the largest tenant sends 7 pages
# (tenant id, users, generator profile), hosts round-robin over HOSTS.
FLEET: tuple[tuple[str, int, str], ...] = (
    ("acme", 160, "torture"),
    ("globex", 110, "realistic"),
    ("initech", 70, "torture"),
    ("umbrella", 45, "realistic"),
    ("hooli", 24, "torture"),
    ("vandelay", 12, "realistic"),
)
TENANT_IDS = tuple(name for name, _, _ in FLEET)
BROKEN = "initech"  # its key is wrong in run 2
WRONG_KEY = "wrong-key-0000-1111-2222-333333333333"
# The sharded jobs: two tenant lists into one schema; one tenant of each loses users.
SHARDS = (("acme", "globex", "initech"), ("umbrella", "hooli", "vandelay"))
SHRINKING = ("acme", "hooli")
CONFIG_TEST_TENANTS = 49
CONFIG_TEST_REFUSED = 17  # index in generate_fleet(49) of the tenant with a wrong key

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
TRACK_TIMEOUT = 900

User = Mapping[str, object]
Users = dict[str, list[dict[str, object]]]  # tenant id -> users


# ----------------------------------------------------------------------------- tenants


def fleet_tenants() -> list[EmulatedTenant]:
    tenants = []
    for index, (name, size, profile) in enumerate(FLEET):
        seed = 5100 + index
        users = (
            generate_users(size, seed, "realistic", domain=f"{name}.example")
            if profile == "realistic"
            else generate_users(size, seed)
        )
        tenants.append(
            EmulatedTenant(
                tenant_id=name,
                users=users,
                admin_email=f"admin@{name}.example",
                api_key=f"{name}-key-0000-1111-2222-{seed:012d}",
                host=HOSTS[index % len(HOSTS)],
            )
        )
    return tenants


def memberships(users: Sequence[User]) -> set[tuple[str, str]]:
    return {(str(m["roleId"]), str(m["msId"])) for m in expected_output(users)["role_memberships"]}


def changed(users: Sequence[User]) -> list[dict[str, object]]:
    """Every fourth user gone; of those who stay, three lose their tags, three gain Global Admin.

    Only spellings of TAG_SPELLINGS are used, so expected_output stays the ground truth.
    """
    kept = [copy.deepcopy(dict(user)) for index, user in enumerate(users) if index % 4 != 1]
    losing = [u for u in kept if expected_roles({**u, "tags": []}) != expected_roles(u)][:3]
    for user in losing:
        user["tags"] = []
    gaining = [u for u in kept if u not in losing and "global_admin" not in expected_roles(u)]
    for user in gaining[:3]:
        tags = user.get("tags")
        user["tags"] = [*(tags if isinstance(tags, list) else []), "Global Admin"]
    return kept


def shrunk(users: Sequence[User]) -> list[dict[str, object]]:
    """Every third user gone, nothing else changed."""
    return [dict(user) for index, user in enumerate(users) if index % 3 != 2]


def ids(users: Sequence[User]) -> set[str]:
    return {str(user["msId"]) for user in users}


def assert_meaningful(before: Sequence[User], after: Sequence[User], tenant_id: str) -> None:
    """The change removes users, and takes roles from and gives roles to users who stay."""
    staying = ids(after)
    lost = {(r, m) for r, m in memberships(before) - memberships(after) if m in staying}
    gained = memberships(after) - memberships(before)
    assert ids(before) - staying, f"{tenant_id}: the change removes nobody"
    assert lost, f"{tenant_id}: the change takes no role from a user who stays"
    assert gained, f"{tenant_id}: the change gives no role"


@dataclass(frozen=True)
class Plan:
    """The users each run finds, and what the warehouse must show as current after it."""

    served: list[Users]  # per run: the users the emulator serves
    current: list[Users]  # per run: each tenant's users as of its last complete run
    failed: list[set[str]]  # per run: the tenants that fail


def plan(tenants: Sequence[EmulatedTenant]) -> Plan:
    run1 = {t.tenant_id: [dict(u) for u in t.users] for t in tenants}
    run2 = {tid: changed(users) for tid, users in run1.items()}
    run3 = {**run2, BROKEN: changed(run2[BROKEN])}  # the failed tenant changed again
    for tid, users in run1.items():
        assert_meaningful(users, run2[tid], tid)
    assert_meaningful(run2[BROKEN], run3[BROKEN], BROKEN)
    return Plan(
        served=[run1, run2, run3],
        current=[run1, {**run2, BROKEN: run1[BROKEN]}, run3],
        failed=[set(), {BROKEN}, set()],
    )


# ----------------------------------------------------------------------------- warehouses


@dataclass
class Snapshot:
    """What a warehouse holds after a run, read through the views of current_rows.sql."""

    current: dict[str, list[Row]]  # users, role_memberships, tenants: contract + sync_version
    syncs: list[Row]  # tenant_syncs, every row
    raw_users: list[Row]  # users table: tenant_id, msId, sync_version of every row
    failing: list[Row]  # README's "which tenants are failing" query, as written


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
    """README "Many tenants": the SQL block after "Which tenants are failing"."""
    readme = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    after = readme.split("Which tenants are failing, since when, and why:", 1)[1]
    return after.split("```sql\n", 1)[1].split("```", 1)[0]


@contextmanager
def postgres_views(url: str) -> Iterator[Fetch]:
    """The tap's schema with current_rows.sql applied (unchanged, after SET search_path)."""
    with psycopg_module().connect(url, autocommit=True) as connection:
        connection.execute(f"SET search_path TO {PG_SCHEMA}")
        connection.execute(CURRENT_ROWS_SQL.read_text(encoding="utf-8"))

        def fetch(sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
            cursor = connection.execute(sql)
            assert cursor.description is not None
            return [d.name for d in cursor.description], cursor.fetchall()

        yield fetch


@contextmanager
def duckdb_views(
    path: Path | None, jsonl: Mapping[str, Sequence[Path]] | None = None
) -> Iterator[Fetch]:
    """A DuckDB file (or, for `jsonl`, an in-memory database of the files' lines, a table
    per stream) with current_rows.sql applied unchanged."""
    duckdb = import_or_unavailable("duckdb", "duckdb==1.0.0")
    connection = duckdb.connect(str(path) if path else ":memory:")
    try:
        for stream, files in (jsonl or {}).items():
            assert files, stream
            assert not [f for f in files if "'" in str(f)]
            listed = ", ".join(f"'{f}'" for f in files)
            connection.execute(
                f"CREATE TABLE {stream} AS SELECT * "
                f"FROM read_json_auto([{listed}], union_by_name = true)"
            )
        connection.execute(CURRENT_ROWS_SQL.read_text(encoding="utf-8"))

        def fetch(sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
            cursor = connection.execute(sql)
            return [d[0] for d in cursor.description], cursor.fetchall()

        yield fetch
    finally:
        connection.close()


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


# ----------------------------------------------------------------------------- 1: four warehouses


@dataclass
class Destination:
    """One warehouse of the scenario: how to load it, and what each run left in it."""

    name: str
    loader: str
    workdir: Path
    loader_env: Callable[[int], dict[str, str]]  # run number -> loader settings
    read: Callable[[int], AbstractContextManager[Fetch]]  # run number -> the views
    environment: str | None = None  # meltano --environment (prod: failure_mode nightly)
    runs: list[MeltanoRun] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    error: BaseException | None = None

    def sync(self, fleet: FleetEmulator, number: int, *, succeed: bool) -> None:
        require_plugin("extractors", "tap-spanning")
        require_plugin("loaders", self.loader)
        extra = {} if self.environment else {"TAP_SPANNING_FAILURE_MODE": "isolate"}
        env = fleet_env(
            self.workdir,
            fleet,
            TENANT_IDS,
            TAP_SPANNING_PAGE_SIZE=str(PAGE_SIZE),
            **extra,
            **self.loader_env(number),
        )
        if number == 2:
            keys = json.loads(env["TAP_SPANNING_TENANT_API_KEYS"])
            keys[BROKEN] = WRONG_KEY
            env["TAP_SPANNING_TENANT_API_KEYS"] = json.dumps(keys)
        args = [f"--environment={self.environment}"] if self.environment else []
        # The nightly mode's exit: 0 while at least one tenant completed.
        succeed = succeed or self.environment == "prod"
        self.runs.append(meltano(env, *args, "run", "tap-spanning", self.loader, succeed=succeed))
        with self.read(number) as fetch:
            self.snapshots.append(read_snapshot(fetch))


@dataclass
class Scenario:
    plan: Plan
    base_urls: dict[str, str]
    destinations: dict[str, Destination]


def destinations(root: Path, databases: Databases) -> list[Destination]:
    made: list[Destination] = []

    def postgres(name: str, hard_delete: bool) -> Destination:
        database: list[str] = []

        def loader_env(number: int) -> dict[str, str]:
            if not database:
                database.append(databases.create())
            env = databases.server().loader_env(database[0])
            return {**env, "TARGET_POSTGRES_HARD_DELETE": str(hard_delete).lower()}

        def read(number: int) -> AbstractContextManager[Fetch]:
            return postgres_views(databases.server().url_for(database[0]))

        return Destination(name, "target-postgres", root / name, loader_env, read)

    hard = postgres("postgres-hard-delete", hard_delete=True)
    hard.environment = "prod"  # the nightly run: meltano.yml sets failure_mode nightly there
    made += [hard, postgres("postgres-no-hard-delete", hard_delete=False)]

    duckdb_file = root / "duckdb" / "warehouse" / "spanning.duckdb"
    made.append(
        Destination(
            "duckdb",
            "target-duckdb",
            root / "duckdb",
            lambda number: {"TARGET_DUCKDB_PATH": str(duckdb_file)},
            lambda number: duckdb_views(duckdb_file),
            environment="prod",
        )
    )

    jsonl_root = root / "jsonl" / "files"

    def jsonl_files(number: int) -> dict[str, list[Path]]:
        """Every line of runs 1 .. number: a table per stream, several rows per key."""
        return {
            stream: [
                jsonl_root / f"run{run}" / f"{stream}.jsonl"
                for run in range(1, number + 1)
                if (jsonl_root / f"run{run}" / f"{stream}.jsonl").exists()
            ]
            for stream in (*CURRENT_STREAMS, "tenant_syncs")
        }

    made.append(
        Destination(
            "jsonl",
            "target-jsonl",
            root / "jsonl",
            lambda number: {"TARGET_JSONL_DESTINATION_PATH": str(jsonl_root / f"run{number}")},
            lambda number: duckdb_views(None, jsonl_files(number)),
        )
    )
    (root / "duckdb" / "warehouse").mkdir(parents=True)
    return made


def scenario_track(root: Path, databases: Databases) -> Scenario:
    """Three runs of the six-tenant fleet into every warehouse, the warehouses side by side."""
    tenants = fleet_tenants()
    the_plan = plan(tenants)
    targets = {d.name: d for d in destinations(root, databases)}
    with FleetEmulator(tenants) as fleet:
        base_urls = {tid: fleet.base_url(tid) for tid in TENANT_IDS}
        for number, served in enumerate(the_plan.served, start=1):
            for tid, users in served.items():
                fleet.set_users(tid, users)
            live = [d for d in targets.values() if d.error is None]
            if not live:
                break

            def sync(destination: Destination, number: int = number) -> None:
                try:
                    destination.sync(fleet, number, succeed=number != 2)
                except BaseException as error:  # pytest's skip and fail too: the test re-raises
                    destination.error = error

            with ThreadPoolExecutor(len(live)) as pool:
                list(pool.map(sync, live))
    return Scenario(the_plan, base_urls, targets)


# ----------------------------------------------------------------------------- 2: shards


@dataclass
class Sharded:
    served: list[Users]  # the users of the first and of the second round
    base_urls: dict[str, str]
    runs: list[MeltanoRun]
    after_first: Snapshot  # both shards once
    after_one_shard: Snapshot  # then the first shard again
    after_both: Snapshot  # then the second shard again


def sharded_track(root: Path, databases: Databases) -> Sharded:
    """Two tenant lists, two jobs, one schema, no ACTIVATE_VERSION; then one tenant of each
    list loses users and both jobs run again."""
    require_plugin("extractors", "tap-spanning")
    require_plugin("loaders", "target-postgres")
    database = databases.create()
    server = databases.server()
    tenants = fleet_tenants()
    first = {t.tenant_id: [dict(u) for u in t.users] for t in tenants}
    second = {tid: shrunk(users) if tid in SHRINKING else users for tid, users in first.items()}
    runs: list[MeltanoRun] = []
    with FleetEmulator(tenants) as fleet:

        def sync(shard: Sequence[str], suffix: str) -> None:
            env = fleet_env(
                root,
                fleet,
                shard,
                TAP_SPANNING_PAGE_SIZE=str(PAGE_SIZE),
                TAP_SPANNING_EMIT_ACTIVATE_VERSION_MESSAGES="false",
                **server.loader_env(database),
            )
            # Each job its own state id, as two scheduled jobs of one project would have.
            runs.append(
                meltano(
                    env, "run", f"--state-id-suffix={suffix}", "tap-spanning", "target-postgres"
                )
            )

        def snapshot() -> Snapshot:
            with postgres_views(server.url_for(database)) as fetch:
                return read_snapshot(fetch)

        sync(SHARDS[0], "shard-1")
        sync(SHARDS[1], "shard-2")
        after_first = snapshot()
        for tid in SHRINKING:
            fleet.set_users(tid, second[tid])
        sync(SHARDS[0], "shard-1")
        after_one_shard = snapshot()
        sync(SHARDS[1], "shard-2")
        after_both = snapshot()
        base_urls = {tid: fleet.base_url(tid) for tid in TENANT_IDS}
    return Sharded([first, second], base_urls, runs, after_first, after_one_shard, after_both)


# ----------------------------------------------------------------------------- 3: config test


@dataclass
class ConfigTest:
    refused: str  # the tenant given a wrong key
    tenant_ids: list[str]
    refused_run: MeltanoRun  # meltano config test with the wrong key
    tap_stdout_types: list[str]  # the tap run directly with that config: message types
    tap_returncode: int
    tap_last_line: str
    tap_paths: set[str]  # the paths the direct run asked for
    refused_paths: set[str]  # ...with the wrong key (the emulator names no tenant for them)
    good_run: MeltanoRun  # meltano config test with every key right


def config_test_track(root: Path) -> ConfigTest:
    require_plugin("extractors", "tap-spanning")
    tenants = generate_fleet(CONFIG_TEST_TENANTS, seed=7, hosts=HOSTS)
    refused = tenants[CONFIG_TEST_REFUSED].tenant_id
    all_ids = [t.tenant_id for t in tenants]
    with FleetEmulator(tenants) as fleet:
        env = fleet_env(
            root,
            fleet,
            all_ids,
            TAP_SPANNING_FAILURE_MODE="strict",
        )
        keys = {t.tenant_id: t.api_key for t in tenants}
        wrong_env = {
            **env,
            "TAP_SPANNING_TENANT_API_KEYS": json.dumps({**keys, refused: WRONG_KEY}),
        }
        refused_run = meltano(wrong_env, "config", "test", "tap-spanning", succeed=False)

        # The same settings, the tap run directly (a full sync, not --test).
        fleet.clear_requests()
        config = {
            "tenants": json.loads(env["TAP_SPANNING_TENANTS"]),
            "tenant_api_keys": {**keys, refused: WRONG_KEY},
            "failure_mode": "strict",
            "page_size": int(env["TAP_SPANNING_PAGE_SIZE"]),
            "max_retry_wait": float(env["TAP_SPANNING_MAX_RETRY_WAIT"]),
        }
        tap = run_tap(config, root, label="49 tenants, one refused, direct")
        paths = {request.path.partition("?")[0] for request in fleet.requests}
        refused_paths = {
            request.path.partition("?")[0]
            for request in fleet.requests
            if request.tenant_id is None
        }

        good_run = meltano(env, "config", "test", "tap-spanning")
    return ConfigTest(
        refused,
        all_ids,
        refused_run,
        [str(message.get("type")) for message in tap.messages],
        tap.returncode,
        tap.last_stderr_line(),
        paths,
        refused_paths,
        good_run,
    )


# ----------------------------------------------------------------------------- the tracks


TRACKS: dict[str, Callable[[Path, Databases], Any]] = {
    "scenario": scenario_track,
    "sharded": sharded_track,
    "config": lambda root, databases: config_test_track(root),
}


class Tracks:
    def __init__(self, futures: Mapping[str, Future[Any]]) -> None:
        self.futures = futures

    def result(self, name: str) -> Any:
        assert name in self.futures, f"track {name} was not started: no selected test named it"
        return self.futures[name].result(timeout=TRACK_TIMEOUT)


def track_of(test_name: str) -> str | None:
    for track in TRACKS:
        if test_name.startswith(f"test_{track}_"):
            return track
    return None


@pytest.fixture(scope="module")
def tracks(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Tracks]:
    """Start every track a selected test of this module needs, side by side."""
    wanted = {
        track_of(item.originalname if isinstance(item, pytest.Function) else item.name)
        for item in request.session.items
        if getattr(item, "module", None) is request.module
    }
    databases = Databases()
    pool = ThreadPoolExecutor(len(TRACKS), thread_name_prefix="currency")
    futures = {
        name: pool.submit(track, tmp_path_factory.mktemp(f"currency-{name}"), databases)
        for name, track in TRACKS.items()
        if name in wanted
    }
    try:
        yield Tracks(futures)
    finally:
        pool.shutdown(wait=True)
        databases.drop_all()


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


def refused_reason(reason: object) -> bool:
    text = str(reason).lower()
    return "refused" in text and "credentials" in text


def assert_tenant_syncs(
    snapshot: Snapshot, plan_: Plan, runs: int, tenant_ids: Sequence[str], when: str
) -> list[int]:
    """One row per tenant per run so far, with each run's status, reason and counts."""
    versions = versions_by_run(snapshot.syncs)
    assert len(versions) == runs, f"{when}: tenant_syncs holds versions {versions}"
    by_key = {(row["tenant_id"], int(row["sync_version"])): row for row in snapshot.syncs}
    assert len(by_key) == len(snapshot.syncs), f"{when}: a tenant_syncs key twice"
    for run, version in enumerate(versions):
        assert {tid for tid, v in by_key if v == version} == set(tenant_ids), (
            f"{when}: tenant_syncs of run {run + 1} names other tenants"
        )
        for tid in tenant_ids:
            row = by_key[(tid, version)]
            label = f"{when}: tenant_syncs of {tid}, run {run + 1}"
            if tid in plan_.failed[run]:
                assert row["status"] == "failed", f"{label}: {row}"
                assert refused_reason(row["reason"]), f"{label}: reason {row['reason']!r}"
                assert (row["users"], row["role_memberships"]) == (0, 0), f"{label}: {row}"
            else:
                served = plan_.served[run][tid]
                counts = (len(served), len(expected_output(served)["role_memberships"]))
                assert row["status"] == "complete", f"{label}: {row}"
                assert row["reason"] is None, f"{label}: {row}"
                assert (row["users"], row["role_memberships"]) == counts, f"{label}: {row}"
                assert row["started_at"], f"{label}: {row}"
                assert row["finished_at"], f"{label}: {row}"
            assert int(row["requests"]) >= 1, f"{label}: {row}"
    return versions


SCENARIO_DESTINATIONS = ("postgres-hard-delete", "postgres-no-hard-delete", "duckdb", "jsonl")


@pytest.mark.parametrize("destination", SCENARIO_DESTINATIONS)
def test_scenario_current_rows_follow_each_tenants_last_complete_run(
    tracks: Tracks, destination: str
) -> None:
    """Run 1 all good; run 2 every tenant changed and one refused; run 3 the key fixed."""
    scenario: Scenario = tracks.result("scenario")
    target = scenario.destinations[destination]
    if target.error is not None:
        raise target.error
    the_plan, base_urls = scenario.plan, scenario.base_urls
    # Run 2 in prod (failure_mode nightly) is a normal night: a tenant completed.
    failed_night = 0 if target.environment == "prod" else 1
    assert [run.returncode for run in target.runs] == [0, failed_night, 0], [
        r.output[-2000:] for r in target.runs
    ]
    assert f"1 of {len(TENANT_IDS)} tenants failed: {BROKEN} (credentials refused)" in (
        target.runs[1].output
    ), target.runs[1].output[-3000:]

    for run, snapshot in enumerate(target.snapshots):
        when = f"{destination}, after run {run + 1}"
        assert_current(snapshot, the_plan.current[run], base_urls, when)
        versions = assert_tenant_syncs(snapshot, the_plan, run + 1, TENANT_IDS, when)
        assert_versions_of_current_rows(snapshot, when)
        assert len(snapshot.current["tenants"]) == len(TENANT_IDS), when
        if run == 1:  # the failed tenant's rows are still run 1's
            assert last_complete(snapshot.syncs)[BROKEN] == versions[0], when
            # README's query names it: one failed run in a row, since run 2, and why.
            assert [
                (r["tenant_id"], int(r["failed_runs_in_a_row"]), int(r["failing_since_version"]))
                for r in snapshot.failing
            ] == [(BROKEN, 1, versions[1])], when
            assert refused_reason(snapshot.failing[0]["last_reason"]), when
        else:
            assert snapshot.failing == [], when

    # Removed users are gone from the views: those of healthy tenants after run 2, the
    # failed tenant's only after run 3.
    after2, after3 = target.snapshots[1], target.snapshots[2]
    shown2 = {(r["tenant_id"], r["msId"]) for r in after2.current["users"]}
    shown3 = {(r["tenant_id"], r["msId"]) for r in after3.current["users"]}
    for tid in TENANT_IDS:
        gone = ids(the_plan.served[0][tid]) - ids(the_plan.served[1][tid])
        assert gone
        if tid == BROKEN:
            assert {(tid, m) for m in gone} <= shown2, f"{destination}: {tid} lost rows in run 2"
            gone |= ids(the_plan.served[1][tid]) - ids(the_plan.served[2][tid])
        else:
            assert not {(tid, m) for m in gone} & shown2
        assert not {(tid, m) for m in gone} & shown3

    # Raw tables: run 2 failed for one tenant, so nothing was activated and no loader
    # deleted a row; with hard delete, run 3 (every tenant complete) deleted every row
    # of an earlier version.
    raw2 = {(r["tenant_id"], r["msId"]) for r in after2.raw_users}
    removed_by_run2 = {
        (tid, m)
        for tid in TENANT_IDS
        for m in ids(the_plan.served[0][tid]) - ids(the_plan.served[1][tid])
    }
    assert removed_by_run2 <= raw2, f"{destination}: run 2 (incomplete) deleted rows"
    if destination == "postgres-hard-delete":
        raw3 = sorted((r["tenant_id"], r["msId"]) for r in after3.raw_users)
        assert raw3 == sorted(shown3), "hard delete after a complete run left stale rows"
    else:
        assert len(after3.raw_users) > len(after3.current["users"]), destination


def test_sharded_jobs_keep_their_own_tenants_current(tracks: Tracks) -> None:
    """Two jobs of three tenants into one schema, without ACTIVATE_VERSION."""
    sharded: Sharded = tracks.result("sharded")
    first, second = sharded.served
    base_urls = sharded.base_urls
    assert [run.returncode for run in sharded.runs] == [0, 0, 0, 0]

    assert_current(sharded.after_first, first, base_urls, "both shards once")
    versions = versions_by_run(sharded.after_first.syncs)
    assert len(versions) == 2, versions  # a version per job
    for shard, version in zip(SHARDS, versions, strict=True):
        assert {
            r["tenant_id"] for r in sharded.after_first.syncs if r["sync_version"] == version
        } == set(shard)

    # The first shard again: its tenants as now, the second shard's as before.
    mixed = {tid: (second if tid in SHARDS[0] else first)[tid] for tid in TENANT_IDS}
    assert_current(sharded.after_one_shard, mixed, base_urls, "first shard again")
    assert_current(sharded.after_both, second, base_urls, "both shards again")
    for snapshot in (sharded.after_first, sharded.after_one_shard, sharded.after_both):
        assert_versions_of_current_rows(snapshot, "sharded")
        assert all(row["status"] == "complete" for row in snapshot.syncs)
    assert len(sharded.after_both.syncs) == 2 * len(TENANT_IDS)

    shown = {(r["tenant_id"], r["msId"]) for r in sharded.after_both.current["users"]}
    raw = {(r["tenant_id"], r["msId"]) for r in sharded.after_both.raw_users}
    for tid in SHRINKING:
        gone = {(tid, m) for m in ids(first[tid]) - ids(second[tid])}
        assert gone
        assert not gone & shown, f"{tid}: removed users are still current"
        assert gone <= raw, f"{tid}: removed users left the raw table (something activated)"
    assert len(raw) == sum(len(users) for users in first.values())


def test_config_test_names_the_refused_tenant_of_49(tracks: Tracks) -> None:
    """failure_mode strict: one wrong key of 49 fails `meltano config test`, before
    any record; the tap run directly with the same settings writes no RECORD."""
    result: ConfigTest = tracks.result("config")
    assert len(result.tenant_ids) == CONFIG_TEST_TENANTS
    output = result.refused_run.output
    assert result.refused_run.returncode != 0
    assert result.refused in output, output[-3000:]
    assert (
        f"Credentials refused for 1 of {CONFIG_TEST_TENANTS} tenants, so nothing was synced: "
        f"{result.refused} " in output
    ), output[-3000:]
    assert "Plugin configuration is valid" not in output

    assert result.tap_returncode == 1
    assert "RECORD" not in result.tap_stdout_types
    assert "BATCH" not in result.tap_stdout_types
    assert result.tap_last_line.split(" | ")[-1].startswith(
        f"Credentials refused for 1 of {CONFIG_TEST_TENANTS} tenants, so nothing was synced: "
        f"{result.refused} "
    ), result.tap_last_line
    # The refused tenant was asked for its credentials and nothing more (the users pass
    # starts while the last credentials are in flight: pages of others fetched ahead are
    # dropped unwritten).
    assert "/external/tenant" in result.tap_paths
    assert result.refused_paths == {"/external/tenant"}, sorted(result.refused_paths)


def test_config_test_passes_for_49_good_keys(tracks: Tracks) -> None:
    result: ConfigTest = tracks.result("config")
    assert result.good_run.returncode == 0
    assert "Plugin configuration is valid" in result.good_run.output
