"""The documentation's links and test references stay true: every relative link in README.md and docs/*.md
points to a file of the repository (and, into a Markdown page, to one of its headings), and every
`tests/...py::test_name` reference in docs/practices.md names a test function that exists."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# [text](target) and [text](target "title"); images too.
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
TEST_REFERENCE = re.compile(r"\b(tests/[\w/]+\.py)::(\w+)")
FENCE = re.compile(r"^(```|~~~)")


def _prose(text: str) -> str:
    """The text outside fenced code blocks and indented code lines (commands there are not links)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced and not line.startswith("    "):
            lines.append(line)
    return "\n".join(lines)


def _relative_links(page: Path) -> list[str]:
    return [target for target in LINK.findall(_prose(page.read_text()))
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target) and not target.startswith("#")]


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens (duplicates numbered)."""
    anchors: set[str] = set()
    for line in _prose(page.read_text()).splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        anchor = re.sub(r"[^\w\- ]", "", match.group(1).lower()).replace(" ", "-")
        candidate, number = anchor, 1
        while candidate in anchors:
            candidate, number = f"{anchor}-{number}", number + 1
        anchors.add(candidate)
    return anchors


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for node in tree.body:  # test classes
        if isinstance(node, ast.ClassDef):
            names |= {item.name for item in node.body if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))}
    return {name for name in names if name.startswith("test")}


def test_the_link_finder_sees_links_and_skips_code(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("See [a](a.md#x), [web](https://example.com), [here](#top) and ![img](pic.png \"t\").\n"
                    "```\n[not](code.md)\n```\n    [indented](code.md)\n")
    assert _relative_links(page) == ["a.md#x", "pic.png"]
    page.write_text("# Top `x`\n## A: b, c\n## A: b, c\n")
    assert _anchors(page) == {"top-x", "a-b-c", "a-b-c-1"}


@pytest.mark.parametrize("page", PAGES, ids=[str(page.relative_to(ROOT)) for page in PAGES])
def test_every_relative_link_points_to_an_existing_file(page):
    broken = []
    for target in _relative_links(page):
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve()
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target}: no such heading in {resolved.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: {broken}"


def test_every_test_reference_of_practices_names_an_existing_test():
    page = ROOT / "docs" / "practices.md"
    references = TEST_REFERENCE.findall(page.read_text())
    assert len(references) >= 20, "practices.md should reference the tests of each practice"
    missing = sorted(f"{path}::{name}" for path, name in set(references)
                     if not (ROOT / path).is_file() or name not in _test_functions(ROOT / path))
    assert not missing, f"docs/practices.md names tests that do not exist: {missing}"


def test_every_practice_links_its_tests_by_the_file_it_names():
    """Each `path::name` reference in practices.md is the text of a link to that very file."""
    text = (ROOT / "docs" / "practices.md").read_text()
    for path, name in TEST_REFERENCE.findall(text):
        assert f"[`{path}::{name}`](../{path})" in text, f"{path}::{name} is not linked to ../{path}"
