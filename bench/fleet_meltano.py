"""The fleet's Meltano sample (bench.fleet): `meltano run tap-spanning target-jsonl` per
tenant, in a scratch copy of the project, the tenant given by TAP_SPANNING_* variables."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.emulator import REPO, Emulator
from bench.fleet_scenario import (
    Extrapolation,
    FleetScenario,
    SampleRun,
    measure_with_stats,
    tenant_requests,
)
from bench.measure import run_measured
from bench.report import log

# Inherited variables that would change what a per-tenant Meltano run reads.
_PLUGIN_ENV_PREFIXES = ("TAP_SPANNING_", "TARGET_JSONL_", "MELTANO_")


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
        run, _ = measure_with_stats(
            f"meltano {tenant['tenant_id']}", command, emulator, cwd=project, env=env
        )
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
