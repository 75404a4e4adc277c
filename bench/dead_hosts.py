"""`python -m bench --dead-hosts 1000,10000`: a fleet whose every host refuses connections.

Each tenant's base_url is a loopback host (127.0.0.2, 127.0.0.3, ...: `--hosts` of them)
on a port nobody listens on, so every request is refused at once: the run's cost is the
tap's own bookkeeping of N failed tenants (retries, the host circuit, the log lines and
their scrubbing, the closing line naming every failed tenant). The old tap scrubbed each
line once per tenant key, so a run took 24 s at 5,000 tenants and 146 s at 10,000.

For each N the tap (`failure_mode` nightly, `max_retries` 2, `max_retry_wait` 0.01 s)
runs `--repeat` times into the counting null sink (`bench.measure`). Printed: the median
wall, CPU and the largest peak RSS per N, and the wall's growth from the smallest N to
the largest against the tenants' (the target: no more than linear).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.measure import RunResult, run_measured
from bench.report import Repeats, Target, log, machine, mib, targets_table, write_results

FAILURE_MODE = "nightly"
MAX_RETRIES = 2
MAX_RETRY_WAIT = 0.01
# A key (a GUID here) in what the tap printed last would be a leak.
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
_NAMED = re.compile(r"\bt\d+-dead\b")
_MORE = re.compile(r"\band (\d+) more\b")


def dead_hosts(count: int) -> list[str]:
    """127.0.0.2 onwards: 127.0.0.1 is where the machine's own servers listen."""
    return [f"127.0.0.{index}" for index in range(2, count + 2)]


def _refused(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return False


def refused_port(hosts: Sequence[str]) -> int:
    """A port that every host refuses now: one the kernel just gave out, then closed."""
    for _ in range(20):
        with socket.socket() as probe:
            probe.bind((hosts[0], 0))
            port = int(probe.getsockname()[1])
        if all(_refused(host, port) for host in hosts):
            return port
    raise RuntimeError(f"no port that {', '.join(hosts)} all refuse")


def dead_config(
    count: int, hosts: Sequence[str], port: int, concurrency: int, seed: int
) -> dict[str, Any]:
    """`count` tenants spread round-robin over the hosts, a GUID key each."""
    rng = random.Random(f"dead-hosts-{seed}")
    width = max(5, len(str(count)))
    tenants = [
        {
            "tenant_id": f"t{index:0{width}d}-dead",
            "admin_email": f"admin@t{index:0{width}d}-dead.example",
            "base_url": f"http://{hosts[index % len(hosts)]}:{port}",
        }
        for index in range(1, count + 1)
    ]
    keys = {
        tenant["tenant_id"]: str(uuid.UUID(int=rng.getrandbits(128), version=4))
        for tenant in tenants
    }
    return {
        "tenants": tenants,
        "tenant_api_keys": keys,
        "failure_mode": FAILURE_MODE,
        "max_retries": MAX_RETRIES,
        "max_retry_wait": MAX_RETRY_WAIT,
        "max_concurrent_tenants": concurrency,
    }


def named_in_last_line(run: RunResult) -> int:
    """How many failed tenants the last stderr line names (listed, plus "and N more")."""
    lines = run.stderr_tail.splitlines()
    if not lines:
        return 0
    last = lines[-1]
    more = _MORE.search(last)
    return len(set(_NAMED.findall(last))) + (int(more.group(1)) if more else 0)


@dataclass
class DeadRun(Repeats):
    """The runs of one fleet size."""

    tenants: int
    runs: list[RunResult]

    @property
    def ok(self) -> bool:
        """Every run failed every tenant (exit 1: none completed), wrote no record
        (docs/many-tenants.md: a run with no tenant answering writes none) and named them all
        last, no key there."""
        return all(
            run.returncode == 1
            and named_in_last_line(run) == self.tenants
            and not _GUID.search(run.stderr_tail)
            and run.counts.total_records == 0
            for run in self.runs
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "tenants": self.tenants,
            "wall_seconds_median": self.wall,
            "cpu_seconds_median": self.cpu,
            "peak_rss_bytes_max": self.rss,
            "ok": self.ok,
            "runs": [
                {**run.to_json(), "named_in_last_line": named_in_last_line(run)}
                for run in self.runs
            ],
        }


def run_dead(
    count: int,
    *,
    hosts: Sequence[str],
    concurrency: int,
    repeat: int,
    seed: int,
    tap_command: list[str],
    workdir: Path,
) -> DeadRun:
    port = refused_port(hosts)
    log(f"-- {count:,} tenants on {len(hosts)} hosts refusing port {port}")
    config = workdir / f"dead-{count}.json"
    config.write_text(json.dumps(dead_config(count, hosts, port, concurrency, seed)))
    runs = []
    for index in range(repeat):
        run = run_measured(
            f"tap, {count} dead", [*tap_command, "--config", str(config)], cwd=workdir
        )
        runs.append(run)
        log(
            f"   tap #{index + 1}: {run.wall_seconds:.2f} s wall, {run.cpu_seconds:.2f} s CPU, "
            f"{mib(run.peak_rss_bytes)} MiB, exit {run.returncode}, "
            f"{run.stderr_lines:,} log lines"
        )
    return DeadRun(count, runs)


def dead_targets(found: Sequence[DeadRun]) -> list[Target]:
    targets = [
        Target(
            f"{run.tenants:,} dead tenants: exit 1, no record, the last line names every one, "
            "no key in it",
            f"exits {sorted({r.returncode for r in run.runs})}, records "
            f"{sorted({r.counts.total_records for r in run.runs})}, names "
            f"{sorted({named_in_last_line(r) for r in run.runs})}",
            f"1, 0, {run.tenants:,}",
            run.ok,
        )
        for run in found
    ]
    if len(found) > 1:
        small = min(found, key=lambda run: run.tenants)
        big = max(found, key=lambda run: run.tenants)
        limit = big.tenants / small.tenants
        ratio = big.wall / small.wall
        targets.append(
            Target(
                f"wall at {big.tenants:,} <= {limit:g}x wall at {small.tenants:,} (linear)",
                f"{big.wall:.2f} s / {small.wall:.2f} s = {ratio:.2f}x",
                f"{limit:g}x",
                ratio <= limit,
            )
        )
    return targets


def render(found: Sequence[DeadRun], hosts: Sequence[str], concurrency: int) -> str:
    rows = [
        f"### Dead hosts: every tenant's host ({', '.join(hosts)}) refuses connections; "
        f"failure_mode {FAILURE_MODE}, max_retries {MAX_RETRIES}, max_retry_wait "
        f"{MAX_RETRY_WAIT:g} s, {concurrency} tenants at once",
        "",
        "| tenants | wall s | CPU s | peak RSS MiB | wall / smallest | tenants / smallest "
        "| runs (wall s) | log lines |",
        "|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    small = min(found, key=lambda run: run.tenants)
    for run in found:
        walls = ", ".join(f"{r.wall_seconds:.2f}" for r in run.runs)
        rows.append(
            f"| {run.tenants:,} | {run.wall:.2f} | {run.cpu:.2f} | {mib(run.rss)} "
            f"| {run.wall / small.wall:.2f}x | {run.tenants / small.tenants:g}x | {walls} "
            f"| {run.runs[-1].stderr_lines:,} |"
        )
    return "\n".join(rows)


def dead_hosts_main(args: argparse.Namespace, tap_command: list[str], workdir: Path) -> int:
    """`--dead-hosts`: print the table and targets; non-zero when a run went wrong."""

    started = time.perf_counter()
    host = machine()
    hosts = dead_hosts(args.hosts)
    found = [
        run_dead(
            count,
            hosts=hosts,
            concurrency=args.max_concurrent_tenants,
            repeat=args.repeat,
            seed=args.seed,
            tap_command=tap_command,
            workdir=workdir,
        )
        for count in args.dead_hosts
    ]
    targets = dead_targets(found)
    load = ", ".join(f"{value:.2f}" for value in host["load_average"])
    print(
        f"Medians of {args.repeat} runs (peak RSS: the largest); CPU and RSS are the tap "
        f"process's own (wait4). Python {host['python']}, {host['cpus']} CPUs, load average "
        f"{load} at the start.\n\n{render(found, hosts, args.max_concurrent_tenants)}\n\n"
        f"### Targets\n\n{targets_table(targets)}\n"
    )
    if args.json:
        measured = {"dead_hosts": [run.to_json() for run in found], "hosts": hosts}
        write_results(args, tap_command, host, measured, targets, started)
    return 0 if all(run.ok for run in found) else 1
