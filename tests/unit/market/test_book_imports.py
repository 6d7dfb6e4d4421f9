"""The pure book stays pure: every module of ``market/book/`` imports only the standard
library and ``market.book`` itself (DESIGN: no database, no HTTP, no clock in the book)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import market.book

BOOK_DIR = Path(market.book.__file__).resolve().parent
BOOK_FILES = sorted(BOOK_DIR.glob("*.py"))


def imported_modules(path: Path) -> list[str]:
    """Every module ``path`` imports, relative imports resolved against ``market.book``."""
    modules: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = "market.book".rsplit(".", node.level - 1)[0]
                modules.append(f"{parent}.{node.module}" if node.module else parent)
            elif node.module is not None:
                modules.append(node.module)
    return modules


def test_the_book_files_are_the_ones_expected() -> None:
    names = {p.name for p in BOOK_FILES}
    assert {"__init__.py", "book.py", "level.py", "matching.py", "state.py"} <= names


@pytest.mark.parametrize("path", BOOK_FILES, ids=lambda p: p.stem)
def test_book_module_imports_only_stdlib_and_the_book(path: Path) -> None:
    forbidden = [
        m
        for m in imported_modules(path)
        if m.split(".")[0] not in sys.stdlib_module_names
        and m != "market.book"
        and not m.startswith("market.book.")
    ]
    assert forbidden == [], f"market/book/{path.name} imports {forbidden}"


def test_a_forbidden_import_is_caught(tmp_path: Path) -> None:
    source = tmp_path / "impure.py"
    source.write_text("import sqlalchemy\nfrom ledger.core import Entry\nimport heapq\n")
    assert imported_modules(source) == ["sqlalchemy", "ledger.core", "heapq"]
