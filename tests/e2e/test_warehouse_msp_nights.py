"""An MSP's four nights through Meltano, as the prod environment runs them: the marts of
client protection, licenses, role changes and alerts hold exactly what the night plan and the
emulator's model say, in DuckDB and PostgreSQL, and the alert command sends each alert that
opened or resolved once.

One fleet of four named clients. The night days: night 1 is the real UTC today - 1, night 2
today, nights 3 and 4 today + 1 (the tap trusts a Date header within a day of its clock). The
plan:
- acme's key is revoked before night 3: it fails nights 3 and 4 (sync_failing opens on night 4,
  its second failed run);
- a globex user is given Global Admin before night 2 (a role_changes grant on night 2's day,
  a new_global_admin alert);
- initech's Standard seats in use peak on night 2, above the licenses bought
  (license_high_water's peak; seats_over_licenses opens on night 2, resolves on night 3);
- an umbrella user is never backed up (unprotected from night 1), another stops being backed
  up on night 2's day.

Each night `meltano --environment=prod run tap-spanning target-<db> dbt-<db>:build` runs for
both warehouses, each with its own Meltano system database (its state), then
`python -m spanning_reports alerts <db>` with a loopback webhook. The marts are compared
whole with tests/msp_truth.py, which reads only the emulator's model and the plan (and each
run's sync_version from the raw tenant_syncs table).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from spanning_emulator import EmulatedTenant, FleetEmulator, tenant_summary, utc_today

from tests.e2e.test_nightly import require_nightly_plugins
from tests.e2e.test_warehouse_backups import OUTCOMES, Warehouse, warehouse
from tests.msp_truth import (
    MART_COLUMNS,
    MART_KEYS,
    SYNC_COLUMNS,
    MartTruth,
    Row,
    TenantRun,
    protection,
)
from tests.warehouse import (
    FOREIGN_ENV_PREFIXES,
    PROJECT_DIR,
    Fetch,
    meltano,
    private_meltano_dir,
    small_tenant,
)
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.e2e

# tenant id, name, users, seed of generate_users, host
FLEET: tuple[tuple[str, str, int, int, str], ...] = (
    ("acme", "Acme Corp", 16, 2501, "127.0.0.1"),
    ("globex", "Globex Inc.", 18, 2502, "127.0.0.2"),
    ("initech", "Initech LLC", 14, 2503, "127.0.0.1"),
    ("umbrella", "Umbrella Group", 20, 2504, "127.0.0.2"),
)
NAMES = {tenant_id: name for tenant_id, name, *_ in FLEET}
REVOKED, NEW_ADMIN, LICENSE_PEAK, UNPROTECTED = "acme", "globex", "initech", "umbrella"
NIGHTS = (1, 2, 3, 4)
REVOKED_FROM = 3
WEBHOOK_FAILS_ON = 3
WAREHOUSES = ("duckdb", "postgres")
# initech's Standard seats in use each night, against the licenses bought: the peak is night 2.
LICENSES_BOUGHT = 12
SEATS_IN_USE = {1: 10, 2: 14, 3: 11, 4: 9}
# ----------------------------------------------------------------------------- the plan


def fleet_tenants() -> list[EmulatedTenant]:
    return [small_tenant(tenant_id, size, seed, host) for tenant_id, _, size, seed, host in FLEET]


def night_days(today: dt.date) -> dict[int, dt.date]:
    one = dt.timedelta(days=1)
    return {1: today - one, 2: today, 3: today + one, 4: today + one}


def protectable_ids(tenant: EmulatedTenant) -> list[str]:
    """msIds of the tenant's protectable users but its first (its Global Admin)."""
    return [
        str(user["msId"])
        for user in tenant.users[1:]
        if user.get("assigned") is True and protection(user) == "protectable"
    ]


def plain_user_index(tenant: EmulatedTenant) -> int:
    """The first user tagged only "User" (roles: user alone)."""
    return next(i for i, user in enumerate(tenant.users) if user.get("tags") == ["User"])


def seat_counters(tenant: EmulatedTenant, night: int) -> dict[str, object]:
    return {
        **tenant_summary(tenant.users),
        "licenses": LICENSES_BOUGHT,
        "assignedStandard": SEATS_IN_USE[night],
    }


def prepare(fleet: FleetEmulator, night: int, day: dt.date) -> None:
    """What changes in the fleet before `night` (its today is `day`)."""
    fleet.set_today(day)
    peak = fleet.tenant(LICENSE_PEAK)
    fleet.set_counters(LICENSE_PEAK, seat_counters(peak, night))
    if night == 1:
        never = protectable_ids(fleet.tenant(UNPROTECTED))[0]
        fleet.set_backup_options(UNPROTECTED, never_backed_up=frozenset({never}))
    if night == 2:
        stopped = protectable_ids(fleet.tenant(UNPROTECTED))[1]
        fleet.set_backup_options(UNPROTECTED, stopped_from={stopped: day})
        tenant = fleet.tenant(NEW_ADMIN)
        users = [dict(user) for user in tenant.users]
        users[plain_user_index(tenant)]["tags"] = ["User", "Global Admin"]
        fleet.set_users(NEW_ADMIN, users)
    if night == REVOKED_FROM:
        fleet.set_api_key(REVOKED, "revoked-and-replaced-0000-1111-2222")


# ----------------------------------------------------------------------------- the webhook


@dataclass
class AlertRun:
    returncode: int
    output: str
    received: list[tuple[str, str]]


# ----------------------------------------------------------------------------- pipelines


@dataclass
class NightResult:
    runs: list[TenantRun]  # every run up to this night
    marts: dict[str, list[Row]]
    syncs: list[Row]
    alert_runs: list[AlertRun]  # in order: [failing,] delivering, again


@dataclass
class Pipeline:
    name: str
    place: Warehouse
    root: Path
    receiver: Receiver = field(default_factory=Receiver)
    nights: dict[int, NightResult] = field(default_factory=dict)

    def env(self, fleet: FleetEmulator, keys: Mapping[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_ENV_PREFIXES)}
        env = {k: v for k, v in env.items() if not k.startswith(("DBT_", "FLEET_REPORT_"))}
        entries = [
            {
                "tenant_id": t.tenant_id,
                "name": NAMES[t.tenant_id],
                "admin_email": t.admin_email,
                "base_url": fleet.base_url(t.tenant_id),
            }
            for t in fleet.tenants
        ]
        env.update(
            MELTANO_DATABASE_URI=f"sqlite:///{self.root / 'meltano.db'}",
            MELTANO_SYS_DIR_ROOT=str(private_meltano_dir(self.root / "meltano")),
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            TAP_SPANNING_BASE_URL="",
            TAP_SPANNING_ADMIN_EMAIL="",
            TAP_SPANNING_API_KEY="",
            TAP_SPANNING_TENANTS=json.dumps(entries),
            TAP_SPANNING_TENANT_API_KEYS=json.dumps(dict(keys)),
            TAP_SPANNING_PAGE_SIZE="50",
            TAP_SPANNING_MAX_RETRIES="2",
            TAP_SPANNING_MAX_RETRY_WAIT="0.01",
            DBT_DUCKDB_TARGET_PATH=str(self.root / "dbt" / "target"),
            DBT_DUCKDB_LOG_PATH=str(self.root / "dbt" / "logs"),
            DBT_POSTGRES_TARGET_PATH=str(self.root / "dbt" / "target"),
            DBT_POSTGRES_LOG_PATH=str(self.root / "dbt" / "logs"),
        )
        env.update(self.place.loader)
        return env

    def run_night(
        self, fleet: FleetEmulator, keys: Mapping[str, str], night: int, runs: list[TenantRun]
    ) -> None:
        env = self.env(fleet, keys)
        db = self.place.name
        meltano(env, "--environment=prod", "run", "tap-spanning", f"target-{db}", f"dbt-{db}:build")
        with self.place.tables() as fetch:
            marts = {mart: read_mart(fetch, mart) for mart in MART_COLUMNS}
            syncs = read_syncs(fetch)
        alert_runs = []
        if night == WEBHOOK_FAILS_ON:
            self.receiver.failing = True
            alert_runs.append(self.alerts(env))
            self.receiver.failing = False
        alert_runs.append(self.alerts(env))
        alert_runs.append(self.alerts(env))
        self.nights[night] = NightResult(list(runs), marts, syncs, alert_runs)

    def alerts(self, env: Mapping[str, str]) -> AlertRun:
        command_env = dict(env)
        command_env["FLEET_REPORT_ALERTS_WEBHOOK_URL"] = self.receiver.url
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "spanning_reports",
                "alerts",
                self.place.name,
                "--sent-file",
                str(self.root / "alerts_sent.json"),
                "--file",
                str(self.root / "alerts.jsonl"),
            ],
            cwd=PROJECT_DIR,
            env=command_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return AlertRun(done.returncode, done.stdout + done.stderr, self.receiver.take())

    def truth(self, night: int) -> MartTruth:
        result = self.nights[night]
        versions = {
            (str(row["tenant_id"]), index): int(row["sync_version"])
            for tenant_id in NAMES
            for index, row in enumerate(
                sorted(
                    (r for r in result.syncs if r["tenant_id"] == tenant_id),
                    key=lambda r: int(r["sync_version"]),
                ),
                start=1,
            )
        }
        return MartTruth(result.runs, versions)


def plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime):
        return value.date()
    return value


def read_mart(fetch: Fetch, mart: str) -> list[Row]:
    """Every row of a mart, its contract's columns (in order: checked)."""
    columns, rows = fetch(f"SELECT * FROM {mart}")
    wanted = MART_COLUMNS[mart]
    if mart == "fleet_overview":
        assert set(wanted) <= set(columns), f"{mart}: columns {columns}"
    else:
        assert tuple(columns) == wanted, f"{mart}: columns {columns}"
    return [
        {name: plain(value) for name, value in zip(columns, row, strict=True) if name in wanted}
        for row in rows
    ]


def read_syncs(fetch: Fetch) -> list[Row]:
    columns, rows = fetch(f"SELECT {', '.join(SYNC_COLUMNS)} FROM tenant_syncs")
    syncs = [dict(zip(columns, row, strict=True)) for row in rows]
    for row in syncs:
        row["day"] = str(row["day"])
        row["role_set_sent"] = None if row["role_set_sent"] is None else bool(row["role_set_sent"])
        for counter in ("licenses", "archived_licenses", "assigned_standard", "assigned_archive"):
            row[counter] = None if row[counter] is None else int(row[counter])
        row["sync_version"] = int(row["sync_version"])
    return syncs


@dataclass
class Nights:
    pipelines: dict[str, Pipeline | BaseException]
    days: dict[int, dt.date]

    def pipeline(self, name: str) -> Pipeline:
        outcome = self.pipelines[name]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nights]:
    """The four nights of both warehouses, side by side each night."""
    today = utc_today()
    days = night_days(today)
    outcomes: dict[str, Pipeline | BaseException] = {}
    started: list[Pipeline] = []
    for name in WAREHOUSES:
        try:
            require_nightly_plugins(f"target-{name}", f"dbt-{name}")
            root = tmp_path_factory.mktemp(f"msp-{name}")
            started.append(Pipeline(name, warehouse(name, root), root))
        except OUTCOMES as error:  # a skip, or a CI failure: that warehouse's tests say it
            outcomes[name] = error
    tenants = fleet_tenants()
    keys = {t.tenant_id: t.api_key for t in tenants}  # what the tap is configured with
    runs: list[TenantRun] = []
    try:
        with FleetEmulator(tenants) as fleet:
            for night in NIGHTS:
                prepare(fleet, night, days[night])
                for tenant in fleet.tenants:
                    complete = tenant.api_key == keys[tenant.tenant_id]
                    # A refused tenant's day is this machine's today (no Date header of its own).
                    day = days[night] if complete else today
                    runs.append(TenantRun(night, tenant, day, NAMES[tenant.tenant_id], complete))
                running = [p for p in started if p.name not in outcomes]
                with ThreadPoolExecutor(max_workers=len(running) or 1) as pool:
                    futures = {
                        p.name: pool.submit(p.run_night, fleet, keys, night, runs) for p in running
                    }
                    for name, future in futures.items():
                        try:
                            future.result()
                        except OUTCOMES as error:
                            outcomes[name] = error
        assert utc_today() == today, "the nights ran across midnight UTC: run the test again"
        for pipeline in started:
            outcomes.setdefault(pipeline.name, pipeline)
        yield Nights(outcomes, days)
    finally:
        for pipeline in started:
            pipeline.receiver.close()
            pipeline.place.drop()


# ----------------------------------------------------------------------------- comparing


def keyed(mart: str, rows: Sequence[Row]) -> dict[tuple[Any, ...], Row]:
    table: dict[tuple[Any, ...], Row] = {}
    for row in rows:
        key = tuple(row[column] for column in MART_KEYS[mart])
        assert key not in table, f"{mart}: key {key} twice"
        table[key] = row
    return table


def same(mart: str, landed: Row, wanted: Row) -> bool:
    for column, value in wanted.items():
        got = landed[column]
        if column == "coverage_pct" and value is not None and got is not None:
            if abs(float(got) - value) > 0.051:  # the mart may round to a tenth
                return False
        elif got != value:
            return False
    return True


def assert_mart(where: str, mart: str, landed: Sequence[Row], wanted: Sequence[Row]) -> None:
    actual, expected = keyed(mart, landed), keyed(mart, wanted)
    missing = sorted(set(expected) - set(actual), key=str)
    extra = sorted(set(actual) - set(expected), key=str)
    assert not missing, f"{where} {mart}: rows missing: {[expected[k] for k in missing[:3]]}"
    assert not extra, f"{where} {mart}: rows unexpected: {[actual[k] for k in extra[:3]]}"
    wrong = [(actual[k], expected[k]) for k in expected if not same(mart, actual[k], expected[k])]
    assert not wrong, f"{where} {mart}: {len(wrong)} rows differ (landed, truth): {wrong[:2]}"


def alert_states(truth: MartTruth | None) -> dict[str, Row]:
    if truth is None:
        return {}
    return {str(row["alert_key"]): row for row in truth.marts()["alerts"]}


def expected_events(before: MartTruth | None, now: MartTruth) -> Counter[tuple[str, str]]:
    """What the command sends after a night: each alert opened (open now, not open before,
    or a new episode) and each resolved (open before, now resolved or gone), once."""
    old, new = alert_states(before), alert_states(now)
    events: Counter[tuple[str, str]] = Counter()
    for key in set(old) | set(new):
        was = old.get(key)
        is_ = new.get(key)
        was_open = was is not None and was["status"] == "open"
        if is_ is not None and is_["status"] == "open":
            if not was_open or was is None or was["first_seen"] != is_["first_seen"]:
                events[(key, "opened")] += 1
        elif was_open:
            events[(key, "resolved")] += 1
    return events


# ----------------------------------------------------------------------------- tests


def test_the_plan_means_something(nights: Nights) -> None:
    """Every event of the plan shows in the truth: without them the test would prove little."""
    pipeline = nights.pipeline(WAREHOUSES[0])
    truth = {night: pipeline.truth(night).marts() for night in NIGHTS}

    def kinds(night: int, status: str) -> set[tuple[str, str]]:
        return {
            (r["tenant_id"], r["kind"]) for r in truth[night]["alerts"] if r["status"] == status
        }

    assert (REVOKED, "sync_failing") not in kinds(3, "open")
    assert (REVOKED, "sync_failing") in kinds(4, "open")
    assert (NEW_ADMIN, "new_global_admin") in kinds(2, "open")
    assert (LICENSE_PEAK, "seats_over_licenses") in kinds(2, "open")
    assert (LICENSE_PEAK, "seats_over_licenses") in kinds(3, "resolved")
    grants = [(r["tenant_id"], r["change"], r["day"]) for r in truth[4]["role_changes"]]
    assert grants == [(NEW_ADMIN, "granted", nights.days[2])]
    peaks = [r for r in truth[4]["license_high_water"] if r["tenant_id"] == LICENSE_PEAK]
    assert max(r["peak_assigned_standard"] for r in peaks) == SEATS_IN_USE[2]
    never = [r for r in truth[1]["unprotected_users"] if r["never_backed_up"]]
    assert [r["tenant_id"] for r in never] == [UNPROTECTED]
    # The user stopped on night 2's day: backed up until the day before, on every workload.
    umbrella = next(t for t in fleet_tenants() if t.tenant_id == UNPROTECTED)
    stopped = protectable_ids(umbrella)[1]
    days_held = {
        r["last_success_day"] for r in truth[4]["user_protection"] if r["ms_id"] == stopped
    }
    assert days_held
    assert all(day is not None and day < nights.days[2] for day in days_held)
    for night in NIGHTS:
        before = pipeline.truth(night - 1) if night > 1 else None
        events = expected_events(before, pipeline.truth(night))
        assert events, f"night {night} sends nothing: the alert command is not exercised"


@pytest.mark.parametrize("night", NIGHTS)
@pytest.mark.parametrize("name", WAREHOUSES)
def test_the_tap_records_each_tenants_run(nights: Nights, name: str, night: int) -> None:
    """tenant_syncs: each run's name, day, status, counters and whether it sent roles."""
    pipeline = nights.pipeline(name)
    result = pipeline.nights[night]
    wanted = sorted(pipeline.truth(night).tenant_syncs(), key=lambda r: r["sync_version"])
    wanted = sorted(wanted, key=lambda r: (r["tenant_id"], r["sync_version"]))
    landed = sorted(result.syncs, key=lambda r: (r["tenant_id"], r["sync_version"]))
    assert landed == wanted


@pytest.mark.parametrize("night", NIGHTS)
@pytest.mark.parametrize("name", WAREHOUSES)
def test_the_marts_hold_the_truth(nights: Nights, name: str, night: int) -> None:
    """Each mart, whole, after each night: every row and column of the contract."""
    pipeline = nights.pipeline(name)
    result = pipeline.nights[night]
    truth = pipeline.truth(night).marts()
    for mart, wanted in truth.items():
        assert_mart(f"{name} night {night}", mart, result.marts[mart], wanted)
    for row in result.marts["alerts"]:
        assert NAMES[row["tenant_id"]] in row["summary"], row


@pytest.mark.parametrize("name", WAREHOUSES)
def test_the_alert_command_sends_each_change_once(nights: Nights, name: str) -> None:
    """Each night the opened and resolved alerts, once each; a rerun sends nothing; a failing
    webhook fails the command, and the next run delivers what it could not."""
    pipeline = nights.pipeline(name)
    before: MartTruth | None = None
    for night in NIGHTS:
        now = pipeline.truth(night)
        wanted = expected_events(before, now)
        runs = pipeline.nights[night].alert_runs
        if night == WEBHOOK_FAILS_ON:
            failed, *runs = runs
            assert failed.returncode == 1, failed.output
            assert failed.received == [], failed.output
            assert pipeline.receiver.url not in failed.output
        delivering, again = runs
        assert delivering.returncode == 0, delivering.output
        assert Counter(delivering.received) == wanted, (night, delivering.output)
        assert again.returncode == 0, again.output
        assert again.received == [], (night, again.output)
        before = now
    lines = (pipeline.root / "alerts.jsonl").read_text(encoding="utf-8").splitlines()
    delivered = Counter(
        (json.loads(line)["alert_key"], json.loads(line)["event"]) for line in lines
    )
    total: Counter[tuple[str, str]] = Counter()
    before = None
    for night in NIGHTS:
        total += expected_events(before, pipeline.truth(night))
        before = pipeline.truth(night)
    assert delivered == total
