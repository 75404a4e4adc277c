"""What the runs over user counts print: a table per scenario (and, with
`--user-backups`, the records per stream and the users pages' bytes), the targets
they are held to, and the whole page (bench.scenario runs them)."""

from __future__ import annotations

import resource
from collections.abc import Sequence
from typing import Any

from bench.programs import PROGRAM_TABLE_HEADER, program_row, ratio_text
from bench.report import Target, mib, targets_table
from bench.scenario import Scenario

WALL_RATIO_LIMIT = 1.15  # the project's target at 100,000 users (docs/performance.md)
RSS_RATIO_LIMIT = 1.25
LATENCY_RATIO_LIMIT = 1.15


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
            f"| tap / floor | {ratio_text(tap.wall, floor.wall)} "
            f"| {ratio_text(tap.cpu, floor.cpu)} "
            f"| | {ratio_text(floor.wall, tap.wall)} | {ratio_text(floor.wall, tap.wall)} "
            f"| {ratio_text(tap.rss, floor.rss)} | | | | | "
            f"{ratio_text(tap.last.counts.bytes, floor.last.counts.bytes)} | |"
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
            f"({ratio_text(with_['mean_bytes'], without['mean_bytes'])}); "
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
