"""The release workflow (.github/workflows/release.yml) cannot run here: its shape is held
to what docs/install.md promises."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "release.yml"
# requires-python and the classifiers of pyproject.toml and reports/pyproject.toml.
SUPPORTED = ["3.10", "3.11", "3.12", "3.13", "3.14"]


@pytest.fixture(scope="module")
def workflow() -> dict[Any, Any]:
    loaded = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 (PyYAML) reads the key `on` as True.
    found = workflow.get("on", workflow.get(True))
    assert isinstance(found, dict)
    return found


def commands(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def test_builds_on_every_push_and_pull_request_and_tags(workflow: dict[Any, Any]) -> None:
    on = triggers(workflow)
    assert "pull_request" in on
    assert on["push"]["branches"] == ["**"]
    assert on["push"]["tags"] == ["v*"]
    assert workflow["permissions"] == {"contents": "read"}


def test_the_build_job_builds_and_checks_both_distributions(workflow: dict[Any, Any]) -> None:
    build = workflow["jobs"]["build"]
    checkout = build["steps"][0]
    assert checkout["uses"].startswith("actions/checkout@")
    assert checkout["with"]["fetch-depth"] == 0  # hatch-vcs needs the tags
    run = commands(build)
    assert "python -m build --sdist --wheel --outdir dist ." in run
    assert "python -m build --sdist --wheel --outdir dist reports" in run
    assert "python -m twine check --strict dist/*" in run
    uploads = [step for step in build["steps"] if step.get("uses", "").startswith("actions/upload")]
    assert [step["with"]["name"] for step in uploads] == ["dist"]


def test_the_tests_run_on_every_supported_python(workflow: dict[Any, Any]) -> None:
    test = workflow["jobs"]["test"]
    assert test["strategy"]["matrix"]["python-version"] == SUPPORTED
    assert test["strategy"]["fail-fast"] is False
    assert commands(test) == ["make check PYTHON=python"]
    setup = next(step for step in test["steps"] if step.get("uses", "").startswith("actions/setup"))
    assert setup["with"]["python-version"] == "${{ matrix.python-version }}"


def test_the_supported_pythons_are_those_the_packages_declare() -> None:
    root = WORKFLOW.parents[2]
    for project in (root / "pyproject.toml", root / "reports" / "pyproject.toml"):
        text = project.read_text(encoding="utf-8")
        assert 'requires-python = ">=3.10"' in text, project
        declared = [v for v in SUPPORTED if f'"Programming Language :: Python :: {v}"' in text]
        assert declared == SUPPORTED, project
        assert '"Programming Language :: Python :: 3.15"' not in text, project


def test_publishes_on_a_tag_only_with_trusted_publishing(workflow: dict[Any, Any]) -> None:
    publish = workflow["jobs"]["publish"]
    assert publish["needs"] == ["build", "test"]
    assert "startsWith(github.ref, 'refs/tags/v')" in publish["if"]
    assert "github.event_name == 'push'" in publish["if"]
    assert publish["environment"]["name"] == "pypi"
    # The OIDC token and nothing more; no password or token anywhere in the file.
    assert publish["permissions"] == {"id-token": "write"}
    assert "password" not in WORKFLOW.read_text(encoding="utf-8")
    assert "secrets." not in WORKFLOW.read_text(encoding="utf-8")
    steps = publish["steps"]
    assert steps[0]["uses"].startswith("actions/download-artifact@")
    assert steps[0]["with"] == {"name": "dist", "path": "dist/"}
    assert steps[-1]["uses"] == "pypa/gh-action-pypi-publish@release/v1"
    assert steps[-1]["with"]["packages-dir"] == "dist/"
    # Only the publish job may ask for a token.
    others = [name for name, job in workflow["jobs"].items() if name != "publish"]
    assert not [
        name for name in others if "id-token" in (workflow["jobs"][name].get("permissions") or {})
    ]
