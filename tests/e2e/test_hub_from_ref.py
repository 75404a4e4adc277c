"""The Hub definitions of hub/ in a fresh Meltano project (docs/hub.md): `meltano add
extractor --from-ref` and `meltano add utility --from-ref` install the tap and the reports,
and the nightly job runs end to end against a fleet of emulated tenants.

The project is written by hand in tmp_path (what `meltano init` writes, without its minute),
holds nothing of this checkout's meltano.yml but the loader's and dbt's definitions (the Hub
is out of reach here), and has its own .meltano/: every plugin is installed into it by
`meltano install`, from the package index through uv's cache. Expected values come from the
emulator's tenants.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from spanning_emulator import FleetEmulator, expected_output

from tests.named_tenants import named_tenants, serving
from tests.warehouse import FOREIGN_ENV_PREFIXES, meltano_executable

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
HUB = ROOT / "hub"
# The installs of a fresh project (the tap built from this checkout, target-duckdb, dbt and
# the reports) take minutes on a cold cache.
INSTALL_TIMEOUT = 1200
RUN_TIMEOUT = 600
# The developer's own dbt or report settings would point the run elsewhere.
FOREIGN = (*FOREIGN_ENV_PREFIXES, "DBT_", "FLEET_REPORT_")
NIGHTLY = ("tap-spanning", "target-duckdb", "dbt-duckdb:build", "fleet-report:duckdb")


@pytest.fixture
def fleet() -> Iterator[FleetEmulator]:
    yield from serving(
        named_tenants(
            (
                ("northwind", 40, 71, "127.0.0.1"),
                ("umbrella", 25, 72, "127.0.0.2"),
                ("stark", 0, 73, "127.0.0.3"),
            ),
            "{name}-hub0-1111-2222-{seed:012d}",
        )
    )


def hub_definition(kind: str, name: str) -> dict[str, Any]:
    """The one definition hub/ holds for this plugin (hub/<kind>/<name>/<variant>.yml)."""
    (path,) = sorted((HUB / kind / name).glob("*.yml"))
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def from_checkout(tmp_path: Path, kind: str, name: str, pip_url: str) -> Path:
    """A copy of the definition whose pip_url is this checkout instead of PyPI.

    The packages are not on PyPI yet, and a test must try this checkout's code: the copy
    differs from hub/'s file in pip_url alone. A path, not `-e`: pip builds and installs the
    distribution as it would one from the index (its version from git, its package data).
    """
    definition = hub_definition(kind, name)
    definition["pip_url"] = pip_url
    path = tmp_path / "definitions" / kind / f"{name}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(definition, sort_keys=False))
    return path


def checkout_plugin(kind: str, name: str) -> dict[str, Any]:
    """A plugin of this checkout's meltano.yml."""
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    (plugin,) = [p for p in project["plugins"][kind] if p["name"] == name]
    return dict(plugin)


def dbt_on_this_transform(project_dir: Path) -> dict[str, Any]:
    """meltano.yml's dbt-duckdb, reading this checkout's transform/ and profile, its target
    and logs in the fresh project (so the report finds dbt's run results where it looks)."""
    dbt = checkout_plugin("utilities", "dbt-duckdb")
    values = {
        "project_dir": str(ROOT / "transform"),
        "profiles_dir": str(ROOT / "transform" / "profiles" / "duckdb"),
        "target_path": str(project_dir / "transform" / "target" / "duckdb"),
        "log_path": str(project_dir / "transform" / "logs" / "duckdb"),
    }
    for setting in dbt["settings"]:
        if setting["name"] in values:
            setting["value"] = values.pop(setting["name"])
    assert not values, f"meltano.yml's dbt-duckdb has no setting {sorted(values)}"
    return dbt


def write_fresh_project(project_dir: Path) -> None:
    """The smallest meltano.yml `meltano init` would write: no plugin."""
    project_dir.mkdir()
    # target-duckdb writes output/spanning.duckdb (its default) but makes no folder.
    (project_dir / "output").mkdir()
    project = {
        "project_id": "hub-from-ref-test",
        "send_anonymous_usage_stats": False,
        "default_environment": "dev",
        "environments": [{"name": "dev"}],
        "plugins": {},
    }
    (project_dir / "meltano.yml").write_text(yaml.safe_dump(project, sort_keys=False))


def add_loader_and_dbt(project_dir: Path) -> None:
    """target-duckdb and dbt-duckdb as this checkout defines them, into the fresh project."""
    path = project_dir / "meltano.yml"
    project = yaml.safe_load(path.read_text())
    project["plugins"].setdefault("loaders", []).append(checkout_plugin("loaders", "target-duckdb"))
    project["plugins"].setdefault("utilities", []).append(dbt_on_this_transform(project_dir))
    path.write_text(yaml.safe_dump(project, sort_keys=False))


def fleet_env(fleet: FleetEmulator, report: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN)}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        TAP_SPANNING_TENANTS=json.dumps(
            [
                {
                    "tenant_id": t.tenant_id,
                    "admin_email": t.admin_email,
                    "base_url": fleet.base_url(t.tenant_id),
                }
                for t in fleet.tenants
            ]
        ),
        TAP_SPANNING_TENANT_API_KEYS=json.dumps({t.tenant_id: t.api_key for t in fleet.tenants}),
        TAP_SPANNING_PAGE_SIZE="10",
        TAP_SPANNING_MAX_RETRY_WAIT="0.01",
        FLEET_REPORT_OUTPUT=str(report),
    )
    return env


def meltano(project_dir: Path, env: Mapping[str, str], *args: str, timeout: int) -> str:
    """Run meltano in the fresh project; fail the test unless it exits 0."""
    started = time.monotonic()
    done = subprocess.run(
        [str(meltano_executable()), *args],
        cwd=project_dir,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = done.stdout + done.stderr
    tail = "\n".join(output.splitlines()[-60:])
    assert done.returncode == 0, f"meltano {' '.join(args)} exited {done.returncode}:\n{tail}"
    print(f"meltano {' '.join(args)}: {time.monotonic() - started:.1f}s")
    return output


def site_packages(project_dir: Path, kind: str, name: str) -> Path:
    (found,) = (project_dir / ".meltano" / kind / name / "venv" / "lib").glob(
        "python*/site-packages"
    )
    return found


def test_the_hub_definitions_run_the_nightly_job_in_a_fresh_project(
    tmp_path: Path, fleet: FleetEmulator
) -> None:
    project_dir = tmp_path / "project"
    report = tmp_path / "report" / "fleet_report.html"
    env = fleet_env(fleet, report)
    write_fresh_project(project_dir)
    tap_name = hub_definition("extractors", "tap-spanning")["name"]
    report_name = hub_definition("utilities", "fleet-report")["name"]
    tap_ref = from_checkout(tmp_path, "extractors", "tap-spanning", str(ROOT))
    reports_ref = from_checkout(
        tmp_path, "utilities", "fleet-report", f"{ROOT / 'reports'}[duckdb]"
    )
    # Installed once, all together, by `meltano install` below.
    meltano(
        project_dir,
        env,
        "add",
        "extractor",
        tap_name,
        "--from-ref",
        str(tap_ref),
        "--no-install",
        timeout=RUN_TIMEOUT,
    )
    meltano(
        project_dir,
        env,
        "add",
        "utility",
        report_name,
        "--from-ref",
        str(reports_ref),
        "--no-install",
        timeout=RUN_TIMEOUT,
    )
    add_loader_and_dbt(project_dir)

    added = yaml.safe_load((project_dir / "meltano.yml").read_text())["plugins"]
    (tap,) = added["extractors"]
    assert (tap["name"], tap["namespace"], tap["pip_url"]) == (
        "tap-spanning",
        "tap_spanning",
        str(ROOT),
    )
    reports = next(p for p in added["utilities"] if p["name"] == "fleet-report")
    assert (reports["namespace"], reports["executable"]) == ("fleet_report", "spanning-reports")
    assert set(reports["commands"]) >= {"duckdb", "alerts-duckdb", "clients-duckdb"}

    meltano(project_dir, env, "install", timeout=INSTALL_TIMEOUT)
    # Built and installed as a distribution, not linked to this checkout (an editable
    # install would hold a .pth file instead of the package).
    assert (
        site_packages(project_dir, "extractors", "tap-spanning") / "tap_spanning" / "tap.py"
    ).is_file()
    assert (
        site_packages(project_dir, "utilities", "fleet-report") / "spanning_reports" / "fleet.py"
    ).is_file()

    meltano(project_dir, env, "run", *NIGHTLY, timeout=RUN_TIMEOUT)

    served = {t.tenant_id: t for t in fleet.tenants}
    with duckdb.connect(str(project_dir / "output" / "spanning.duckdb"), read_only=True) as db:
        overview = {
            row[0] for row in db.execute("SELECT tenant_id FROM main.fleet_overview").fetchall()
        }
        users = dict(db.execute("SELECT tenant_id, count(*) FROM main.users GROUP BY 1").fetchall())
    assert overview == set(served)
    assert users == {
        tenant_id: len(expected_output(t.users, tenant_id=tenant_id)["users"])
        for tenant_id, t in served.items()
        if t.users
    }
    assert report.is_file(), f"no fleet report at {report}"
    page = report.read_text()
    for tenant_id in served:
        assert tenant_id in page, tenant_id
