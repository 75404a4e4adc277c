"""What every mode of the bench reports with: targets and their table, the log line, the
medians of a program's repeated runs, the machine, and the results file."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.measure import RunResult


class Repeats:
    """The repeated runs of one program (`runs`, set by the dataclass that mixes it in),
    reduced: median wall and CPU, the largest peak RSS."""

    runs: list[RunResult]

    @property
    def wall(self) -> float:
        return statistics.median(run.wall_seconds for run in self.runs)

    @property
    def cpu(self) -> float:
        return statistics.median(run.cpu_seconds for run in self.runs)

    @property
    def rss(self) -> int:
        return max(run.peak_rss_bytes for run in self.runs)


@dataclass
class Target:
    name: str
    measured: str
    limit: str
    ok: bool | None  # None: not measured in this run

    @property
    def result(self) -> str:
        return "n/a" if self.ok is None else ("PASS" if self.ok else "FAIL")


def targets_table(found: Sequence[Target]) -> str:
    rows = ["| target | measured | limit | result |", "|---|---|---|---|"]
    rows += [f"| {t.name} | {t.measured} | {t.limit} | {t.result} |" for t in found]
    return "\n".join(rows)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def mib(value: int) -> str:
    return f"{value / 2**20:.1f}"


def floor_command() -> list[str]:
    return [sys.executable, "-m", "bench.floor"]


def machine() -> dict[str, Any]:
    """What the numbers depend on: CPUs, load when the bench started, stdout buffering."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "PYTHONUNBUFFERED": os.environ.get("PYTHONUNBUFFERED"),
    }


def write_results(
    args: argparse.Namespace,
    tap_command: list[str],
    host: Any,
    measured: dict[str, Any],
    found: Sequence[Any],
    started: float,
) -> None:
    """Every measurement, the command and the targets, as JSON at `--json`."""
    args.json.parent.mkdir(parents=True, exist_ok=True)
    results = {
        "command": {"tap": tap_command, "floor": floor_command(), "argv": sys.argv[1:]},
        "machine": host,
        "repeat": args.repeat,
        **measured,
        "targets": [
            {"name": t.name, "measured": t.measured, "limit": t.limit, "result": t.result}
            for t in found
        ],
        "bench_seconds": time.perf_counter() - started,
    }
    args.json.write_text(json.dumps(results, indent=1, default=str) + "\n")
    log(f"results written to {args.json}")
