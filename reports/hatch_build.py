"""The build hook of spanning-reports: the marts' YAML files, bundled into the package.

The reports read exactly the columns that the YAML files of transform/models/marts/ declare
(spanning_reports/marts.py). Installed outside this repository there is no transform/ to
read them from, so the sdist and the wheel carry a copy, taken here at build time from the
repository (one source: a copy in git would drift from the marts the dbt project builds).
A wheel built from the sdist finds them already in the sdist's spanning_reports/marts_yml/.
An editable install reads the checkout's transform/ itself (spanning_reports/project.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface
from typing_extensions import override

# Where the copy goes in the package: spanning_reports/project.py reads it from there.
BUNDLE = "spanning_reports/marts_yml"


def declaring_files(marts: Path) -> list[Path]:
    """The marts' YAML files, not dbt's unit tests (as spanning_reports/marts.py reads them)."""
    return sorted(p for p in marts.glob("*.yml") if not p.name.endswith("_unit_tests.yml"))


class MartsYamlHook(BuildHookInterface):  # type: ignore[type-arg]  # generic in its config
    PLUGIN_NAME = "custom"

    @override
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name == "wheel" and version == "editable":
            return
        marts = Path(self.root).parent / "transform" / "models" / "marts"
        if marts.is_dir():
            for file in declaring_files(marts):
                build_data["force_include"][str(file)] = f"{BUNDLE}/{file.name}"
            return
        if not declaring_files(Path(self.root) / BUNDLE):
            raise FileNotFoundError(
                f"neither {marts} nor {Path(self.root) / BUNDLE} holds the marts' YAML: "
                "build from the repository (or its sdist)"
            )
