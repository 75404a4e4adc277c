"""A fleet of any size from files, keys checked before any request, a retired client's
key (docs/settings.md; docs/many-tenants.md), in-process over real HTTP.

tenants_file and tenant_api_keys_file hold the list and the keys map: Meltano hands every
setting to the tap as one environment variable, which Linux caps at 128 KiB. A mistake in a
file names the file (and the entry), never a key; a key longer than 256 characters or with
a character outside printable ASCII is refused before any request, naming the tenant.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from spanning_emulator import EmulatedTenant, FleetEmulator, generate_fleet

from tap_spanning.settings import SettingsError, resolve_settings
from tests.emulator_requests import tenant_paths
from tests.run_inputs import fleet_config
from tests.tapdriver import run_in_process
from tests.taprun import assert_tenants_exact

HOSTS = ("127.0.0.1", "127.0.0.2")


@pytest.fixture(scope="module")
def fleet() -> Iterator[tuple[FleetEmulator, list[EmulatedTenant]]]:
    tenants = generate_fleet(6, seed=21, hosts=HOSTS)
    emulator = FleetEmulator(tenants)
    emulator.start()
    yield emulator, tenants
    emulator.stop()


def as_files(config: dict[str, Any], folder: Path) -> dict[str, Any]:
    """`config` with its tenants and keys moved into two files, as an MSP keeps them."""
    config = dict(config)
    tenants_file, keys_file = folder / "tenants.json", folder / "keys.json"
    tenants_file.write_text(json.dumps(config.pop("tenants")), encoding="utf-8")
    keys_file.write_text(json.dumps(config.pop("tenant_api_keys")), encoding="utf-8")
    return {**config, "tenants_file": str(tenants_file), "tenant_api_keys_file": str(keys_file)}


def errors_of(config: dict[str, Any]) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        resolve_settings(config)
    return caught.value.errors


def test_a_fleet_from_files_syncs_every_tenant_exactly(
    fleet: tuple[FleetEmulator, list[EmulatedTenant]], tmp_path: Path
) -> None:
    emulator, tenants = fleet
    config = as_files(fleet_config(emulator, tenants), tmp_path)
    run = run_in_process(config, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert_tenants_exact(run, tenants)


def test_the_files_named_in_the_environment_work_the_same(
    fleet: tuple[FleetEmulator, list[EmulatedTenant]], tmp_path: Path
) -> None:
    """--config=ENV: what Meltano does, with the paths in TAP_SPANNING_*_FILE."""
    emulator, tenants = fleet
    config = as_files(fleet_config(emulator, tenants), tmp_path)
    env = {
        "TAP_SPANNING_TENANTS_FILE": config["tenants_file"],
        "TAP_SPANNING_TENANT_API_KEYS_FILE": config["tenant_api_keys_file"],
        "TAP_SPANNING_MAX_RETRY_WAIT": "0.01",
    }
    run = run_in_process(None, tmp_path, "--config=ENV", env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert {r["tenant_id"] for r in run.records("tenant_syncs")} == {t.tenant_id for t in tenants}


@pytest.mark.parametrize(
    ("tenants_text", "says"),
    [
        ("[{", "tenants_file: file {tenants}: not valid JSON (line 1)"),
        ('{"acme": 1}', "tenants_file: file {tenants} must hold a JSON list of tenants"),
        ("[" * 100_000 + "]" * 100_000, "tenants_file: file {tenants}: its JSON is nested"),
        (
            '[{"tenant_id": "acme", "region": "us"}]',
            "{tenants}[0] (acme): admin_email is required",
        ),
    ],
    ids=["not-json", "not-a-list", "too-deep", "entry-mistake"],
)
def test_a_mistake_in_the_tenants_file_names_the_file_and_the_entry(
    tenants_text: str, says: str, tmp_path: Path
) -> None:
    tenants = tmp_path / "tenants.json"
    tenants.write_text(tenants_text, encoding="utf-8")
    keys = tmp_path / "keys.json"
    keys.write_text('{"acme": "d3adbeef-0000-4000-8000-000000000001"}', encoding="utf-8")
    errors = errors_of({"tenants_file": str(tenants), "tenant_api_keys_file": str(keys)})
    assert any(says.format(tenants=tenants) in error for error in errors), errors


def test_a_missing_file_and_both_forms_at_once_are_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.json"
    errors = errors_of({"tenants_file": str(missing)})
    assert any(f"tenants_file {missing}: cannot be read" in error for error in errors), errors
    listed = tmp_path / "tenants.json"
    listed.write_text("[]", encoding="utf-8")
    errors = errors_of({"tenants_file": str(listed), "tenants": []})
    assert "tenants and tenants_file are both set; keep one" in errors


KEY = "d3adbeef-1234-4321-aaaa-0123456789ab"
TENANT = {"tenant_id": "acme", "admin_email": "admin@acme.example", "region": "us"}


@pytest.mark.parametrize(
    ("key", "says"),
    [
        (KEY * 8, "is 288 characters long; an API key has at most 256"),
        (KEY[:10] + "\u00e9" + KEY[10:], "not printable ASCII"),
        (KEY[:10] + "\u200b" + KEY[10:], "not printable ASCII"),
        (KEY[:10] + "\t" + KEY[10:], "not printable ASCII"),
    ],
    ids=["too-long", "latin-1", "zero-width", "tab"],
)
@pytest.mark.parametrize("where", ["entry", "map", "map-file", "one-tenant"])
def test_a_key_that_is_no_key_is_refused_naming_the_tenant_never_echoed(
    key: str, says: str, where: str, tmp_path: Path
) -> None:
    if where == "entry":
        config: dict[str, Any] = {"tenants": [{**TENANT, "api_key": key}]}
        named = "tenants[0] (acme): api_key"
    elif where == "map":
        config = {"tenants": [TENANT], "tenant_api_keys": {"acme": key}}
        named = "tenant_api_keys['acme']: the key"
    elif where == "map-file":
        keys = tmp_path / "keys.json"
        keys.write_text(json.dumps({"acme": key}), encoding="utf-8")
        config = {"tenants": [TENANT], "tenant_api_keys_file": str(keys)}
        named = f"{keys}['acme']: the key"
    else:
        config = {"admin_email": "admin@acme.example", "region": "us", "api_key": key}
        named = "api_key"
    errors = errors_of(config)
    assert any(error.startswith(named) and says in error for error in errors), errors
    for error in errors:
        assert KEY[:10] not in error
        assert KEY[11:] not in error


def test_a_key_of_a_tenant_no_longer_listed_is_a_warning_and_the_run_completes(
    fleet: tuple[FleetEmulator, list[EmulatedTenant]], tmp_path: Path
) -> None:
    """A client retired from the list, its key still in .env: named, not used, no failure."""
    emulator, tenants = fleet
    config = fleet_config(emulator, tenants[1:])
    config["tenant_api_keys"][tenants[0].tenant_id] = tenants[0].api_key
    emulator.clear_requests()
    run = run_in_process(config, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    warned = [line for line in run.stderr.splitlines() if "not in tenants, not used" in line]
    assert len(warned) == 1, warned
    assert repr(tenants[0].tenant_id) in warned[0]
    assert "WARNING" in warned[0]
    assert tenant_paths(emulator, tenants[0]) == []  # its key went nowhere
    assert {r["tenant_id"] for r in run.records("tenant_syncs")} == {
        t.tenant_id for t in tenants[1:]
    }


@pytest.mark.parametrize("option", ["--config", "--catalog", "--state"])
def test_json_nested_too_deep_is_one_line_naming_the_file(
    option: str, fleet: tuple[FleetEmulator, list[EmulatedTenant]], tmp_path: Path
) -> None:
    """Python's JSON reader recurses: 100,000 brackets were a 27-line RecursionError."""
    emulator, tenants = fleet
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    emulator.clear_requests()
    if option == "--config":
        run = run_in_process(None, tmp_path, "--config", str(deep))
        what = "config"
    else:
        run = run_in_process(fleet_config(emulator, tenants), tmp_path, option, str(deep))
        what = option.removeprefix("--")
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode == 1
    assert lines == [f"{what} file {deep}: its JSON is nested too deep to read"]
    assert run.stdout == ""
    assert emulator.requests == []
