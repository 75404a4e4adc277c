"""The modes of `python -m bench` (bench.cli parses and picks one): the runs over user
counts (bench.scenario), `--fleet` (bench.fleet), `--dead-hosts` (bench.dead_hosts),
`--huge-pages` (bench.huge_pages) and `--nightly` (bench.nightly). Each runs, prints its
page, writes `--json` and returns the exit status."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import dead_hosts, fleet, huge_pages, nightly
from bench.fleet_meltano import meltano_executable
from bench.fleet_report import fleet_targets, render_fleet_page
from bench.nightly_report import nightly_targets, render_nightly_page
from bench.report import machine, write_results
from bench.scenario import Scenario, run_scenario
from bench.scenario_report import render, targets


def users_main(args: argparse.Namespace, tap_command: list[str]) -> int:
    """The runs over user counts, then the latency run: no other mode."""
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
    found = fleet_targets(fleets)
    print(render_fleet_page(fleets, found, args.repeat, host))
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


def nightly_main(args: argparse.Namespace, tap_command: list[str]) -> int:
    """`--nightly`: two nights of a fleet through Meltano (bench.nightly); the tap is the one
    installed in .meltano/, not `--tap-command`."""
    missing = nightly.missing_plugins()
    if meltano_executable() is None or missing:
        print(
            "python -m bench --nightly: .venv/bin/meltano or plugins of .meltano/ are missing "
            f"({', '.join(missing) or 'meltano'}): run `make meltano-install`",
            file=sys.stderr,
        )
        return 2
    started = time.perf_counter()
    host = machine()
    admin_url = nightly.postgres_admin_url(args.pg_url)
    with tempfile.TemporaryDirectory(prefix="spanning-bench-") as tmp:
        scenarios = [
            nightly.run_nightly(count, seed=args.seed, workdir=Path(tmp), pg_admin_url=admin_url)
            for count in args.nightly
        ]
    found = nightly_targets(scenarios)
    print(render_nightly_page(scenarios, found, host))
    if args.json:
        measured = {"nightly": [scenario.to_json() for scenario in scenarios]}
        write_results(args, tap_command, host, measured, found, started)
    return 0 if all(scenario.ok for scenario in scenarios) else 1
