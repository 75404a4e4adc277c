"""Write the Meltano Hub definitions of the tap and of the reports utility (docs/hub.md).

    python scripts/hub_definition.py           # write both files under hub/
    python scripts/hub_definition.py --check   # exit 1, naming the file, when one is stale
    python scripts/hub_definition.py --about about.json   # from a saved --about instead

The extractor's definition (hub/extractors/tap-spanning/<variant>.yml) comes from
`tap-spanning --about --format=json`: every setting with its kind, label, description,
default, options and whether it is sensitive, and the capabilities and Python versions. The
utility's (hub/utilities/fleet-report/<variant>.yml) comes from meltano.yml's fleet-report
utility: its settings and every command. What neither says (the Hub's metadata, the groups of
settings a run needs, the regions' names) is written here, and tests/unit/test_hub_definition.py
holds each file equal to what this writes, valid against the Hub's schema (hub/schemas/) and
in agreement with meltano.yml.
"""

from __future__ import annotations

import argparse
import difflib
import json
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
HUB_DIR = ROOT / "hub"

# The Hub names a variant after the GitHub namespace that maintains it (meltanolabs,
# singer-io): here the owner of the repository pyproject.toml's project URLs name.
REPOSITORY = "https://github.com/tap-spanning/tap-spanning"
VARIANT = REPOSITORY.rstrip("/").split("/")[-2].lower()
DOCS = f"{REPOSITORY}#readme"
DOMAIN_URL = "https://spanning.com/products/office-365-backup/"
EXTRACTOR_PATH = HUB_DIR / "extractors" / "tap-spanning" / f"{VARIANT}.yml"
# The utility keeps the name it has in this project's meltano.yml, so that the nightly job's
# `fleet-report:duckdb` (README, "The nightly run") reads the same in any project; the Hub
# keeps a definition in the folder of its name.
UTILITY_NAME = "fleet-report"
UTILITY_PATH = HUB_DIR / "utilities" / UTILITY_NAME / f"{VARIANT}.yml"

# The Hub's quality rule (meltano/hub, hub-utils `get_quality`): a community connector built
# on the SDK is silver until it counts six projects using it.
QUALITY = "silver"
MAINTENANCE_STATUS = "active"

HEADER = (
    "# Written by scripts/hub_definition.py from {source}: do not edit by hand.\n"
    "# Add it to a Meltano project: meltano add {kind} --from-ref <this file> (docs/hub.md).\n"
)

# Meltano's kind for each JSON Schema type of --about.
KIND_BY_TYPE = {
    "string": "string",
    "integer": "integer",
    # Meltano 4.4 turns a `decimal` setting into a Decimal and then fails to write the
    # plugin's config file: fractional seconds are declared as text, which the tap reads.
    "number": "string",
    "boolean": "boolean",
    "array": "array",
    "object": "object",
}
# Declared as text although --about says object: the tap parses the keys map itself. As an
# object, Meltano parses a malformed map of .env and prints the whole text, every key.
TEXT_SETTINGS = frozenset({"tenant_api_keys"})
# The region codes of --about as a person reads them.
OPTION_LABELS = {
    "region": {
        "us": "United States",
        "eu": "Europe",
        "ap": "Asia Pacific",
        "ca": "Canada",
        "uk": "United Kingdom",
        "af": "Africa",
    },
}
# What a run needs: one tenant (key and host or region) or a fleet (README, "Configure a
# fleet"). --about cannot say it: every setting there is optional on its own.
SETTINGS_GROUP_VALIDATION = [
    ["admin_email", "api_key", "base_url"],
    ["admin_email", "api_key", "region"],
    ["tenants"],
    ["tenants_file"],
]
# Words the Hub's labels spell in capitals (hub-utils `_get_label`).
LABEL_WORDS = {"Url": "URL", "Id": "ID", "Api": "API", "Ssl": "SSL"}

UTILITY_LABEL = "Spanning reports"
UTILITY_PIP_URL = "spanning-reports[duckdb,postgres]"
UTILITY_EXECUTABLE = "spanning-reports"
# meltano.yml runs the package as `python -m spanning_reports ...` from its own checkout; an
# installed package has the console script, which takes the same arguments.
MODULE_PREFIX = "-m spanning_reports "


def label_of(name: str) -> str:
    """A setting's label from its name, as the Hub writes one: `max_retry_wait` ->
    `Max Retry Wait`."""
    words = name.replace("_", " ").replace("-", " ").split()
    return " ".join(LABEL_WORDS.get(word.title(), word.title()) for word in words)


def holds_secret(schema: object) -> bool:
    """A secret anywhere in a setting's schema (tenants: each entry's api_key). Meltano can
    hide only a whole setting, so one holding a secret anywhere is sensitive."""
    if isinstance(schema, dict):
        return bool(schema.get("secret")) or any(holds_secret(v) for v in schema.values())
    if isinstance(schema, list):
        return any(holds_secret(v) for v in schema)
    return False


def default_value(kind: str, default: object) -> object:
    """--about's default as the setting's value: a number declared as text is written as
    text (60.0 -> "60"), as meltano.yml writes it."""
    if kind == "string" and isinstance(default, int | float) and not isinstance(default, bool):
        return f"{default:g}"
    return default


def extractor_setting(name: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    """One setting of --about in the Hub's shape."""
    types = schema.get("type", "string")
    json_type = next(t for t in ([types] if isinstance(types, str) else types) if t != "null")
    kind = "string" if name in TEXT_SETTINGS else KIND_BY_TYPE[json_type]
    choices = [value for value in schema.get("enum", []) if value is not None]
    if choices:
        kind = "options"
    setting: dict[str, Any] = {
        "name": name,
        "label": schema.get("title") or label_of(name),
        "description": " ".join(str(schema.get("description", "")).split()),
        "kind": kind,
    }
    if schema.get("default") is not None:
        setting["value"] = default_value(kind, schema["default"])
    if choices:
        labels = OPTION_LABELS.get(name, {})
        setting["options"] = [
            {"label": labels.get(value, label_of(value)), "value": value} for value in choices
        ]
    if holds_secret(schema):
        setting["sensitive"] = True
    return setting


def extractor_definition(about: Mapping[str, Any]) -> dict[str, Any]:
    """The tap's Hub definition from `tap-spanning --about --format=json`."""
    properties: Mapping[str, Any] = about["settings"]["properties"]
    definition: dict[str, Any] = {
        "name": about["name"],
        "namespace": about["name"].replace("-", "_"),
        "variant": VARIANT,
        "label": "Kaseya Spanning Backup",
        "description": (
            "Backup for Microsoft 365: users, role tiers and who holds them, licenses and "
            "backup status, for one tenant or an MSP's fleet"
        ),
        "definition": (
            "extracts the users, role tiers, licenses and daily backup status of Kaseya "
            "Spanning Backup for Office 365 tenants, one tenant or an MSP's whole fleet in "
            "one run"
        ),
        "repo": REPOSITORY,
        "docs": DOCS,
        "domain_url": DOMAIN_URL,
        "pip_url": about["name"],
        "executable": about["name"],
        "capabilities": list(about["capabilities"]),
        "supported_python_versions": list(about.get("supported_python_versions") or []),
        "settings_group_validation": [list(group) for group in SETTINGS_GROUP_VALIDATION],
        "settings": [extractor_setting(name, schema) for name, schema in properties.items()],
        # Every stream, the backup histories (off unless selected) too (docs/backup-health.md).
        "select": ["*.*"],
        "keywords": ["meltano_sdk"],
        "quality": QUALITY,
        "maintenance_status": MAINTENANCE_STATUS,
    }
    if not definition["supported_python_versions"]:
        del definition["supported_python_versions"]
    return definition


def meltano_utility(project: Mapping[str, Any], name: str = UTILITY_NAME) -> dict[str, Any]:
    """The utility of this name in a meltano.yml."""
    (utility,) = [p for p in project["plugins"]["utilities"] if p["name"] == name]
    return dict(utility)


def utility_command(command: Mapping[str, Any]) -> dict[str, Any]:
    """meltano.yml's `python -m spanning_reports <args>` as the console script's `<args>`."""
    args = str(command["args"])
    if not args.startswith(MODULE_PREFIX):
        raise ValueError(f"a fleet-report command that is not {MODULE_PREFIX!r}...: {args!r}")
    return {"args": args.removeprefix(MODULE_PREFIX), "description": command["description"]}


def utility_setting(setting: Mapping[str, Any]) -> dict[str, Any]:
    """meltano.yml's setting with the kind and label the Hub shows for every setting."""
    shaped: dict[str, Any] = {
        "name": setting["name"],
        "label": setting.get("label") or label_of(setting["name"]),
        "description": " ".join(str(setting.get("description", "")).split()),
        "kind": setting.get("kind", "string"),
    }
    shaped.update({k: setting[k] for k in ("value", "options", "sensitive") if k in setting})
    return shaped


def utility_definition(project: Mapping[str, Any]) -> dict[str, Any]:
    """The reports utility's Hub definition from meltano.yml's fleet-report."""
    utility = meltano_utility(project)
    return {
        "name": UTILITY_NAME,
        # FLEET_REPORT_* is what spanning_reports.utility reads: Meltano hands a utility its
        # settings under its name's and its namespace's prefix, so they reach it whatever
        # name a project gives the plugin.
        "namespace": utility["namespace"],
        "variant": VARIANT,
        "label": UTILITY_LABEL,
        "description": (
            "The fleet report, each client's monthly report, the role report and the alerts "
            "(file, webhook, Teams, Slack), from tap-spanning's dbt marts in DuckDB or PostgreSQL"
        ),
        "definition": (
            "writes tap-spanning's fleet report and client reports and sends its alerts, "
            "from the dbt marts in DuckDB or PostgreSQL"
        ),
        "repo": REPOSITORY,
        "docs": f"{REPOSITORY}/blob/main/docs/reports.md",
        "pip_url": UTILITY_PIP_URL,
        "executable": UTILITY_EXECUTABLE,
        "settings": [utility_setting(setting) for setting in utility["settings"]],
        "commands": {
            name: utility_command(command) for name, command in utility["commands"].items()
        },
        "keywords": ["meltano_sdk", "reports", "alerts"],
        "quality": QUALITY,
        "maintenance_status": MAINTENANCE_STATUS,
    }


def render(definition: Mapping[str, Any], source: str, kind: str) -> str:
    """The definition as the file holds it: a header, then YAML in the order written here."""
    body = yaml.safe_dump(dict(definition), sort_keys=False, width=100, allow_unicode=True)
    return HEADER.format(source=source, kind=f"{kind} {definition['name']}") + body


def run_about() -> dict[str, Any]:
    """`tap-spanning --about --format=json`, the tap beside this Python, else on PATH."""
    beside = Path(sys.executable).parent / "tap-spanning"
    executable = str(beside) if beside.exists() else shutil.which("tap-spanning")
    if executable is None:
        raise SystemExit("tap-spanning is not installed: make install")
    # The tap of this checkout's venv (or PATH), with fixed arguments.
    done = subprocess.run(  # noqa: S603
        [executable, "--about", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    )
    about: dict[str, Any] = json.loads(done.stdout)
    return about


def written_files(about: Mapping[str, Any], project: Mapping[str, Any]) -> dict[Path, str]:
    """Each definition's path and the text it should hold."""
    return {
        EXTRACTOR_PATH: render(
            extractor_definition(about), "`tap-spanning --about --format=json`", "extractor"
        ),
        UTILITY_PATH: render(
            utility_definition(project), "meltano.yml's fleet-report utility", "utility"
        ),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--about", type=Path, metavar="JSON", help="a saved --about --format=json (else run it)"
    )
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 when a file is stale"
    )
    args = parser.parse_args(argv)
    about = json.loads(args.about.read_text()) if args.about else run_about()
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    stale = 0
    for path, text in written_files(about, project).items():
        shown = path.relative_to(ROOT)
        current = path.read_text() if path.exists() else ""
        if current == text:
            continue
        if args.check:
            stale += 1
            diff = difflib.unified_diff(
                current.splitlines(), text.splitlines(), str(shown), "generated", lineterm=""
            )
            print("\n".join(diff), file=sys.stderr)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {shown}")
    if stale:
        print(f"{stale} stale: python scripts/hub_definition.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
