"""meltano.yml declares the tap's settings as `tap-spanning --about` does: one source."""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

import yaml

from tap_spanning.config_schema import TAP_SETTINGS
from tests.tapdriver import run_in_process

ROOT = Path(__file__).resolve().parents[2]

# JSON Schema type -> the Meltano setting kinds that may declare it.
KINDS = {
    "string": {"string", "options"},
    "integer": {"integer"},
    # Meltano 4.4.1 turns a `decimal` setting into a Decimal and then fails to write the
    # plugin's config file ("Object of type Decimal is not JSON serializable"): fractional
    # settings are declared as strings, and the tap reads numbers given as text.
    "number": {"string"},
    "boolean": {"boolean"},
    "array": {"array"},
    "object": {"object"},
}
# Settings declared with another kind than their JSON type's, each for a reason of Meltano's.
KIND_EXCEPTIONS = {
    # The tap parses the keys map given as text. As `object`, Meltano 4.4.1 parses the
    # map of .env itself, and when it is malformed its error prints the whole text, every
    # key (tests/e2e/test_meltano_keys.py).
    "tenant_api_keys": {"string"},
}


def holds_secret(schema: object) -> bool:
    """A secret anywhere in a setting's schema (tenants: each entry's api_key)."""
    if isinstance(schema, dict):
        return bool(schema.get("secret")) or any(holds_secret(v) for v in schema.values())
    if isinstance(schema, list):
        return any(holds_secret(v) for v in schema)
    return False


@functools.cache
def _about_json() -> str:
    about = run_in_process(None, None, "--about", "--format=json")
    assert about.returncode == 0, about.stderr[-2000:]
    return about.stdout


def about_settings() -> dict[str, Any]:
    properties: dict[str, Any] = json.loads(_about_json())["settings"]["properties"]
    return copy.deepcopy(properties)


def meltano_tap() -> dict[str, Any]:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    (tap,) = [p for p in project["plugins"]["extractors"] if p["name"] == "tap-spanning"]
    return dict(tap)


def meltano_settings() -> dict[str, dict[str, Any]]:
    return {setting["name"]: setting for setting in meltano_tap()["settings"]}


def test_meltano_declares_exactly_the_settings_of_about() -> None:
    assert sorted(meltano_settings()) == sorted(about_settings())


def test_kinds_defaults_and_sensitivity_agree() -> None:
    declared = meltano_settings()
    for name, schema in about_settings().items():
        setting = declared[name]
        json_type = next(t for t in schema["type"] if t != "null")
        assert setting["kind"] in KIND_EXCEPTIONS.get(name, KINDS[json_type]), name
        value = setting.get("value")
        if json_type == "number" and value is not None:
            value = float(value)
        assert value == schema.get("default"), name
        # Meltano hides whole settings only: one that holds a secret anywhere is sensitive.
        assert bool(setting.get("sensitive")) == holds_secret(schema), name
        if "enum" in schema:
            assert [o["value"] for o in setting["options"]] == [
                v for v in schema["enum"] if v is not None
            ], name


def test_meltano_declares_every_capability_of_about() -> None:
    # Without structured-logging, Meltano shows every line of the tap at info, failures too.
    about: list[str] = json.loads(_about_json())["capabilities"]
    assert sorted(meltano_tap()["capabilities"]) == sorted(about)


def test_fractional_seconds_are_not_declared_as_integers() -> None:
    # A timeout of 0.5 s is valid: an integer kind would make Meltano refuse it.
    declared = meltano_settings()
    assert declared["request_timeout"]["kind"] == "string"
    assert declared["max_retry_wait"]["kind"] == "string"


def test_limits_are_in_the_schema_that_about_shows() -> None:
    settings = about_settings()
    assert (settings["page_size"]["minimum"], settings["page_size"]["maximum"]) == (1, 1000)
    assert (settings["max_retries"]["minimum"], settings["max_retries"]["maximum"]) == (1, 100)
    assert settings["max_concurrent_tenants"]["minimum"] == 1
    assert settings["max_concurrent_tenants"]["maximum"] == 64
    assert settings["request_timeout"]["minimum"] > 0
    assert settings["max_retry_wait"]["minimum"] == 0


def test_the_readme_shows_what_about_prints() -> None:
    done = run_in_process(None, None, "--about", "--format=markdown")
    assert done.returncode == 0, done.stderr[-2000:]
    about = done.stdout.strip().splitlines()[1:]  # without its "# `tap-spanning`" title
    readme = (ROOT / "docs" / "settings.md").read_text()
    shown = readme.split("What `tap-spanning --about --format=markdown` prints:", 1)[1]
    assert "\n".join(line for line in about).strip() == shown.strip()


def readme_settings_table() -> dict[str, str]:
    """The README's "Configure a real tenant" table: setting -> its default cell."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configure a real tenant", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        for name in re.findall(r"`(\w+)`", cells[0]):
            rows[name] = cells[2]
    return rows


def test_the_readme_settings_table_agrees_with_about() -> None:
    table = readme_settings_table()
    tap_settings = {name: about_settings()[name] for name in TAP_SETTINGS}
    assert sorted(table) == sorted(tap_settings)
    for name, schema in tap_settings.items():
        shown = table[name].split(" ")[0]
        default = schema.get("default")
        if default is None:
            assert shown in ("", "`default`"), name  # tenant_id's default is in the text
        elif isinstance(default, bool):
            assert shown == str(default).lower(), name
        elif isinstance(default, str):
            assert shown == f"`{default}`", name
        else:
            assert float(shown) == float(default), name
