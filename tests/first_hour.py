"""The first hour with the tap, as the documents tell it: the setup its tests share.

A new user reads README.md's "Configure a real tenant" and docs/warehouse.md's "Load into a
warehouse" and types what they show. Each fenced ```sh and ```bash block of those two
sections is extracted (tests/documented.py) and run by bash with `set -euo pipefail` (a
command that fails fails the block) in a scratch Meltano project made for the test (the
`scratch` fixture):

- a copy of meltano.yml, so `meltano config set` changes the copy only;
- `.meltano/<kind>/<plugin>` symlinked to this project's installed plugins, with
  MELTANO_AUTO_INSTALL=false: nothing is installed (the plugins' fingerprints are checked
  unchanged afterwards). Meltano's system database and run files stay in the scratch project;
- `scripts/` and `.venv` symlinked, for `bash scripts/...` and `. .venv/bin/activate`;
- the tap pointed at an in-process emulator through the environment (TAP_SPANNING_BASE_URL,
  and the admin email and key where the documents expect them in the environment).

Outside CI a missing meltano, plugin or PostgreSQL skips with the reason; under CI=true it
fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
import yaml
from spanning_emulator import SpanningEmulator

from tests.documented import Block

PROJECT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI") == "true"
VENV = Path(sys.prefix)  # the project's .venv when run by `make test`
VENV_BIN = Path(sys.executable).parent

CONFIGURE = ("README.md", "Configure a real tenant")
LOAD = ("docs/warehouse.md", "Load into a warehouse")

# Variables of the developer's shell that would change what meltano, the tap or a script does.
FOREIGN_ENV_PREFIXES = ("TAP_SPANNING_", "TARGET_", "MELTANO_", "SPANNING_")
KEPT_ENV = ("TAP_SPANNING_PG_PORT",)  # which local cluster scripts/postgres.sh manages
STEP_TIMEOUT = 120  # seconds: a guard for one block or command, not the expected time


def unavailable(reason: str) -> None:
    """Skip, or under CI fail: there a missing tool means a broken setup."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a missing dependency is a failure, not a skip)")
    pytest.skip(reason)


def new_key() -> str:
    return str(uuid.uuid4())


# ----------------------------------------------------------------------------- a scratch project


def meltano_plugins() -> list[tuple[str, str, str]]:
    """(kind, name, executable) of every plugin meltano.yml installs: one inheriting from
    another (the shards, tap-spanning--shard-0 ...) runs in its parent's venv."""
    data = yaml.safe_load((PROJECT / "meltano.yml").read_text(encoding="utf-8"))
    return [
        (kind, str(plugin["name"]), str(plugin.get("executable") or plugin["name"]))
        for kind, plugins in data["plugins"].items()
        for plugin in plugins
        if "inherit_from" not in plugin
    ]


def require_tools() -> None:
    for tool in ("meltano", "tap-spanning"):
        if not (VENV_BIN / tool).exists():
            unavailable(f"no {tool} next to {sys.executable}: run `make install`")
    if not (VENV / "bin" / "activate").exists():
        unavailable(f"{VENV} is not a virtual environment (no bin/activate): run `make install`")
    for kind, name, executable in meltano_plugins():
        if not (PROJECT / ".meltano" / kind / name / "venv" / "bin" / executable).exists():
            unavailable(f"{name} is not installed in .meltano/: run `make meltano-install`")


def plugin_fingerprints() -> dict[str, str]:
    found = {}
    for kind, name, _ in meltano_plugins():
        path = PROJECT / ".meltano" / kind / name / "venv" / ".meltano_plugin_fingerprint"
        found[name] = path.read_text() if path.exists() else ""
    return found


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """A Meltano project of the test's own, on this project's installed plugins."""
    require_tools()
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy2(PROJECT / "meltano.yml", root / "meltano.yml")
    for kind, name, _ in meltano_plugins():
        (root / ".meltano" / kind).mkdir(parents=True, exist_ok=True)
        (root / ".meltano" / kind / name).symlink_to(PROJECT / ".meltano" / kind / name)
    (root / "scripts").symlink_to(PROJECT / "scripts")
    # dbt writes its target and logs inside the project: a copy of the test's own.
    shutil.copytree(
        PROJECT / "transform", root / "transform", ignore=shutil.ignore_patterns("target", "logs")
    )
    (root / ".venv").symlink_to(VENV)
    before = plugin_fingerprints()
    yield root
    assert plugin_fingerprints() == before, "a plugin of the project was reinstalled"


def base_env(*, venv_on_path: bool = True, **settings: str) -> dict[str, str]:
    """The process environment: the developer's, without settings of the tap or loaders."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(FOREIGN_ENV_PREFIXES) or name in KEPT_ENV
    }
    env.pop("VIRTUAL_ENV", None)
    path = [
        entry
        for entry in env.get("PATH", "").split(os.pathsep)
        if entry and not (Path(entry) / "meltano").exists()
    ]
    if venv_on_path:
        path.insert(0, str(VENV_BIN))
    env["PATH"] = os.pathsep.join(path or ["/usr/bin", "/bin"])
    env["MELTANO_AUTO_INSTALL"] = "false"  # a missing plugin fails; nothing is installed
    env.update(settings)
    return env


@dataclass
class Ran:
    what: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def tail(self) -> str:
        return "\n".join(self.output.splitlines()[-40:])

    def ok(self) -> Ran:
        assert self.returncode == 0, f"{self.what} exited {self.returncode}:\n{self.tail()}"
        return self


def run(what: str, argv: Sequence[str], cwd: Path, env: Mapping[str, str], stdin: str = "") -> Ran:
    started = time.monotonic()
    done = subprocess.run(
        list(argv),
        cwd=cwd,
        env=dict(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        check=False,
    )
    ran = Ran(what, done.returncode, done.stdout, done.stderr, time.monotonic() - started)
    print(f"{what}: exit {ran.returncode} in {ran.seconds:.1f}s")
    return ran


def run_block(block: Block, cwd: Path, env: Mapping[str, str], stdin: str = "") -> Ran:
    name = block.document.replace("/", "-").removesuffix(".md")
    script = cwd.parent / f"{name}-block-{block.line}.sh"  # outside the project
    script.write_text(block.script())
    what = block.where()
    return run(what, ["bash", "-euo", "pipefail", str(script)], cwd, env, stdin)


def meltano(cwd: Path, env: Mapping[str, str], *args: str) -> Ran:
    return run(f"meltano {' '.join(args)}", [str(VENV_BIN / "meltano"), *args], cwd, env)


def assert_no_key(key: str, *texts: str) -> None:
    for text in texts:
        assert key not in text, "the API key appears in the output"


@contextmanager
def serving(
    users: Sequence[Mapping[str, object]], admin_email: str, key: str
) -> Iterator[SpanningEmulator]:
    emulator = SpanningEmulator(users, admin_email=admin_email, api_key=key).start()
    try:
        yield emulator
    finally:
        emulator.stop()


def landed_msids(database: Path) -> set[str]:
    connection = duckdb.connect(str(database), read_only=True)
    try:
        return {str(row[0]) for row in connection.execute('SELECT "msId" FROM users').fetchall()}
    finally:
        connection.close()
