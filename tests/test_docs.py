"""The README stays a front door, and the pages it leads to stay where it says."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as dashes."""
    anchors = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def _local_links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return [target for target in LINK.findall(text) if not re.match(r"[a-z]+:", target)]


def _broken(page: Path) -> list[str]:
    broken = []
    for target in _local_links(page):
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in _anchors(linked)):
            broken.append(target)
    return broken


def test_the_readme_is_a_front_door_of_at_most_8_kib():
    size = len((ROOT / "README.md").read_bytes())
    assert size <= 8 * 1024, f"README.md is {size} bytes; move the detail to a page of docs/ and link it."


def test_the_readme_leads_to_docs_pages_that_exist():
    links = [target for target in _local_links(ROOT / "README.md") if target.startswith("docs/")]
    assert len(links) >= 6
    assert _broken(ROOT / "README.md") == []


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda page: page.name)
def test_links_between_docs_pages_resolve(page):
    assert _broken(page) == []


def test_the_configuration_page_names_every_variable_the_settings_read():
    settings = (ROOT / "config" / "settings.py").read_text()
    read = set(re.findall(r"""(?:environ\.get|env_bool|env_list)\(\s*["']([A-Z][A-Z0-9_]*)["']""", settings))
    assert {"DATABASE_URL", "REDIS_URL", "Q_BULK"} <= read  # the pattern still finds them
    page = (DOCS / "configuration.md").read_text()
    assert sorted(name for name in read if f"`{name}`" not in page) == []
