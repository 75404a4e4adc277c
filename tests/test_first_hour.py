"""The first hour with the tap, as the documents tell it: their commands, run as written.

A new user reads README.md's "Configure a real tenant" and docs/warehouse.md's "Load into a
warehouse" and types what they show. Every fenced ```sh and ```bash block of those two
sections is extracted (tests/documented.py) and run by bash with `set -euo pipefail` (a
command that fails fails the block) in a scratch Meltano project made for the test:

- a copy of meltano.yml, so `meltano config set` changes the copy only;
- `.meltano/<kind>/<plugin>` symlinked to this project's installed plugins, with
  MELTANO_AUTO_INSTALL=false: nothing is installed (the plugins' fingerprints are checked
  unchanged afterwards). Meltano's system database and run files stay in the scratch project;
- `scripts/` and `.venv` symlinked, for `bash scripts/...` and `. .venv/bin/activate`;
- the tap pointed at an in-process emulator through the environment (TAP_SPANNING_BASE_URL,
  and the admin email and key where the documents expect them in the environment).

The key of "Configure a real tenant" comes on stdin, as a person pastes it after `read -rs`.
A command that cannot run in a test is marked with a visible trailing comment,
`# not run by tests: <reason>`; it is replaced by `true` here, and the marked set must be
exactly NOT_RUN, which names each one (at most MAX_NOT_RUN).

Credentials before data, through Meltano: `meltano config test tap-spanning` fails with the
tap's one-line reason for a wrong key and for a loopback port where nothing listens, and
passes with the right key; the tap itself (`tap-spanning --config FILE`, with the config
Meltano hands it) writes no RECORD with a wrong key.

Outside CI a missing meltano, plugin or PostgreSQL skips with the reason; under CI=true it
fails. Expected values come from the emulator's own ground truth (expected_output,
tenant_summary), never from the tap's or the report's output.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
import yaml
from spanning_emulator import (
    ROLE_IDS,
    EmulatedTenant,
    FleetEmulator,
    SpanningEmulator,
    expected_output,
    generate_users,
    tenant_summary,
)

from tests.documented import Block, all_shell_blocks, blocks_at

pytestmark = pytest.mark.e2e

PROJECT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI") == "true"
VENV = Path(sys.prefix)  # the project's .venv when run by `make test`
VENV_BIN = Path(sys.executable).parent

CONFIGURE = ("README.md", "Configure a real tenant")
LOAD = ("docs/warehouse.md", "Load into a warehouse")
SECTIONS = (CONFIGURE, LOAD)
# Where in those sections a shell block may sit, each run by one test below
# (tests/test_documented_commands.py names them).
RUN_PLACES = {(*CONFIGURE, None), (*LOAD, "DuckDB"), (*LOAD, "PostgreSQL")}
# Commands of those sections that no test runs, each with the document's reason.
NOT_RUN: dict[str, str] = {}
MAX_NOT_RUN = 2

# Variables of the developer's shell that would change what meltano, the tap or a script does.
FOREIGN_ENV_PREFIXES = ("TAP_SPANNING_", "TARGET_", "MELTANO_", "SPANNING_")
KEPT_ENV = ("TAP_SPANNING_PG_PORT",)  # which local cluster scripts/postgres.sh manages
STEP_TIMEOUT = 120  # seconds: a guard for one block or command, not the expected time
PG_DEFAULT_DB = "spanning"  # target-postgres' database in meltano.yml; docs/warehouse.md's psql URL


def unavailable(reason: str) -> None:
    """Skip, or under CI fail: there a missing tool means a broken setup."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a missing dependency is a failure, not a skip)")
    pytest.skip(reason)


def new_key() -> str:
    return str(uuid.uuid4())


# ----------------------------------------------------------------------------- the documents


def configured(blocks: Sequence[Block], setting: str) -> str:
    """The value the README's `meltano config set tap-spanning <setting> <value>` sets."""
    pattern = re.compile(rf"^meltano config set tap-spanning {setting} (\S+)$")
    values = [m[1] for b in blocks for c in b.commands() if (m := pattern.match(c))]
    assert len(values) == 1, f"README.md should set {setting} once, as {pattern.pattern}"
    return values[0]


def test_the_readme_sections_hold_only_blocks_these_tests_run() -> None:
    blocks = [block for block in all_shell_blocks() if block.place[:2] in SECTIONS]
    places = {block.place for block in blocks}
    assert places <= RUN_PLACES, (
        f"shell blocks that no test runs: {sorted(places - RUN_PLACES, key=str)}"
        " (add them to a test of tests/test_first_hour.py)"
    )
    assert places == RUN_PLACES, f"the documents lost the blocks of {RUN_PLACES - places}"
    marked: dict[str, str] = {}
    for block in blocks:
        marked.update(block.marked())
    assert marked == NOT_RUN, f"commands marked 'not run by tests': {marked}"
    assert len(NOT_RUN) <= MAX_NOT_RUN
    commands = [command for block in blocks for command in block.commands()]
    assert commands, "no command found"
    # Meltano 4's spelling; the 3.x `meltano config <plugin> set` fails with 4.4.1 (also
    # caught by running it, but this names the mistake).
    wrong = [c for c in commands if re.match(r"meltano config (?!set|unset|test|list|print)", c)]
    assert not wrong, f"not Meltano 4's spelling (meltano config set <plugin> ...): {wrong}"


# ----------------------------------------------------------------------------- a scratch project


def meltano_plugins() -> list[tuple[str, str, str]]:
    """(kind, name, executable) of every plugin meltano.yml defines."""
    data = yaml.safe_load((PROJECT / "meltano.yml").read_text(encoding="utf-8"))
    return [
        (kind, str(plugin["name"]), str(plugin.get("executable") or plugin["name"]))
        for kind, plugins in data["plugins"].items()
        for plugin in plugins
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


# ----------------------------------------------------------------------------- ground truth


def role_truth(
    users: Sequence[Mapping[str, object]], tenant_id: str = "default"
) -> dict[str, tuple[int, int]]:
    """Members and disabled members of each role, from the emulator's expected output."""
    expected = expected_output(users, tenant_id=tenant_id)
    disabled = {record["msId"] for record in expected["users"] if record["disabled"]}
    members = Counter(str(m["roleId"]) for m in expected["role_memberships"])
    disabled_members = Counter(
        str(m["roleId"]) for m in expected["role_memberships"] if m["msId"] in disabled
    )
    return {role: (members[role], disabled_members[role]) for role in ROLE_IDS}


def license_truth(counters: Mapping[str, object]) -> tuple[str, int, int, int, int, int]:
    """(status, standard assigned, licenses, archive assigned, archive licenses, users)."""
    return (
        str(counters["status"]),
        int(str(counters["assignedStandard"])),
        int(str(counters["licenses"])),
        int(str(counters["assignedArchive"])),
        int(str(counters["archivedLicenses"])),
        int(str(counters["users"])),
    )


@dataclass
class RoleReport:
    title: str
    roles: dict[str | None, dict[str, tuple[int, int]]]  # tenant (None: not grouped) -> role
    licenses: dict[str, tuple[str, int, int, int, int, int]]
    notes: list[str]


ROLE_LINE = re.compile(r"^  (?P<id>[a-z_]+)\s{2,}\S.*?\s(?P<members>\d+)\s+(?P<disabled>\d+)$")
TENANT_HEADING = re.compile(r"^Tenant (?P<tenant>\S+) \(\d+ users?\)$")
LICENSE_LINE = re.compile(
    r"^  (?P<tenant>\S+)\s+(?P<status>\S+)\s+(?P<std>\d+) of (?P<lic>\d+)\s+"
    r"(?P<arch>\d+) of (?P<alic>\d+)\s+(?P<users>\d+)$"
)


def parse_report(text: str) -> RoleReport:
    titles = [line for line in text.splitlines() if line.startswith("Spanning roles in ")]
    assert len(titles) == 1, f"no single report title in:\n{text}"
    body = text[text.index(titles[0]) :].splitlines()
    roles: dict[str | None, dict[str, tuple[int, int]]] = {}
    licenses: dict[str, tuple[str, int, int, int, int, int]] = {}
    notes: list[str] = []
    tenant: str | None = None
    in_licenses = False
    for line in body[1:]:
        if line.startswith("License use"):
            in_licenses = True
        elif line.strip().startswith("NOTE:"):
            notes.append(line.strip())
        elif in_licenses and (match := LICENSE_LINE.match(line)):
            licenses[match["tenant"]] = (
                match["status"],
                int(match["std"]),
                int(match["lic"]),
                int(match["arch"]),
                int(match["alic"]),
                int(match["users"]),
            )
        elif not in_licenses and (match := TENANT_HEADING.match(line)):
            tenant = match["tenant"]
        elif not in_licenses and (match := ROLE_LINE.match(line)) and match["id"] in ROLE_IDS:
            roles.setdefault(tenant, {})[match["id"]] = (
                int(match["members"]),
                int(match["disabled"]),
            )
    return RoleReport(titles[0], roles, licenses, notes)


def landed_msids(database: Path) -> set[str]:
    connection = duckdb.connect(str(database), read_only=True)
    try:
        return {str(row[0]) for row in connection.execute('SELECT "msId" FROM users').fetchall()}
    finally:
        connection.close()


# ----------------------------------------------------------------------------- Configure


def test_configure_a_real_tenant_as_the_readme_shows(scratch: Path) -> None:
    """The block runs as written: the key pasted on stdin lands in .env only, and the data."""
    blocks = blocks_at(*CONFIGURE, None)
    admin_email = configured(blocks, "admin_email")
    region = configured(blocks, "region")
    key = new_key()
    users = generate_users(200, seed=31, profile="realistic")
    with serving(users, admin_email, key) as emulator:
        # meltano is not on PATH until the block's own `. .venv/bin/activate`.
        env = base_env(venv_on_path=False, TAP_SPANNING_BASE_URL=emulator.base_url)
        outputs = []
        for block in blocks:
            ran = run_block(block, scratch, env, stdin=f"{key}\n").ok()
            outputs.append(ran.output)
        assert emulator.requests, "the tap never reached the emulator"
    assert_no_key(key, *outputs)

    # The key is in .env, nowhere in meltano.yml; the settings are in meltano.yml.
    assert f"TAP_SPANNING_API_KEY={key}" in (scratch / ".env").read_text().splitlines()
    text = (scratch / "meltano.yml").read_text()
    assert key not in text
    tap = next(
        plugin
        for plugin in yaml.safe_load(text)["plugins"]["extractors"]
        if plugin["name"] == "tap-spanning"
    )
    config = tap.get("config") or {}
    assert config.get("region") == region
    assert config.get("admin_email") == admin_email
    assert "api_key" not in config
    # Without the test's emulator override, the tap would go to the region's host, not to
    # the emulator URL meltano.yml shipped with.
    printed = meltano(scratch, base_env(), "config", "print", "tap-spanning", "--format=json")
    settings = json.loads(printed.ok().stdout)
    assert "base_url" not in settings, f"base_url still set: {settings.get('base_url')}"
    assert settings["region"] == region
    assert settings["api_key"] == "*****"  # set (from .env), and redacted
    assert_no_key(key, printed.output)

    # The sync landed the tenant in the DuckDB file meltano.yml names.
    truth = {str(record["msId"]) for record in expected_output(users)["users"]}
    assert landed_msids(scratch / "output" / "spanning.duckdb") == truth


# ----------------------------------------------------------------------------- DuckDB


def test_load_into_duckdb_as_the_readme_shows(scratch: Path) -> None:
    """Load, report, refresh after removals; TARGET_DUCKDB_PATH followed by every step."""
    first, *refresh = blocks_at(*LOAD, "DuckDB")
    assert refresh, "docs/warehouse.md's DuckDB section should show the refresh"
    key = new_key()
    users = generate_users(300, seed=32, profile="realistic")
    with serving(users, "admin@contoso.example", key) as emulator:
        env = base_env(
            TAP_SPANNING_BASE_URL=emulator.base_url,
            TAP_SPANNING_ADMIN_EMAIL=emulator.admin_email,
            TAP_SPANNING_API_KEY=key,
        )
        ran = run_block(first, scratch, env).ok()
        report = parse_report(ran.stdout)
        assert report.roles == {None: role_truth(users)}, report
        assert report.licenses == {"default": license_truth(tenant_summary(users))}
        assert not report.notes
        assert re.search(rf"│\s*default\s*│\s*{len(users)}\s*│", ran.stdout), ran.stdout
        # The report reads the landed tenants table: it sends no request of its own.
        requests = len(emulator.requests)
        again = run("role_report", ["python", "-m", "spanning_reports", "roles"], scratch, env).ok()
        assert len(emulator.requests) == requests
        assert parse_report(again.stdout) == report

        # Users removed from the tenant are gone after the refresh.
        later = users[25:]
        emulator.set_users(later)
        outputs = [run_block(block, scratch, env).ok().output for block in refresh]
        live = scratch / "output" / "spanning.duckdb"
        assert landed_msids(live) == {str(u["msId"]) for u in later}
        report = parse_report(
            run("role_report", ["python", "-m", "spanning_reports", "roles"], scratch, env)
            .ok()
            .stdout
        )
        assert report.roles == {None: role_truth(later)}
        assert report.licenses == {"default": license_truth(tenant_summary(later))}

        # TARGET_DUCKDB_PATH: Meltano, the refresh and the report all follow it.
        third = later[40:]
        emulator.set_users(third)
        elsewhere = scratch / "elsewhere" / "copy.duckdb"
        moved = {**env, "TARGET_DUCKDB_PATH": str(elsewhere)}
        outputs += [run_block(block, scratch, moved).ok().output for block in refresh]
        shown = run(
            "role_report", ["python", "-m", "spanning_reports", "roles"], scratch, moved
        ).ok()
        report = parse_report(shown.stdout)
        assert str(elsewhere) in report.title
        assert report.roles == {None: role_truth(third)}
        assert landed_msids(elsewhere) == {str(u["msId"]) for u in third}
        assert landed_msids(live) == {str(u["msId"]) for u in later}  # untouched
    assert_no_key(key, ran.output, again.output, shown.output, *outputs)


def test_the_role_report_groups_a_fleet_by_tenant(scratch: Path) -> None:
    """Several tenants in one warehouse: one role table each, each tenant's license row."""
    acme = generate_users(60, seed=41, profile="realistic", domain="acme.example")
    globex = generate_users(35, seed=42, profile="realistic", domain="globex.example")
    # globex's counters disagree with its users (the tenant changed during the sync).
    globex_counters = {**tenant_summary(globex), "status": "trial"}
    globex_counters["assigned"] = int(str(globex_counters["assigned"])) + 3
    tenants = [
        EmulatedTenant("acme", acme, "admin@acme.example", new_key()),
        EmulatedTenant("globex", globex, "it@globex.example", new_key(), counters=globex_counters),
        EmulatedTenant("initech", [], "admin@initech.example", new_key()),  # no users yet
    ]
    with FleetEmulator(tenants) as fleet:
        env = base_env(
            # meltano.yml's one-tenant demo settings, blanked for a fleet
            TAP_SPANNING_BASE_URL="",
            TAP_SPANNING_ADMIN_EMAIL="",
            TAP_SPANNING_TENANTS=json.dumps(
                [
                    {
                        "tenant_id": t.tenant_id,
                        "admin_email": t.admin_email,
                        "base_url": fleet.base_url(t.tenant_id),
                    }
                    for t in tenants
                ]
            ),
            TAP_SPANNING_TENANT_API_KEYS=json.dumps({t.tenant_id: t.api_key for t in tenants}),
        )
        (scratch / "output").mkdir()
        # The role report reads dbt's current-row views: the load, then the build.
        meltano(scratch, env, "run", "tap-spanning", "target-duckdb", "dbt-duckdb:build").ok()
    shown = run("role_report", ["python", "-m", "spanning_reports", "roles"], scratch, env).ok()
    report = parse_report(shown.stdout)
    assert report.roles == {
        "acme": role_truth(acme, "acme"),
        "globex": role_truth(globex, "globex"),
        "initech": role_truth([], "initech"),
    }
    assert report.licenses == {
        "acme": license_truth(tenant_summary(acme)),
        "globex": license_truth(globex_counters),
        "initech": license_truth(tenant_summary([])),
    }
    assert len(report.notes) == 1, report.notes
    assert "globex" in report.notes[0], report.notes
    assert "3 tenants" in report.title


# ----------------------------------------------------------------------------- PostgreSQL


def project_postgres() -> dict[str, str]:
    """Start the project's private cluster (as `make test` does); where its data lives."""
    env = base_env()
    started = run("postgres.sh start", ["bash", "scripts/postgres.sh", "start"], PROJECT, env)
    if started.returncode != 0:
        unavailable(f"bash scripts/postgres.sh start failed:\n{started.tail()}")
    status = run("postgres.sh status", ["bash", "scripts/postgres.sh", "status"], PROJECT, env)
    match = re.search(r"data in (\S+)/data\b", status.stderr)
    assert status.returncode == 0, f"postgres.sh status:\n{status.tail()}"
    assert match, f"postgres.sh status names no data directory:\n{status.tail()}"
    # The scratch project's scripts/postgres.sh then manages that cluster, not a new one.
    return {"TAP_SPANNING_PG_DIR": match[1]}


PSQL_INPUT = """\
SELECT 'users=' || count(*) AS x FROM users;
SELECT 'role:' || "roleId" || '=' || count(*) AS x FROM role_memberships GROUP BY "roleId";
SELECT 'tenant:' || tenant_id || '=' || licenses || '/' || assigned || '/' || status AS x
FROM tenants;
"""


def test_load_into_postgres_as_the_readme_shows(scratch: Path) -> None:
    """The PostgreSQL block: start the cluster, load, and psql reads the tables (on stdin)."""
    (block,) = blocks_at(*LOAD, "PostgreSQL")
    cluster = project_postgres()
    key = new_key()
    users = generate_users(250, seed=33, profile="realistic")
    with serving(users, "admin@contoso.example", key) as emulator:
        env = base_env(
            TAP_SPANNING_BASE_URL=emulator.base_url,
            TAP_SPANNING_ADMIN_EMAIL=emulator.admin_email,
            TAP_SPANNING_API_KEY=key,
        )
        env.update(cluster)
        ran = run_block(block, scratch, env, stdin=PSQL_INPUT).ok()
    assert_no_key(key, ran.output)
    truth = expected_output(users)
    summary = tenant_summary(users)
    assert f"users={len(truth['users'])}" in ran.stdout, ran.stdout
    roles = Counter(str(m["roleId"]) for m in truth["role_memberships"])
    shown = dict(re.findall(r"role:(\w+)=(\d+)", ran.stdout))
    assert shown == {role: str(count) for role, count in roles.items()}
    tenant = f"tenant:default={summary['licenses']}/{summary['assigned']}/{summary['status']}"
    assert tenant in ran.stdout


# ----------------------------------------------------------------------------- credentials


def listening_nowhere() -> socket.socket:
    """A loopback port bound by no listener: connections to it are refused."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))  # bound, never listening: nobody else gets the port
    return holder


@dataclass
class TapRun:
    returncode: int
    records: int
    reason: str  # the message of the last line of stderr
    stdout: str
    stderr: str


def meltano_config_for_tap(scratch: Path, env: Mapping[str, str]) -> Path:
    """The config file Meltano hands the tap, from `meltano invoke --dump=config`."""
    dumped = meltano(scratch, env, "invoke", "--dump=config", "tap-spanning").ok()
    config = json.loads(dumped.stdout)
    path = scratch / "tap-config.json"
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


def start_tap(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(VENV_BIN / "tap-spanning"), "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=base_env(),
    )


def finish_tap(process: subprocess.Popen[str]) -> TapRun:
    stdout, stderr = process.communicate(timeout=STEP_TIMEOUT)
    types = [json.loads(line).get("type") for line in stdout.splitlines() if line.strip()]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "the tap failed without a word on stderr"
    # "<time> | <level> | <logger> | <message>": the message is the tap's one-line reason.
    reason = lines[-1].split(" | ", 3)[-1].strip()
    return TapRun(process.returncode, types.count("RECORD") + types.count("BATCH"), reason,
                  stdout, stderr)  # fmt: skip


def config_test_fails_with_the_taps_reason(
    scratch: Path, env: Mapping[str, str]
) -> tuple[Ran, TapRun]:
    """`meltano config test` fails and says why, with the tap's own last line."""
    process = start_tap(meltano_config_for_tap(scratch, env))
    try:
        tested = meltano(scratch, env, "config", "test", "tap-spanning")
    finally:
        tap = finish_tap(process)
    assert tested.returncode != 0, f"meltano config test passed:\n{tested.tail()}"
    assert "Plugin configuration is valid" not in tested.output
    assert tap.returncode != 0, "the tap exited 0"
    assert tap.records == 0, f"the tap wrote {tap.records} RECORD/BATCH messages"
    assert len(tap.reason) > 20, f"no reason: {tap.reason!r}"
    assert tap.reason in tested.output, (
        f"meltano config test does not show the tap's reason {tap.reason!r}:\n{tested.tail()}"
    )
    return tested, tap


def test_config_test_passes_with_the_right_key(scratch: Path) -> None:
    key = new_key()
    with serving(generate_users(50, seed=34, profile="realistic"), "a@contoso.example", key) as e:
        env = base_env(
            TAP_SPANNING_BASE_URL=e.base_url,
            TAP_SPANNING_ADMIN_EMAIL=e.admin_email,
            TAP_SPANNING_API_KEY=key,
        )
        tested = meltano(scratch, env, "config", "test", "tap-spanning").ok()
        assert any(request.status == 200 for request in e.requests)
    assert "Plugin configuration is valid" in tested.output
    assert_no_key(key, tested.output)


def test_config_test_fails_with_a_wrong_key_and_the_tap_writes_no_record(scratch: Path) -> None:
    key, wrong = new_key(), new_key()
    with serving(generate_users(50, seed=35, profile="realistic"), "a@contoso.example", key) as e:
        env = base_env(
            TAP_SPANNING_BASE_URL=e.base_url,
            TAP_SPANNING_ADMIN_EMAIL=e.admin_email,
            TAP_SPANNING_API_KEY=wrong,
        )
        tested, tap = config_test_fails_with_the_taps_reason(scratch, env)
        # Refused credentials fail at once: one request per run (meltano's and the tap's),
        # the one that proves the credentials.
        assert [(r.path.split("?")[0], r.status) for r in e.requests] == [
            ("/external/tenant", 401)
        ] * 2
    assert re.search(r"refused the credentials", tap.reason, re.IGNORECASE), tap.reason
    assert "api_key" in tap.reason, tap.reason
    assert "admin_email" in tap.reason, tap.reason
    assert_no_key(key, tested.output, tap.stdout, tap.stderr)
    assert_no_key(wrong, tested.output, tap.stdout, tap.stderr)


def test_config_test_fails_when_nothing_listens(scratch: Path) -> None:
    key = new_key()
    holder = listening_nowhere()
    try:
        port = holder.getsockname()[1]
        env = base_env(
            TAP_SPANNING_BASE_URL=f"http://127.0.0.1:{port}",
            TAP_SPANNING_ADMIN_EMAIL="a@contoso.example",
            TAP_SPANNING_API_KEY=key,
        )
        tested, tap = config_test_fails_with_the_taps_reason(scratch, env)
    finally:
        holder.close()
    assert re.search(r"connect", tap.reason, re.IGNORECASE), tap.reason
    assert_no_key(key, tested.output, tap.stdout, tap.stderr)
