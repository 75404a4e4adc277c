"""The Meltano runs behind the currency tests (docs/many-tenants.md), each a track of runs.

A fleet of six tenants (uneven sizes, three loopback hosts, several pages each) is synced
three times into four warehouses side by side: PostgreSQL with hard delete (the project's
default), PostgreSQL without it, DuckDB (a plain `meltano run`, no refresh script) and
JSONL (`meltano run tap-spanning target-jsonl`, a destination folder per run, every line
of every run loaded into DuckDB afterwards). Every tenant's users change before run 2, and
run 2 gives one tenant a wrong key (PostgreSQL with hard delete and DuckDB run in Meltano's
`prod` environment, whose failure_mode nightly exits 0 on such a night; the others set
TAP_SPANNING_FAILURE_MODE=isolate and exit 1). Run 3, with the key fixed, brings the failed
tenant up to date. Two sharded jobs (3 + 3 tenants, no ACTIVATE_VERSION) load one
PostgreSQL schema; and `meltano config test` runs over 49 tenants, one with a wrong key.

The Meltano runs of one step run at the same time, each with a private `.meltano` (plugins
linked from the project's): an editable tap is never served from the catalog cache, so
concurrent runs sharing `.meltano/run/tap-spanning/tap.properties.json` would rewrite it
under each other. The tracks a test module needs start together, when its first test asks
for them (the `tracks` fixture); each test judges what its track recorded.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from spanning_emulator import (
    EmulatedTenant,
    FleetEmulator,
    expected_output,
    expected_roles,
    generate_fleet,
    generate_users,
)

from tests.current_rows import (
    CURRENT_STREAMS,
    Databases,
    Snapshot,
    Users,
    duckdb_views,
    postgres_views,
    read_snapshot,
)
from tests.e2e.test_warehouse_fleet import fleet_env
from tests.tapdriver import run_tap
from tests.warehouse import (
    Fetch,
    MeltanoRun,
    meltano,
    require_plugin,
)

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
TRACK_TIMEOUT = 900

User = Mapping[str, object]


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
