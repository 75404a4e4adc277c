"""What `python -m bench --nightly` prints (bench.nightly runs it): per fleet, the steps of
each night into each warehouse, the tap's messages, the rows of the tap's tables, the state,
and the targets the night is held to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.measure import STREAMS
from bench.nightly import STEP_NAMES, WAREHOUSES, Night, NightlyScenario
from bench.nightly_rows import HISTORY_TABLES, TABLES
from bench.report import Target, mib, targets_table

# The limits of the night (docs/performance.md, "The night"), held at TARGET_TENANTS.
TARGET_TENANTS = 1000
END_TO_END_LIMITS = {"DuckDB": 5 * 60.0, "PostgreSQL": 10 * 60.0}
MESSAGES_RATIO_LIMIT = 0.25


def _night_label(night: Night) -> str:
    state = (
        f"state of night {night.night - 1}, {night.state_given_bytes:,} B"
        if night.state_given_bytes
        else "no state"
    )
    return f"night {night.night} ({night.today}, {state})"


def steps_table(scenario: NightlyScenario) -> list[str]:
    rows = [
        "| night | warehouse | step | command | wall s | peak RSS MiB | exit |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    for night in scenario.nights:
        for step in night.steps:
            rows.append(
                f"| {_night_label(night)} | {night.warehouse} | {step.name} | `{step.command}` "
                f"| {step.run.wall_seconds:.2f} | {mib(step.run.peak_rss_bytes)} "
                f"| {step.run.returncode} |"
            )
        rows.append(
            f"| {_night_label(night)} | {night.warehouse} | **end to end** (load + dbt build "
            f"+ report) | | **{night.end_to_end:.2f}** | | |"
        )
    return rows


def _streams(scenario: NightlyScenario) -> list[str]:
    seen = {
        stream
        for night in scenario.nights
        if night.steps
        for stream, count in night.tap.counts.records.items()
        if count
    }
    return [*STREAMS, *sorted(seen - set(STREAMS))]


def messages_table(scenario: NightlyScenario) -> list[str]:
    streams = _streams(scenario)
    rows = [
        "| night | warehouse | messages | RECORD | SCHEMA | STATE | other | "
        + " | ".join(f"RECORD {stream}" for stream in streams)
        + " | MB | state stored B |",
        "|---|---|" + "---:|" * (7 + len(streams)),
    ]
    for night in scenario.nights:
        if not night.steps:
            continue
        counts = night.tap.counts
        others = ", ".join(f"{kind}: {n:,}" for kind, n in counts.other_messages.items()) or "0"
        rows.append(
            f"| {_night_label(night)} | {night.warehouse} | {night.messages:,} "
            f"| {counts.total_records:,} | {counts.schema_messages:,} | {counts.state_messages:,} "
            f"| {others} | "
            + " | ".join(f"{counts.records.get(stream, 0):,}" for stream in streams)
            + f" | {counts.bytes / 1e6:.2f} | {night.state_bytes:,} |"
        )
    return rows


def rows_table(scenario: NightlyScenario) -> list[str]:
    header = [f"{table} (history)" if table in HISTORY_TABLES else table for table in TABLES]
    rows = [
        "| night | warehouse | " + " | ".join(header) + " |",
        "|---|---|" + "---:|" * len(TABLES),
    ]
    for night in scenario.nights:
        before = scenario.night(night.night - 1, night.warehouse)
        cells = []
        for table in TABLES:
            count = night.rows.get(table)
            if count is None:
                cells.append("-")
                continue
            added = ""
            if before is not None and table in before.rows:
                added = f" ({count - before.rows[table]:+,})"
            cells.append(f"{count:,}{added}")
        rows.append(f"| {_night_label(night)} | {night.warehouse} | " + " | ".join(cells) + " |")
    return rows


def render_scenario(scenario: NightlyScenario) -> list[str]:
    parts = [
        f"### The night, a fleet of {scenario.tenants:,} tenants "
        f"({scenario.users:,} users, seed {scenario.seed})",
        "",
        "Steps (each a `meltano --environment=prod` command in the warehouse's scratch project; "
        "peak RSS: the largest process of the step, wait4):",
        "",
        *steps_table(scenario),
        "",
        "What the tap alone sends (`meltano invoke tap-spanning`, with `--state` the state "
        "Meltano stored after the night before), counted in a null sink:",
        "",
        *messages_table(scenario),
        "",
        "Rows of the tap's tables after each night (in brackets: rows added that night; an "
        "upsert that changes a row adds none):",
        "",
        *rows_table(scenario),
        "",
    ]
    parts += scenario.notes
    if scenario.notes:
        parts.append("")
    return parts


def _end_to_end_target(scenario: NightlyScenario, warehouse: str) -> Target | None:
    night = scenario.night(2, warehouse)
    if night is None:
        return None
    limit = END_TO_END_LIMITS[warehouse]
    held = scenario.tenants == TARGET_TENANTS
    return Target(
        f"fleet of {scenario.tenants:,}: night 2 end to end into {warehouse} "
        f"<= {limit / 60:g} min" + ("" if held else f" (held at {TARGET_TENANTS:,} tenants)"),
        f"{night.end_to_end:.1f} s",
        f"{limit:g} s",
        (night.ok and night.end_to_end <= limit) if held else None,
    )


def nightly_targets(scenarios: Sequence[NightlyScenario]) -> list[Target]:
    found: list[Target] = []
    for scenario in scenarios:
        size = f"fleet of {scenario.tenants:,}"
        failed = [
            f"night {night.night} {night.warehouse} {step.name} (exit {step.run.returncode})"
            for night in scenario.nights
            for step in night.steps
            if step.run.returncode != 0
        ]
        found.append(
            Target(
                f"{size}: every step of both nights exits 0",
                ", ".join(failed) or f"{sum(len(n.steps) for n in scenario.nights)} steps",
                f"{2 * len(WAREHOUSES) * len(STEP_NAMES)} steps",
                scenario.ok,
            )
        )
        for warehouse in WAREHOUSES:
            target = _end_to_end_target(scenario, warehouse.name)
            if target is not None:
                found.append(target)
        for warehouse in WAREHOUSES:
            first, second = scenario.night(1, warehouse.name), scenario.night(2, warehouse.name)
            if first is None or second is None or not first.steps or not second.steps:
                continue
            ratio = second.messages / max(first.messages, 1)
            found.append(
                Target(
                    f"{size}: night 2's messages <= 1/4 of night 1's ({warehouse.name} state)",
                    f"{second.messages:,} / {first.messages:,} = {ratio:.2f}",
                    f"{MESSAGES_RATIO_LIMIT:g}",
                    ratio <= MESSAGES_RATIO_LIMIT,
                )
            )
        bad = [
            f"night {night.night} {night.warehouse}: {night.tap.counts.lines:,} lines, "
            f"{night.messages:,} messages, {night.tap.counts.bad_lines} unreadable"
            for night in scenario.nights
            if night.steps
            and (night.messages != night.tap.counts.lines or night.tap.counts.bad_lines)
        ]
        found.append(
            Target(
                f"{size}: the tap alone's messages counted = its output lines",
                "; ".join(bad) or "equal, every night",
                "equal",
                not bad,
            )
        )
    return found


def render_nightly_page(
    scenarios: Sequence[NightlyScenario], found: Sequence[Target], host: dict[str, Any]
) -> str:
    load = ", ".join(f"{value:.2f}" for value in host["load_average"])
    parts = [
        "Night 1: the fleet as it was yesterday (UTC), no state; night 2: the same fleet "
        "(same seed) a day later, a new day of backups, through the same Meltano project "
        "and state backend. One run of each step. "
        f"Python {host['python']}, {host['cpus']} CPUs, load average {load} at the start.",
        "",
    ]
    for scenario in scenarios:
        parts += render_scenario(scenario)
    parts += ["### Targets", "", targets_table(found), ""]
    return "\n".join(parts)
