"""`python -m bench --huge-pages 4,16`: the tap's peak memory when every page is huge.

An emulator child (`python -m bench.huge_pages`, a `spanning_emulator.FleetEmulator`)
serves `--huge-pages-tenants` tenants (16, on two loopback hosts) of `--huge-pages-users`
users each (2,500: two full pages of 1,000 and a half one), every tenant hostile
"huge-pages": each user is padded with an unknown field, so a page of 1,000 users is
about 15 MiB, just under the tap's 16 MiB bound on one response. The tap syncs the whole
fleet once per value of `max_concurrent_tenants` listed (4, then 16), `--repeat` times
each, every run in its own process into the counting null sink, so its peak RSS (wait4)
is that process's.

The tap runs as `python -m bench.tap_probe` (its own console script, which also writes
its response budget's peak: `tap_spanning.budget`), unless `--tap-command` names another.

Targets: the peak RSS with the most tenants at once is at most 1.2x the peak with the
fewest (the response budget, not the concurrency, bounds what is held), and under 1 GiB.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.emulator import REPO, Emulator, _stats
from bench.measure import RunResult, run_measured
from bench.report import Repeats, Target, log, machine, mib, targets_table, write_results
from bench.tap_probe import PROBE_ENV

HUGE_RSS_RATIO_LIMIT = 1.2
HUGE_RSS_LIMIT = 2**30
DEFAULT_TENANTS = 16
DEFAULT_USERS = 2_500
HOSTILE_CASE = "huge-pages"
HOSTS = ("127.0.0.1", "127.0.0.2")


def hostile_tenants(count: int, users: int, seed: int, hosts: Sequence[str]) -> list[Any]:
    """`count` tenants of `users` realistic users each, every one hostile huge-pages."""
    from spanning_emulator import EmulatedTenant, generate_users  # noqa: PLC0415

    rng = random.Random(f"huge-pages-{seed}")
    found = []
    for index in range(1, count + 1):
        tenant_id = f"t{index:03d}-huge"
        found.append(
            EmulatedTenant(
                tenant_id=tenant_id,
                users=generate_users(
                    users, seed * 1_000_003 + index, "realistic", domain=f"{tenant_id}.example"
                ),
                admin_email=f"admin@{tenant_id}.example",
                api_key=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                host=hosts[(index - 1) % len(hosts)],
                hostile=HOSTILE_CASE,
            )
        )
    return found


def serve(argv: list[str] | None = None) -> int:
    """The emulator child: prints the tenants as one JSON line, then obeys `stats`, `quit`."""
    from spanning_emulator import FleetEmulator  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m bench.huge_pages")
    parser.add_argument("--tenants", type=int, default=DEFAULT_TENANTS)
    parser.add_argument("--users", type=int, default=DEFAULT_USERS)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-page-size", type=int, default=1000)
    parser.add_argument("--hosts", default=",".join(HOSTS))
    args = parser.parse_args(argv)
    tenants = hostile_tenants(args.tenants, args.users, args.seed, args.hosts.split(","))
    fleet = FleetEmulator(tenants, max_page_size=args.max_page_size).start()
    try:
        ready = {
            "base_url": "",
            "tenants": [
                {
                    "tenant_id": tenant.tenant_id,
                    "admin_email": tenant.admin_email,
                    "api_key": tenant.api_key,
                    "base_url": fleet.base_url(tenant.tenant_id),
                    "users": tenant.user_count,
                }
                for tenant in tenants
            ],
        }
        print(json.dumps(ready), flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "quit":
                break
            if command == "stats":
                log_ = fleet.requests
                fleet.clear_requests()
                print(json.dumps(_stats(log_)), flush=True)
    finally:
        fleet.stop()
    return 0


class HugeEmulator(Emulator):
    """The `python -m bench.huge_pages` child, with bench.emulator's protocol."""

    module = "bench.huge_pages"

    def __init__(self, tenants: int, users: int, *, seed: int, max_page_size: int) -> None:
        super().__init__(0)
        self._args = [
            "--tenants",
            str(tenants),
            "--users",
            str(users),
            "--seed",
            str(seed),
            "--max-page-size",
            str(max_page_size),
        ]


@dataclass
class HugeRun(Repeats):
    """The runs at one max_concurrent_tenants."""

    concurrency: int
    runs: list[RunResult]
    budgets: list[dict[str, Any]] = field(default_factory=list)
    expected_users: int = 0
    expected_tenants: int = 0
    expected_requests: int = 0

    @property
    def budget_peak(self) -> int | None:
        return max((b["peak"] for b in self.budgets), default=None)

    @property
    def ok(self) -> bool:
        """Every run completed every tenant with all of its users, one request a page."""
        return all(
            run.returncode == 0
            and run.counts.records.get("users") == self.expected_users
            and run.counts.records.get("tenants") == self.expected_tenants
            and run.requests == self.expected_requests
            for run in self.runs
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "max_concurrent_tenants": self.concurrency,
            "peak_rss_bytes_max": self.rss,
            "wall_seconds_median": self.wall,
            "cpu_seconds_median": self.cpu,
            "budgets": self.budgets,
            "expected_users": self.expected_users,
            "expected_requests": self.expected_requests,
            "ok": self.ok,
            "runs": [run.to_json() for run in self.runs],
        }


def probe_env(probe: Path) -> dict[str, str]:
    """The tap's environment: the probe's file, and `bench` importable after whatever
    PYTHONPATH puts first (a modified copy of the tap is measured, as `python -m bench`
    does; the tap runs outside the repository for the same reason)."""
    paths = [part for part in os.environ.get("PYTHONPATH", "").split(os.pathsep) if part]
    return {**os.environ, PROBE_ENV: str(probe), "PYTHONPATH": os.pathsep.join([*paths, str(REPO)])}


def run_huge(
    args: argparse.Namespace, tap_command: list[str] | None, workdir: Path
) -> list[HugeRun]:
    """Every listed concurrency against one emulator child. `tap_command` None: the probe."""
    found: list[HugeRun] = []
    log(f"-- {args.huge_pages_tenants} tenants of {args.huge_pages_users:,} huge users")
    with HugeEmulator(
        args.huge_pages_tenants,
        args.huge_pages_users,
        seed=args.seed,
        max_page_size=max(args.page_size, 1000),
    ) as emulator:
        tenants = emulator.tenants
        pages = max(1, math.ceil(args.huge_pages_users / args.page_size))
        for concurrency in args.huge_pages:
            config = workdir / f"huge-{concurrency}.json"
            config.write_text(
                json.dumps(
                    {
                        "tenants": [
                            {key: t[key] for key in ("tenant_id", "admin_email", "base_url")}
                            for t in tenants
                        ],
                        "tenant_api_keys": {t["tenant_id"]: t["api_key"] for t in tenants},
                        "max_concurrent_tenants": concurrency,
                        "page_size": args.page_size,
                        "max_retry_wait": 0.01,
                    }
                )
            )
            scenario = HugeRun(
                concurrency,
                [],
                expected_users=sum(t["users"] for t in tenants),
                expected_tenants=len(tenants),
                expected_requests=len(tenants) * (pages + 1),
            )
            probe = workdir / "budget.json"
            for index in range(args.repeat):
                probe.unlink(missing_ok=True)
                command = tap_command or [sys.executable, "-m", "bench.tap_probe"]
                run = run_measured(
                    f"tap, {concurrency} at once",
                    [*command, "--config", str(config)],
                    cwd=workdir,
                    env=probe_env(probe),
                )
                stats = emulator.stats()
                run.requests = int(stats["requests"])
                run.requests_by_path = dict(stats["by_path"])
                scenario.runs.append(run)
                if probe.exists():
                    scenario.budgets.append(json.loads(probe.read_text()))
                budget = scenario.budgets[-1]["peak"] if probe.exists() else None
                log(
                    f"   {concurrency} at once #{index + 1}: {run.wall_seconds:.2f} s wall, "
                    f"peak RSS {mib(run.peak_rss_bytes)} MiB, budget peak "
                    f"{'-' if budget is None else mib(budget)} MiB, exit {run.returncode}"
                )
                if run.returncode != 0:
                    log(run.stderr_tail)
            found.append(scenario)
    return found


def huge_targets(found: Sequence[HugeRun]) -> list[Target]:
    targets = [
        Target(
            f"{run.concurrency} at once: exit 0, every user, one request a page",
            f"exits {sorted({r.returncode for r in run.runs})}, users "
            f"{sorted({r.counts.records.get('users', 0) for r in run.runs})}, requests "
            f"{sorted({r.requests for r in run.runs})}",
            f"0, {run.expected_users:,}, {run.expected_requests}",
            run.ok,
        )
        for run in found
    ]
    if found:
        few = min(found, key=lambda run: run.concurrency)
        many = max(found, key=lambda run: run.concurrency)
        if many is not few:
            ratio = many.rss / few.rss
            targets.append(
                Target(
                    f"peak RSS, {many.concurrency} at once <= {HUGE_RSS_RATIO_LIMIT:g}x "
                    f"{few.concurrency} at once",
                    f"{mib(many.rss)} / {mib(few.rss)} MiB = {ratio:.2f}x",
                    f"{HUGE_RSS_RATIO_LIMIT:g}x",
                    ratio <= HUGE_RSS_RATIO_LIMIT,
                )
            )
        targets.append(
            Target(
                f"peak RSS, {many.concurrency} at once < 1 GiB",
                f"{mib(many.rss)} MiB",
                f"{mib(HUGE_RSS_LIMIT)} MiB",
                many.rss < HUGE_RSS_LIMIT,
            )
        )
    return targets


def render(found: Sequence[HugeRun], args: argparse.Namespace) -> str:
    rows = [
        f"### Huge pages: {args.huge_pages_tenants} tenants of {args.huge_pages_users:,} "
        f"users, every user padded (hostile {HOSTILE_CASE}: ~15 MiB a page of 1,000), "
        f"page size {args.page_size}",
        "",
        "| tenants at once | peak RSS MiB (largest) | runs' peak RSS MiB | budget peak MiB "
        "| largest page MiB | wall s | CPU s | requests |",
        "|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for run in found:
        peaks = ", ".join(mib(r.peak_rss_bytes) for r in run.runs)
        peak = run.budget_peak
        page = max((b["largest_page"] for b in run.budgets), default=None)
        rows.append(
            f"| {run.concurrency} | {mib(run.rss)} | {peaks} "
            f"| {'-' if peak is None else mib(peak)} | {'-' if page is None else mib(page)} "
            f"| {run.wall:.2f} | {run.cpu:.2f} | {run.runs[-1].requests} |"
        )
    limits = {b["limit"] for run in found for b in run.budgets}
    if limits:
        rows += ["", f"The response budget's limit: {', '.join(mib(x) for x in limits)} MiB."]
    return "\n".join(rows)


def huge_pages_main(args: argparse.Namespace, tap_command: list[str] | None, workdir: Path) -> int:
    """`--huge-pages`: print the table and targets; non-zero when a run went wrong."""

    started = time.perf_counter()
    host = machine()
    found = run_huge(args, tap_command, workdir)
    targets = huge_targets(found)
    load = ", ".join(f"{value:.2f}" for value in host["load_average"])
    own = mib(_own_peak())
    print(
        f"{args.repeat} runs each; peak RSS is the tap process's own (wait4; the bench's "
        f"own peak, {own} MiB, is the floor of any child's). Python {host['python']}, "
        f"{host['cpus']} CPUs, load average {load} at the start.\n\n{render(found, args)}\n\n"
        f"### Targets\n\n{targets_table(targets)}\n"
    )
    if args.json:
        measured = {"huge_pages": [run.to_json() for run in found]}
        write_results(args, tap_command or ["bench.tap_probe"], host, measured, targets, started)
    return 0 if all(run.ok for run in found) else 1


def _own_peak() -> int:
    import resource  # noqa: PLC0415

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


if __name__ == "__main__":
    raise SystemExit(serve())
