"""What a fleet run measures (bench.fleet): the scenario, the per-tenant runs of a
sample and their extrapolation to the fleet, the sample itself, and one measured run
against the fleet's emulator with the requests it made."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.emulator import Emulator
from bench.measure import RunResult, run_measured
from bench.programs import Summary
from bench.report import log


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


def tenant_requests(users: int, page_size: int) -> int:
    """Requests of one tenant's sync: its users pages (one even when empty), its counters."""
    return max(1, math.ceil(users / page_size)) + 1


def stratified_sample(tenants: Sequence[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """The tenant in the middle of each of `count` equal slices of the fleet by size."""
    if count >= len(tenants):
        return list(tenants)
    ordered = sorted(tenants, key=lambda tenant: (tenant["users"], tenant["tenant_id"]))
    return [ordered[int((index + 0.5) * len(ordered) / count)] for index in range(count)]


def measure_with_stats(
    label: str,
    command: list[str],
    emulator: Emulator,
    *,
    cwd: Path,
    env: dict[str, str] | None = None,
    tee: Path | None = None,
) -> tuple[RunResult, dict[str, Any]]:
    """One measured run, with the requests the emulator served it, and the emulator's
    stats of that run (its requests by tenant, for the fleet's exact-requests check)."""
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
