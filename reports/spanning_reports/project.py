"""Where the Meltano project is: its marts.yml, and dbt's run results of each warehouse."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

MARTS_DIR = Path("transform") / "models" / "marts"
MARTS_YML = MARTS_DIR / "marts.yml"


def project_root(env: Mapping[str, str] | None = None) -> Path:
    """The Meltano project: $MELTANO_PROJECT_ROOT (a utility's), else the checkout holding
    this package (an editable install), else the current directory."""
    environ = os.environ if env is None else env
    if environ.get("MELTANO_PROJECT_ROOT"):
        return Path(environ["MELTANO_PROJECT_ROOT"])
    checkout = Path(__file__).resolve().parents[2]
    return checkout if (checkout / MARTS_YML).is_file() else Path.cwd()
