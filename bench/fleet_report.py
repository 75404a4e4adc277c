"""What the fleet runs print (bench.fleet runs them): a table per fleet, the tap's one
run against its ideal and the per-tenant runs extrapolated, the targets they are held
to, and the whole page."""

from __future__ import annotations

import resource
from collections.abc import Sequence
from typing import Any

from bench.fleet_scenario import FleetScenario
from bench.measure import STREAMS
from bench.programs import PROGRAM_TABLE_HEADER, program_row, ratio_text
from bench.report import Target, mib, targets_table

FLEET_WALL_RATIO_LIMIT = 1.3
FLEET_RSS_RATIO_LIMIT = 1.25


def comparison_table(scenario: FleetScenario) -> str:
    tap = scenario.tap
    assert tap is not None
    rows = [
        "| run | wall s | CPU s | wall / fleet run | CPU / fleet run |",
        "|---|---:|---:|---:|---:|",
        f"| tap, one run over the fleet (median of {len(tap.runs)}) "
        f"| {tap.wall:.2f} | {tap.cpu:.2f} | 1.00x | 1.00x |",
    ]
    ideal = scenario.ideal
    if ideal is not None and scenario.floor is not None:
        rows.append(
            f"| ideal = max(CPU floor {scenario.floor.wall:.2f} s, "
            f"{scenario.expected_requests:,} requests x {scenario.latency_ms:g} ms / "
            f"{scenario.concurrency} = {scenario.latency_bound:.2f} s) "
            f"| {ideal:.2f} | | fleet run / ideal = **{ratio_text(tap.wall, ideal)}** | |"
        )
    for extrapolation in (scenario.per_tenant, scenario.meltano):
        if extrapolation is None:
            continue
        failed = "" if extrapolation.ok else " (a run FAILED)"
        rows.append(
            f"| {extrapolation.label}, sample of {len(extrapolation.samples)} "
            f"({extrapolation.sample_users:,} users), one after another{failed} "
            f"| {extrapolation.sample_wall:.2f} | {extrapolation.sample_cpu:.2f} | | |"
        )
        rows.append(
            f"| {extrapolation.label}, extrapolated to {scenario.tenants:,} tenants "
            f"({extrapolation.mean_beyond_latency:.2f} s a tenant beyond its latency) "
            f"| {extrapolation.wall:,.1f} | {extrapolation.cpu:,.1f} "
            f"| **{ratio_text(extrapolation.wall, tap.wall)}** "
            f"| {ratio_text(extrapolation.cpu, tap.cpu)} |"
        )
    return "\n".join(rows)


def render_fleet(scenario: FleetScenario) -> list[str]:
    parts = [f"### {scenario.title}", "", *PROGRAM_TABLE_HEADER]
    if scenario.tap:
        parts.append(program_row("tap, one run over the fleet", scenario.tap, scenario.users))
    if scenario.floor:
        parts.append(
            program_row(
                f"floor, one tenant of all {scenario.users:,} users, no latency",
                scenario.floor,
                scenario.users,
            )
        )
    parts += ["", comparison_table(scenario), ""]
    parts += [f"{note}" for note in scenario.notes]
    if scenario.notes:
        parts.append("")
    return parts


def fleet_targets(fleets: Sequence[FleetScenario]) -> list[Target]:
    found: list[Target] = []
    measured = [fleet for fleet in fleets if fleet.tap is not None]
    for fleet in measured:
        assert fleet.tap is not None
        ideal = fleet.ideal
        if ideal is not None:
            ratio = fleet.tap.wall / ideal
            found.append(
                Target(
                    f"fleet of {fleet.tenants:,}: wall <= {FLEET_WALL_RATIO_LIMIT:g}x ideal",
                    f"{fleet.tap.wall:.2f} s / {ideal:.2f} s = {ratio:.2f}x",
                    f"{FLEET_WALL_RATIO_LIMIT:g}x",
                    ratio <= FLEET_WALL_RATIO_LIMIT,
                )
            )
    biggest = max(measured, key=lambda fleet: fleet.tenants, default=None)
    smallest = min(measured, key=lambda fleet: fleet.tenants, default=None)
    if biggest and smallest and biggest is not smallest and biggest.tap and smallest.tap:
        ratio = biggest.tap.rss / smallest.tap.rss
        found.append(
            Target(
                f"peak RSS at {biggest.tenants:,} tenants <= {FLEET_RSS_RATIO_LIMIT:g}x "
                f"at {smallest.tenants:,}",
                f"{mib(biggest.tap.rss)} / {mib(smallest.tap.rss)} MiB = {ratio:.2f}x",
                f"{FLEET_RSS_RATIO_LIMIT:g}x",
                ratio <= FLEET_RSS_RATIO_LIMIT,
            )
        )
    for fleet in measured:
        assert fleet.tap is not None
        by_path = fleet.tap.last.requests_by_path
        found.append(
            Target(
                f"fleet of {fleet.tenants:,}: requests = pages + 1 a tenant",
                f"{fleet.tap.requests:,} ({', '.join(f'{p}: {n:,}' for p, n in by_path.items())}); "
                f"{fleet.tenants_with_expected_requests:,} of {fleet.tenants:,} tenants exact",
                f"{fleet.expected_requests:,}",
                fleet.tap.requests == fleet.expected_requests
                and fleet.tenants_with_expected_requests == fleet.tenants,
            )
        )
        schemas = fleet.tap.last.counts.schemas
        found.append(
            Target(
                f"fleet of {fleet.tenants:,}: one SCHEMA per stream",
                ", ".join(f"{stream}: {schemas.get(stream, 0)}" for stream in STREAMS),
                "1 each",
                all(schemas.get(stream) == 1 for stream in STREAMS)
                and len(schemas) == len(STREAMS),
            )
        )
        verify = fleet.verify or {}
        mismatched = (
            ""
            if verify.get("equal")
            else f"; differ: {', '.join(verify.get('mismatched', []))}"
            f" ({verify.get('mismatched_count', '?')} stream/tenant pairs)"
        )
        found.append(
            Target(
                f"fleet of {fleet.tenants:,}: every tenant's records = expected_output",
                f"{verify.get('tenants_equal', 0):,} of {fleet.tenants:,} tenants, "
                f"roles {'equal' if verify.get('roles_equal') else 'differ'}, "
                f"{verify.get('records_seen', 0):,} of {verify.get('records_expected', 0):,} "
                f"records{mismatched}",
                "equal",
                bool(verify.get("equal")) and fleet.tap.consistent,
            )
        )
        for extrapolation in (fleet.per_tenant, fleet.meltano):
            if extrapolation is None:
                continue
            samples = extrapolation.samples
            failed = [
                f"{sample.tenant_id} (exit {sample.run.returncode}, "
                f"{sample.records_users:,} of {sample.users:,} users)"
                for sample in samples
                if not sample.ok
            ]
            found.append(
                Target(
                    f"fleet of {fleet.tenants:,}: {extrapolation.label}: each run exits 0 "
                    "with all of its tenant's users",
                    f"{len(samples) - len(failed)} of {len(samples)} runs "
                    f"({extrapolation.sample_users:,} users)"
                    + (f"; failed: {', '.join(failed)}" if failed else ""),
                    "all",
                    extrapolation.ok,
                )
            )
    return found


def render_fleet_page(
    fleets: Sequence[FleetScenario], found: Sequence[Target], repeat: int, host: dict[str, Any]
) -> str:
    """Every fleet's tables, how the samples were extrapolated, and the targets."""
    load = ", ".join(f"{value:.2f}" for value in host["load_average"])
    own_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    parts = [
        f"Medians of {repeat} runs of the fleet (peak RSS: the largest); CPU and RSS "
        "are the child process's own (wait4). Sink: a pipe the bench reads and counts. "
        f"Python {host['python']}, {host['cpus']} CPUs, load average {load} at the start"
        + (", PYTHONUNBUFFERED set" if host["PYTHONUNBUFFERED"] else "")
        + ".",
        "",
    ]
    for scenario in fleets:
        parts += render_fleet(scenario)
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
    return "\n".join(parts)
