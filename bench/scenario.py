"""The runs over user counts (`python -m bench`, no other mode): one tenant of N users
served by the emulator, synced by the tap and by the floor, alternately, `--repeat`
times; with `--verify`, every record of the one compared with the other's."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.emulator import REPO, Emulator
from bench.measure import OPTIONAL_STREAMS, STREAMS, RunResult, record_digests, run_measured
from bench.programs import Summary
from bench.report import floor_command, log

# The streams the tap's catalog selects with --user-backups: the default ones and it.
USER_BACKUPS_SELECTED = (*STREAMS, "user_backups")


@dataclass
class Scenario:
    users: int
    page_size: int
    latency_ms: float
    tap: Summary | None = None
    floor: Summary | None = None
    emulator_startup_seconds: float = 0.0
    verify: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    # --user-backups: the emulator's options for the backup status (BackupStyle), and
    # what it measured of the users pages (Emulator.users_page_bytes).
    user_backups: bool = False
    backup_style: tuple[str, ...] = ()
    page_bytes: dict[str, Any] | None = None
    page_render_seconds: float = 0.0

    @property
    def title(self) -> str:
        title = f"{self.users:,} users, page size {self.page_size}, latency {self.latency_ms:g} ms"
        return title + (", user_backups" if self.user_backups else "")

    @property
    def streams(self) -> tuple[str, ...]:
        """The streams both programs write."""
        return USER_BACKUPS_SELECTED if self.user_backups else STREAMS

    @property
    def expected_requests(self) -> int:
        """ceil(users / page_size) users pages, and the one `/external/tenant`."""
        return max(1, math.ceil(self.users / self.page_size)) + 1

    def to_json(self) -> dict[str, Any]:
        found = {
            "users": self.users,
            "page_size": self.page_size,
            "latency_ms": self.latency_ms,
            "expected_requests": self.expected_requests,
            "emulator_startup_seconds": self.emulator_startup_seconds,
            "tap": self.tap.to_json() if self.tap else None,
            "floor": self.floor.to_json() if self.floor else None,
            "verify": self.verify,
        }
        if self.user_backups:
            found["user_backups"] = {
                "backup_style": list(self.backup_style),
                "users_pages": self.page_bytes,
                "emulator_render_seconds": self.page_render_seconds,
            }
        return found


# ---------------------------------------------------------------- running


def _measure(
    label: str,
    command: list[str],
    emulator: Emulator,
    config_path: Path,
    tee: Path | None,
    extra: Sequence[str] = (),
) -> RunResult:
    leftover = emulator.stats()["requests"]
    if leftover:
        print(f"warning: {leftover} requests before {label} started", file=sys.stderr)
    # The floor runs from the repository (`-m bench.floor`); the tap from the work
    # directory, so that `python -m tap_spanning` imports what PYTHONPATH says.
    cwd = REPO if label == "floor" else config_path.parent
    result = run_measured(label, [*command, "--config", str(config_path), *extra], cwd=cwd, tee=tee)
    stats = emulator.stats()
    result.requests = int(stats["requests"])
    result.requests_by_path = dict(stats["by_path"])
    if result.returncode != 0:
        print(
            f"warning: {label} exited {result.returncode}:\n{result.stderr_tail}",
            file=sys.stderr,
        )
    return result


def run_scenario(
    scenario: Scenario,
    *,
    repeat: int,
    seed: int,
    tap_command: list[str],
    with_floor: bool,
    verify: bool,
    workdir: Path,
) -> Scenario:
    log(f"-- {scenario.title}: starting the emulator")
    style = [*scenario.backup_style, "--cache-backup-pages"] if scenario.user_backups else []
    with Emulator(
        scenario.users, seed=seed, latency_ms=scenario.latency_ms, backup_style=style
    ) as emulator:
        scenario.emulator_startup_seconds = emulator.startup_seconds
        config_path = workdir / f"config-{scenario.users}-{scenario.latency_ms:g}.json"
        config_path.write_text(json.dumps(emulator.tap_config(scenario.page_size)))
        tap_extra: list[str] = []
        floor_extra: list[str] = []
        if scenario.user_backups:
            # Rendered now, so that neither program waits for it (cache_backup_pages).
            started = time.perf_counter()
            scenario.page_bytes = emulator.users_page_bytes(scenario.page_size)
            scenario.page_render_seconds = time.perf_counter() - started
            log(f"   users pages measured and rendered in {scenario.page_render_seconds:.1f} s")
            catalog_path = workdir / "catalog-user-backups.json"
            write_catalog(tap_command, config_path, catalog_path)
            tap_extra, floor_extra = ["--catalog", str(catalog_path)], ["--user-backups"]
            emulator.stats()  # forget any request of the discovery
        tap_runs: list[RunResult] = []
        floor_runs: list[RunResult] = []
        tees = {"tap": workdir / "tap.jsonl", "floor": workdir / "floor.jsonl"}
        for index in range(repeat):
            tee_now = verify and index == 0
            run = _measure(
                "tap",
                tap_command,
                emulator,
                config_path,
                tees["tap"] if tee_now else None,
                tap_extra,
            )
            tap_runs.append(run)
            log(
                f"   tap   #{index + 1}: {run.wall_seconds:.2f} s wall, {run.cpu_seconds:.2f} s CPU"
            )
            if with_floor:
                run = _measure(
                    "floor",
                    floor_command(),
                    emulator,
                    config_path,
                    tees["floor"] if tee_now else None,
                    floor_extra,
                )
                floor_runs.append(run)
                log(
                    f"   floor #{index + 1}: {run.wall_seconds:.2f} s wall, "
                    f"{run.cpu_seconds:.2f} s CPU"
                )
    scenario.tap = Summary(tap_runs)
    scenario.floor = Summary(floor_runs) if floor_runs else None
    if verify and floor_runs:
        scenario.verify = compare_outputs(tees["tap"], tees["floor"])
        for path in tees.values():
            path.unlink(missing_ok=True)
    return scenario


def write_catalog(tap_command: list[str], config_path: Path, catalog_path: Path) -> None:
    """The tap's own catalog (`--discover`) with every default stream and user_backups
    selected."""
    found = subprocess.run(
        [*tap_command, "--config", str(config_path), "--discover"],
        cwd=config_path.parent,
        capture_output=True,
        check=False,
        timeout=300,
    )
    if found.returncode != 0:
        tail = found.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]
        raise RuntimeError(f"tap --discover exited {found.returncode}:\n" + "\n".join(tail))
    catalog = json.loads(found.stdout)
    streams = {entry["tap_stream_id"]: entry for entry in catalog["streams"]}
    missing = [name for name in USER_BACKUPS_SELECTED if name not in streams]
    if missing:
        raise RuntimeError(f"tap --discover has no stream {', '.join(missing)}")
    for name, entry in streams.items():
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = name in USER_BACKUPS_SELECTED
    catalog_path.write_text(json.dumps(catalog))


def compare_outputs(tap_path: Path, floor_path: Path) -> dict[str, Any]:
    """Every record of the tap against the floor's, per stream (order-insensitive).

    The roles' descriptions are prose the contract does not fix: left out, so that
    rewording one does not break the bench; so are the run's version and times.
    """
    version = frozenset({"sync_version"})  # each process's own start
    ignore = {
        "roles": frozenset({"description"}),
        "users": version,
        "role_memberships": version,
        "tenants": version,
        "tenant_syncs": version | {"started_at", "finished_at"},
        **dict.fromkeys(OPTIONAL_STREAMS, version),
    }
    tap, floor = record_digests(tap_path, ignore), record_digests(floor_path, ignore)
    report: dict[str, Any] = {"equal": True, "streams": {}}
    for stream in sorted(set(tap) | set(floor)):
        mine, theirs = tap.get(stream, (0, 0)), floor.get(stream, (0, 0))
        report["streams"][stream] = {
            "tap_records": mine[0],
            "floor_records": theirs[0],
            "same_records": mine == theirs,
        }
        if mine != theirs:
            report["equal"] = False
    return report
