"""The house's rules (docs/development.md): no import cycle, no stream left out of a sync."""

from __future__ import annotations

import ast
from pathlib import Path

from tap_spanning.streams import STREAM_TYPES, sync_order
from tests.run_inputs import discovered_catalog

PACKAGE = Path(__file__).resolve().parents[2] / "tap_spanning"


def imports_of(path: Path) -> set[str]:
    """The tap_spanning modules a module imports, at run time or for type checking."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "tap_spanning":
                found.update(f"tap_spanning.{alias.name}" for alias in node.names)
            elif node.module.startswith("tap_spanning."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("tap_spanning."))
    return found


def module_of(path: Path) -> str:
    """The module a file of the package is: tap_spanning.run, tap_spanning.sdk_seam..."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_module_of_the_tap_imports_one_that_imports_it_back() -> None:
    graph = {module_of(path): imports_of(path) for path in PACKAGE.rglob("*.py")}
    graph.pop("tap_spanning")

    def cycle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        while stack:
            module, path = stack.pop()
            for imported in graph.get(module, ()):
                if imported == start:
                    return [*path, start]
                if imported not in path:
                    stack.append((imported, [*path, imported]))
        return None

    cycles = [cycle for module in graph if (cycle := cycle_from(module))]
    assert not cycles, f"import cycles: {cycles[:3]}"
    # The guard itself sees imports made only for type checking.
    assert "tap_spanning.run" in graph["tap_spanning.streams.base"]


def test_the_streams_import_nothing_of_the_fleet_or_the_tap() -> None:
    for path in (PACKAGE / "streams").glob("*.py"):
        assert not {"tap_spanning.fleet", "tap_spanning.tap"} & imports_of(path), path


def test_every_discovered_stream_is_synced_and_the_order_drops_none() -> None:
    discovered = [entry["tap_stream_id"] for entry in discovered_catalog()["streams"]]
    assert discovered == [vars(stream_type)["name"] for stream_type in STREAM_TYPES]
    # sync_order reorders: given every stream, it hands every stream back.
    fake = {name: object() for name in reversed(discovered)}
    assert sorted(sync_order(fake)) == sorted(discovered)  # type: ignore[arg-type]
