"""The README's first command, `make demo`, run as written in the project directory.

It must end 0 and print where the report is; the JSONL it lands for "today" must be exactly
what the emulator serves (every record of every stream of every tenant, from the emulator's
own `--write-fleet` ground truth for the demo's fleet and day); the DuckDB warehouse must hold
both nights' tenant_syncs and the fleet marts; and no tenant's key may appear in what it
prints or logs. It rewrites the project's `output/` (the demo's files), as `make demo` does.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from spanning_emulator import utc_today
from spanning_emulator.cli import main as emulator_cli

from tests.test_warehouse import FOREIGN_ENV_PREFIXES, PROJECT_DIR, duckdb_tables

pytestmark = pytest.mark.e2e

# scripts/demo.sh's defaults (DEMO_TENANTS, DEMO_SEED): what `make demo` runs.
DEMO_TENANTS = 12
DEMO_SEED = 1
DEMO_TIMEOUT = 600  # a guard, not the expected time (about 1-2 minutes)
OUTPUT = PROJECT_DIR / "output"
# The streams landed in JSONL; target-jsonl names each file after its stream.
STREAMS = (
    "users",
    "role_memberships",
    "roles",
    "tenants",
    "tenant_syncs",
    "backup_summaries",
    "user_backups",
)


def ground_truth(directory: Path, today: str) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Per stream, every expected record of the demo's fleet as sorted JSON; and the keys."""
    written = emulator_cli(
        [
            "--tenants", str(DEMO_TENANTS), "--seed", str(DEMO_SEED), "--today", today,
            "--port", "1",  # only written into the expected base_url, which is set aside
            "--write-fleet", str(directory),
        ]
    )  # fmt: skip
    assert written == 0
    expected: dict[str, list[str]] = {}
    for path in sorted((directory / "expected").rglob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            expected.setdefault(path.stem, []).append(comparable(path.stem, json.loads(line)))
    keys_line = (directory / "tenant-keys.env").read_text(encoding="utf-8").strip()
    keys: dict[str, str] = json.loads(keys_line.split("=", 1)[1].strip("'"))
    return {stream: sorted(records) for stream, records in expected.items()}, keys


def comparable(stream: str, record: dict[str, Any]) -> str:
    """A record without the run's version, and for tenants without the emulator's port."""
    record = {k: v for k, v in record.items() if k != "sync_version"}
    if stream == "tenants":
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", str(record.pop("base_url"))), record
    return json.dumps(record, sort_keys=True)


def test_make_demo_lands_the_fleet_and_builds_the_report(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_ENV_PREFIXES)}
    # MAKELEVEL and MAKEFLAGS too: under `make test` they would make it a sub-make, which
    # prints "Leaving directory" after the demo's last line. Run as a user's shell runs it.
    foreign = ("TARGET_", "DBT_", "DEMO_", "MAKE", "MFLAGS")
    env = {k: v for k, v in env.items() if not k.startswith(foreign)}
    today = utc_today().isoformat()
    done = subprocess.run(
        ["make", "demo"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT,
        check=False,
    )
    printed = done.stdout + done.stderr
    assert done.returncode == 0, printed[-4000:]
    if utc_today().isoformat() != today:
        pytest.skip("the demo ran across midnight UTC: its today is not the test's")
    report = OUTPUT / "fleet_report.html"
    assert str(report.resolve()) in done.stdout.splitlines()[-1], done.stdout[-2000:]

    expected, keys = ground_truth(tmp_path / "fleet", today)
    assert len(keys) == DEMO_TENANTS
    assert all(expected.values()), "an empty stream would prove nothing"
    landed: dict[str, list[str]] = {}
    for stream in STREAMS:
        lines = (OUTPUT / "jsonl" / f"{stream}.jsonl").read_text(encoding="utf-8").splitlines()
        landed[stream] = sorted(comparable(stream, json.loads(line)) for line in lines)
    syncs = [json.loads(record) for record in landed.pop("tenant_syncs")]
    assert landed == expected
    # tenant_syncs: one complete row a tenant, counting what the tenant's streams hold.
    users = Counter(json.loads(r)["tenant_id"] for r in expected["users"])
    memberships = Counter(json.loads(r)["tenant_id"] for r in expected["role_memberships"])
    assert sorted(s["tenant_id"] for s in syncs) == sorted(keys)
    for sync in syncs:
        tenant = sync["tenant_id"]
        assert (sync["status"], sync["reason"]) == ("complete", None), sync
        assert (sync["users"], sync["role_memberships"]) == (users[tenant], memberships[tenant])

    # DuckDB: both nights, each a complete sync of every tenant; the marts built on them.
    with duckdb_tables(OUTPUT / "spanning.duckdb") as fetch:
        _, rows = fetch("SELECT tenant_id, sync_version, status FROM tenant_syncs")
        assert len({version for _, version, _ in rows}) == 2, rows
        assert sorted(tenant for tenant, _, _ in rows) == sorted([*keys] * 2)
        assert {status for _, _, status in rows} == {"complete"}
        _, overview = fetch("SELECT tenant_id FROM fleet_overview")
        assert sorted(tenant for (tenant,) in overview) == sorted(keys)
    page = report.read_text(encoding="utf-8")
    assert all(tenant in page for tenant in keys)

    logs = [path.read_text(encoding="utf-8") for path in (OUTPUT / "logs").glob("*.log")]
    assert logs, "the demo wrote no step log"
    for key in keys.values():
        assert all(key not in text for text in (printed, page, *logs)), "a tenant key leaked"
