"""The whole repository's house rules (docs/development.md): no room over 500 lines in the
code a contributor reads, and no import circle anywhere, at any depth, imports made only for
type checking included. tests/unit/test_house.py holds the tap's own floors."""

from __future__ import annotations

import ast
import subprocess
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 500
# The folders whose every source file is a room: the tap, the emulator, the reports, the
# benchmark, the scripts and the tests.
ROOMS = ("tap_spanning", "emulator", "reports", "bench", "scripts", "tests")
SOURCE_SUFFIXES = {".py", ".sh", ".sql", ".j2", ".js", ".css"}
# Where a Python import name starts: the repository root (tap_spanning, bench, tests), and
# the roots of the two packages installed from their own folders.
IMPORT_ROOTS = (ROOT, ROOT / "emulator", ROOT / "reports")


def tracked_files() -> list[Path]:
    """The files git tracks or would add (untracked, not ignored), as they are on disk."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [ROOT / name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def lines_of(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def rooms() -> list[Path]:
    return [
        path
        for path in tracked_files()
        if path.relative_to(ROOT).parts[0] in ROOMS and path.suffix in SOURCE_SUFFIXES
    ]


def test_no_room_is_over_500_lines() -> None:
    sizes = sorted(((lines_of(path), path) for path in rooms()), reverse=True)
    assert sizes, "no room found: the walk is broken"
    print("\nthe largest rooms:", ", ".join(f"{p.relative_to(ROOT)} {n}" for n, p in sizes[:5]))
    over = [f"{path.relative_to(ROOT)}: {count}" for count, path in sizes if count > MAX_LINES]
    assert not over, f"rooms over {MAX_LINES} lines: {over}"


def module_name(path: Path) -> str | None:
    """The import name of a Python file under one of the import roots (the deepest)."""
    for root in sorted(IMPORT_ROOTS, key=lambda r: len(r.parts), reverse=True):
        if root in path.parents:
            parts = path.relative_to(root).with_suffix("").parts
            if root == ROOT and parts[0] in {"emulator", "reports"}:
                continue
            return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    return None


def imported_names(path: Path, module: str, modules: set[str]) -> Iterator[str]:
    """The modules an import of the file reaches: `a.b` for `import a.b`; for
    `from a.b import c`, `a.b.c` where c is a module, else `a.b` (where c is a name it
    defines). Relative imports resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield submodule if submodule in modules else base


def import_graph() -> dict[str, set[str]]:
    files = {
        name: path
        for path in tracked_files()
        if path.suffix == ".py" and (name := module_name(path)) is not None
    }
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        reached = {target for target in imported_names(path, name, set(files)) if target in files}
        # Importing a.b.c runs a and a.b first: a package's __init__ is an edge too.
        graph[name] = {target for target in reached if target != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_no_import_circle_anywhere_in_the_repository() -> None:
    graph = import_graph()
    # The walk sees every part of the house, and type-checking imports.
    for module in ("tap_spanning.run", "spanning_emulator", "bench.report", "tests.tapdriver"):
        assert module in graph, f"{module} not found: the walk is broken"
    assert "tap_spanning.run" in graph["tap_spanning.streams"] or any(
        "tap_spanning.run" in targets for targets in graph.values()
    )
    found = cycles(graph)
    assert not found, f"import circles: {found}"


def test_the_circle_finder_finds_a_circle() -> None:
    """A circle through three modules is found; a chain is not."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
