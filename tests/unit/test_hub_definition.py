"""The Meltano Hub definitions of hub/ (docs/hub.md): valid against the Hub's own schema (the
copy in hub/schemas/), exactly what scripts/hub_definition.py writes from `tap-spanning
--about` and meltano.yml, and in agreement with meltano.yml's tap-spanning and fleet-report."""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import ValidationError  # type: ignore[import-untyped]
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from scripts import hub_definition
from tests.tapdriver import run_in_process

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "hub" / "schemas"
EXTRACTOR_FILE = ROOT / "hub" / "extractors" / "tap-spanning" / "tap-spanning.yml"
UTILITY_FILE = ROOT / "hub" / "utilities" / "fleet-report" / "tap-spanning.yml"


@functools.cache
def registry() -> Registry[Any]:
    """Every kept schema under its `$id`, as the Hub's plugin_schema_validate.py registers them."""
    resources = []
    for path in sorted(SCHEMAS.glob("*/*.schema.json")):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema, DRAFT7)))
    return Registry().with_resources(resources)


def validator(plugin_type: str) -> Draft7Validator:
    schema = json.loads((SCHEMAS / "plugin_definitions" / f"{plugin_type}.schema.json").read_text())
    return Draft7Validator(schema, registry=registry())


def errors(plugin_type: str, definition: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator(plugin_type).iter_errors(definition)
    ]


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


@functools.cache
def _about_json() -> str:
    about = run_in_process(None, None, "--about", "--format=json")
    assert about.returncode == 0, about.stderr[-2000:]
    return about.stdout


def about() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(_about_json())
    return loaded


def project() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "meltano.yml").read_text())
    return loaded


def meltano_plugin(kind: str, name: str) -> dict[str, Any]:
    (plugin,) = [p for p in project()["plugins"][kind] if p["name"] == name]
    return dict(plugin)


# ---------------------------------------------------------------- the Hub's schema


@pytest.mark.parametrize(
    ("plugin_type", "example"),
    [("extractors", "tap-github.meltanolabs.yml"), ("utilities", "sqlfluff.sqlfluff.yml")],
)
def test_the_hubs_own_definitions_are_valid_here(plugin_type: str, example: str) -> None:
    # Known valid on the Hub: the copies and their $refs resolve here as they do there.
    definition = load(SCHEMAS / "examples" / example)
    assert errors(plugin_type, definition) == []


def test_the_extractor_definition_is_valid_against_the_hubs_schema() -> None:
    assert errors("extractors", load(EXTRACTOR_FILE)) == []


def test_the_utility_definition_is_valid_against_the_hubs_schema() -> None:
    assert errors("utilities", load(UTILITY_FILE)) == []


@pytest.mark.parametrize(
    ("plugin_type", "path", "change", "where"),
    [
        # The Hub's extractor schema requires quality now.
        ("extractors", EXTRACTOR_FILE, lambda d: d.pop("quality"), ""),
        ("extractors", EXTRACTOR_FILE, lambda d: d.update(quality="platinum"), "quality"),
        (
            "extractors",
            EXTRACTOR_FILE,
            lambda d: d["settings"][0].update(kind="txt"),
            "settings/0/kind",
        ),
        ("extractors", EXTRACTOR_FILE, lambda d: d["capabilities"].append("log"), "capabilities/9"),
        ("utilities", UTILITY_FILE, lambda d: d.pop("namespace"), ""),
        ("utilities", UTILITY_FILE, lambda d: d.update(select=["*.*"]), ""),
    ],
)
def test_the_schema_refuses_a_broken_definition(
    plugin_type: str, path: Path, change: Any, where: str
) -> None:
    definition = copy.deepcopy(load(path))
    change(definition)
    found = errors(plugin_type, definition)
    assert found, "the broken definition passed"
    assert any(error.split(":", 1)[0] == where for error in found), found
    with pytest.raises(ValidationError):
        validator(plugin_type).validate(definition)


# ---------------------------------------------------------------- what the generator writes


def test_the_files_are_what_the_generator_writes_from_about() -> None:
    written = hub_definition.written_files(about(), project())
    assert sorted(written) == sorted([EXTRACTOR_FILE, UTILITY_FILE])
    for path, text in written.items():
        assert path.read_text() == text, (
            f"{path.relative_to(ROOT)} is stale: python scripts/hub_definition.py"
        )


def test_each_file_is_where_the_hub_keeps_its_name_and_variant() -> None:
    for kind, path in (("extractors", EXTRACTOR_FILE), ("utilities", UTILITY_FILE)):
        definition = load(path)
        assert path.relative_to(ROOT / "hub").parts == (
            kind,
            definition["name"],
            f"{definition['variant']}.yml",
        )


def test_the_repository_is_the_one_pyproject_names() -> None:
    # A line of pyproject.toml's [project.urls] (tomllib is not in Python 3.10).
    urls = (ROOT / "pyproject.toml").read_text().split("[project.urls]", 1)[1].split("\n[", 1)[0]
    found = re.search(r'^Repository = "([^"]+)"$', urls, re.MULTILINE)
    assert found, urls
    repository = found.group(1)
    assert repository == hub_definition.REPOSITORY
    assert load(EXTRACTOR_FILE)["repo"] == load(UTILITY_FILE)["repo"] == repository
    # The Hub names a variant after the repository's owner.
    assert load(EXTRACTOR_FILE)["variant"] == repository.split("/")[3].lower()


def test_the_extractor_carries_every_setting_and_capability_of_about() -> None:
    definition = load(EXTRACTOR_FILE)
    shown = about()
    assert [s["name"] for s in definition["settings"]] == list(shown["settings"]["properties"])
    assert definition["capabilities"] == shown["capabilities"]
    assert definition["pip_url"] == definition["executable"] == shown["name"] == "tap-spanning"
    assert definition["namespace"] == "tap_spanning"
    assert "meltano_sdk" in definition["keywords"]
    for setting in definition["settings"]:
        # The Hub's page shows each setting by its label and description.
        assert setting["label"].strip(), setting["name"]
        assert setting["description"].strip(), setting["name"]


def test_the_extractor_hides_every_setting_that_holds_a_secret() -> None:
    sensitive = {s["name"] for s in load(EXTRACTOR_FILE)["settings"] if s.get("sensitive")}
    assert sensitive == {"api_key", "tenants", "tenant_api_keys"}


def test_a_number_of_seconds_is_written_as_text() -> None:
    settings = {s["name"]: s for s in load(EXTRACTOR_FILE)["settings"]}
    assert (settings["request_timeout"]["kind"], settings["request_timeout"]["value"]) == (
        "string",
        "60",
    )
    assert hub_definition.default_value("string", 0.5) == "0.5"
    assert hub_definition.default_value("integer", 8) == 8


# ---------------------------------------------------------------- in step with meltano.yml


def setting_facts(setting: dict[str, Any]) -> dict[str, Any]:
    """What Meltano acts on: kind, default, sensitivity and the options' values and labels."""
    return {
        "kind": setting.get("kind", "string"),
        "value": setting.get("value"),
        "sensitive": bool(setting.get("sensitive")),
        "options": setting.get("options"),
    }


def test_the_extractor_settings_agree_with_meltano_yml() -> None:
    definition = load(EXTRACTOR_FILE)
    tap = meltano_plugin("extractors", "tap-spanning")
    # The same settings; the definition in --about's order, meltano.yml in its own.
    assert sorted(s["name"] for s in definition["settings"]) == sorted(
        s["name"] for s in tap["settings"]
    )
    declared = {s["name"]: setting_facts(s) for s in tap["settings"]}
    for setting in definition["settings"]:
        assert setting_facts(setting) == declared[setting["name"]], setting["name"]
    assert definition["settings_group_validation"] == tap["settings_group_validation"]
    assert sorted(definition["capabilities"]) == sorted(tap["capabilities"])
    assert definition["select"] == tap["select"]
    assert (definition["namespace"], definition["executable"]) == (
        tap["namespace"],
        tap["executable"],
    )


def test_the_utility_keeps_every_command_and_setting_of_meltano_yml() -> None:
    definition = load(UTILITY_FILE)
    utility = meltano_plugin("utilities", "fleet-report")
    assert definition["name"] == utility["name"] == "fleet-report"
    # spanning_reports.utility reads FLEET_REPORT_*: the namespace's prefix.
    assert definition["namespace"] == utility["namespace"] == "fleet_report"
    assert definition["pip_url"] == "spanning-reports[duckdb,postgres]"
    assert definition["executable"] == "spanning-reports"
    assert list(definition["commands"]) == list(utility["commands"])
    for name, command in utility["commands"].items():
        # `python -m spanning_reports X` there is `spanning-reports X` here.
        assert command["args"] == f"-m spanning_reports {definition['commands'][name]['args']}"
        assert definition["commands"][name]["description"] == command["description"]
    assert [s["name"] for s in definition["settings"]] == [s["name"] for s in utility["settings"]]
    declared = {s["name"]: setting_facts(s) for s in utility["settings"]}
    for setting in definition["settings"]:
        assert setting_facts(setting) == declared[setting["name"]], setting["name"]
    assert {s["name"] for s in definition["settings"] if s.get("sensitive")} == {
        "password",
        "alerts_webhook_url",
    }


def test_a_command_that_is_not_the_package_is_refused() -> None:
    with pytest.raises(ValueError, match="not"):
        hub_definition.utility_command({"args": "-m other_package x", "description": ""})
