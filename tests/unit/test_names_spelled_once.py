"""Account names and entry kinds are spelled in one place each: ``ledger/core/accounts.py``
builds and reads every ``member:``, ``pool:``, ``external:``, ``units:`` and ``ccy:``
name, and ``ledger/core/kinds.py`` names every kind of entry. Read from the source (an
AST, no imports run) over ``ledger``, ``api``, ``market`` and ``bench``: no other string
constant spells a prefix or a kind. Docstrings and ``__all__`` may (they name, they do
not build); the tests and migrations may too (they hold the bytes on purpose).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.core.accounts import HolderKind, InstrumentKind
from ledger.core.kinds import EntryKind

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("ledger", "api", "market", "bench")
THE_PLACES = {Path("ledger/core/accounts.py"), Path("ledger/core/kinds.py")}
_PREFIXES = "|".join(re.escape(k.value) for k in [*HolderKind, *InstrumentKind])
# A prefix where a name can start (at the start of the string or after a character that
# cannot be part of another word or key: ``demo:member:`` is an idempotency key), and
# with no space after it (``units: 5`` is prose).
PREFIX = re.compile(rf"(?<![\w.:-])({_PREFIXES}):(?!\s)")
KINDS = frozenset(EntryKind)


def _spellings(source: str) -> Iterator[tuple[int, str]]:
    """``(line, text)`` of each string constant of ``source`` that spells an account
    prefix or an entry kind, docstrings and ``__all__`` left out."""
    tree = ast.parse(source)
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            skipped.add(id(node.value))  # a docstring, or a string left as a statement
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            named_all = any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets)
            if named_all and node.value is not None:
                skipped |= {id(n) for n in ast.walk(node.value) if isinstance(n, ast.Constant)}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        if id(node) in skipped:
            continue
        if node.value in KINDS or PREFIX.search(node.value):
            yield node.lineno, node.value


def _sources() -> Iterator[Path]:
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if "node_modules" not in path.parts:
                yield path.relative_to(REPO)


def test_the_places_exist() -> None:
    sources = set(_sources())
    assert sources >= THE_PLACES
    assert len(sources) > 50  # the walk found the packages


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_but_the_places_spells_an_account_prefix_or_a_kind(package: str) -> None:
    found = [
        f"{path}:{line} spells {text[:60]!r}"
        for path in _sources()
        if path.parts[0] == package and path not in THE_PLACES
        for line, text in _spellings((REPO / path).read_text(encoding="utf-8"))
    ]
    assert found == [], "build names with ledger.core.accounts, kinds with EntryKind"


@pytest.mark.parametrize(
    "source",
    [
        'HOLDER = "member:0xabc"',
        'f"pool:{asset_id}"',
        'key.instrument.removeprefix("units:")',
        'x = f"ccy:{code}"',
        'holder.not_like("external:%")',
        'PATTERN = r"^(units:[0-9A-Z]{17}|ccy:[A-Z0-9]{2,10})$"',
        'EntryDraft(kind="transfer", idempotency_key=k, actor=a)',
        'if entry.kind == "asset.register": pass',
        'KINDS = frozenset({"cash.deposit", "node.update"})',
        'def f():\n    """Doc."""\n    return "role.grant"',
    ],
)
def test_the_check_catches_a_spelling(source: str) -> None:
    assert list(_spellings(source))


@pytest.mark.parametrize(
    "source",
    [
        '"""Accounts look like ``member:0x..`` and kinds like ``transfer``."""',
        'def f():\n    """Posts to ``units:<asset>``, as a ``reversal``."""',
        '__all__ = ["transfer", "reverse"]',
        'KEY = "demo:member:" + address',
        'CODE = "transfer_to_self"',
        'TEXT = "a transfer of units: 5"',
    ],
)
def test_the_check_lets_names_and_words_be(source: str) -> None:
    assert list(_spellings(source)) == []
