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

What is measured and extrapolated is in bench.fleet_scenario, the Meltano sample in
bench.fleet_meltano, the tables and targets in bench.fleet_report.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.emulator import ADMIN_EMAIL, API_KEY, DEFAULT_FLEET_HOSTS, REPO, Emulator
from bench.fleet_meltano import run_meltano_sample
from bench.fleet_scenario import (
    Extrapolation,
    FleetScenario,
    SampleRun,
    measure_with_stats,
    stratified_sample,
    tenant_requests,
)
from bench.measure import RunResult
from bench.programs import Summary
from bench.report import floor_command, log


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
            run, stats = measure_with_stats(
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
            run, _ = measure_with_stats(
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
            run, _ = measure_with_stats(
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


def fleet_hosts(count: int) -> list[str]:
    """The first `count` loopback hosts: 127.0.0.1, 127.0.0.2, ..."""
    if count <= len(DEFAULT_FLEET_HOSTS):
        return list(DEFAULT_FLEET_HOSTS[:count])
    return [f"127.0.0.{index}" for index in range(1, count + 1)]
