"""`python -m bench`: the tap against the floor at 10,000 and 100,000 users.

For each user count the emulator runs in its own process (`bench.emulator`), then
the tap (`tap-spanning --config ...`) and the floor (`bench.floor`, no SDK) each
sync the whole tenant `--repeat` times, alternately, into a counting null sink
(`bench.measure`). Then a latency run: the same tap against an emulator that waits
`--latency-ms` before each response.

With `--user-backups` the tap runs with a catalog that also selects `user_backups`
(built from its `--discover`) and the floor with `--user-backups`: the users pages then
carry every user's backup status of the last 7 days. Each table is followed by the
records per stream and the bytes of a users page, with and without backups.

Prints Markdown tables (one per run, then the targets with PASS/FAIL) and, with
`--json PATH`, writes every measurement there. The targets are printed, never
asserted: the exit status is non-zero only when a program failed or its repeats
disagree.

Other modes replace these runs: `--fleet` (bench.fleet), `--dead-hosts` (a fleet whose
every host refuses connections: bench.dead_hosts) and `--huge-pages` (peak memory over
tenants of ~15 MiB pages: bench.huge_pages).

To measure a modified copy of the tap, put it first on the path:
`PYTHONPATH=/tmp/my-copy python -m bench` (the tap runs outside the repository, so
the copy's `tap_spanning` is the one imported).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import dead_hosts, huge_pages
from bench.emulator import REPO, Emulator
from bench.measure import OPTIONAL_STREAMS, STREAMS, RunResult, record_digests, run_measured
from bench.report import (
    Repeats,
    Target,
    floor_command,
    log,
    machine,
    mib,
    targets_table,
    write_results,
)

DEFAULT_USERS = (10_000, 100_000)
WALL_RATIO_LIMIT = 2.0
RSS_RATIO_LIMIT = 1.25
LATENCY_RATIO_LIMIT = 1.15
# The streams the tap's catalog selects with --user-backups: the default ones and it.
USER_BACKUPS_SELECTED = (*STREAMS, "user_backups")
DATE_FORMATS = ("iso", "datetime", "mdy", "epoch_ms", "epoch_ms_text")


def default_tap_command() -> list[str]:
    found = shutil.which("tap-spanning", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "tap_spanning"]


@dataclass
class Summary(Repeats):
    """The repeats of one program in one scenario, reduced."""

    runs: list[RunResult]

    @property
    def last(self) -> RunResult:
        return self.runs[-1]

    @property
    def first_output(self) -> float:
        return statistics.median(run.first_output_seconds or 0.0 for run in self.runs)

    @property
    def requests(self) -> int:
        return max(run.requests for run in self.runs)

    @property
    def consistent(self) -> bool:
        """Every repeat wrote the same counts and made the same requests."""
        first = self.runs[0]
        return all(
            run.counts.records == first.counts.records
            and run.counts.schemas == first.counts.schemas
            and run.requests == first.requests
            and run.returncode == 0
            for run in self.runs
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "wall_seconds_median": self.wall,
            "cpu_seconds_median": self.cpu,
            "peak_rss_bytes_max": self.rss,
            "first_output_seconds_median": self.first_output,
            "requests": self.requests,
            "consistent": self.consistent,
            "runs": [run.to_json() for run in self.runs],
        }


@dataclass
class Scenario:
    users: int
    page_size: int
    latency_ms: float
    tap: Summary | None = None
    floor: Summary | None = None
    emulator_startup_seconds: float = 0.0
    verify: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    # --user-backups: the emulator's options for the backup status (BackupStyle), and
    # what it measured of the users pages (Emulator.users_page_bytes).
    user_backups: bool = False
    backup_style: tuple[str, ...] = ()
    page_bytes: dict[str, Any] | None = None
    page_render_seconds: float = 0.0

    @property
    def title(self) -> str:
        title = f"{self.users:,} users, page size {self.page_size}, latency {self.latency_ms:g} ms"
        return title + (", user_backups" if self.user_backups else "")

    @property
    def streams(self) -> tuple[str, ...]:
        """The streams both programs write."""
        return USER_BACKUPS_SELECTED if self.user_backups else STREAMS

    @property
    def expected_requests(self) -> int:
        """ceil(users / page_size) users pages, and the one `/external/tenant`."""
        return max(1, math.ceil(self.users / self.page_size)) + 1

    def to_json(self) -> dict[str, Any]:
        found = {
            "users": self.users,
            "page_size": self.page_size,
            "latency_ms": self.latency_ms,
            "expected_requests": self.expected_requests,
            "emulator_startup_seconds": self.emulator_startup_seconds,
            "tap": self.tap.to_json() if self.tap else None,
            "floor": self.floor.to_json() if self.floor else None,
            "verify": self.verify,
        }
        if self.user_backups:
            found["user_backups"] = {
                "backup_style": list(self.backup_style),
                "users_pages": self.page_bytes,
                "emulator_render_seconds": self.page_render_seconds,
            }
        return found


# ---------------------------------------------------------------- running


def _measure(
    label: str,
    command: list[str],
    emulator: Emulator,
    config_path: Path,
    tee: Path | None,
    extra: Sequence[str] = (),
) -> RunResult:
    leftover = emulator.stats()["requests"]
    if leftover:
        print(f"warning: {leftover} requests before {label} started", file=sys.stderr)
    # The floor runs from the repository (`-m bench.floor`); the tap from the work
    # directory, so that `python -m tap_spanning` imports what PYTHONPATH says.
    cwd = REPO if label == "floor" else config_path.parent
    result = run_measured(label, [*command, "--config", str(config_path), *extra], cwd=cwd, tee=tee)
    stats = emulator.stats()
    result.requests = int(stats["requests"])
    result.requests_by_path = dict(stats["by_path"])
    if result.returncode != 0:
        print(
            f"warning: {label} exited {result.returncode}:\n{result.stderr_tail}",
            file=sys.stderr,
        )
    return result


def run_scenario(
    scenario: Scenario,
    *,
    repeat: int,
    seed: int,
    tap_command: list[str],
    with_floor: bool,
    verify: bool,
    workdir: Path,
) -> Scenario:
    log(f"-- {scenario.title}: starting the emulator")
    style = [*scenario.backup_style, "--cache-backup-pages"] if scenario.user_backups else []
    with Emulator(
        scenario.users, seed=seed, latency_ms=scenario.latency_ms, backup_style=style
    ) as emulator:
        scenario.emulator_startup_seconds = emulator.startup_seconds
        config_path = workdir / f"config-{scenario.users}-{scenario.latency_ms:g}.json"
        config_path.write_text(json.dumps(emulator.tap_config(scenario.page_size)))
        tap_extra: list[str] = []
        floor_extra: list[str] = []
        if scenario.user_backups:
            # Rendered now, so that neither program waits for it (cache_backup_pages).
            started = time.perf_counter()
            scenario.page_bytes = emulator.users_page_bytes(scenario.page_size)
            scenario.page_render_seconds = time.perf_counter() - started
            log(f"   users pages measured and rendered in {scenario.page_render_seconds:.1f} s")
            catalog_path = workdir / "catalog-user-backups.json"
            write_catalog(tap_command, config_path, catalog_path)
            tap_extra, floor_extra = ["--catalog", str(catalog_path)], ["--user-backups"]
            emulator.stats()  # forget any request of the discovery
        tap_runs: list[RunResult] = []
        floor_runs: list[RunResult] = []
        tees = {"tap": workdir / "tap.jsonl", "floor": workdir / "floor.jsonl"}
        for index in range(repeat):
            tee_now = verify and index == 0
            run = _measure(
                "tap",
                tap_command,
                emulator,
                config_path,
                tees["tap"] if tee_now else None,
                tap_extra,
            )
            tap_runs.append(run)
            log(
                f"   tap   #{index + 1}: {run.wall_seconds:.2f} s wall, {run.cpu_seconds:.2f} s CPU"
            )
            if with_floor:
                run = _measure(
                    "floor",
                    floor_command(),
                    emulator,
                    config_path,
                    tees["floor"] if tee_now else None,
                    floor_extra,
                )
                floor_runs.append(run)
                log(
                    f"   floor #{index + 1}: {run.wall_seconds:.2f} s wall, "
                    f"{run.cpu_seconds:.2f} s CPU"
                )
    scenario.tap = Summary(tap_runs)
    scenario.floor = Summary(floor_runs) if floor_runs else None
    if verify and floor_runs:
        scenario.verify = compare_outputs(tees["tap"], tees["floor"])
        for path in tees.values():
            path.unlink(missing_ok=True)
    return scenario


def write_catalog(tap_command: list[str], config_path: Path, catalog_path: Path) -> None:
    """The tap's own catalog (`--discover`) with every default stream and user_backups
    selected."""
    found = subprocess.run(
        [*tap_command, "--config", str(config_path), "--discover"],
        cwd=config_path.parent,
        capture_output=True,
        check=False,
        timeout=300,
    )
    if found.returncode != 0:
        tail = found.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]
        raise RuntimeError(f"tap --discover exited {found.returncode}:\n" + "\n".join(tail))
    catalog = json.loads(found.stdout)
    streams = {entry["tap_stream_id"]: entry for entry in catalog["streams"]}
    missing = [name for name in USER_BACKUPS_SELECTED if name not in streams]
    if missing:
        raise RuntimeError(f"tap --discover has no stream {', '.join(missing)}")
    for name, entry in streams.items():
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = name in USER_BACKUPS_SELECTED
    catalog_path.write_text(json.dumps(catalog))


def compare_outputs(tap_path: Path, floor_path: Path) -> dict[str, Any]:
    """Every record of the tap against the floor's, per stream (order-insensitive).

    The roles' descriptions are prose the contract does not fix: left out, so that
    rewording one does not break the bench; so are the run's version and times.
    """
    version = frozenset({"sync_version"})  # each process's own start
    ignore = {
        "roles": frozenset({"description"}),
        "users": version,
        "role_memberships": version,
        "tenants": version,
        "tenant_syncs": version | {"started_at", "finished_at"},
        **dict.fromkeys(OPTIONAL_STREAMS, version),
    }
    tap, floor = record_digests(tap_path, ignore), record_digests(floor_path, ignore)
    report: dict[str, Any] = {"equal": True, "streams": {}}
    for stream in sorted(set(tap) | set(floor)):
        mine, theirs = tap.get(stream, (0, 0)), floor.get(stream, (0, 0))
        report["streams"][stream] = {
            "tap_records": mine[0],
            "floor_records": theirs[0],
            "same_records": mine == theirs,
        }
        if mine != theirs:
            report["equal"] = False
    return report


# ---------------------------------------------------------------- reporting


def _ratio(mine: float, theirs: float) -> str:
    return f"{mine / theirs:.2f}x" if theirs else "-"


PROGRAM_TABLE_HEADER = [
    "| program | wall s | CPU s | first output s | users/s | records/s | peak RSS MiB "
    "| requests | SCHEMA | STATE (max bytes) | log lines | MB out "
    "| records users / roles / memberships / tenants |",
    "|---|" + "---:|" * 12,
]


def program_row(name: str, summary: Summary, users: int) -> str:
    """One program's row of a scenario table."""
    counts = summary.last.counts
    records = " / ".join(f"{counts.records[stream]:,}" for stream in STREAMS)
    consistent = "" if summary.consistent else " (runs differ!)"
    return (
        f"| {name}{consistent} | {summary.wall:.2f} | {summary.cpu:.2f} "
        f"| {summary.first_output:.2f} "
        f"| {users / summary.wall:,.0f} "
        f"| {counts.total_records / summary.wall:,.0f} | {mib(summary.rss)} "
        f"| {summary.requests} | {counts.schema_messages} "
        f"| {counts.state_messages} ({counts.state_bytes_max}) "
        f"| {summary.last.stderr_lines} | {counts.bytes / 1e6:.1f} | {records} |"
    )


def scenario_table(scenario: Scenario) -> str:
    rows = list(PROGRAM_TABLE_HEADER)
    pair = [("tap", scenario.tap), ("floor", scenario.floor)]
    for name, summary in pair:
        if summary is None:
            continue
        rows.append(program_row(name, summary, scenario.users))
    if scenario.tap and scenario.floor:
        tap, floor = scenario.tap, scenario.floor
        rows.append(
            f"| tap / floor | {_ratio(tap.wall, floor.wall)} | {_ratio(tap.cpu, floor.cpu)} "
            f"| | {_ratio(floor.wall, tap.wall)} | {_ratio(floor.wall, tap.wall)} "
            f"| {_ratio(tap.rss, floor.rss)} | | | | | "
            f"{_ratio(tap.last.counts.bytes, floor.last.counts.bytes)} | |"
        )
    if scenario.user_backups:
        rows += ["", *user_backups_table(scenario)]
    return "\n".join(rows)


def user_backups_table(scenario: Scenario) -> list[str]:
    """--user-backups: records per stream of each program, and the users pages' bytes."""
    rows = ["| stream | tap records | floor records | every record equal |", "|---|---:|---:|---|"]
    verified = (scenario.verify or {}).get("streams", {})
    for stream in scenario.streams:
        tap = f"{scenario.tap.last.counts.records.get(stream, 0):,}" if scenario.tap else "-"
        floor = f"{scenario.floor.last.counts.records.get(stream, 0):,}" if scenario.floor else "-"
        same = verified.get(stream, {}).get("same_records")
        rows.append(
            f"| {stream} | {tap} | {floor} | {'-' if same is None else ('yes' if same else 'NO')} |"
        )
    pages = scenario.page_bytes
    if pages:
        without, with_ = pages["status=false"], pages["status=true"]
        rows += [
            "",
            f"Users page (page size {scenario.page_size}, the emulator's mean body over "
            f"{with_['pages']} page{'s' if with_['pages'] != 1 else ''}, backup status sent as "
            f"`{' '.join(scenario.backup_style)}`): "
            f"{without['mean_bytes'] / 1e3:,.0f} kB with status=false, "
            f"{with_['mean_bytes'] / 1e3:,.0f} kB with status=true and 7 days "
            f"({_ratio(with_['mean_bytes'], without['mean_bytes'])}); "
            f"{with_['bytes'] / 1e6:,.1f} MB of users pages in all. The emulator took "
            f"{scenario.page_render_seconds:.1f} s to render them, before the runs: both "
            "programs are served the status=true pages from its memory.",
        ]
    return rows


def targets(
    scenarios: Sequence[Scenario], latency: Scenario | None, baseline_wall: float | None
) -> list[Target]:
    found: list[Target] = []
    measured = [s for s in scenarios if s.tap is not None]
    biggest = max(measured, key=lambda s: s.users, default=None)
    smallest = min(measured, key=lambda s: s.users, default=None)
    if biggest and biggest.tap and biggest.floor:
        ratio = biggest.tap.wall / biggest.floor.wall
        found.append(
            Target(
                f"tap wall <= {WALL_RATIO_LIMIT:g}x floor at {biggest.users:,} users",
                f"{biggest.tap.wall:.2f} s / {biggest.floor.wall:.2f} s = {ratio:.2f}x",
                f"{WALL_RATIO_LIMIT:g}x",
                ratio <= WALL_RATIO_LIMIT,
            )
        )
    if biggest and smallest and biggest is not smallest and biggest.tap and smallest.tap:
        ratio = biggest.tap.rss / smallest.tap.rss
        found.append(
            Target(
                f"peak RSS at {biggest.users:,} <= {RSS_RATIO_LIMIT:g}x at {smallest.users:,}",
                f"{mib(biggest.tap.rss)} / {mib(smallest.tap.rss)} MiB = {ratio:.2f}x",
                f"{RSS_RATIO_LIMIT:g}x",
                ratio <= RSS_RATIO_LIMIT,
            )
        )
    for scenario in [*measured, *([latency] if latency and latency.tap else [])]:
        assert scenario.tap is not None
        by_path = scenario.tap.last.requests_by_path
        ok = scenario.tap.requests == scenario.expected_requests and set(by_path) == {
            "/external/users",
            "/external/tenant",
        }
        found.append(
            Target(
                f"requests = ceil(users / page_size) + 1 tenant, {scenario.title}",
                f"{scenario.tap.requests} ({', '.join(f'{p}: {n}' for p, n in by_path.items())})",
                str(scenario.expected_requests),
                ok,
            )
        )
    for scenario in measured:
        assert scenario.tap is not None
        schemas = scenario.tap.last.counts.schemas
        streams = scenario.streams
        found.append(
            Target(
                f"one SCHEMA per stream, {scenario.users:,} users",
                ", ".join(f"{stream}: {schemas.get(stream, 0)}" for stream in streams),
                "1 each",
                all(schemas.get(stream) == 1 for stream in streams)
                and len(schemas) == len(streams),
            )
        )
    if biggest and smallest and biggest is not smallest and biggest.tap and smallest.tap:
        big, small = biggest.tap.last.counts, smallest.tap.last.counts
        found.append(
            Target(
                "STATE count and size do not grow with users",
                f"{smallest.users:,}: {small.state_messages} msgs, {small.state_bytes_total} B; "
                f"{biggest.users:,}: {big.state_messages} msgs, {big.state_bytes_total} B",
                "equal",
                big.state_messages == small.state_messages
                and big.state_bytes_total == small.state_bytes_total,
            )
        )
    if latency and latency.tap and baseline_wall is not None:
        pages = latency.tap.requests
        expected = pages * latency.latency_ms / 1000 + baseline_wall
        ratio = latency.tap.wall / expected
        found.append(
            Target(
                f"latency: wall <= {LATENCY_RATIO_LIMIT:g}x (pages x latency + CPU-bound wall)",
                f"{latency.tap.wall:.2f} s / ({pages} x {latency.latency_ms:g} ms + "
                f"{baseline_wall:.2f} s) = {ratio:.2f}x",
                f"{LATENCY_RATIO_LIMIT:g}x",
                ratio <= LATENCY_RATIO_LIMIT,
            )
        )
    for scenario in [*measured, *([latency] if latency else [])]:
        if scenario.tap is None or scenario.floor is None:
            continue
        tap_records = scenario.tap.last.counts.records
        floor_records = scenario.floor.last.counts.records
        ok = (
            tap_records == floor_records
            and tap_records["users"] == scenario.users
            and scenario.tap.consistent
            and scenario.floor.consistent
        )
        measured_text = (
            "equal"
            if tap_records == floor_records
            else (f"tap {tap_records} vs floor {floor_records}")
        )
        if scenario.verify is not None:
            ok = ok and bool(scenario.verify["equal"])
            measured_text += (
                ", every record equal"
                if scenario.verify["equal"]
                else (f", records differ: {scenario.verify['streams']}")
            )
        found.append(
            Target(
                f"records per stream, tap = floor, {scenario.title}",
                measured_text,
                "equal",
                ok,
            )
        )
    return found


def render(
    scenarios: Sequence[Scenario],
    latency: Scenario | None,
    baseline_wall: float | None,
    found: Sequence[Target],
    repeat: int,
    host: dict[str, Any],
) -> str:
    load = ", ".join(f"{value:.2f}" for value in host["load_average"])
    parts = [
        f"Medians of {repeat} runs (peak RSS: the largest); CPU and RSS are the child "
        "process's own (wait4). Sink: a pipe the bench reads and counts. "
        f"Python {host['python']}, {host['cpus']} CPUs, load average {load} at the start"
        + (", PYTHONUNBUFFERED set" if host["PYTHONUNBUFFERED"] else "")
        + ".",
        "",
    ]
    for scenario in scenarios:
        parts += [f"### {scenario.title}", "", scenario_table(scenario), ""]
    if latency is not None:
        parts += [f"### Latency: {latency.title}", "", scenario_table(latency), ""]
        if baseline_wall is not None:
            parts += [
                f"CPU-bound wall of the tap at the same size (no latency): {baseline_wall:.2f} s.",
                "",
            ]
    own_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    parts += [
        f"The bench's own peak RSS is {mib(own_peak)} MiB: a child's peak RSS (wait4) "
        "includes its parent's at the moment it starts, so no child can read below that.",
        "",
    ]
    parts += ["### Targets", "", targets_table(found), ""]
    return "\n".join(parts)


# ---------------------------------------------------------------- entry point


def _user_counts(text: str) -> list[int]:
    counts = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    if not counts or any(count < 1 for count in counts):
        raise argparse.ArgumentTypeError("expected a comma-separated list of positive integers")
    return counts


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--users",
        type=_user_counts,
        default=list(DEFAULT_USERS),
        metavar="N[,N...]",
        help="user counts (default 10000,100000)",
    )
    parser.add_argument("--page-size", type=int, default=1000, help="default %(default)s")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each program per size (default 3)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=100.0,
        help="emulator latency for the latency run; 0 skips it (default %(default)s)",
    )
    parser.add_argument(
        "--latency-users", type=int, default=10_000, help="users in the latency run"
    )
    parser.add_argument(
        "--no-floor", action="store_true", help="measure the tap only (no ratio to the floor)"
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="also compare every record of the tap with the floor's (first run of each size)",
    )
    parser.add_argument(
        "--tap-command",
        metavar="CMD",
        help="the tap to measure, e.g. 'python -m tap_spanning' (default: tap-spanning)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write all results here")
    backups = parser.add_argument_group(
        "backups", "--user-backups: the user_backups stream too (not with --fleet)"
    )
    backups.add_argument(
        "--user-backups",
        action="store_true",
        help="select user_backups in the tap's catalog, and in the floor (--user-backups)",
    )
    backups.add_argument(
        "--date-format",
        choices=DATE_FORMATS,
        default="iso",
        help="how the emulator spells backup dates (default %(default)s)",
    )
    backups.add_argument(
        "--text-numbers",
        action="store_true",
        help="the emulator sends backup counts and userId as text",
    )
    fleet = parser.add_argument_group(
        "fleet mode", "--fleet replaces the runs above by fleet runs: see bench.fleet"
    )
    fleet.add_argument(
        "--fleet",
        type=_user_counts,
        metavar="N[,N...]",
        help="tenant counts, e.g. 100,1000 (generate_fleet; --latency-ms on every request)",
    )
    fleet.add_argument(
        "--hosts", type=int, default=4, help="loopback hosts the fleet is spread over (%(default)s)"
    )
    fleet.add_argument(
        "--max-concurrent-tenants",
        type=int,
        default=8,
        help="the tap's max_concurrent_tenants (default %(default)s)",
    )
    fleet.add_argument(
        "--sample",
        type=int,
        default=20,
        help="tenants synced by a tap process each, to extrapolate (default %(default)s)",
    )
    fleet.add_argument(
        "--meltano-sample",
        type=int,
        default=3,
        help="tenants synced by `meltano run` each; 0 skips Meltano (default %(default)s)",
    )
    modes = parser.add_argument_group(
        "other modes", "each replaces the runs above: see bench.dead_hosts, bench.huge_pages"
    )
    modes.add_argument(
        "--dead-hosts",
        type=_user_counts,
        metavar="N[,N...]",
        help="tenant counts, e.g. 1000,10000: every tenant's host refuses connections (--hosts "
        "of them, from 127.0.0.2); the tap's wall, CPU and peak RSS per count, and the growth",
    )
    modes.add_argument(
        "--huge-pages",
        type=_user_counts,
        metavar="C[,C...]",
        help="max_concurrent_tenants values, e.g. 4,16: the tap's peak RSS over tenants whose "
        "every users page is ~15 MiB (hostile huge-pages), a tap process per run",
    )
    modes.add_argument(
        "--huge-pages-tenants", type=int, default=16, help="--huge-pages: tenants (%(default)s)"
    )
    modes.add_argument(
        "--huge-pages-users",
        type=int,
        default=2500,
        help="--huge-pages: users a tenant (%(default)s)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    tap_command = shlex.split(args.tap_command) if args.tap_command else default_tap_command()
    if args.user_backups and args.fleet:
        parser.error("--user-backups measures one tenant: not with --fleet")
    if not args.user_backups and (args.date_format != "iso" or args.text_numbers):
        parser.error("--date-format and --text-numbers go with --user-backups")
    chosen = [name for name in ("fleet", "dead_hosts", "huge_pages") if getattr(args, name)]
    if len(chosen) > 1 or (chosen and args.user_backups):
        parser.error("--fleet, --dead-hosts, --huge-pages and --user-backups: one at a time")
    if args.fleet:
        return fleet_main(args, tap_command)
    if args.dead_hosts or args.huge_pages:
        return other_mode_main(args, tap_command)
    backups: dict[str, Any] = {}
    if args.user_backups:
        style = ["--date-format", args.date_format]
        if args.text_numbers:
            style += ["--counts-as-text", "--user-id-as-text"]
        backups = {"user_backups": True, "backup_style": tuple(style)}
    started = time.perf_counter()
    host = machine()
    with tempfile.TemporaryDirectory(prefix="spanning-bench-") as tmp:
        workdir = Path(tmp)
        common = {
            "repeat": args.repeat,
            "seed": args.seed,
            "tap_command": tap_command,
            "verify": args.verify,
            "workdir": workdir,
        }
        scenarios = [
            run_scenario(
                Scenario(users, args.page_size, 0.0, **backups),
                with_floor=not args.no_floor,
                **common,
            )
            for users in args.users
        ]
        latency: Scenario | None = None
        baseline_wall: float | None = None
        if args.latency_ms > 0:
            latency = run_scenario(
                Scenario(args.latency_users, args.page_size, args.latency_ms, **backups),
                with_floor=not args.no_floor,
                **common,
            )
            baseline = next((s for s in scenarios if s.users == args.latency_users and s.tap), None)
            if baseline is None:
                baseline = run_scenario(
                    Scenario(args.latency_users, args.page_size, 0.0, **backups),
                    with_floor=False,
                    **common,
                )
            assert baseline.tap is not None
            baseline_wall = baseline.tap.wall
    found = targets(scenarios, latency, baseline_wall)
    print(render(scenarios, latency, baseline_wall, found, args.repeat, host))
    if args.json:
        measured = {
            "scenarios": [scenario.to_json() for scenario in scenarios],
            "latency": latency.to_json() if latency else None,
            "latency_baseline_wall_seconds": baseline_wall,
        }
        write_results(args, tap_command, host, measured, found, started)
    all_ran = all(s.tap and s.tap.consistent for s in scenarios)
    return 0 if all_ran else 1


def fleet_main(args: argparse.Namespace, tap_command: list[str]) -> int:
    """`--fleet`: fleet runs only (bench.fleet)."""
    from bench import fleet  # noqa: PLC0415  # bench.fleet imports this module

    started = time.perf_counter()
    host = machine()
    with tempfile.TemporaryDirectory(prefix="spanning-bench-") as tmp:
        fleets = [
            fleet.run_fleet(
                count,
                hosts=fleet.fleet_hosts(args.hosts),
                latency_ms=args.latency_ms,
                concurrency=args.max_concurrent_tenants,
                page_size=args.page_size,
                repeat=args.repeat,
                seed=args.seed,
                tap_command=tap_command,
                sample=args.sample,
                meltano_sample=args.meltano_sample,
                workdir=Path(tmp),
            )
            for count in args.fleet
        ]
    found = fleet.fleet_targets(fleets)
    load = ", ".join(f"{value:.2f}" for value in host["load_average"])
    own_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    parts = [
        f"Medians of {args.repeat} runs of the fleet (peak RSS: the largest); CPU and RSS "
        "are the child process's own (wait4). Sink: a pipe the bench reads and counts. "
        f"Python {host['python']}, {host['cpus']} CPUs, load average {load} at the start"
        + (", PYTHONUNBUFFERED set" if host["PYTHONUNBUFFERED"] else "")
        + ".",
        "",
    ]
    for scenario in fleets:
        parts += fleet.render_fleet(scenario)
    parts += [
        "Samples: the tenant in the middle of each of k equal slices of the fleet sorted by "
        "size. Extrapolated wall = every request of the fleet x latency (a run per tenant "
        "waits for them one after another) + tenants x the sample's mean time beyond its "
        "requests' latency; CPU = tenants x the sample's mean.",
        "",
        f"The bench's own peak RSS is {mib(own_peak)} MiB: a child's peak RSS (wait4) "
        "includes its parent's at the moment it starts, so no child can read below that.",
        "",
        "### Targets",
        "",
        targets_table(found),
        "",
    ]
    print("\n".join(parts))
    if args.json:
        measured = {"fleets": [scenario.to_json() for scenario in fleets]}
        write_results(args, tap_command, host, measured, found, started)
    all_ran = all(scenario.tap and scenario.tap.consistent for scenario in fleets)
    return 0 if all_ran else 1


def other_mode_main(args: argparse.Namespace, tap_command: list[str]) -> int:
    """`--dead-hosts` (bench.dead_hosts) or `--huge-pages` (bench.huge_pages)."""
    with tempfile.TemporaryDirectory(prefix="spanning-bench-") as tmp:
        if args.dead_hosts:
            return dead_hosts.dead_hosts_main(args, tap_command, Path(tmp))
        # The tap's own entry point with a probe of its budget, unless another is named.
        chosen = tap_command if args.tap_command else None
        return huge_pages.huge_pages_main(args, chosen, Path(tmp))
