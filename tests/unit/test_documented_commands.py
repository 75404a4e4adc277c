"""Every documented command is run by a test, and every link of the documents resolves.

README.md and docs/*.md are read, no process is started. Each ```sh/```bash block sits at a
place (document, `## ` section, `### ` subsection) that RUN_BY maps to the test that runs its
blocks as written; a place no test runs, an entry whose place is gone, or a named test that
does not exist (read with ast, never imported) fails here. A command no test can run carries
`# not run by tests: <reason>` and is one of the few in NOT_RUN. Links to files and to
`#anchors` must reach a file and a heading; references to a document's section in the
project's sources (`README, "Configure a real tenant"`, `docs/operations.md, "Failure
behaviour"`) must name a heading that exists.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

from tests.documented import (
    README,
    ROOT,
    Place,
    all_shell_blocks,
    document_name,
    documents,
    parse,
)

# Where a shell block may sit, and the test that runs the blocks of that place as written.
RUN_BY: dict[Place, str] = {
    ("README.md", None, None): (
        "tests/e2e/test_demo.py::test_make_demo_lands_the_fleet_and_builds_the_report"
    ),
    ("README.md", "Configure a real tenant", None): (
        "tests/e2e/test_first_hour_configure.py::test_configure_a_real_tenant_as_the_readme_shows"
    ),
    ("README.md", "The nightly run", None): (
        "tests/e2e/test_nightly.py::test_nightly_duckdb_ends_0_with_the_marts_and_the_report"
    ),
    ("docs/many-tenants.md", "Which rows are current: per tenant", None): (
        "tests/e2e/test_current_views.py::test_the_duckdb_command_builds_views_that_follow_the_rule"
    ),
    ("docs/many-tenants.md", "Shards", None): (
        "tests/e2e/test_shards.py::test_two_shards_side_by_side_are_one_fleet_in_postgres"
    ),
    ("docs/warehouse.md", "Load into a warehouse", "DuckDB"): (
        "tests/e2e/test_first_hour_duckdb.py::test_load_into_duckdb_as_the_readme_shows"
    ),
    ("docs/warehouse.md", "Load into a warehouse", "PostgreSQL"): (
        "tests/e2e/test_first_hour_postgres.py::test_load_into_postgres_as_the_readme_shows"
    ),
}
# Commands no test runs, each with the reason the document gives.
NOT_RUN: dict[str, str] = {
    "make test": (
        "it runs them all (ruff, mypy strict, every test, against the emulator and a private"
        " PostgreSQL it starts)"
    ),
}
MAX_NOT_RUN = 3
README_MAX_LINES = 300

# Where the project's sources cite a document's section.
CITING = ("tap_spanning", "emulator", "bench", "scripts", "reports", "transform", "tests")
CITING_FILES = ("meltano.yml", "Makefile", "pyproject.toml")
CITING_SUFFIXES = {".py", ".sql", ".yml", ".yaml", ".md", ".sh", ".toml"}
SKIPPED_DIRS = {".venv", "venv", "target", "logs", "dbt_packages", "__pycache__", "node_modules"}
# `(README, "Many tenants")`, `README "Many tenants"`, `docs/operations.md, "Failure behaviour"`.
CITATION = re.compile(r"\b(README(?:\.md)?|docs/[a-z0-9_-]+\.md)(?:,|'s)?\s+\"([^\"\n]{2,80})\"")


# ----------------------------------------------------------------------------- commands


def test_every_shell_block_is_run_by_a_named_test() -> None:
    blocks = all_shell_blocks()
    assert blocks, "no shell block found: the parser is broken"
    orphans = [
        block.where()
        for block in blocks
        if block.place not in RUN_BY and len(block.marked()) < len(block.commands())
    ]
    assert not orphans, (
        f"shell blocks that no test runs: {orphans}; run them in a test and name it in RUN_BY,"
        " or mark a command that cannot run `# not run by tests: <reason>`"
    )


def test_no_entry_of_the_registry_is_stale() -> None:
    places = {block.place for block in all_shell_blocks()}
    stale = sorted((place for place in RUN_BY if place not in places), key=str)
    assert not stale, f"RUN_BY names places that hold no shell block any more: {stale}"


@cache
def defined_tests(path: Path) -> frozenset[str]:
    """`test_x` and `Class::test_x` of a test file, as ast reads it."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.update(
                f"{node.name}::{item.name}"
                for item in node.body
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
            )
    return frozenset(name for name in names if name.split("::")[-1].startswith("test_"))


@pytest.mark.parametrize("named", sorted(set(RUN_BY.values())))
def test_each_named_test_exists(named: str) -> None:
    file, _, name = named.partition("::")
    path = ROOT / file
    assert path.is_file(), f"{named}: no file {file}"
    assert name in defined_tests(path), f"{named}: {file} has no test {name!r}"


def test_commands_not_run_are_the_few_named() -> None:
    marked: dict[str, str] = {}
    for block in all_shell_blocks():
        marked.update(block.marked())
    assert marked == NOT_RUN, f"commands marked 'not run by tests': {marked}"
    assert len(NOT_RUN) <= MAX_NOT_RUN


def test_the_readme_fits_on_a_screen_and_starts_with_the_two_commands() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"
    first = all_shell_blocks()[0]
    assert (first.document, first.section) == ("README.md", None), "README.md starts elsewhere"
    commands = [c.split("#", 1)[0].strip() for c in first.commands()]
    assert commands == ["make demo", "make test"], commands


# ----------------------------------------------------------------------------- links


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to `-`."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a document's headings; a repeated one gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for heading in parse(path)[0]:
        base = slug(heading.text)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[tuple[int, str]]:
    """(line, target) of every Markdown link and image outside code."""
    text = path.read_text(encoding="utf-8")
    # Fenced blocks and code spans hold no links: blank them, keeping the line numbers.
    text = re.sub(
        r"^```.*?^```", lambda m: "\n" * m[0].count("\n"), text, flags=re.MULTILINE | re.DOTALL
    )
    text = re.sub(r"`[^`\n]*`", "", text)
    return [
        (text.count("\n", 0, match.start()) + 1, match[1])
        for match in re.finditer(r"!?\[[^\]]*\]\(([^)\s]+)\)", text)
    ]


def test_the_link_parser_finds_links_and_anchors() -> None:
    assert slug("`--about`") == "--about"
    assert slug("Answers: the dbt marts") == "answers-the-dbt-marts"
    found = [target for _, target in links(README)]
    assert "docs/many-tenants.md" in found
    assert "#configure-a-real-tenant" in found


@pytest.mark.parametrize("document", documents(), ids=document_name)
def test_every_relative_link_resolves(document: Path) -> None:
    broken = []
    for line, target in links(document):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not ours to check
            continue
        file, _, anchor = target.partition("#")
        linked = (document.parent / file).resolve() if file else document
        where = f"{document_name(document)}:{line} -> {target}"
        if not linked.exists():
            broken.append(f"{where}: no such file")
        elif anchor and linked.suffix != ".md":
            broken.append(f"{where}: an anchor into a file that is not Markdown")
        elif anchor and anchor not in anchors(linked):
            broken.append(f"{where}: no heading with that anchor")
    assert not broken, "\n".join(broken)


# ----------------------------------------------------------------------------- citations


def citing_files() -> list[Path]:
    found = [ROOT / name for name in CITING_FILES if (ROOT / name).is_file()]
    for top in CITING:
        for path in sorted((ROOT / top).rglob("*")):
            parts = set(path.relative_to(ROOT).parts)
            if path.is_file() and path.suffix in CITING_SUFFIXES and not parts & SKIPPED_DIRS:
                found.append(path)
    return found


def citations(text: str) -> list[tuple[str, str]]:
    """(document, heading) of each citation; a comment or string broken over lines is joined
    first (the line break, its indent and a `#`, `--` or quote that continues it)."""
    joined = re.sub(r"\"?\s*\n\s*(?:#+|--|\*|\")?\s*", " ", text)
    return [(m[1], m[2]) for m in CITATION.finditer(joined)]


def test_citations_are_read_across_lines() -> None:
    text = 'x = 1  # as (README, "Many\n    # tenants") says\n'
    assert citations(text) == [("README", "Many tenants")]


def test_every_cited_section_exists() -> None:
    headings = {
        document_name(path): {heading.text.strip("`") for heading in parse(path)[0]}
        for path in documents()
    }
    wrong = []
    for path in citing_files():
        if path == Path(__file__):
            continue
        for document, heading in citations(path.read_text(encoding="utf-8", errors="replace")):
            name = "README.md" if document.startswith("README") else document
            if path.name == "README.md" and path.parent != ROOT and name == "README.md":
                continue  # transform/README.md: "the README" there is its own
            if name not in headings:
                wrong.append(f"{path.relative_to(ROOT)}: {document} does not exist")
            elif heading.strip("`") not in headings[name]:
                wrong.append(f'{path.relative_to(ROOT)}: {document} has no section "{heading}"')
    assert not wrong, "\n".join(wrong)


def test_no_document_cites_the_drafting_notes() -> None:
    notes = "shared/" + "spanning.md"  # spelled in two, so that this file does not cite it
    for path in [*documents(), *citing_files()]:
        text = path.read_text(encoding="utf-8", errors="replace")
        assert notes not in text, f"{path.relative_to(ROOT)} cites {notes}"
