"""The fleet report's page, read: a DOM of the HTML, its tables and bars by name, and the
command run on the fixture warehouse, in process (the `report` fixture) or as a process (the
`reported` fixture, shared by a test module).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
from spanning_reports import fleet as fleet_report
from typing_extensions import override

from tests.report_fixtures import fleet
from tests.report_warehouse import Rows, built_at, run_report, write_duckdb, write_results

# ----------------------------------------------------------------------------- the DOM


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    parent: Node | None = None
    children: list[Node] = field(default_factory=list)
    content: list[str | Node] = field(default_factory=list)  # text and children, in order

    @property
    def text(self) -> str:
        return "".join(part if isinstance(part, str) else part.text for part in self.content)

    def find_all(self, test: Callable[[Node], bool]) -> list[Node]:
        found = []
        for child in self.children:
            if test(child):
                found.append(child)
            found.extend(child.find_all(test))
        return found

    def find(self, test: Callable[[Node], bool]) -> Node:
        found = self.find_all(test)
        assert found, "no such element"
        return found[0]


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}


class Tree(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.current = self.root

    @override
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, parent=self.current)
        self.current.children.append(node)
        self.current.content.append(node)
        if tag not in VOID:
            self.current = node

    @override
    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    @override
    def handle_endtag(self, tag: str) -> None:
        node: Node | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    @override
    def handle_data(self, data: str) -> None:
        self.current.content.append(data)


def parse(page: str) -> Node:
    tree = Tree()
    tree.feed(page)
    tree.close()
    return tree.root


def table_rows(dom: Node, name: str) -> list[Node]:
    table = dom.find(lambda n: n.tag == "table" and n.attrs.get("data-table") == name)
    body = table.find(lambda n: n.tag == "tbody")
    return [row for row in body.children if row.tag == "tr"]


def headers(dom: Node, name: str) -> list[str]:
    table = dom.find(lambda n: n.tag == "table" and n.attrs.get("data-table") == name)
    return [cell.text for cell in table.find_all(lambda n: n.tag == "th")]


def cells_by_header(dom: Node, name: str, row: Node) -> dict[str, str]:
    cells = [cell.text for cell in row.children if cell.tag == "td"]
    return dict(zip(headers(dom, name), cells, strict=True))


def bars(dom: Node, chart: str) -> list[Node]:
    svg = dom.find(lambda n: n.tag == "svg" and n.attrs.get("data-chart") == chart)
    return svg.find_all(lambda n: n.tag == "g" and "bar" in n.attrs.get("class", "").split())


# ----------------------------------------------------------------------------- the command


@dataclass
class Written:
    code: int
    page: str  # "" when nothing was written
    stdout: str
    stderr: str

    @property
    def dom(self) -> Node:
        return parse(self.page)

    def alert(self) -> Node | None:
        """The first element of the body, when it is the freshness alert."""
        body = self.dom.find(lambda n: n.tag == "body")
        first = body.children[0]
        return first if "alert" in first.attrs.get("class", "").split() else None


@pytest.fixture
def report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Written]:
    """Write the marts into a DuckDB file and run the command on it, in process. dbt's
    default results are looked for in this test's folder, never in the developer's tree."""
    monkeypatch.setenv("DBT_DUCKDB_TARGET_PATH", str(tmp_path / "dbt-target"))

    def run(rows: Rows, *args: str, without: tuple[str, ...] = ()) -> Written:
        db = tmp_path / f"spanning-{uuid.uuid4().hex[:6]}.duckdb"
        write_duckdb(db, rows, without=without)
        output = tmp_path / "fleet_report.html"
        output.unlink(missing_ok=True)
        code = fleet_report.main(["--duckdb", str(db), "-o", str(output), *args])
        captured = capsys.readouterr()
        page = output.read_text(encoding="utf-8") if output.exists() else ""
        return Written(code, page, captured.out, captured.err)

    return run


@dataclass
class Reported:
    db: Path
    report: Path
    page: str  # the file, as written


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> Reported:
    """The fixture fleet of 28 tenants in a DuckDB file, and the page the command, run as a
    process, writes of it after a dbt build that succeeded."""
    work = tmp_path_factory.mktemp("fleet_report")
    db = work / "spanning.duckdb"
    write_duckdb(db, fleet(28))
    report = work / "fleet_report.html"
    results = write_results(work / "run_results.json", ["success"], built_at(db))
    done = run_report("--duckdb", str(db), "--dbt-results", str(results), output=report)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == str(report)
    return Reported(db, report, report.read_text(encoding="utf-8"))
