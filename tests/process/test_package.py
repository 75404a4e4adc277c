"""The distributions as PyPI would get them (docs/install.md): `python -m build` of the tap
and of reports/, `twine check --strict` of the four files, the version git implies, and each
wheel installed alone in a clean venv (no dev extra, no checkout on the path) doing its job:
the tap's --about, --discover and a sync against the emulator, the reports' console scripts
with the [duckdb] extra only, reading the marts' columns bundled in the wheel."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import venv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from spanning_emulator import generate_users

from tests.conftest import EmulatorFactory
from tests.leaks import check_output, key_forms
from tests.tapdriver import run_in_process
from tests.taprun import TapRun, assert_output_is, parse_messages

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[2]
REPORTS = ROOT / "reports"
MARTS = ROOT / "transform" / "models" / "marts"
# A build (an isolated env of hatchling and hatch-vcs) or an install with its downloads.
SLOW = 300


def run(command: Sequence[str | Path], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=SLOW,
        env=env,
        check=False,
    )
    assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
    )


@dataclass
class GitState:
    """What hatch-vcs reads: the nearest `v` tag (None without one), the commits since it
    (all of them without one), HEAD and whether tracked files changed."""

    tag: str | None
    distance: int
    head: str
    dirty: bool


def git_state() -> GitState:
    head = git("rev-parse", "HEAD").stdout.strip()
    dirty = bool(git("status", "--porcelain", "--untracked-files=no").stdout.strip())
    described = git("describe", "--tags", "--long", "--match", "v[0-9]*")
    if described.returncode != 0:
        return GitState(None, int(git("rev-list", "--count", "HEAD").stdout), head, dirty)
    found = re.fullmatch(r"(.+)-(\d+)-g[0-9a-f]+", described.stdout.strip())
    assert found, described.stdout
    return GitState(found[1], int(found[2]), head, dirty)


@dataclass
class Built:
    files: list[Path]
    git: GitState

    def one(self, pattern: str) -> Path:
        found = [path for path in self.files if re.fullmatch(pattern, path.name)]
        assert len(found) == 1, (pattern, [path.name for path in self.files])
        return found[0]

    @property
    def tap_wheel(self) -> Path:
        return self.one(r"tap_spanning-.+-py3-none-any\.whl")

    @property
    def reports_wheel(self) -> Path:
        return self.one(r"spanning_reports-.+-py3-none-any\.whl")


def version_of(distribution: Path) -> str:
    """The version in a wheel's or an sdist's file name."""
    return distribution.name.removesuffix(".tar.gz").split("-")[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The sdist and wheel of the tap and of the reports, built from this checkout."""
    out = tmp_path_factory.mktemp("dist")
    state = git_state()
    for project in (ROOT, REPORTS):
        run([sys.executable, "-m", "build", "--sdist", "--wheel", "-o", out, project], ROOT)
    return Built(sorted(out.iterdir()), state)


def clean_env() -> dict[str, str]:
    """This environment without what would point a process at the checkout or its venv."""
    dropped = ("PYTHONPATH", "VIRTUAL_ENV", "MELTANO_PROJECT_ROOT", "PYTHONHOME")
    return {
        name: value
        for name, value in os.environ.items()
        if name not in dropped and not name.startswith(("TAP_SPANNING_", "FLEET_REPORT_"))
    }


def clean_venv(where: Path, requirement: str) -> Path:
    """A new venv holding `requirement` and its dependencies from the index, nothing else:
    its bin/."""
    venv.EnvBuilder(with_pip=True).create(where)
    bin_dir = where / "bin"
    run([bin_dir / "python", "-m", "pip", "install", "--quiet", requirement], where, clean_env())
    return bin_dir


@pytest.fixture(scope="module")
def tap_bin(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return clean_venv(tmp_path_factory.mktemp("tap-venv"), str(built.tap_wheel))


@pytest.fixture(scope="module")
def reports_bin(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return clean_venv(tmp_path_factory.mktemp("reports-venv"), f"{built.reports_wheel}[duckdb]")


# ---------------------------------------------------------------- the distributions


def test_twine_check_strict_passes_on_both_sdists_and_wheels(built: Built) -> None:
    four = {
        built.one(rf"{name}-.+{kind}")
        for name in ("tap_spanning", "spanning_reports")
        for kind in (r"\.tar\.gz", r"-py3-none-any\.whl")
    }
    assert four == set(built.files)
    out = run([sys.executable, "-m", "twine", "check", "--strict", *built.files], ROOT)
    assert out.count("PASSED") == 4, out


def test_the_version_is_what_git_describe_implies(built: Built) -> None:
    """hatch-vcs's scheme (docs/install.md, "The version"): a clean tagged commit is the
    tag's version; any other is the next version's .devN, N commits on, +g<HEAD's hash>, and
    .d<date> when tracked files changed. Without a `v` tag the base is 0.1 and N counts
    every commit (the other tags of the history are no versions)."""
    state = built.git
    version = version_of(built.tap_wheel)
    assert version_of(built.reports_wheel) == version  # one repository, one version
    assert version == version_of(built.one(r"tap_spanning-.+\.tar\.gz"))
    if state.tag is not None and state.distance == 0 and not state.dirty:
        assert version == state.tag.removeprefix("v")
        return
    base = r"0\.1" if state.tag is None else r"[0-9][0-9a-z.]*"
    found = re.fullmatch(
        rf"(?P<base>{base})\.dev(?P<distance>\d+)\+g(?P<node>[0-9a-f]{{7,}})(?P<date>\.d\d{{8}})?",
        version,
    )
    assert found, version
    assert int(found["distance"]) == state.distance
    assert state.head.startswith(found["node"])
    assert bool(found["date"]) == state.dirty
    if state.tag is not None and re.fullmatch(r"v\d+(\.\d+)*", state.tag):
        release = [int(part) for part in state.tag[1:].split(".")]
        following = ".".join(map(str, [*release[:-1], release[-1] + 1]))
        assert found["base"] == following


def test_the_wheels_hold_their_typing_marker_and_the_marts_yaml(built: Built) -> None:
    import zipfile  # noqa: PLC0415

    with zipfile.ZipFile(built.tap_wheel) as wheel:
        names = set(wheel.namelist())
    assert "tap_spanning/py.typed" in names
    assert not [name for name in names if name.startswith(("tests/", "emulator/", "bench/"))]
    with zipfile.ZipFile(built.reports_wheel) as wheel:
        bundled = {
            Path(name).name: wheel.read(name)
            for name in wheel.namelist()
            if name.startswith("spanning_reports/marts_yml/")
        }
    declaring = sorted(
        path for path in MARTS.glob("*.yml") if not path.name.endswith("_unit_tests.yml")
    )
    assert bundled == {path.name: path.read_bytes() for path in declaring}


# ---------------------------------------------------------------- the tap, installed alone


def test_the_installed_tap_is_the_wheel_not_the_checkout(
    built: Built, tap_bin: Path, tmp_path: Path
) -> None:
    out = run(
        [
            tap_bin / "python",
            "-c",
            "import importlib.metadata as m, tap_spanning;"
            "print(tap_spanning.__file__); print(m.version('tap-spanning'))",
        ],
        tmp_path,
        clean_env(),
    )
    where, version = out.split()
    assert Path(where).is_relative_to(tap_bin.parent)
    assert version == version_of(built.tap_wheel)
    installed = run([tap_bin / "python", "-m", "pip", "list", "--format=json"], tmp_path)
    names = {entry["name"].lower() for entry in json.loads(installed)}
    assert not names & {"pytest", "meltano", "spanning-emulator", "spanning-reports", "duckdb"}


def test_about_from_the_wheel(built: Built, tap_bin: Path, tmp_path: Path) -> None:
    out = run([tap_bin / "tap-spanning", "--about", "--format=json"], tmp_path, clean_env())
    about = json.loads(out)
    assert about["name"] == "tap-spanning"
    assert about["version"] == version_of(built.tap_wheel)
    assert about["supported_python_versions"] == ["3.10", "3.11", "3.12", "3.13", "3.14"]
    checkout = json.loads(run_in_process(None, None, "--about", "--format=json").stdout)
    assert about["settings"] == checkout["settings"]
    assert about["capabilities"] == checkout["capabilities"]


def test_discover_from_the_wheel(tap_bin: Path, tmp_path: Path) -> None:
    out = run([tap_bin / "tap-spanning", "--discover"], tmp_path, clean_env())
    streams = {entry["tap_stream_id"]: entry for entry in json.loads(out)["streams"]}
    checkout = json.loads(run_in_process(None, None, "--discover").stdout)["streams"]
    assert streams == {entry["tap_stream_id"]: entry for entry in checkout}
    assert {"users", "roles", "role_memberships", "tenants"} <= set(streams)


def test_a_sync_from_the_wheel_is_the_emulators_truth(
    tap_bin: Path, start_emulator: EmulatorFactory, tap_config: Any, tmp_path: Path
) -> None:
    users = generate_users(1200, seed=26)
    emulator = start_emulator(users)
    config: dict[str, Any] = tap_config(emulator, page_size=500)
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config), encoding="utf-8")
    started_ms, started = time.time() * 1000, time.monotonic()
    done = subprocess.run(
        [tap_bin / "tap-spanning", "--config", config_file],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(),
        check=False,
    )
    check_output(key_forms(config), done.stdout, done.stderr)
    seconds = time.monotonic() - started
    messages = parse_messages(done.stdout)
    tap_run = TapRun(done.returncode, done.stdout, done.stderr, messages, seconds, started_ms)
    assert_output_is(tap_run, users)


# ---------------------------------------------------------------- the reports, installed alone


def test_the_reports_console_scripts_run_with_one_warehouse_extra(
    built: Built, reports_bin: Path, tmp_path: Path
) -> None:
    env = clean_env()
    usage = subprocess.run(
        [reports_bin / "spanning-reports", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    # No command given: the list of commands, and exit 2 (as `python -m spanning_reports`).
    assert usage.returncode == 2, usage.stderr
    assert "usage: python -m spanning_reports {fleet|roles|alerts|client|utility}" in usage.stderr
    alerts = run([reports_bin / "spanning-alerts", "--help"], tmp_path, env)
    assert "duckdb" in alerts
    assert "postgres" in alerts
    assert "--sent-file" in alerts
    installed = run([reports_bin / "python", "-m", "pip", "list", "--format=json"], tmp_path)
    names = {entry["name"].lower() for entry in json.loads(installed)}
    assert "duckdb" in names
    assert not names & {"psycopg", "psycopg-binary", "tap-spanning", "singer-sdk"}


def test_outside_a_project_the_reports_read_the_bundled_marts_yaml(
    reports_bin: Path, tmp_path: Path
) -> None:
    """From a folder with no transform/: the marts' columns are the checkout's."""
    from spanning_reports.marts import mart_columns  # noqa: PLC0415

    out = run(
        [
            reports_bin / "python",
            "-c",
            "import json; from spanning_reports.marts import mart_columns, marts_yml_path;"
            "print(json.dumps([str(marts_yml_path()), mart_columns()]))",
        ],
        tmp_path,
        clean_env(),
    )
    where, columns = json.loads(out)
    assert Path(where).is_relative_to(reports_bin.parent)
    assert columns == mart_columns(MARTS)


def test_a_warehouse_without_its_extra_names_the_extra(reports_bin: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            reports_bin / "spanning-reports",
            "fleet",
            "--postgres",
            "postgresql://reports@127.0.0.1:9/spanning",
            "-o",
            tmp_path / "fleet.html",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "pip install 'spanning-reports[postgres]'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "fleet.html").exists()
