"""Night after night through Meltano, the histories send only what changed and still load
what a full reload loads (docs/backup-health.md, "Only what changed").

One fleet of five small tenants, three nights. Night 1: the emulator's today is the real UTC
today - 1 (the tap trusts a server's Date header only within a day of its own clock), no
state. Night 2: the real today; contoso's yesterday settles into its final counts. Night 3:
the same today; one of fabrikam's days settles, and a litware user is renamed (a new
userPrincipalName in every day of their user_backups rows).

Each night `meltano run tap-spanning target-<db>` runs for every pipeline, side by side,
against the one emulator; each pipeline keeps one Meltano system database (so one state
backend) for its three nights, as a scheduled job does, and a private `.meltano`:
- incremental, into DuckDB and into PostgreSQL: the state Meltano stored the night before
  is handed to the tap, which sends only the (tenant, day)s whose content changed;
- full reload, into a second DuckDB file and PostgreSQL database: the same nights with
  TAP_SPANNING_FULL_REFRESH=true, every day sent every night;
- a loader that dies, into a third DuckDB file and PostgreSQL database: night 2 runs from a
  scratch copy of meltano.yml (MELTANO_PROJECT_ROOT) whose loader's executable is
  tests/fixtures/dying_target.py around the real one, which it kills with SIGKILL in
  mid-load, just after the loader was handed a STATE holding the night's digests; nights 1
  and 3 run the project's own loader, under the same state ID, in the same system database.

Every expectation comes from the emulator's model (`EmulatedTenant.expected_backups`): the
histories hold each night's window, the last night's counts winning per key; each night
sends exactly the (tenant, day)s whose records differ from those of the state it was given.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
import sys
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from spanning_emulator import EmulatedTenant, FleetEmulator, utc_today

from tests.e2e.test_warehouse_backups import (
    BACKUP_STREAMS,
    KEYS,
    OUTCOMES,
    Key,
    Record,
    Warehouse,
    keyed_records,
    landed_rows,
    warehouse,
)
from tests.e2e.test_warehouse_fleet import fleet_env
from tests.warehouse import PROJECT_DIR, Fetch, MeltanoRun, meltano, small_tenant

pytestmark = pytest.mark.e2e

# (tenant id, users, seed of generate_users)
FLEET: tuple[tuple[str, int, int], ...] = (
    ("northwind", 24, 1204),
    ("contoso", 36, 1),
    ("fabrikam", 30, 2),
    ("litware", 28, 3),
    ("wingtip", 20, 4),
)
HOSTS = ("127.0.0.1", "127.0.0.2")
NIGHTS = (1, 2, 3)
SETTLED_ON_NIGHT_2 = "contoso"  # its yesterday: night 1's today, still running then
SETTLED_ON_NIGHT_3 = ("fabrikam", 3)  # its day 3 days before today
RENAMED_ON_NIGHT_3 = "litware"
WAREHOUSES = ("duckdb", "postgres")
KINDS = ("incremental", "full", "dying")
DYING_NIGHT = 2
# The loader dies this many lines after the first STATE holding a digest of the night's today
# (the tap's first STATE echoes the state it was given, which has none): it was handed the
# night's digests of user_backups, and has committed none of the night's rows.
DIE_AFTER_LINES = 20
DYING_TARGET = PROJECT_DIR / "tests" / "fixtures" / "dying_target.py"
STATE_ID = "dev:tap-spanning-to-target-{}"  # meltano.yml's default environment is dev
# The tap's line after each history (tap_spanning/streams/history.py).
SENT_LINE = re.compile(r"\b(backup_summaries|user_backups): sent (\d+) of (\d+) tenant days read")

Window = dict[str, dict[str, list[Record]]]  # tenant -> stream -> records of a night's window
TenantDay = tuple[str, str]


def fleet_tenants() -> list[EmulatedTenant]:
    return [
        small_tenant(name, size, seed, HOSTS[index % len(HOSTS)])
        for index, (name, size, seed) in enumerate(FLEET)
    ]


def change_before(night: int, fleet: FleetEmulator, today: dt.date) -> dt.date:
    """What happens in the fleet before `night`; the emulator's today for that night."""
    if night == 1:
        fleet.set_today(today - dt.timedelta(days=1))
        return today - dt.timedelta(days=1)
    fleet.set_today(today)
    if night == 2:
        fleet.set_backup_options(SETTLED_ON_NIGHT_2, settle_day=today - dt.timedelta(days=1))
    if night == 3:
        tenant_id, back = SETTLED_ON_NIGHT_3
        fleet.set_backup_options(tenant_id, settle_day=today - dt.timedelta(days=back))
        fleet.set_users(RENAMED_ON_NIGHT_3, renamed(fleet.tenant(RENAMED_ON_NIGHT_3), today))
    return today


def renamed(tenant: EmulatedTenant, today: dt.date) -> list[dict[str, object]]:
    """The tenant's users, the first one with backups under a new userPrincipalName."""
    backed_up = {r["msId"] for r in tenant.expected_backups(today=today)["user_backups"]}
    users = [dict(user) for user in tenant.users]
    first = next(user for user in users if user["msId"] in backed_up)
    first["userPrincipalName"] = f"renamed.{first['userPrincipalName']}"
    return users


# ----------------------------------------------------------------------------- the model


def day_contents(window: Window, stream: str) -> dict[TenantDay, list[str]]:
    """Each (tenant, day)'s records of a stream, as sorted JSON: what its digest sums."""
    days: dict[TenantDay, list[str]] = {}
    for tenant_id, streams in window.items():
        for record in streams[stream]:
            days.setdefault((tenant_id, str(record["date"])), []).append(
                json.dumps(record, sort_keys=True)
            )
    return {key: sorted(records) for key, records in days.items()}


def changed_days(now: Window, before: Window | None, stream: str) -> set[TenantDay]:
    """The (tenant, day)s of `now` whose records differ from `before`'s (all: no state)."""
    current = day_contents(now, stream)
    if before is None:
        return set(current)
    old = day_contents(before, stream)
    return {key for key, records in current.items() if old.get(key) != records}


def history(windows: Sequence[Window], stream: str) -> dict[Key, Record]:
    """What a full reload of these nights leaves: each night's rows upserted by key."""
    merged: dict[Key, Record] = {}
    for window in windows:
        for streams in window.values():
            merged.update(keyed_records(stream, streams[stream]))
    return merged


# ----------------------------------------------------------------------------- pipelines


@dataclass
class Night:
    number: int
    run: MeltanoRun
    state_of: int | None  # the night whose state Meltano should hand the tap (None: none)
    sent: dict[str, tuple[int, int]]  # stream -> (tenant days sent, read), from the tap's log


@dataclass
class Pipeline:
    """One warehouse's nights, all in one Meltano system database (one state backend)."""

    name: str
    place: Warehouse
    root: Path
    full_refresh: bool = False
    dies_on: int | None = None
    nights: list[Night] = field(default_factory=list)
    last_good: int | None = None  # the last night that ended well: its state is the next one
    death: dict[str, Any] = field(default_factory=dict)
    # Meltano's state of the pipeline after a night (`meltano state get`): after each night
    # for the dying pipeline, after the last for the others.
    stored: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def death_report(self) -> Path:
        return self.root / "dying-target.json"

    def run_night(self, fleet: FleetEmulator, number: int, today: dt.date) -> None:
        env = fleet_env(self.root, fleet, [t.tenant_id for t in fleet.tenants], **self.place.loader)
        if self.full_refresh:
            env["TAP_SPANNING_FULL_REFRESH"] = "true"
        dies = number == self.dies_on
        if dies:
            env["MELTANO_PROJECT_ROOT"] = str(self.dying_project(today))
        run = meltano(env, "run", "tap-spanning", f"target-{self.place.name}", succeed=not dies)
        sent = {m[1]: (int(m[2]), int(m[3])) for m in SENT_LINE.finditer(run.output)}
        self.nights.append(Night(number, run, self.last_good, sent))
        if dies:
            self.death = json.loads(self.death_report.read_text(encoding="utf-8"))
        else:
            self.last_good = number
        if self.dies_on is not None or number == NIGHTS[-1]:
            stored = meltano(env, "state", "get", STATE_ID.format(self.place.name))
            # stdout's JSON, then Meltano's log lines (stderr)
            self.stored[number], _ = json.JSONDecoder().raw_decode(stored.output)

    def digests(self, night: int, stream: str) -> dict[str, dict[str, str]]:
        """The digests Meltano stored for a history after a night."""
        bookmarks = self.stored[night]["singer_state"]["bookmarks"]
        found: dict[str, dict[str, str]] = bookmarks[stream]["sent_days"]
        return found

    def dying_project(self, today: dt.date) -> Path:
        """A scratch copy of meltano.yml whose loader dies in mid-load: after a STATE
        holding a digest of `today`."""
        project = self.root / "dying-project"
        project.mkdir()
        definition = yaml.safe_load((PROJECT_DIR / "meltano.yml").read_text(encoding="utf-8"))
        loaders = definition["plugins"]["loaders"]
        loader = next(p for p in loaders if p["name"] == f"target-{self.place.name}")
        real = PROJECT_DIR / ".meltano" / "loaders" / loader["name"] / "venv" / "bin"
        words = [sys.executable, DYING_TARGET, DIE_AFTER_LINES, today, self.death_report]
        command = " ".join(shlex.quote(str(w)) for w in [*words, real / loader["executable"]])
        script = project / "dying-loader"
        script.write_text(f'#!/bin/sh\nexec {command} "$@"\n', encoding="utf-8")
        script.chmod(0o755)
        loader["executable"] = str(script)
        (project / "meltano.yml").write_text(yaml.safe_dump(definition), encoding="utf-8")
        return project


@dataclass
class Nights:
    """Every pipeline after the three nights (or why it could not run), and the model."""

    windows: list[Window]  # each night's window as the emulator models it
    pipelines: dict[str, Pipeline | BaseException]

    def pipeline(self, name: str) -> Pipeline:
        outcome = self.pipelines[name]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def window_given(self, night: Night) -> Window | None:
        return None if night.state_of is None else self.windows[night.state_of - 1]


def pipeline_names() -> list[str]:
    return [f"{name} {kind}" for name in WAREHOUSES for kind in KINDS]


def new_pipeline(name: str, root: Path) -> Pipeline:
    database, kind = name.split()
    return Pipeline(
        name,
        warehouse(database, root),
        root,
        full_refresh=kind == "full",
        dies_on=DYING_NIGHT if kind == "dying" else None,
    )


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nights]:
    """The three nights of every pipeline, side by side each night."""
    today = utc_today()
    outcomes: dict[str, Pipeline | BaseException] = {}
    started: list[Pipeline] = []
    for name in pipeline_names():
        try:
            started.append(new_pipeline(name, tmp_path_factory.mktemp(name.replace(" ", "-"))))
        except OUTCOMES as error:  # a skip, or a CI failure: that pipeline's tests say it
            outcomes[name] = error
    windows: list[Window] = []
    try:
        with FleetEmulator(fleet_tenants(), today=today) as fleet:
            for number in NIGHTS:
                day = change_before(number, fleet, today)
                windows.append({t.tenant_id: t.expected_backups(today=day) for t in fleet.tenants})
                running = [p for p in started if p.name not in outcomes]
                with ThreadPoolExecutor(max_workers=len(running) or 1) as pool:
                    futures = {
                        p.name: pool.submit(p.run_night, fleet, number, day) for p in running
                    }
                    for name, future in futures.items():
                        try:
                            future.result()
                        except OUTCOMES as error:  # reported by that pipeline's tests
                            outcomes[name] = error
        for pipeline in started:
            outcomes.setdefault(pipeline.name, pipeline)
        yield Nights(windows, outcomes)
    finally:
        for pipeline in started:
            pipeline.place.drop()


# ----------------------------------------------------------------------------- landed rows


def doubled_keys(fetch: Fetch, stream: str) -> list[tuple[Any, ...]]:
    """Keys held by more than one row (the loader's upsert must keep one)."""
    key = ", ".join(f'"{column}"' for column in KEYS[stream])
    _, rows = fetch(f"SELECT {key}, count(*) FROM {stream} GROUP BY {key} HAVING count(*) > 1")
    return rows


def histories(pipeline: Pipeline) -> dict[str, dict[Key, Record]]:
    """Each history table's rows (contract columns), each key checked to be held once."""
    tables = {}
    with pipeline.place.tables() as fetch:
        for stream in BACKUP_STREAMS:
            doubled = doubled_keys(fetch, stream)
            assert not doubled, f"{pipeline.name} {stream}: keys held twice, e.g. {doubled[:3]}"
            tables[stream], _ = landed_rows(fetch, stream)
    return tables


def assert_holds(pipeline: Pipeline, wanted: Mapping[str, Mapping[Key, Record]]) -> None:
    tables = histories(pipeline)
    for stream in BACKUP_STREAMS:
        actual, expected = tables[stream], wanted[stream]
        missing = sorted(set(expected) - set(actual))
        extra = sorted(set(actual) - set(expected))
        assert not missing, f"{pipeline.name} {stream}: {len(missing)} rows missing: {missing[:3]}"
        assert not extra, f"{pipeline.name} {stream}: {len(extra)} rows unexpected: {extra[:3]}"
        wrong = [(k, actual[k], expected[k]) for k in sorted(expected) if actual[k] != expected[k]]
        assert not wrong, f"{pipeline.name} {stream}: {len(wrong)} rows differ: {wrong[:2]}"
        print(f"{pipeline.name} {stream}: {len(actual)} rows, as a full reload")


def assert_sent_the_changed_days(nights: Nights, pipeline: Pipeline, night: Night) -> None:
    """The tap's log: it sent exactly the (tenant, day)s that differ from the state given."""
    window = nights.windows[night.number - 1]
    before = None if pipeline.full_refresh else nights.window_given(night)
    for stream in BACKUP_STREAMS:
        read = len(day_contents(window, stream))
        wanted = (len(changed_days(window, before, stream)), read)
        assert night.sent.get(stream) == wanted, (
            f"{pipeline.name}, night {night.number}, {stream}: the tap's log says "
            f"{night.sent.get(stream)} (sent, read), the model {wanted} with the state of "
            f"night {night.state_of} (full refresh: {pipeline.full_refresh})"
        )
        print(f"{pipeline.name}, night {night.number}: {stream} sent {wanted[0]} of {read} days")


# ----------------------------------------------------------------------------- tests


def test_the_nights_change_what_the_design_says(nights: Nights) -> None:
    """The test means something: each night changes exactly the days it sets out to."""
    first, second, third = nights.windows
    today = max(str(r["date"]) for r in third["wingtip"]["backup_summaries"])
    yesterday = str(dt.date.fromisoformat(today) - dt.timedelta(days=1))
    tenants = {name for name, *_ in FLEET}
    new_day = {(tenant_id, today) for tenant_id in tenants}
    for stream in BACKUP_STREAMS:
        assert changed_days(second, first, stream) == {*new_day, (SETTLED_ON_NIGHT_2, yesterday)}
    tenant_id, back = SETTLED_ON_NIGHT_3
    settled = (tenant_id, str(dt.date.fromisoformat(today) - dt.timedelta(days=back)))
    assert changed_days(third, second, "backup_summaries") == {settled}
    renamed_days = {(RENAMED_ON_NIGHT_3, day) for _, day in day_contents(third, "user_backups")}
    assert changed_days(third, second, "user_backups") == {settled, *renamed_days}


@pytest.mark.parametrize("name", WAREHOUSES)
def test_incremental_nights_load_what_a_full_reload_loads(nights: Nights, name: str) -> None:
    """Both warehouses hold the same rows, the model's: every night's window, last wins."""
    wanted = {stream: history(nights.windows, stream) for stream in BACKUP_STREAMS}
    incremental, full = nights.pipeline(f"{name} incremental"), nights.pipeline(f"{name} full")
    assert_holds(full, wanted)
    assert_holds(incremental, wanted)
    assert histories(incremental) == histories(full)


@pytest.mark.parametrize("name", WAREHOUSES)
def test_incremental_nights_send_only_what_changed(nights: Nights, name: str) -> None:
    """Nights 2 and 3 send only the changed days, given the night before's state by Meltano;
    the full reload sends every day; both leave the same digests in Meltano's state."""
    incremental, full = nights.pipeline(f"{name} incremental"), nights.pipeline(f"{name} full")
    for pipeline in (incremental, full):
        for night in pipeline.nights:
            assert_sent_the_changed_days(nights, pipeline, night)
    for night in incremental.nights[1:]:
        for stream, (sent, read) in night.sent.items():
            assert 0 < sent < read, (night.number, stream, sent, read)
    last = nights.windows[-1]
    for stream in BACKUP_STREAMS:
        for pipeline in (incremental, full):
            digests = pipeline.digests(NIGHTS[-1], stream)
            days = {(tenant_id, day) for tenant_id, kept in digests.items() for day in kept}
            assert days == set(day_contents(last, stream)), (pipeline.name, stream)
        assert incremental.digests(3, stream) == full.digests(3, stream), stream


@pytest.mark.parametrize("name", WAREHOUSES)
def test_a_loader_killed_mid_night_loses_nothing_and_doubles_nothing(
    nights: Nights, name: str
) -> None:
    """Night 2's loader is killed once handed the night's digests: `meltano run` fails and
    Meltano keeps night 1's state, so night 3 sends everything changed since night 1 and
    the warehouse ends as the full reload's, each key once."""
    dying, full = nights.pipeline(f"{name} dying"), nights.pipeline(f"{name} full")
    death = dying.death
    print(f"{dying.name}, night {DYING_NIGHT}: {death}")
    assert death["killed"], f"the loader was not killed: {death}"
    assert death["marker_line"] is not None, f"no STATE of the night reached the loader: {death}"
    assert death["lines"] == death["marker_line"] + DIE_AFTER_LINES, death
    assert dying.nights[DYING_NIGHT - 1].run.returncode != 0
    for stream in BACKUP_STREAMS:  # the killed night left Meltano's state as it was
        assert dying.digests(DYING_NIGHT, stream) == dying.digests(DYING_NIGHT - 1, stream)
    for night in dying.nights:
        if night.number != DYING_NIGHT:
            assert_sent_the_changed_days(nights, dying, night)
    # Night 3 sent night 2's changes too: more than the undisturbed pipelines did.
    undisturbed = changed_days(nights.windows[2], nights.windows[1], "backup_summaries")
    assert dying.nights[-1].sent["backup_summaries"][0] > len(undisturbed)
    assert_holds(dying, {stream: history(nights.windows, stream) for stream in BACKUP_STREAMS})
    assert histories(dying) == histories(full)
