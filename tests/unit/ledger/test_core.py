"""The pure core stays pure: ``ledger/core/`` and ``ledger/errors.py`` import only the
standard library and each other (DESIGN: imports run one way; the core is stdlib only)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import ledger.core
from ledger.core import limits

CORE_DIR = Path(ledger.core.__file__).resolve().parent
LEDGER_DIR = CORE_DIR.parent
PURE_FILES = sorted(CORE_DIR.glob("*.py"))
ALLOWED_LEDGER_MODULES = ("ledger.core",)


def _module_name(path: Path) -> str:
    parts = path.relative_to(LEDGER_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_of(path: Path) -> str:
    name = _module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def imported_modules(source: str, package: str) -> list[str]:
    """Every module the source imports, relative imports resolved against ``package``.
    Dynamic imports (``__import__``, ``importlib.import_module``) are reported as
    ``<dynamic>``: the core has no reason to use them."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                found.append(".".join([*base, *([node.module] if node.module else [])]))
            else:
                found.append(node.module or "")
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name in {"__import__", "import_module"}:
                found.append("<dynamic>")
    return found


def is_allowed(module: str) -> bool:
    """Standard library, or the pure core itself."""
    if module.split(".")[0] in sys.stdlib_module_names:
        return True
    return any(module == m or module.startswith(m + ".") for m in ALLOWED_LEDGER_MODULES)


def test_the_pure_files_are_the_ones_expected() -> None:
    names = {p.name for p in PURE_FILES}
    assert {
        "__init__.py",
        "asset_id.py",
        "canonical.py",
        "entry.py",
        "limits.py",
        "state.py",
        "errors.py",
    } <= names


@pytest.mark.parametrize("path", PURE_FILES, ids=lambda p: _module_name(p))
def test_core_module_imports_only_stdlib_and_core(path: Path) -> None:
    modules = imported_modules(path.read_text(encoding="utf-8"), _package_of(path))
    forbidden = [m for m in modules if not is_allowed(m)]
    assert forbidden == [], f"{_module_name(path)} imports {forbidden}"


@pytest.mark.parametrize(
    ("source", "package", "bad"),
    [
        ("import sqlalchemy", "ledger.core", ["sqlalchemy"]),
        ("from eth_utils.address import to_checksum_address", "ledger.core", ["eth_utils.address"]),
        ("from ledger.journal import Ledger", "ledger.core", ["ledger.journal"]),
        ("from .. import journal", "ledger.core", ["ledger"]),
        ("from ..db import schema", "ledger.core", ["ledger.db"]),
        ("import importlib\nimportlib.import_module('requests')", "ledger.core", ["<dynamic>"]),
        ("if False:\n    import pydantic", "ledger.core", ["pydantic"]),
    ],
)
def test_the_import_check_catches_what_it_must(source: str, package: str, bad: list[str]) -> None:
    modules = imported_modules(source, package)
    assert [m for m in modules if not is_allowed(m)] == bad


@pytest.mark.parametrize(
    ("source", "package"),
    [
        ("import hashlib, json, uuid", "ledger.core"),
        ("from . import limits", "ledger.core"),
        ("from .entry import Entry", "ledger.core"),
        ("from ledger.core.errors import InvalidInput", "ledger.core"),
        ("from __future__ import annotations", "ledger"),
    ],
)
def test_the_import_check_allows_stdlib_and_core(source: str, package: str) -> None:
    modules = imported_modules(source, package)
    assert modules
    assert all(is_allowed(m) for m in modules)


def test_every_public_core_name_is_exported() -> None:
    for name in ledger.core.__all__:
        assert hasattr(ledger.core, name), name
    assert sorted(ledger.core.__all__) == sorted(set(ledger.core.__all__))


def test_limits_are_positive_integers_and_consistent() -> None:
    for name in limits.__all__:
        value = getattr(limits, name)
        assert isinstance(value, int) and not isinstance(value, bool), name
        assert value > 0, name
    assert limits.TOTAL_UNITS_DEFAULT <= limits.TOTAL_UNITS_MAX <= limits.AMOUNT_MAX
