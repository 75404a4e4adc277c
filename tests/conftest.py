"""Shared fixtures: a Spanning emulator on loopback and a tap config pointing at it.

And two session-wide guards of tests/tapdriver.py: a test that started a tap with
`start_tap` fails unless that tap's output went through the leak check, and the
session ends with a report of the longest time a failing run took to exit.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import settings
from spanning_emulator import EmulatedTenant, FleetEmulator, SpanningEmulator, generate_users

from tests import tapdriver
from tests.emulator_helpers import AUTH, TENANT
from tests.failure_fixtures import healthy_tenants
from tests.leaks import ADMIN_EMAIL, new_api_key

EmulatorFactory = Callable[..., SpanningEmulator]

# `make test` (and CI) runs the whole suite at 200 examples a property; `make check`, the
# fast tier, sets HYPOTHESIS_PROFILE=dev for a quicker loop.
settings.register_profile("ci", max_examples=200)
settings.register_profile("dev", max_examples=25)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

_BASETEMP = pytest.StashKey[Path]()
_CALL_REPORT = pytest.StashKey[pytest.TestReport]()
# Lines of the failing-exit report shown in the terminal (the file has them all).
_REPORT_LINES = 6


@pytest.fixture
def api_key() -> str:
    return new_api_key()


@pytest.fixture
def start_emulator(api_key: str) -> Iterator[EmulatorFactory]:
    """Start emulators with this test's key; every one is stopped at teardown."""
    started: list[SpanningEmulator] = []

    def start(users: Any = None, **options: Any) -> SpanningEmulator:
        options.setdefault("admin_email", ADMIN_EMAIL)
        options.setdefault("api_key", api_key)
        emulator = SpanningEmulator(users, **options).start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emulator() -> Iterator[SpanningEmulator]:
    """The emulator's tests' tenant (tests/emulator_helpers.py), default credentials."""
    with SpanningEmulator(TENANT) as emu:
        yield emu


@pytest.fixture
def session() -> Iterator[requests.Session]:
    """An HTTP session holding the emulator's default credentials."""
    with requests.Session() as http:
        http.auth = AUTH
        yield http


@pytest.fixture
def fleet_of() -> Iterator[Callable[[list[EmulatedTenant]], FleetEmulator]]:
    """Start fleet emulators of the given tenants; every one is stopped at teardown."""
    started: list[FleetEmulator] = []

    def start(tenants: list[EmulatedTenant]) -> FleetEmulator:
        emulator = FleetEmulator(tenants)
        emulator.start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def healthy(
    fleet_of: Callable[[list[EmulatedTenant]], FleetEmulator],
) -> tuple[FleetEmulator, list[EmulatedTenant]]:
    """Four healthy tenants (120, 0, 75 and 5 users) on two hosts, for a failure test to add
    a bad tenant to: each healthy one must still complete, exactly."""
    tenants = healthy_tenants([120, 0, 75, 5], hosts=("127.0.0.1", "127.0.0.3"))
    return fleet_of(tenants), tenants


@pytest.fixture
def tap_config(api_key: str) -> Callable[..., dict[str, Any]]:
    """The config a user would write for an emulator, plus overrides."""

    def make(emulator: SpanningEmulator, **overrides: Any) -> dict[str, Any]:
        config: dict[str, Any] = {
            "base_url": emulator.base_url,
            "admin_email": ADMIN_EMAIL,
            "api_key": api_key,
            "max_retry_wait": 0.05,
        }
        config.update(overrides)
        return config

    return make


@pytest.fixture(scope="session")
def tenant_2500() -> list[dict[str, object]]:
    return generate_users(2500, seed=7)


# ---------------------------------------------------------------- the longest tests start first

# `make test` runs the process and end-to-end tests on 2 pytest-xdist workers, a module to a
# worker in collection order (`--dist loadfile --no-loadscope-reorder`). The end-to-end
# modules take 10-90 s each (Meltano, loaders, dbt), the process modules a few seconds:
# started first, the longest never leaves one worker busy alone at the end. Measured with
# `--durations`, heaviest first; an e2e module not listed follows them.
LONGEST_FIRST = (
    "test_hub_from_ref",  # a fresh Meltano project installs every plugin first
    "test_bench_nightly",
    "test_warehouse_msp_nights",
    "test_warehouse_currency",
    "test_warehouse_nights",
    "test_demo",
    "test_dbt",
    "test_warehouse_hostile",
    "test_shards",
    "test_first_hour_duckdb",
    "test_first_hour_config_test",
    "test_first_hour_configure",
    "test_first_hour_postgres",
    "test_readme_queries",
    "test_nightly",
    "test_warehouse_postgres",
    "test_warehouse_duckdb",
    "test_warehouse_config_test",
    "test_warehouse_fleet",
    "test_warehouse_backups",
)


def _start_rank(item: pytest.Item) -> tuple[int, int]:
    module = item.path.stem
    if item.get_closest_marker("e2e"):
        listed = module in LONGEST_FIRST
        return (0, LONGEST_FIRST.index(module) if listed else len(LONGEST_FIRST))
    return (1, 0) if item.get_closest_marker("process") else (2, 0)


# Each tier is a folder of tests/ and carries its marker (`-m` still selects by tier); the
# fast folders carry none (Makefile, "The tiers").
TIER_MARKERS: dict[str, str | None] = {
    "unit": None,
    "inprocess": None,
    "process": "process",
    "e2e": "e2e",
}


def misplaced(item: pytest.Item) -> str | None:
    """Why the item is not where its tier says, or None."""
    folder = item.path.parent.name
    if folder not in TIER_MARKERS or item.path.parent.parent.name != "tests":
        return f"{item.nodeid}: a test lives in a tier's folder: {', '.join(TIER_MARKERS)}"
    wanted = TIER_MARKERS[folder]
    markers = {name for name in ("process", "e2e") if item.get_closest_marker(name)}
    if markers != ({wanted} if wanted else set()):
        shown = ", ".join(sorted(markers)) or "no tier marker"
        return f"{item.nodeid}: tests/{folder}/ wants {wanted or 'no tier marker'}, has {shown}"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    wrong = [reason for item in items if (reason := misplaced(item))]
    if wrong:
        raise pytest.UsageError("tests in the wrong tier:\n" + "\n".join(wrong[:20]))
    items.sort(key=_start_rank)  # stable: each module keeps its own order


# ---------------------------------------------------------------- every started tap is checked


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_CALL_REPORT] = report
    return report


@pytest.fixture(autouse=True)
def processes_only_where_marked(request: pytest.FixtureRequest) -> Iterator[None]:
    """Only a test marked `process` or `e2e` may start a tap process (tests/tapdriver.py)."""
    node = request.node
    tapdriver.PROCESSES_ALLOWED[0] = bool(
        node.get_closest_marker("process") or node.get_closest_marker("e2e")
    )
    yield
    tapdriver.PROCESSES_ALLOWED[0] = True


@pytest.fixture(autouse=True)
def every_started_tap_is_leak_checked(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that started a tap must have had its output checked for the key."""
    tapdriver.STARTED.clear()
    yield
    started = list(tapdriver.STARTED)
    tapdriver.STARTED.clear()
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
    unchecked = [process.label for process in started if not process.output_checked]
    report = request.node.stash.get(_CALL_REPORT, None)
    if unchecked and report is not None and report.passed:
        pytest.fail(
            f"{len(unchecked)} tap(s) started with start_tap never had their output leak-"
            "checked: call communicate(), finish() or checked() on what the test read"
        )


# ---------------------------------------------------------------- the longest failing exit


@pytest.fixture(scope="session", autouse=True)
def remember_basetemp(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    request.config.stash[_BASETEMP] = tmp_path_factory.getbasetemp()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """The longest time any run that exited non-zero took (tests/tapdriver.py times them)."""
    if not tapdriver.FAILING_EXITS:
        return
    ranked = sorted(tapdriver.FAILING_EXITS, key=lambda item: item[1], reverse=True)
    report = [
        f"longest failing-case exit: {ranked[0][1]:.2f}s ({ranked[0][0]}); "
        f"{len(ranked)} failing runs",
        *(f"{seconds:6.2f}s  {label}" for label, seconds in ranked),
    ]
    basetemp = config.stash.get(_BASETEMP, None)
    if basetemp is not None:
        (basetemp / "failing_exit_times.txt").write_text("\n".join(report) + "\n")
    terminalreporter.section("failing exits")
    for line in report[:_REPORT_LINES]:
        terminalreporter.write_line(line)
