"""A real anvil node for the tests: started on a free port, stopped after the block.

The launcher lives in ``ledger.chain.anvil`` (``make run`` and the benchmark use it too);
this adds the skip when the binary is not installed. See that module for where the binary
comes from and for the reorganisation methods that work on anvil 1.7.1
(``tests/chain/test_anvil_client.py`` holds them true).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ledger.chain.anvil import (
    ANVIL_MNEMONIC,
    NODE_MODULES,
    Anvil,
    AnvilError,
    anvil_binary,
    dev_private_keys,
    start_anvil,
)

__all__ = [
    "ANVIL_MNEMONIC",
    "Anvil",
    "AnvilError",
    "anvil_binary",
    "dev_private_keys",
    "running_anvil",
]


@contextmanager
def running_anvil(*, block_time: float | None = None) -> Iterator[Anvil]:
    """A fresh anvil on 127.0.0.1 for the ``with`` block (automine, or one block every
    ``block_time`` seconds); skips the test when the binary is not installed."""
    binary = anvil_binary()
    if binary is None:
        pytest.skip(
            f"anvil not installed under {NODE_MODULES}/@foundry-rs/ "
            "(run `make` or `cd contracts && npm ci --ignore-scripts`)"
        )
    with tempfile.TemporaryDirectory(prefix="anvil-") as folder:
        node = start_anvil(binary, Path(folder), block_time=block_time)
        try:
            yield node.anvil
        finally:
            node.stop()
