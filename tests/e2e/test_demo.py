"""The README's first command, `make demo`, run as written in the project directory.

It must end 0 and print where the report is; the JSONL it lands for "today" must be exactly
what the emulator serves (every record of every stream of every tenant, from the emulator's
own `--write-fleet` ground truth for the demo's fleet and day); the DuckDB warehouse must hold
both nights' tenant_syncs and the fleet marts; and no tenant's key may appear in what it
prints or logs. It rewrites `output/demo/` (the demo's own folder), as `make demo` does.

The demo must not touch a real setup. Before it runs, the developer's own `.env`, warehouse
(`output/spanning.duckdb`), JSONL folder and report are set aside (in the project, so that a
killed test leaves them findable) and known ones put in their place, with the shell (a real
tenant's credentials, the loaders, dbt and the report) and `.env` pointing at them: afterwards
they and meltano.yml are byte for byte as they were, and a real sync from the project lands
its own tenant and no demo tenant. The developer's files are then put back exactly.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from spanning_emulator import SpanningEmulator, generate_users, utc_today
from spanning_emulator.cli import main as emulator_cli

from tests.leaks import ADMIN_EMAIL
from tests.warehouse import (
    FOREIGN_ENV_PREFIXES,
    PROJECT_DIR,
    duckdb_tables,
    meltano,
    private_meltano_dir,
)

pytestmark = pytest.mark.e2e

# scripts/demo.sh's defaults (DEMO_TENANTS, DEMO_SEED): what `make demo` runs.
DEMO_TENANTS = 12
DEMO_SEED = 1
DEMO_TIMEOUT = 600  # a guard, not the expected time (about 1-2 minutes)
OUTPUT = PROJECT_DIR / "output"
DEMO = OUTPUT / "demo"  # everything the demo writes
# A developer's own files, which the demo must leave alone (the paths the demo used to write).
REAL = {
    "env": PROJECT_DIR / ".env",
    "warehouse": OUTPUT / "spanning.duckdb",
    "wal": OUTPUT / "spanning.duckdb.wal",
    "jsonl": OUTPUT / "jsonl",
    "report": OUTPUT / "fleet_report.html",
}
ASIDE_PREFIX = ".test_demo-aside-"  # .gitignore'd
REAL_TENANT_USERS = 30
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


def snapshot(path: Path) -> dict[str, bytes] | None:
    """Every file under a path (or the file itself), relative name to bytes; None if absent."""
    if not path.exists():
        return None
    if path.is_file():
        return {"": path.read_bytes()}
    return {
        str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
    }


@pytest.fixture
def real_files_set_aside() -> Iterator[Path]:
    """The developer's own .env, warehouse, JSONL and report moved aside, then put back.

    Moved (a rename, in the project: one file system), never copied: what comes back is the
    very file. Whatever the test put at those paths is removed first; it made them.
    """
    left = sorted(PROJECT_DIR.glob(f"{ASIDE_PREFIX}*"))
    assert not left, f"an earlier test_demo left a developer's files in {left[0]}: restore them"
    aside = PROJECT_DIR / f"{ASIDE_PREFIX}{os.getpid()}"
    aside.mkdir()
    handled: list[str] = []  # set aside, or found absent: the test may write there
    moved: set[str] = set()
    try:
        for name, path in REAL.items():
            if path.exists() or path.is_symlink():
                path.rename(aside / name)
                moved.add(name)
            handled.append(name)
        yield aside
    finally:
        for name in handled:
            path = REAL[name]
            if path.is_dir() and not path.is_symlink():
                for child in sorted(path.rglob("*"), reverse=True):
                    child.rmdir() if child.is_dir() else child.unlink()
                path.rmdir()
            elif path.exists() or path.is_symlink():
                path.unlink()
            if name in moved:
                (aside / name).rename(path)
        aside.rmdir()


def plant_real_files() -> None:
    """A developer's setup: an existing warehouse, JSONL folder and report under output/, and
    a .env pointing the loaders and the report there. The .env holds only what every other
    test running Meltano in the project sets for itself: they run beside this one."""
    REAL["env"].write_text(
        "# a developer's .env: make demo must neither read nor change it\n"
        "TARGET_DUCKDB_PATH=output/spanning.duckdb\n"
        "TARGET_JSONL_DESTINATION_PATH=output/jsonl\n"
        "FLEET_REPORT_OUTPUT=output/fleet_report.html\n",
        encoding="utf-8",
    )
    OUTPUT.mkdir(exist_ok=True)
    with duckdb.connect(str(REAL["warehouse"])) as warehouse:
        warehouse.execute("CREATE TABLE users AS SELECT 'real-client' AS tenant_id, 42 AS n")
    REAL["jsonl"].mkdir()
    (REAL["jsonl"] / "x.jsonl").write_bytes(b'{"tenant_id": "real-client"}\n')
    REAL["report"].write_bytes(b"<!DOCTYPE html><title>a real fleet</title>\n")


def real_sync_tenants(tmp_path: Path, real: SpanningEmulator, api_key: str) -> Counter[str]:
    """`meltano run tap-spanning target-duckdb` as a developer runs it (the project's
    meltano.yml and .env, the default environment, one tenant's credentials in the shell),
    into a file of the test's: users per tenant it landed."""
    database = tmp_path / "real-sync" / "spanning.duckdb"
    database.parent.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_ENV_PREFIXES)}
    env = {k: v for k, v in env.items() if not k.startswith(("TARGET_", "DBT_"))}
    env.update(
        MELTANO_DATABASE_URI=f"sqlite:///{tmp_path / 'real-sync' / 'meltano.db'}",
        MELTANO_SYS_DIR_ROOT=str(private_meltano_dir(tmp_path / "real-sync" / "meltano")),
        TAP_SPANNING_BASE_URL=real.base_url,
        TAP_SPANNING_ADMIN_EMAIL=ADMIN_EMAIL,
        TAP_SPANNING_API_KEY=api_key,
        TARGET_DUCKDB_PATH=str(database),
    )
    meltano(env, "run", "tap-spanning", "target-duckdb")
    with duckdb_tables(database) as fetch:
        _, rows = fetch("SELECT tenant_id, count(*) FROM users GROUP BY tenant_id")
    return Counter({str(tenant): int(count) for tenant, count in rows})


def test_make_demo_lands_the_fleet_and_builds_the_report(
    tmp_path: Path,
    real_files_set_aside: Path,
    start_emulator: Callable[..., SpanningEmulator],
    api_key: str,
) -> None:
    real_emulator = start_emulator(generate_users(REAL_TENANT_USERS, seed=5))
    plant_real_files()
    before = {name: snapshot(path) for name, path in REAL.items()}
    meltano_yml = (PROJECT_DIR / "meltano.yml").read_bytes()

    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_ENV_PREFIXES)}
    # MAKELEVEL and MAKEFLAGS too: under `make test` they would make it a sub-make, which
    # prints "Leaving directory" after the demo's last line. Run as a user's shell runs it.
    foreign = ("TARGET_", "DBT_", "DEMO_", "MAKE", "MFLAGS", "FLEET_REPORT_")
    env = {k: v for k, v in env.items() if not k.startswith(foreign)}
    # A shell set up for a real tenant and warehouse: the demo must override every one.
    env.update(
        TAP_SPANNING_BASE_URL=real_emulator.base_url,
        TAP_SPANNING_ADMIN_EMAIL=ADMIN_EMAIL,
        TARGET_DUCKDB_PATH=str(REAL["warehouse"]),
        DBT_DUCKDB_PATH=str(REAL["warehouse"]),
        TARGET_JSONL_DESTINATION_PATH=str(REAL["jsonl"]),
        FLEET_REPORT_OUTPUT=str(REAL["report"]),
        FLEET_REPORT_DUCKDB_PATH=str(REAL["warehouse"]),
        MELTANO_ENVIRONMENT="prod",
        TAP_SPANNING_API_KEY=api_key,
    )
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

    # The developer's files, byte for byte, and the project's config.
    assert {name: snapshot(path) for name, path in REAL.items()} == before
    assert (PROJECT_DIR / "meltano.yml").read_bytes() == meltano_yml
    # And a real sync after the demo lands the real tenant only.
    assert real_sync_tenants(tmp_path, real_emulator, api_key) == Counter(
        {"default": REAL_TENANT_USERS}
    )

    if utc_today().isoformat() != today:
        pytest.skip("the demo ran across midnight UTC: its today is not the test's")
    report = DEMO / "fleet_report.html"
    assert str(report.resolve()) in done.stdout.splitlines()[-1], done.stdout[-2000:]

    expected, keys = ground_truth(tmp_path / "fleet", today)
    assert len(keys) == DEMO_TENANTS
    assert all(expected.values()), "an empty stream would prove nothing"
    landed: dict[str, list[str]] = {}
    for stream in STREAMS:
        lines = (DEMO / "jsonl" / f"{stream}.jsonl").read_text(encoding="utf-8").splitlines()
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
    with duckdb_tables(DEMO / "spanning.duckdb") as fetch:
        _, rows = fetch("SELECT tenant_id, sync_version, status FROM tenant_syncs")
        assert len({version for _, version, _ in rows}) == 2, rows
        assert sorted(tenant for tenant, _, _ in rows) == sorted([*keys] * 2)
        assert {status for _, _, status in rows} == {"complete"}
        _, overview = fetch("SELECT tenant_id FROM fleet_overview")
        assert sorted(tenant for (tenant,) in overview) == sorted(keys)
    page = report.read_text(encoding="utf-8")
    assert all(tenant in page for tenant in keys)

    logs = [path.read_text(encoding="utf-8") for path in (DEMO / "logs").glob("*.log")]
    assert logs, "the demo wrote no step log"
    for key in [*keys.values(), api_key]:
        assert all(key not in text for text in (printed, page, *logs)), "a key leaked"
