"""`python -m bench --fleet 100,1000`: one tap run over a fleet, its ideal, the alternatives.

For each fleet size the emulator child (`bench.emulator --fleet N`) serves
`generate_fleet(N)` spread over a few loopback hosts, every tenant answering each
request after `--latency-ms`, and beside it one tenant holding all the fleet's users
with no latency. Then:

- the tap syncs the whole fleet in one run (`tenants`, `tenant_api_keys`,
  `max_concurrent_tenants`), `--repeat` times; the first run's output is checked,
  tenant by tenant, against `expected_output` (in the emulator child, which holds the
  fleet: the bench itself must stay small, see `bench.measure`);
- the floor (`bench.floor`) syncs the one tenant of all the users, `--repeat` times:
  the CPU floor for the same users;
- the ideal is max(that floor, requests x latency / max_concurrent_tenants): what a
  run could take if either the CPU or the tenants' latency were the only cost;
- one tap process per tenant, sequentially, on a sample of `--sample` tenants, and
  `meltano run tap-spanning target-jsonl` per tenant on `--meltano-sample` tenants (a
  scratch copy of the project, the tenant given by TAP_SPANNING_* variables), each
  extrapolated to the fleet.

The samples are stratified by size (the tenant in the middle of each of k equal
slices of the fleet sorted by users). A run per tenant waits for the tenant's
requests one after another, so a sample is extrapolated as: every request of the
fleet x latency, plus tenants x the sample's mean time beyond its own requests'
latency (process start, discovery, CPU); CPU as tenants x the sample's mean.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.cli import (
    PROGRAM_TABLE_HEADER,
    Summary,
    _ratio,
    program_row,
)
from bench.emulator import ADMIN_EMAIL, API_KEY, DEFAULT_FLEET_HOSTS, REPO, Emulator
from bench.measure import STREAMS, RunResult, run_measured
from bench.report import Target, floor_command, log, mib

FLEET_WALL_RATIO_LIMIT = 1.3
FLEET_RSS_RATIO_LIMIT = 1.25
# Inherited variables that would change what a per-tenant Meltano run reads.
_PLUGIN_ENV_PREFIXES = ("TAP_SPANNING_", "TARGET_JSONL_", "MELTANO_")


@dataclass
class SampleRun:
    """One per-tenant run (a tap process, or a Meltano pipeline) of a sampled tenant."""

    tenant_id: str
    users: int
    requests_expected: int
    latency_ms: float
    run: RunResult
    records_users: int

    @property
    def ok(self) -> bool:
        return self.run.returncode == 0 and self.records_users == self.users

    @property
    def beyond_latency(self) -> float:
        """Wall seconds not spent waiting for the tenant's requests, one after another."""
        return self.run.wall_seconds - self.requests_expected * self.latency_ms / 1000

    def to_json(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "users": self.users,
            "requests_expected": self.requests_expected,
            "records_users": self.records_users,
            "ok": self.ok,
            "run": self.run.to_json(),
        }


@dataclass
class Extrapolation:
    """A per-tenant sample scaled to the fleet."""

    label: str
    samples: list[SampleRun]
    tenants: int
    fleet_requests: int
    latency_ms: float

    @property
    def sample_users(self) -> int:
        return sum(sample.users for sample in self.samples)

    @property
    def sample_wall(self) -> float:
        return sum(sample.run.wall_seconds for sample in self.samples)

    @property
    def sample_cpu(self) -> float:
        return sum(sample.run.cpu_seconds for sample in self.samples)

    @property
    def mean_beyond_latency(self) -> float:
        return statistics.fmean(sample.beyond_latency for sample in self.samples)

    @property
    def wall(self) -> float:
        waiting = self.fleet_requests * self.latency_ms / 1000
        return waiting + self.tenants * self.mean_beyond_latency

    @property
    def cpu(self) -> float:
        return self.tenants * statistics.fmean(sample.run.cpu_seconds for sample in self.samples)

    @property
    def ok(self) -> bool:
        return all(sample.ok for sample in self.samples)

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "sample_tenants": len(self.samples),
            "sample_users": self.sample_users,
            "sample_wall_seconds": self.sample_wall,
            "sample_cpu_seconds": self.sample_cpu,
            "mean_seconds_beyond_latency": self.mean_beyond_latency,
            "extrapolated_wall_seconds": self.wall,
            "extrapolated_wall_seconds_by_mean": self.tenants
            * statistics.fmean(sample.run.wall_seconds for sample in self.samples),
            "extrapolated_cpu_seconds": self.cpu,
            "ok": self.ok,
            "samples": [sample.to_json() for sample in self.samples],
        }


@dataclass
class FleetScenario:
    tenants: int
    hosts: int
    latency_ms: float
    concurrency: int
    page_size: int
    users: int = 0
    expected_requests: int = 0
    tenants_with_expected_requests: int = 0
    tap: Summary | None = None
    floor: Summary | None = None
    verify: dict[str, Any] | None = None
    per_tenant: Extrapolation | None = None
    meltano: Extrapolation | None = None
    emulator_startup_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return (
            f"Fleet of {self.tenants:,} tenants ({self.users:,} users) on {self.hosts} hosts, "
            f"{self.latency_ms:g} ms a request, {self.concurrency} tenants at once, "
            f"page size {self.page_size}"
        )

    @property
    def latency_bound(self) -> float:
        """Every request's latency, spread over the tenants fetched at once."""
        return self.expected_requests * self.latency_ms / 1000 / self.concurrency

    @property
    def ideal(self) -> float | None:
        if self.floor is None:
            return None
        return max(self.floor.wall, self.latency_bound)

    def to_json(self) -> dict[str, Any]:
        return {
            "tenants": self.tenants,
            "users": self.users,
            "hosts": self.hosts,
            "latency_ms": self.latency_ms,
            "max_concurrent_tenants": self.concurrency,
            "page_size": self.page_size,
            "expected_requests": self.expected_requests,
            "tenants_with_expected_requests": self.tenants_with_expected_requests,
            "latency_bound_seconds": self.latency_bound,
            "ideal_seconds": self.ideal,
            "emulator_startup_seconds": self.emulator_startup_seconds,
            "tap": self.tap.to_json() if self.tap else None,
            "floor": self.floor.to_json() if self.floor else None,
            "verify": self.verify,
            "per_tenant": self.per_tenant.to_json() if self.per_tenant else None,
            "meltano": self.meltano.to_json() if self.meltano else None,
            "notes": self.notes,
        }


# ---------------------------------------------------------------- running


def tenant_requests(users: int, page_size: int) -> int:
    """Requests of one tenant's sync: its users pages (one even when empty), its counters."""
    return max(1, math.ceil(users / page_size)) + 1


def stratified_sample(tenants: Sequence[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """The tenant in the middle of each of `count` equal slices of the fleet by size."""
    if count >= len(tenants):
        return list(tenants)
    ordered = sorted(tenants, key=lambda tenant: (tenant["users"], tenant["tenant_id"]))
    return [ordered[int((index + 0.5) * len(ordered) / count)] for index in range(count)]


def _measure(
    label: str,
    command: list[str],
    emulator: Emulator,
    *,
    cwd: Path,
    env: dict[str, str] | None = None,
    tee: Path | None = None,
) -> tuple[RunResult, dict[str, Any]]:
    leftover = emulator.stats()["requests"]
    if leftover:
        log(f"warning: {leftover} requests before {label} started")
    result = run_measured(label, command, cwd=cwd, env=env, tee=tee)
    stats = emulator.stats()
    result.requests = int(stats["requests"])
    result.requests_by_path = dict(stats["by_path"])
    if result.returncode != 0:
        log(f"warning: {label} exited {result.returncode}:\n{result.stderr_tail}")
    return result, stats


def fleet_config(tenants: Sequence[dict[str, Any]], concurrency: int, page_size: int) -> dict:
    return {
        "tenants": [
            {
                "tenant_id": tenant["tenant_id"],
                "admin_email": tenant["admin_email"],
                "base_url": tenant["base_url"],
            }
            for tenant in tenants
        ],
        "tenant_api_keys": {tenant["tenant_id"]: tenant["api_key"] for tenant in tenants},
        "max_concurrent_tenants": concurrency,
        "page_size": page_size,
    }


def one_tenant_config(tenant: dict[str, Any], page_size: int) -> dict[str, Any]:
    return {
        "tenant_id": tenant["tenant_id"],
        "admin_email": tenant["admin_email"],
        "api_key": tenant["api_key"],
        "base_url": tenant["base_url"],
        "page_size": page_size,
    }


def meltano_executable() -> Path | None:
    found = Path(sys.executable).parent / "meltano"
    return found if found.exists() else None


def meltano_project(workdir: Path) -> Path | None:
    """A scratch Meltano project: the repository's meltano.yml and installed plugins,
    its own system database, run directory and output (the repository's are untouched).
    """
    installed = REPO / ".meltano"
    if (
        not (installed / "extractors" / "tap-spanning").is_dir()
        or not (installed / "loaders" / "target-jsonl").is_dir()
    ):
        return None
    project = workdir / "meltano-project"
    (project / ".meltano").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "meltano.yml", project / "meltano.yml")
    for kind in ("extractors", "loaders"):
        link = project / ".meltano" / kind
        if not link.exists():
            link.symlink_to(installed / kind, target_is_directory=True)
    return project


def _meltano_env(tenant: dict[str, Any], page_size: int, output: Path) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_PLUGIN_ENV_PREFIXES)
    }
    env.update(
        {
            "TAP_SPANNING_TENANT_ID": tenant["tenant_id"],
            "TAP_SPANNING_ADMIN_EMAIL": tenant["admin_email"],
            "TAP_SPANNING_API_KEY": tenant["api_key"],
            "TAP_SPANNING_BASE_URL": tenant["base_url"],
            "TAP_SPANNING_PAGE_SIZE": str(page_size),
            "TARGET_JSONL_DESTINATION_PATH": str(output),
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
    )
    return env


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def run_meltano_sample(
    scenario: FleetScenario,
    emulator: Emulator,
    sample: Sequence[dict[str, Any]],
    workdir: Path,
) -> Extrapolation | None:
    meltano = meltano_executable()
    project = meltano_project(workdir) if meltano else None
    if meltano is None or project is None:
        scenario.notes.append(
            "Meltano runs skipped: .venv/bin/meltano or the installed plugins "
            "(make meltano-install) are missing."
        )
        return None
    # The scratch project's system database is created by its first command: not timed.
    warm = run_measured(
        "meltano warm-up", [str(meltano), "state", "list"], cwd=project, timeout=600
    )
    if warm.returncode != 0:
        log(f"warning: meltano warm-up exited {warm.returncode}:\n{warm.stderr_tail}")
    runs: list[SampleRun] = []
    for tenant in sample:
        output = workdir / "meltano-output" / tenant["tenant_id"]
        output.mkdir(parents=True, exist_ok=True)
        command = [
            str(meltano),
            "run",
            "--state-id-suffix",
            tenant["tenant_id"],
            "tap-spanning",
            "target-jsonl",
        ]
        env = _meltano_env(tenant, scenario.page_size, output)
        run, _ = _measure(f"meltano {tenant['tenant_id']}", command, emulator, cwd=project, env=env)
        sample_run = SampleRun(
            tenant["tenant_id"],
            tenant["users"],
            tenant_requests(tenant["users"], scenario.page_size),
            scenario.latency_ms,
            run,
            _count_lines(output / "users.jsonl"),
        )
        runs.append(sample_run)
        log(
            f"   meltano {tenant['tenant_id']} ({tenant['users']:,} users): "
            f"{run.wall_seconds:.2f} s wall{'' if sample_run.ok else ' (FAILED)'}"
        )
    return Extrapolation(
        "meltano run tap-spanning target-jsonl, per tenant",
        runs,
        scenario.tenants,
        scenario.expected_requests,
        scenario.latency_ms,
    )


def run_fleet(
    count: int,
    *,
    hosts: Sequence[str],
    latency_ms: float,
    concurrency: int,
    page_size: int,
    repeat: int,
    seed: int,
    tap_command: list[str],
    sample: int,
    meltano_sample: int,
    workdir: Path,
) -> FleetScenario:
    scenario = FleetScenario(count, len(hosts), latency_ms, concurrency, page_size)
    log(f"-- fleet of {count:,} tenants: starting the emulator")
    with Emulator(
        0,
        seed=seed,
        latency_ms=latency_ms,
        max_page_size=max(page_size, 1000),
        fleet=count,
        hosts=hosts,
    ) as emulator:
        tenants = emulator.tenants
        scenario.emulator_startup_seconds = emulator.startup_seconds
        scenario.users = sum(tenant["users"] for tenant in tenants)
        expected = {
            tenant["tenant_id"]: tenant_requests(tenant["users"], page_size) for tenant in tenants
        }
        scenario.expected_requests = sum(expected.values())
        log(
            f"   {scenario.users:,} users, {scenario.expected_requests:,} requests expected "
            f"(emulator ready in {emulator.startup_seconds:.1f} s)"
        )
        config_path = workdir / f"fleet-{count}.json"
        config_path.write_text(_json(fleet_config(tenants, concurrency, page_size)))
        floor_path = workdir / f"fleet-{count}-floor.json"
        floor_path.write_text(
            _json(
                {
                    "base_url": emulator.base_url,
                    "admin_email": ADMIN_EMAIL,
                    "api_key": API_KEY,
                    "page_size": page_size,
                }
            )
        )
        tee = workdir / "fleet-output.jsonl"
        tap_runs: list[RunResult] = []
        floor_runs: list[RunResult] = []
        for index in range(repeat):
            run, stats = _measure(
                "tap",
                [*tap_command, "--config", str(config_path)],
                emulator,
                cwd=workdir,
                tee=tee if index == 0 else None,
            )
            tap_runs.append(run)
            log(
                f"   tap   #{index + 1}: {run.wall_seconds:.2f} s wall, "
                f"{run.cpu_seconds:.2f} s CPU, {run.requests:,} requests"
            )
            if index == 0:
                by_tenant = stats["by_tenant"]
                scenario.tenants_with_expected_requests = sum(
                    1
                    for tenant_id, wanted in expected.items()
                    if by_tenant.get(tenant_id) == wanted
                )
                scenario.verify = emulator.verify(tee)
                tee.unlink(missing_ok=True)
                log(
                    f"   records: {scenario.verify['tenants_equal']:,} of "
                    f"{scenario.verify['tenants']:,} tenants equal to expected_output"
                )
            run, _ = _measure(
                "floor", [*floor_command(), "--config", str(floor_path)], emulator, cwd=REPO
            )
            floor_runs.append(run)
            log(
                f"   floor #{index + 1}: {run.wall_seconds:.2f} s wall, {run.cpu_seconds:.2f} s CPU"
            )
        scenario.tap = Summary(tap_runs)
        scenario.floor = Summary(floor_runs)

        runs: list[SampleRun] = []
        for tenant in stratified_sample(tenants, sample):
            path = workdir / "one-tenant.json"
            path.write_text(_json(one_tenant_config(tenant, page_size)))
            run, _ = _measure(
                f"tap {tenant['tenant_id']}",
                [*tap_command, "--config", str(path)],
                emulator,
                cwd=workdir,
            )
            runs.append(
                SampleRun(
                    tenant["tenant_id"],
                    tenant["users"],
                    expected[tenant["tenant_id"]],
                    latency_ms,
                    run,
                    run.counts.records.get("users", 0),
                )
            )
        if runs:
            scenario.per_tenant = Extrapolation(
                "tap process per tenant", runs, count, scenario.expected_requests, latency_ms
            )
            log(
                f"   tap per tenant: {len(runs)} tenants in {scenario.per_tenant.sample_wall:.2f} s"
            )
        if meltano_sample > 0:
            scenario.meltano = run_meltano_sample(
                scenario, emulator, stratified_sample(tenants, meltano_sample), workdir
            )
    return scenario


def _json(value: Any) -> str:
    return json.dumps(value)


# ---------------------------------------------------------------- reporting


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
            f"| {ideal:.2f} | | fleet run / ideal = **{_ratio(tap.wall, ideal)}** | |"
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
            f"| **{_ratio(extrapolation.wall, tap.wall)}** | {_ratio(extrapolation.cpu, tap.cpu)} |"
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


def fleet_hosts(count: int) -> list[str]:
    """The first `count` loopback hosts: 127.0.0.1, 127.0.0.2, ..."""
    if count <= len(DEFAULT_FLEET_HOSTS):
        return list(DEFAULT_FLEET_HOSTS[:count])
    return [f"127.0.0.{index}" for index in range(1, count + 1)]
