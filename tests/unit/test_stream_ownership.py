"""Each stream owns its fetch (docs/development.md): the run names no stream, every
per-tenant stream declares the pass it rides, and the catalog is the streams declared."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from tap_spanning.run import SyncRun, TenantSync
from tap_spanning.settings import resolve_settings
from tap_spanning.streams import STREAM_TYPES, TenantStream, run_plan
from tap_spanning.streams.base import TENANT_DATA_PHASE
from tap_spanning.tap import TapSpanning
from tap_spanning.tenant_pass import Pass
from tests.run_inputs import discovered_catalog, set_selected

PACKAGE = Path(__file__).resolve().parents[2] / "tap_spanning"
# The run and the modules only it uses: the order, the workers, the hand-off, the failures.
RUN_MODULES = ("run.py", "fleet.py", "tenant_pass.py", "budget.py", "circuit.py")
STREAM_NAMES = frozenset(vars(stream_type)["name"] for stream_type in STREAM_TYPES)


def string_constants(path: Path) -> set[str]:
    """Every string literal of a module, the literal parts of f-strings included."""
    tree = ast.parse(path.read_text())
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


@pytest.mark.parametrize("module", RUN_MODULES)
def test_the_run_names_no_stream(module: str) -> None:
    named = string_constants(PACKAGE / module) & STREAM_NAMES
    assert not named, f"{module} names the streams {sorted(named)}"


def test_the_guard_sees_a_stream_named_in_a_module() -> None:
    """The check above reads every literal: a module that names one is caught."""
    assert "users" in string_constants(PACKAGE / "streams" / "users.py")


def test_a_tenants_part_of_the_run_has_no_field_for_a_stream() -> None:
    fields = {field.name for field in dataclasses.fields(TenantSync)}
    tallied = {
        stream_type.tally for stream_type in STREAM_TYPES if issubclass(stream_type, TenantStream)
    }
    assert not fields & (STREAM_NAMES | {name for name in tallied if name}), fields
    assert not any(name.startswith(("users", "memberships", "backup")) for name in fields)


def test_every_per_tenant_stream_declares_the_pass_it_rides() -> None:
    for stream_type in STREAM_TYPES:
        if stream_type.sync_phase != TENANT_DATA_PHASE:
            assert not issubclass(stream_type, TenantStream), stream_type
            continue
        assert issubclass(stream_type, TenantStream), stream_type
        assert isinstance(stream_type.rides, Pass), stream_type
    # One stream a pass names it in a failed tenant's log line.
    naming = [t.rides for t in STREAM_TYPES if issubclass(t, TenantStream) and t.names_its_pass]
    assert sorted(naming, key=str) == sorted(Pass, key=str)


def test_the_discovered_catalog_is_the_streams_declared() -> None:
    entries = discovered_catalog()["streams"]
    assert [entry["tap_stream_id"] for entry in entries] == [
        vars(stream_type)["name"] for stream_type in STREAM_TYPES
    ]
    for entry, stream_type in zip(entries, STREAM_TYPES, strict=True):
        assert entry["schema"] == stream_type.schema, entry["tap_stream_id"]
        assert entry["key_properties"] == stream_type.primary_keys, entry["tap_stream_id"]


CONFIG: dict[str, Any] = {
    "api_key": "k-ownership-0123456789",
    "admin_email": "admin@example.com",
    "base_url": "http://127.0.0.1:9",
}


def plan_for(selected: set[str]) -> Any:
    """The plan of a run whose catalog selects `selected` (no request is made)."""
    catalog = discovered_catalog()
    for entry in catalog["streams"]:
        set_selected(catalog, entry["tap_stream_id"], [], entry["tap_stream_id"] in selected)
    tap = TapSpanning(config=dict(CONFIG), catalog=catalog)
    return run_plan(tap.streams.values())


def test_the_plan_rides_the_passes_of_the_streams_wanted() -> None:
    everything = plan_for(set(STREAM_NAMES))
    assert everything.pages is not None
    wanted_per_tenant = [t for t in STREAM_TYPES if issubclass(t, TenantStream)]
    assert len(everything.with_credentials) == len(wanted_per_tenant)
    assert everything.failed_in == {Pass.CREDENTIALS: "tenants", Pass.USERS_PAGES: "users"}
    # The counters alone: no users pages pass, nothing fetched with the credentials but
    # the counters themselves.
    counters = plan_for({"tenants"})
    assert counters.pages is None
    assert len(counters.with_credentials) == 1
    # A child of users wants its parent's pages.
    memberships = plan_for({"role_memberships"})
    assert memberships.pages is not None


def test_a_run_without_a_plan_proves_credentials_and_counts_nothing() -> None:
    settings = resolve_settings(CONFIG)
    run = SyncRun(lambda: settings, None, "ua", version=1)  # type: ignore[arg-type]
    assert run.plan.pages is None
    assert run.summary_line().startswith("Synced nothing of 1 of 1 tenants: 0 requests")


def recipe_files() -> list[str]:
    """The files of the tap and the emulator that docs/development.md's "Adding a stream"
    names, in order (each `tap_spanning/...` or `emulator/...` path it quotes)."""
    text = (PACKAGE.parent / "docs" / "development.md").read_text(encoding="utf-8")
    section = text.split("## Adding a stream", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"`((?:tap_spanning|emulator)/[^`\s]+)`", section)
    return list(dict.fromkeys(named))


def test_the_recipe_for_a_stream_names_at_most_six_files_that_exist() -> None:
    files = recipe_files()
    assert 3 <= len(files) <= 6, files
    for name in files:
        # <family> stands for any module of the family: at least one must match.
        assert list(PACKAGE.parent.glob(name.replace("<family>", "*"))), name
    # What it names is where the streams, the calls and the routes are.
    assert "tap_spanning/run.py" not in files
    sources = {name: (PACKAGE.parent / name).read_text() for name in files if "<" not in name}
    assert "STREAM_TYPES" in sources["tap_spanning/streams/__init__.py"]
    assert "class TenantClient" in sources["tap_spanning/client.py"]
    assert "ROUTES" in sources["emulator/spanning_emulator/routes.py"]
