"""`python -m bench --nightly 300,1000`: the night as an MSP runs it, two nights running.

For each fleet size the emulator's realistic fleet (`spanning-emulator --tenants N
--write-fleet DIR`: the tenants and their keys, handed to the tap as tenants_file and
tenant_api_keys_file) is served by its own process, first as it is yesterday (night 1: no
state), then restarted with `--today` one day later (night 2: a new day of backups appears,
the oldest leaves the 7 kept days, and one tenant in SETTLE_EVERY sees its yesterday settle
into other counts: its backups were still running at the night before's sync), the same
seed. Each night, into DuckDB and into PostgreSQL, in the `prod` environment of meltano.yml
(failure_mode nightly), every stream selected as meltano.yml selects them:

- the tap alone, `meltano invoke tap-spanning` into a counting null sink (bench.measure), with
  `--state` the state Meltano stored the night before (none on night 1), so it sends what
  `meltano run` would have it send: wall, messages by type and stream, bytes;
- `meltano run tap-spanning <loader>`, then `meltano invoke <dbt>:build`, then
  `meltano invoke fleet-report:<warehouse>`: each one's wall and peak RSS;
- the rows of each of the tap's tables afterwards, and the bytes of the state Meltano stored
  (`meltano state get`).

Each warehouse has a scratch Meltano project of its own (the repository's meltano.yml and
transform/, its installed plugins linked, its own system database, so its own state backend):
both nights run in it, so `meltano run` hands night 1's state to night 2, as it would in
production. PostgreSQL gets a fresh database for the bench run, dropped afterwards; the
developer's output/, .meltano state and databases are never touched. The tables and targets
are in bench.nightly_report.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from bench.emulator import REPO
from bench.fleet_meltano import meltano_executable
from bench.measure import RunResult, run_measured
from bench.report import log

PG_SCHEMA = "spanning"  # target-postgres' default_target_schema in meltano.yml
ENVIRONMENT = "prod"  # failure_mode nightly: the night goes on to dbt and the report
STEP_TIMEOUT = 3600.0  # a guard against a hung step, not the expected time
_READY_TIMEOUT = 600.0  # a fleet of thousands of tenants takes a while to generate
# Variables of the developer's shell that would change what Meltano, the tap, the loaders,
# dbt or the report read or write.
_FOREIGN_PREFIXES = ("TAP_SPANNING_", "TARGET_", "DBT_", "FLEET_REPORT_", "MELTANO_", "SPANNING_")
PLUGINS = (
    ("extractors", "tap-spanning"),
    ("loaders", "target-duckdb"),
    ("loaders", "target-postgres"),
    ("utilities", "dbt-duckdb"),
    ("utilities", "dbt-postgres"),
    ("utilities", "fleet-report"),
)


@dataclass(frozen=True)
class Warehouse:
    name: str  # as the page shows it
    key: str  # the utilities' command: fleet-report:<key>
    loader: str
    dbt: str

    @property
    def state_id(self) -> str:
        """The state ID `meltano run` keeps this pipeline's state under."""
        return f"{ENVIRONMENT}:tap-spanning-to-{self.loader}"


DUCKDB = Warehouse("DuckDB", "duckdb", "target-duckdb", "dbt-duckdb")
POSTGRES = Warehouse("PostgreSQL", "postgres", "target-postgres", "dbt-postgres")
WAREHOUSES = (DUCKDB, POSTGRES)
# The steps of a night, as the page names them: (name, meltano arguments after the
# environment); {loader}, {dbt}, {key} from the warehouse.
STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("tap alone", ("invoke", "tap-spanning")),
    ("load", ("run", "tap-spanning", "{loader}")),
    ("dbt build", ("invoke", "{dbt}:build")),
    ("report", ("invoke", "fleet-report:{key}")),
)
STEP_NAMES = tuple(name for name, _ in STEPS)
END_TO_END_STEPS = ("load", "dbt build", "report")


@dataclass
class Step:
    name: str
    command: str  # the meltano command, as the page shows it
    run: RunResult


@dataclass
class Night:
    """One night into one warehouse."""

    night: int
    today: dt.date
    warehouse: str
    steps: list[Step] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    state_bytes: int = 0  # the state Meltano stored after the load
    state_given_bytes: int = 0  # the state handed to the tap alone (the night before's)

    def step(self, name: str) -> RunResult:
        return next(step.run for step in self.steps if step.name == name)

    @property
    def tap(self) -> RunResult:
        return self.step("tap alone")

    @property
    def end_to_end(self) -> float:
        """The night as `meltano run tap <loader> <dbt>:build fleet-report:..` runs it."""
        return sum(step.run.wall_seconds for step in self.steps if step.name in END_TO_END_STEPS)

    @property
    def messages(self) -> int:
        counts = self.tap.counts
        others = sum(counts.other_messages.values())
        return counts.total_records + counts.schema_messages + counts.state_messages + others

    @property
    def ok(self) -> bool:
        return len(self.steps) == len(STEPS) and all(s.run.returncode == 0 for s in self.steps)

    def to_json(self) -> dict[str, Any]:
        return {
            "night": self.night,
            "today": self.today.isoformat(),
            "warehouse": self.warehouse,
            "steps": [
                {"name": s.name, "command": s.command, **s.run.to_json()} for s in self.steps
            ],
            "messages": self.messages,
            "end_to_end_seconds": self.end_to_end,
            "rows": self.rows,
            "state_bytes": self.state_bytes,
            "state_given_bytes": self.state_given_bytes,
        }


@dataclass
class NightlyScenario:
    tenants: int
    seed: int
    users: int = 0
    nights: list[Night] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def night(self, number: int, warehouse: str) -> Night | None:
        return next(
            (n for n in self.nights if n.night == number and n.warehouse == warehouse), None
        )

    @property
    def ok(self) -> bool:
        return len(self.nights) == 2 * len(WAREHOUSES) and all(n.ok for n in self.nights)

    def to_json(self) -> dict[str, Any]:
        return {
            "tenants": self.tenants,
            "seed": self.seed,
            "users": self.users,
            "nights": [night.to_json() for night in self.nights],
            "notes": self.notes,
        }


# ----------------------------------------------------------------------------- the fleet


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# One tenant in this many has its backups of today still running at the sync, so its
# yesterday settles between two nights (`--settle-every`).
SETTLE_EVERY = 10


def emulator_command(count: int, seed: int, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "spanning_emulator",
        "--tenants",
        str(count),
        "--seed",
        str(seed),
        "--port",
        str(port),
    ]


def write_fleet_files(count: int, seed: int, port: int, folder: Path) -> tuple[Path, Path, int]:
    """The fleet as an MSP keeps it: (tenants file, keys file (mode 0600), users)."""
    subprocess.run(
        [*emulator_command(count, seed, port), "--write-fleet", str(folder / "fleet")],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=_READY_TIMEOUT,
    )
    config = json.loads((folder / "fleet" / "tap-config.json").read_text(encoding="utf-8"))
    tenants_file = folder / "tenants.json"
    tenants_file.write_text(json.dumps(config["tenants"]), encoding="utf-8")
    # tenant-keys.env holds one line, TAP_SPANNING_TENANT_API_KEYS='{...}': the keys' JSON.
    line = (folder / "fleet" / "tenant-keys.env").read_text(encoding="utf-8").strip()
    keys = line.partition("=")[2].strip("'")
    keys_file = folder / "tenant-keys.json"
    descriptor = os.open(keys_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(keys)
    expected = folder / "fleet" / "expected"
    users = 0
    for tenant in config["tenants"]:
        with (expected / tenant["tenant_id"] / "users.jsonl").open("rb") as handle:
            users += sum(1 for _ in handle)
    return tenants_file, keys_file, users


@contextmanager
def serve_fleet(count: int, seed: int, port: int, today: dt.date, folder: Path) -> Iterator[float]:
    """The fleet served as it is on `today`; yields the seconds it took to be ready."""
    ready = folder / f"ready-{today}"
    output = folder / f"emulator-{today}.log"
    started = time.perf_counter()
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [
                *emulator_command(count, seed, port),
                "--today",
                str(today),
                "--settle-every",
                str(SETTLE_EVERY),
                "--ready-file",
                str(ready),
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        while not ready.exists():
            if process.poll() is not None or time.perf_counter() - started > _READY_TIMEOUT:
                tail = output.read_text(encoding="utf-8", errors="replace")[-2000:]
                raise RuntimeError(
                    f"the emulator was not ready (exit {process.returncode}): {tail}"
                )
            time.sleep(0.1)
        yield time.perf_counter() - started
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ----------------------------------------------------------------------------- PostgreSQL


def postgres_admin_url(given: str | None) -> str:
    """The admin URL: `given`, else the private cluster of scripts/postgres.sh (started)."""
    if given:
        return given
    script = REPO / "scripts" / "postgres.sh"
    subprocess.run(["bash", str(script), "start"], check=True, stdout=subprocess.DEVNULL)
    return subprocess.run(
        ["bash", str(script), "url"], check=True, capture_output=True, text=True
    ).stdout.strip()


def url_for(admin_url: str, database: str) -> str:
    parts = urlsplit(admin_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))


def postgres_loader_env(admin_url: str, database: str) -> dict[str, str]:
    """TARGET_POSTGRES_* for the loader; dbt and the report fall back to them."""
    parts = urlsplit(admin_url)
    env = {
        "TARGET_POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "TARGET_POSTGRES_PORT": str(parts.port or 5432),
        "TARGET_POSTGRES_USER": unquote(parts.username or "postgres"),
        "TARGET_POSTGRES_DATABASE": database,
    }
    if parts.password is not None:  # else meltano.yml's placeholder (trust auth)
        env["TARGET_POSTGRES_PASSWORD"] = unquote(parts.password)
    return env


def rows_helper(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "bench.nightly_rows", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.nightly_rows {args[0]} exited {done.returncode}: {done.stderr}")
    return done.stdout


@contextmanager
def bench_database(admin_url: str) -> Iterator[str]:
    """A database of this bench run's own, dropped afterwards."""
    name = f"tap_spanning_bench_{uuid.uuid4().hex[:12]}"
    rows_helper("create", admin_url, name)
    try:
        yield name
    finally:
        rows_helper("drop", admin_url, name)


# ----------------------------------------------------------------------------- Meltano


def missing_plugins() -> list[str]:
    installed = REPO / ".meltano"
    return [name for kind, name in PLUGINS if not (installed / kind / name / "venv").is_dir()]


def scratch_project(folder: Path) -> Path:
    """meltano.yml and transform/ copied, the installed plugins linked, nothing else."""
    project = folder / "project"
    (project / ".meltano").mkdir(parents=True)
    shutil.copy(REPO / "meltano.yml", project / "meltano.yml")
    shutil.copytree(
        REPO / "transform",
        project / "transform",
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"),
    )
    for kind in ("extractors", "loaders", "utilities"):
        (project / ".meltano" / kind).symlink_to(REPO / ".meltano" / kind, target_is_directory=True)
    return project


def project_env(project: Path, tenants_file: Path, keys_file: Path, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_PREFIXES)}
    env.update(
        MELTANO_DATABASE_URI=f"sqlite:///{project / '.meltano' / 'meltano.db'}",
        MELTANO_SYS_DIR_ROOT=str(project / ".meltano"),
        MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
        MELTANO_AUTO_INSTALL="false",
        TAP_SPANNING_TENANTS_FILE=str(tenants_file),
        TAP_SPANNING_TENANT_API_KEYS_FILE=str(keys_file),
        # meltano.yml's one-tenant settings (a bare emulator's) are blanked: a fleet run.
        TAP_SPANNING_BASE_URL="",
        TAP_SPANNING_ADMIN_EMAIL="",
        FLEET_REPORT_OUTPUT=str(project / "output" / "fleet_report.html"),
    )
    env.update(more)
    return env


def meltano_command(*args: str) -> list[str]:
    meltano = meltano_executable()
    assert meltano is not None
    return [str(meltano), f"--environment={ENVIRONMENT}", *args]


def stored_state(project: Path, env: dict[str, str], warehouse: Warehouse) -> str:
    """The state `meltano run` stored for this pipeline ("" when none)."""
    done = subprocess.run(
        meltano_command("state", "get", warehouse.state_id),
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    text = done.stdout.strip() if done.returncode == 0 else ""
    # Before any run Meltano prints an empty object: no state, and none is handed on (a
    # first `meltano invoke tap-spanning --state ...` in a fresh project, its catalog not
    # yet cached, sends neither backup stream).
    return "" if text in ("", "{}") else text


@dataclass
class Pipeline:
    """One warehouse's scratch project, through both nights."""

    warehouse: Warehouse
    project: Path
    env: dict[str, str]
    rows_args: tuple[str, ...]

    def run_night(self, number: int, today: dt.date) -> Night:
        night = Night(number, today, self.warehouse.name)
        state = stored_state(self.project, self.env, self.warehouse)
        night.state_given_bytes = len(state.encode())
        state_file = self.project / f"state-night-{number}.json"
        names = {"loader": self.warehouse.loader, "dbt": self.warehouse.dbt}
        names["key"] = self.warehouse.key
        for name, template in STEPS:
            args = [part.format(**names) for part in template]
            if name == "tap alone" and state:
                # Meltano keeps the tap's state under "singer_state"; the tap reads the
                # Singer state itself, as `meltano run` hands it over.
                singer_state = json.loads(state).get("singer_state", {})
                state_file.write_text(json.dumps(singer_state), encoding="utf-8")
                args += ["--state", str(state_file)]
            run = run_measured(
                f"{self.warehouse.name} {name}",
                meltano_command(*args),
                cwd=self.project,
                env=self.env,
                timeout=STEP_TIMEOUT,
            )
            shown = " ".join(["meltano", *args]).replace(str(state_file), "<night before>")
            night.steps.append(Step(name, shown, run))
            failed = f" (exit {run.returncode})" if run.returncode else ""
            log(
                f"   night {number}, {self.warehouse.name}, {name}: {run.wall_seconds:.1f} s"
                f"{failed}"
            )
            if run.returncode != 0:
                log(run.stderr_tail)
                break
        night.state_bytes = len(stored_state(self.project, self.env, self.warehouse).encode())
        try:
            night.rows = json.loads(rows_helper(*self.rows_args))
        except RuntimeError as error:  # no table yet when the load failed: the page says so
            log(f"   night {number}, {self.warehouse.name}: no rows read ({error})")
        return night


def run_nightly(count: int, *, seed: int, workdir: Path, pg_admin_url: str) -> NightlyScenario:
    """Both nights of a fleet of `count` tenants, into both warehouses."""
    scenario = NightlyScenario(count, seed)
    folder = workdir / f"nightly-{count}"
    folder.mkdir(parents=True)
    port = free_port()
    log(f"-- nightly, a fleet of {count:,} tenants (seed {seed}): writing its files")
    tenants_file, keys_file, scenario.users = write_fleet_files(count, seed, port, folder)
    today = dt.datetime.now(dt.timezone.utc).date()
    days = (today - dt.timedelta(days=1), today)
    with bench_database(pg_admin_url) as database:
        duckdb_project = scratch_project(folder / "duckdb")
        duckdb_path = str(duckdb_project / "output" / "spanning.duckdb")
        (duckdb_project / "output").mkdir()
        postgres_project = scratch_project(folder / "postgres")
        pipelines = [
            Pipeline(
                DUCKDB,
                duckdb_project,
                project_env(
                    duckdb_project, tenants_file, keys_file, TARGET_DUCKDB_PATH=duckdb_path
                ),
                ("duckdb", duckdb_path),
            ),
            Pipeline(
                POSTGRES,
                postgres_project,
                project_env(
                    postgres_project,
                    tenants_file,
                    keys_file,
                    **postgres_loader_env(pg_admin_url, database),
                ),
                ("postgres", url_for(pg_admin_url, database), PG_SCHEMA),
            ),
        ]
        for pipeline in pipelines:
            # A fresh project's system database is made by its first command: not timed.
            subprocess.run(
                meltano_command("state", "list"),
                cwd=pipeline.project,
                env=pipeline.env,
                capture_output=True,
                timeout=600,
                check=False,
            )
        for number, day in enumerate(days, start=1):
            with serve_fleet(count, seed, port, day, folder) as ready_seconds:
                log(f"   night {number}: the fleet as on {day}, ready in {ready_seconds:.1f} s")
                for pipeline in pipelines:
                    scenario.nights.append(pipeline.run_night(number, day))
    return scenario
