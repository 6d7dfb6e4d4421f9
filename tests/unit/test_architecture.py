"""The rules that hold the house up, read from the source (an AST, no imports run):

- ``ledger.core`` and ``market.book`` import only the standard library (held by
  ``tests/unit/ledger/test_core.py`` and ``tests/unit/market/test_book_imports.py``);
- ``ledger`` never imports ``market`` or ``api``; ``market`` never imports ``api``;
- ``api`` imports only public names of ``ledger`` and ``market`` (no ``_private`` name,
  no module whose name starts with ``_``), and no route touches a table
  (``ledger.db.schema``) or SQL (``sqlalchemy``) itself.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _modules(package: str) -> Iterator[tuple[str, Path]]:
    for path in sorted((REPO / package.replace(".", "/")).rglob("*.py")):
        if "node_modules" in path.parts:
            continue
        relative = path.relative_to(REPO).with_suffix("")
        parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
        yield ".".join(parts), path


def _imports(path: Path, module: str) -> Iterator[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every import of ``path``,
    relative imports resolved against ``module``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base, [a.name for a in node.names], node.lineno


def _top(name: str) -> str:
    return name.split(".")[0]


@pytest.mark.parametrize(
    ("package", "forbidden"), [("ledger", ("market", "api")), ("market", ("api",))]
)
def test_imports_run_one_way(package: str, forbidden: tuple[str, ...]) -> None:
    found = [
        f"{path.relative_to(REPO)}:{line} imports {name}"
        for module, path in _modules(package)
        for name, _, line in _imports(path, module)
        if _top(name) in forbidden
    ]
    assert found == []


def test_api_takes_only_public_names_and_no_tables() -> None:
    found = []
    for module, path in _modules("api"):
        for name, names, line in _imports(path, module):
            where = f"{path.relative_to(REPO)}:{line}"
            if _top(name) in ("ledger", "market"):
                if any(part.startswith("_") for part in name.split(".")):
                    found.append(f"{where} imports the private module {name}")
                found += [f"{where} imports {name}.{n}" for n in names if n.startswith("_")]
                if name == "ledger.db.schema":
                    found.append(f"{where} imports tables ({', '.join(names)})")
            if module.startswith("api.routes") and _top(name) == "sqlalchemy":
                found.append(f"{where}: a route speaks SQL ({name})")
    assert found == []


def _engine_calls(path: Path) -> Iterator[tuple[str, int]]:
    """``<engine>.connect()``, ``.begin()`` or ``.raw_connection()`` calls in ``path``,
    where the receiver is named like an engine (``engine``, ``ledger.engine``, ...)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in ("connect", "begin", "raw_connection"):
            continue
        receiver = node.func.value
        name = (
            receiver.id
            if isinstance(receiver, ast.Name)
            else receiver.attr
            if isinstance(receiver, ast.Attribute)
            else ""
        )
        if name.lower().endswith("engine"):
            yield f"{ast.unparse(node.func)}()", node.lineno


# Connections that serve no request, each with why it may take its own.
_OWN_CONNECTIONS = {
    # The LISTEN thread: a raw driver connection in autocommit, never back to the pool;
    # when it is lost, the thread forgets the cache and connects again.
    ("api/principals.py", "self._engine.raw_connection()"),
}


@pytest.mark.parametrize("package", ["ledger", "market", "api"])
def test_connections_come_only_from_ledger_db(package: str) -> None:
    # ``ledger.db.engine``'s ``read_connection`` and ``write_connection`` translate the
    # driver's errors (an outage is 503 ``database_unavailable``, never a 500): a
    # connection taken from the engine anywhere else would bypass that one boundary.
    found = [
        f"{path.relative_to(REPO)}:{line} calls {call}"
        for module, path in _modules(package)
        if not module.startswith("ledger.db")
        for call, line in _engine_calls(path)
        if (str(path.relative_to(REPO)), call) not in _OWN_CONNECTIONS
    ]
    assert found == []


def test_the_connection_check_sees_an_engine_call(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "def f(ledger, engine, conn):\n"
        "    with ledger.engine.begin() as c: pass\n"
        "    with engine.connect() as c: pass\n"
        "    with conn.begin(): pass\n"
    )
    assert list(_engine_calls(source)) == [("ledger.engine.begin()", 2), ("engine.connect()", 3)]
