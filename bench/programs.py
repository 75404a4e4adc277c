"""A program's repeated runs in one scenario, reduced, and its row of a table: shared by
the runs over user counts (bench.scenario) and the fleet runs (bench.fleet)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from bench.measure import STREAMS, RunResult
from bench.report import Repeats, mib


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


def ratio_text(mine: float, theirs: float) -> str:
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
