"""Where the Meltano project is: its marts.yml, and dbt's run results of each warehouse."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

MARTS_DIR = Path("transform") / "models" / "marts"
MARTS_YML = MARTS_DIR / "marts.yml"
# The marts' YAML files this package was built with (reports/hatch_build.py puts them in the
# wheel): read when the reports run where no project with transform/ is found.
BUNDLED_MARTS_DIR = Path(__file__).resolve().parent / "marts_yml"


def project_root(env: Mapping[str, str] | None = None) -> Path:
    """The Meltano project: $MELTANO_PROJECT_ROOT (a utility's), else the checkout holding
    this package (an editable install), else the current directory."""
    environ = os.environ if env is None else env
    if environ.get("MELTANO_PROJECT_ROOT"):
        return Path(environ["MELTANO_PROJECT_ROOT"])
    checkout = Path(__file__).resolve().parents[2]
    return checkout if (checkout / MARTS_YML).is_file() else Path.cwd()


def marts_dir(env: Mapping[str, str] | None = None) -> Path:
    """The project's transform/models/marts/, else (an installed package run outside a
    project) the copy bundled with the package; the project's path when neither holds a
    marts.yml, so a message names where it was looked for."""
    in_project = project_root(env) / MARTS_DIR
    if (in_project / MARTS_YML.name).is_file():
        return in_project
    return BUNDLED_MARTS_DIR if (BUNDLED_MARTS_DIR / MARTS_YML.name).is_file() else in_project
