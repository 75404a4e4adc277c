"""The project's documents, README.md and docs/*.md, as the tests that run them read them.

A shell block (a fenced ```sh or ```bash block) is a documented command: some test runs it as
written (tests/unit/test_documented_commands.py names which). Its place is the document, the `## `
heading above it (None before the first) and the `### ` heading under that (None before the
first). A command that cannot run in a test carries a visible trailing comment,
`# not run by tests: <reason>`; the test that runs its block replaces it by `true`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS_DIR = ROOT / "docs"
SHELL_FENCES = ("sh", "bash")
NOT_RUN_MARK = re.compile(r"\s#\s*not run by tests:\s*(?P<reason>\S.*?)\s*$")
FENCE = re.compile(r"```(\S*)\s*")

Place = tuple[str, str | None, str | None]  # (document, section, subsection)


def documents() -> list[Path]:
    """README.md, then every docs/*.md by name."""
    return [README, *sorted(DOCS_DIR.glob("*.md"))]


def document_name(path: Path) -> str:
    """The document as the registry names it: its path from the project, with `/`."""
    return path.resolve().relative_to(ROOT).as_posix()


@dataclass(frozen=True)
class Block:
    document: str  # from the project: "README.md", "docs/warehouse.md"
    section: str | None
    subsection: str | None
    line: int  # of the opening fence, 1-based
    body: str

    @property
    def place(self) -> Place:
        return (self.document, self.section, self.subsection)

    def where(self) -> str:
        heading = self.subsection or self.section or "the top"
        return f"{self.document} line {self.line} ({heading})"

    def commands(self) -> list[str]:
        """The block's commands: lines that are neither blank nor comments, joined at `\\`."""
        commands: list[str] = []
        pending = ""
        for raw in self.body.splitlines():
            line = raw.rstrip()
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            commands.append((pending + line).strip())
            pending = ""
        if pending:
            commands.append(pending.strip())
        return commands

    def marked(self) -> dict[str, str]:
        """Its commands marked `# not run by tests: <reason>`, command -> reason."""
        found: dict[str, str] = {}
        for command in self.commands():
            match = NOT_RUN_MARK.search(command)
            if match:
                found[command[: match.start()].strip()] = match["reason"]
        return found

    def script(self) -> str:
        """The block for bash: marked commands replaced by `true`."""
        lines = []
        for raw in self.body.splitlines():
            match = NOT_RUN_MARK.search(raw)
            lines.append(f"true  # {raw.strip()}" if match and raw.strip()[:1] != "#" else raw)
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    line: int


def parse(path: Path) -> tuple[list[Heading], list[tuple[str, int, str, str | None, str | None]]]:
    """The document's headings, and its fenced blocks: (language, line, body, section,
    subsection). A `#` line inside a fence is code, not a heading."""
    headings: list[Heading] = []
    fences: list[tuple[str, int, str, str | None, str | None]] = []
    section: str | None = None
    subsection: str | None = None
    fence: tuple[str, int, list[str]] | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if fence is not None:
            if line.strip() == "```":
                language, start, body = fence
                fences.append((language, start, "\n".join(body), section, subsection))
                fence = None
            else:
                fence[2].append(line)
            continue
        opening = FENCE.fullmatch(line)
        if opening:
            fence = (opening[1], number, [])
            continue
        heading = re.match(r"(#{1,6}) (.+)$", line)
        if not heading:
            continue
        level, text = len(heading[1]), heading[2].strip()
        headings.append(Heading(level, text, number))
        if level == 2:
            section, subsection = text, None
        elif level == 3:
            subsection = text
    assert fence is None, f"{path.name}: the fence opened at line {fence[1]} is never closed"
    return headings, fences


def shell_blocks(path: Path) -> list[Block]:
    """Every fenced ```sh / ```bash block of the document, with the headings it sits under."""
    name = document_name(path)
    return [
        Block(name, section, subsection, line, body)
        for language, line, body, section, subsection in parse(path)[1]
        if language in SHELL_FENCES
    ]


def all_shell_blocks() -> list[Block]:
    return [block for path in documents() for block in shell_blocks(path)]


def blocks_at(document: str, section: str | None, subsection: str | None) -> list[Block]:
    """The shell blocks of one place, in order; there must be at least one."""
    place = (document, section, subsection)
    blocks = [block for block in shell_blocks(ROOT / document) if block.place == place]
    assert blocks, f"{document} has no ```sh/```bash block in {section!r} / {subsection!r}"
    return blocks


def section_text(document: str, heading: str) -> str:
    """The text under a heading line (e.g. "### Governance questions in SQL"), up to the next
    heading of the same level or above (a `#` line inside a fence is no heading)."""
    level = len(heading) - len(heading.lstrip("#"))
    text = heading[level:].strip()
    path = ROOT / document
    headings = parse(path)[0]
    starts = [h.line for h in headings if (h.level, h.text) == (level, text)]
    assert len(starts) == 1, f"{document} has {len(starts)} headings {heading!r}, not one"
    ends = [h.line for h in headings if h.line > starts[0] and h.level <= level]
    lines = path.read_text(encoding="utf-8").splitlines()
    return "\n".join(lines[starts[0] : ends[0] - 1 if ends else len(lines)]) + "\n"


def sql_blocks(text: str) -> list[str]:
    """The bodies of the ```sql blocks of a piece of a document, in order."""
    return re.findall(r"^```sql\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
