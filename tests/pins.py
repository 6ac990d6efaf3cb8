"""Canaries for the code of ours that builds on a library's internals (docs/design.md,
"Custom pieces"): the installed version must be the one that code was written against, and
pyproject.toml must pin the same range, so that an upgrade fails here, by name, before it
fails somewhere in production."""

import re
from importlib.metadata import version
from pathlib import Path

from packaging.specifiers import SpecifierSet

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def pinned_range(distribution: str) -> SpecifierSet:
    """The range pyproject.toml's dependencies give `distribution`."""
    for requirement in re.findall(r'^\s*"([^"]+)",?\s*$', PYPROJECT.read_text(), flags=re.M):
        name, _, specifier = re.match(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?(.*)", requirement).groups()
        if name.lower().replace("_", "-") == distribution:
            return SpecifierSet(specifier)
    raise AssertionError(f"pyproject.toml does not list {distribution}.")


def assert_tested_version(distribution: str, tested: str, *, piece: str) -> None:
    """`tested` is the range `piece` was checked against (e.g. ">=4.3,<4.4")."""
    installed = version(distribution)
    assert installed in SpecifierSet(tested), (
        f"{distribution} {installed} is installed; {piece} was written against {tested} and relies on its "
        f"internals. Re-read it against the new version (docs/design.md), rerun bench/compare.py, then widen "
        f"this canary and pyproject.toml."
    )
    assert pinned_range(distribution) == SpecifierSet(tested), (
        f"pyproject.toml pins {distribution} {pinned_range(distribution)}, but {piece} is tested against {tested}."
    )
