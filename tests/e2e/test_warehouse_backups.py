"""Backup health end to end through Meltano (docs/backup-health.md): histories, not snapshots.

A fleet of five small tenants, each spelling its backup status its own way (every date
format, counts as text, userId as text), is synced twice by `meltano run tap-spanning
<loader>` into PostgreSQL (the project's loader config: upsert, ACTIVATE_VERSION with hard
delete) and into DuckDB (a plain `meltano run`), both with the project's default
`emit_activate_version_messages: true`.

Run 1 sees the emulator's today as the real UTC today - 1 (the tap reads "today" from the
server's Date header). Then the window moves one day (the emulator's today = the real UTC
today) and every tenant's counts of one day present in both windows settle differently
(`settle_day`): run 2. Afterwards `backup_summaries` and `user_backups` must hold 8 days per
tenant: run 2's records for its 7 days (the settled day with run 2's counts) and run 1's for
the one day only run 1 saw. Then the three SQL questions of docs/backup-health.md, read from
it, must answer on both warehouses what the emulator's records say.

Every expectation comes from the emulator's model (`EmulatedTenant.expected_backups`). The
two runs of each warehouse happen once, in a module-scoped fixture shared by its two tests;
each run gets a private `.meltano` system directory (plugins linked from the project's), so
Meltano runs of other test modules at the same time cannot rewrite its files.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from spanning_emulator import (
    DATE_FORMATS,
    DateFormat,
    EmulatedTenant,
    FleetEmulator,
    utc_today,
)

from tests.e2e.test_warehouse_fleet import fleet_env
from tests.warehouse import (
    DOCS,
    PROJECT_DIR,
    Fetch,
    MeltanoRun,
    PostgresServer,
    duckdb_tables,
    meltano,
    postgres_server,
    postgres_tables,
    psycopg_module,
    require_plugin,
    small_tenant,
)

pytestmark = pytest.mark.e2e

BACKUP_STREAMS = ("backup_summaries", "user_backups")
KEYS: dict[str, tuple[str, ...]] = {
    "backup_summaries": ("tenant_id", "date", "type"),
    "user_backups": ("tenant_id", "msId", "date", "type"),
}
COUNTS = (
    "total",
    "successful",
    "partial",
    "failed",
    "items_created",
    "items_deleted",
    "items_failed",
    "items_total",
    "attempts",
)
# The contract's columns of each stream (docs/backup-health.md), sync_version aside.
COLUMNS: dict[str, tuple[str, ...]] = {
    "backup_summaries": ("tenant_id", "date", "type", *COUNTS),
    "user_backups": (
        "tenant_id",
        "msId",
        "userPrincipalName",
        "userId",
        "date",
        "type",
        *COUNTS,
    ),
}
HOSTS = ("127.0.0.1", "127.0.0.2")
WAREHOUSES = ("postgres", "duckdb")
# What a warehouse's scenario may end in, besides its result: kept for its own tests to raise.
OUTCOMES = (Exception, pytest.skip.Exception, pytest.fail.Exception)
# (tenant id, users, seed of generate_users, date format, counts as text, userId as text,
# the day (days before the real today) whose counts settle between the runs).
# northwind's users (seed 1204) hold so many accounts failing a workload every day that its
# success stays below 95% on every day of 2026-2031 (at most 93.3%, settled or not):
# question 1 always has an answer.
FLEET: tuple[tuple[str, int, int, DateFormat, bool, bool, int], ...] = (
    ("northwind", 24, 1204, "mdy", True, False, 1),
    ("contoso", 36, 1, "iso", False, True, 2),
    ("fabrikam", 30, 2, "datetime", True, False, 1),
    ("litware", 28, 3, "epoch_ms", False, True, 6),
    ("wingtip", 20, 4, "epoch_ms_text", True, True, 3),
)

Record = dict[str, Any]
Key = tuple[Any, ...]


def fleet_tenants() -> list[EmulatedTenant]:
    """The fleet; every tenant follows the fleet's today (set_today)."""
    return [
        small_tenant(
            name,
            size,
            seed,
            HOSTS[index % len(HOSTS)],
            date_format=date_format,
            counts_as_text=as_text,
            user_id_as_text=user_id_as_text,
        )
        for index, (name, size, seed, date_format, as_text, user_id_as_text, _) in enumerate(FLEET)
    ]


def settle_days(today: dt.date) -> dict[str, dt.date]:
    return {name: today - dt.timedelta(days=back) for name, *_, back in FLEET}


# ----------------------------------------------------------------------------- ground truth


def keyed_records(stream: str, records: Sequence[Mapping[str, Any]]) -> dict[Key, Record]:
    table: dict[Key, Record] = {}
    for record in records:
        key = tuple(record[column] for column in KEYS[stream])
        assert key not in table, f"{stream}: key {key} twice"
        table[key] = {column: record[column] for column in COLUMNS[stream]}
    return table


@dataclass
class Truth:
    """What each run was expected to read, per tenant and stream, and the history after both."""

    today: dt.date  # the real UTC today: run 2's today; run 1's is the day before
    run1: dict[str, dict[str, list[Record]]]
    run2: dict[str, dict[str, list[Record]]]
    settled: dict[str, dt.date]

    def history(self, stream: str) -> dict[Key, Record]:
        """Run 1's rows, then run 2's upserted over them by key."""
        merged: dict[Key, Record] = {}
        for tenant_id in self.run1:
            merged.update(keyed_records(stream, self.run1[tenant_id][stream]))
            merged.update(keyed_records(stream, self.run2[tenant_id][stream]))
        return merged


# ----------------------------------------------------------------------------- warehouses


@dataclass
class Landed:
    """A warehouse after both runs, and what the emulator says it must hold."""

    name: str
    tables: Callable[[], AbstractContextManager[Fetch]]
    truth: Truth
    runs: list[float]  # seconds of each meltano run


def check_project_defaults() -> None:
    """The runs use meltano.yml's tap config unchanged: ACTIVATE_VERSION on, every stream."""
    project = yaml.safe_load((PROJECT_DIR / "meltano.yml").read_text(encoding="utf-8"))
    tap = next(p for p in project["plugins"]["extractors"] if p["name"] == "tap-spanning")
    assert tap["config"]["emit_activate_version_messages"] is True
    assert tap["select"] == ["*.*"]


@dataclass
class Warehouse:
    """Where one warehouse's runs load, how to read it, and how to remove it."""

    name: str
    loader: dict[str, str]
    tables: Callable[[], AbstractContextManager[Fetch]]
    drop: Callable[[], None]


def warehouse(name: str, root: Path) -> Warehouse:
    """A fresh warehouse: a PostgreSQL database of its own, or a DuckDB file under `root`."""
    require_plugin("extractors", "tap-spanning")
    require_plugin("loaders", f"target-{name}")
    if name == "postgres":
        server, database = postgres_database()
        url = server.url_for(database)

        def drop() -> None:
            with psycopg_module().connect(server.url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

        return Warehouse(name, server.loader_env(database), lambda: postgres_tables(url), drop)
    path = root / "warehouse" / "spanning.duckdb"
    path.parent.mkdir(parents=True)
    return Warehouse(
        name, {"TARGET_DUCKDB_PATH": str(path)}, lambda: duckdb_tables(path), lambda: None
    )


def two_runs(place: Warehouse, root: Path, today: dt.date) -> Landed:
    """Run 1 with the server's today the day before `today`; the window moved a day and
    every tenant's counts of one day of both windows settled; run 2."""
    yesterday = today - dt.timedelta(days=1)
    with FleetEmulator(fleet_tenants(), today=yesterday) as fleet:
        runs = []
        run1 = {t.tenant_id: t.expected_backups(today=yesterday) for t in fleet.tenants}
        runs.append(sync(root / "run1", fleet, place.loader, place.name).seconds)

        fleet.set_today(today)
        settled = settle_days(today)
        for tenant_id, day in settled.items():
            fleet.set_backup_options(tenant_id, settle_day=day)
        run2 = {t.tenant_id: t.expected_backups(today=today) for t in fleet.tenants}
        runs.append(sync(root / "run2", fleet, place.loader, place.name).seconds)
    return Landed(place.name, place.tables, Truth(today, run1, run2, settled), runs)


@pytest.fixture(scope="module")
def scenarios(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Landed | BaseException]]:
    """Both warehouses' two runs, side by side (each its own emulator and `.meltano`): what
    each left, or why it could not (a skip, a failed run)."""
    check_project_defaults()
    today = utc_today()
    outcomes: dict[str, Landed | BaseException] = {}
    places: list[tuple[Warehouse, Path]] = []
    for name in WAREHOUSES:
        root = tmp_path_factory.mktemp(f"backups-{name}")
        try:
            places.append((warehouse(name, root), root))
        except OUTCOMES as error:  # a skip, or a CI failure: that warehouse's tests say it
            outcomes[name] = error
    try:
        with ThreadPoolExecutor(max_workers=len(WAREHOUSES)) as pool:
            futures = {
                place.name: pool.submit(two_runs, place, root, today) for place, root in places
            }
            for name, future in futures.items():
                try:
                    outcomes[name] = future.result()
                except OUTCOMES as error:  # reported by that warehouse's own tests
                    outcomes[name] = error
        yield outcomes
    finally:
        for place, _ in places:
            place.drop()


@pytest.fixture(params=WAREHOUSES)
def landed(request: pytest.FixtureRequest, scenarios: dict[str, Landed | BaseException]) -> Landed:
    """One warehouse after both runs (its skip or failure, if it has none)."""
    outcome = scenarios[request.param]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def postgres_database() -> tuple[PostgresServer, str]:
    """The server of TAP_SPANNING_TEST_PG_URL (as the `postgres` fixture), a fresh database."""
    server = postgres_server()
    name = f"tap_spanning_e2e_{uuid.uuid4().hex[:12]}"
    with psycopg_module().connect(server.url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return server, name


def sync(workdir: Path, fleet: FleetEmulator, loader: Mapping[str, str], name: str) -> MeltanoRun:
    """`meltano run tap-spanning target-<name>` over the whole fleet, the project's config
    otherwise (fleet_env: the tenants, their keys, page size 50, nothing of this shell's)."""
    env = fleet_env(workdir, fleet, [t.tenant_id for t in fleet.tenants], **loader)
    return meltano(env, "run", "tap-spanning", f"target-{name}")


# ----------------------------------------------------------------------------- landed rows


def plain(value: Any) -> Any:
    """A value as the emulator's records hold it: dates as text, whole numbers as int."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        assert value == value.to_integral_value(), value
        return int(value)
    return value


def landed_rows(fetch: Fetch, stream: str) -> tuple[dict[Key, Record], dict[Key, int]]:
    """The table's contract columns keyed like the records, and each row's sync_version."""
    names = [*COLUMNS[stream], "sync_version"]
    quoted = ", ".join(f'"{name}"' for name in names)  # PostgreSQL keeps the case
    _, rows = fetch(f"SELECT {quoted} FROM {stream}")
    table: dict[Key, Record] = {}
    versions: dict[Key, int] = {}
    for row in rows:
        record = {name: plain(value) for name, value in zip(names, row, strict=True)}
        key = tuple(record[column] for column in KEYS[stream])
        assert key not in table, f"{stream}: key {key} landed twice"
        versions[key] = record.pop("sync_version")
        table[key] = record
    return table, versions


def test_histories_hold_both_windows_with_the_newest_counts(landed: Landed) -> None:
    """8 days a tenant: run 2's 7 days (the settled one as run 2 read it), run 1's oldest."""
    truth = landed.truth
    only_run1 = truth.today - dt.timedelta(days=7)
    days = {(truth.today - dt.timedelta(days=back)).isoformat() for back in range(8)}
    # The test means something: every tenant's settled day changed between the runs, and
    # the fleet spells dates every way.
    assert {t[3] for t in FLEET} == set(DATE_FORMATS)
    for tenant_id, day in truth.settled.items():
        before = [r for r in truth.run1[tenant_id]["backup_summaries"] if r["date"] == str(day)]
        after = [r for r in truth.run2[tenant_id]["backup_summaries"] if r["date"] == str(day)]
        assert before, f"{tenant_id}: run 1 never saw {day}"
        assert after != before, f"{tenant_id}: {day} did not settle"

    with landed.tables() as fetch:
        for stream in BACKUP_STREAMS:
            actual, versions = landed_rows(fetch, stream)
            wanted = truth.history(stream)
            missing = sorted(set(wanted) - set(actual))
            extra = sorted(set(actual) - set(wanted))
            assert not missing, f"{stream}: {len(missing)} rows missing, e.g. {missing[:5]}"
            assert not extra, f"{stream}: {len(extra)} rows unexpected, e.g. {extra[:5]}"
            wrong = [(k, actual[k], wanted[k]) for k in sorted(wanted) if actual[k] != wanted[k]]
            assert not wrong, f"{stream}: {len(wrong)} rows differ (key, landed, expected): " + (
                repr(wrong[:3])
            )
            for tenant_id in truth.run1:
                mine = {k[-2] for k in actual if k[0] == tenant_id}
                assert mine == days, f"{stream}: {tenant_id} holds days {sorted(mine)}"
            # The oldest day is run 1's row, untouched; every other row was rewritten by run 2.
            old = {v for k, v in versions.items() if k[-2] == only_run1.isoformat()}
            new = {v for k, v in versions.items() if k[-2] != only_run1.isoformat()}
            assert len(old) == 1, (stream, old)
            assert len(new) == 1, (stream, new)
            assert min(old) < min(new), (stream, old, new)
            print(f"{landed.name} {stream}: {len(actual)} rows, as expected")
        if landed.name == "postgres":
            for stream in BACKUP_STREAMS:  # nothing merely marked deleted either
                _, rows = fetch(f"SELECT count(*) FROM {stream} WHERE _sdc_deleted_at IS NOT NULL")
                assert rows == [(0,)], stream
    print(f"{landed.name}: meltano runs {', '.join(f'{s:.1f}s' for s in landed.runs)}")


# ----------------------------------------------------------------------------- the questions


def backup_health_queries() -> list[str]:
    """The SQL blocks of docs/backup-health.md, in order."""
    document = DOCS / "backup-health.md"
    text = document.read_text(encoding="utf-8")
    queries = re.findall(r"^```sql\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    assert len(queries) == 3, f"{document.name}: {len(queries)} SQL blocks, not 3"
    return queries


def percent(successful: int, total: int) -> Decimal:
    """round(100.0 * successful / total, 1), rounding half away from zero."""
    exact = Decimal(100 * successful) / Decimal(total)
    return exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def expected_answers(truth: Truth) -> list[list[tuple[Any, ...]]]:
    """Each question's rows, in the query's ORDER BY, from the emulator's records alone."""
    summaries = list(truth.history("backup_summaries").values())
    users = list(truth.history("user_backups").values())
    yesterday = (truth.today - dt.timedelta(days=1)).isoformat()

    # 1: success below 95% yesterday, per tenant (all workloads summed).
    sums: dict[str, list[int]] = {}
    for row in summaries:
        if row["date"] == yesterday:
            pair = sums.setdefault(row["tenant_id"], [0, 0])
            pair[0] += row["successful"]
            pair[1] += row["total"]
    low = [
        (tenant_id, s, t, percent(s, t))
        for tenant_id, (s, t) in sums.items()
        if t > 0 and 100 * s < 95 * t
    ]
    low.sort(key=lambda row: (row[3], row[0]))

    # 2: the same workload failed on each of today and the two days before.
    last3 = {(truth.today - dt.timedelta(days=back)).isoformat() for back in range(3)}
    failed: dict[tuple[str, str, str, str], set[str]] = {}
    for row in users:
        if row["failed"] is not None and row["failed"] > 0 and row["date"] in last3:
            key = (row["tenant_id"], row["msId"], row["userPrincipalName"], row["type"])
            failed.setdefault(key, set()).add(row["date"])
    tickets = sorted(
        (tenant_id, upn, kind, min(dates))
        for (tenant_id, _, upn, kind), dates in failed.items()
        if len(dates) == 3
    )

    # 3: partial backups per tenant and workload, over the whole history.
    partial: dict[tuple[str, str], list[int]] = {}
    for row in summaries:
        if row["partial"] is not None and row["partial"] > 0:
            pair = partial.setdefault((row["tenant_id"], row["type"]), [0, 0])
            pair[0] += 1
            pair[1] += row["partial"]
    by_workload = [(tenant_id, kind, n, p) for (tenant_id, kind), (n, p) in partial.items()]
    by_workload.sort(key=lambda row: (-row[3], row[0], row[1]))
    return [low, tickets, by_workload]


def answer_rows(number: int, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """A query's rows with the loader's and the database's types made plain."""
    out = []
    for row in rows:
        if number == 0:  # tenant_id, successful, total, success_pct (numeric or double)
            tenant_id, successful, total, pct = row
            values = [tenant_id, plain(successful), plain(total)]
            values.append(Decimal(str(pct)).quantize(Decimal("0.1")))
        else:
            values = [plain(value) for value in row]
        out.append(tuple(values))
    return out


def test_backup_health_questions_answer_as_the_history_says(landed: Landed) -> None:
    """The three documented questions, run as written after run 2, answer what they should."""
    expected = expected_answers(landed.truth)
    assert expected[0], "question 1 has nothing to find: the fleet must hold a failing tenant"
    assert any(row[0] == "northwind" for row in expected[0])
    assert expected[1], "question 2 has nothing to find: no user fails a workload daily"
    assert expected[2], "question 3 has nothing to find: no partial backups"
    problems: list[str] = []
    with landed.tables() as fetch:
        _, rows = fetch("SELECT current_date")
        today = plain(rows[0][0])
        assert today == landed.truth.today.isoformat(), (
            f"{landed.name}'s current_date is {today}, the emulator's today (UTC) "
            f"{landed.truth.today}: a session time zone other than UTC, or UTC midnight passed"
        )
        for number, (query, wanted) in enumerate(
            zip(backup_health_queries(), expected, strict=True)
        ):
            label = f"{landed.name}: docs/backup-health.md query {number + 1}"
            try:
                _, rows = fetch(query)
            except Exception as error:  # report every query's fate
                first = str(error).strip().splitlines()
                problems.append(f"{label} failed: {type(error).__name__}: {' | '.join(first[:3])}")
                continue
            got = answer_rows(number, rows)
            if got != wanted:
                problems.append(f"{label} answers {got[:6]}, expected {wanted[:6]}")
            else:
                print(f"{label}: {len(got)} rows, as expected")
    assert not problems, "\n".join(problems)
