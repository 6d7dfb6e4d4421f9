"""Fixtures of the chain tests: one eth-tester chain for the session, rolled back to a
snapshot after each test, and the roles on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_typing import ChecksumAddress

from tests.chain.evm import Chain


@pytest.fixture(scope="session")
def session_chain() -> Chain:
    return Chain()


@pytest.fixture
def chain(session_chain: Chain) -> Iterator[Chain]:
    """The session's chain, every change (time included) undone after the test."""
    snapshot = session_chain.snapshot()
    yield session_chain
    session_chain.revert_to(snapshot)


@pytest.fixture
def deployer(chain: Chain) -> ChecksumAddress:
    return chain.accounts[0]


@pytest.fixture
def organizer(chain: Chain) -> ChecksumAddress:
    return chain.accounts[1]


@pytest.fixture
def alice(chain: Chain) -> ChecksumAddress:
    return chain.accounts[2]


@pytest.fixture
def bob(chain: Chain) -> ChecksumAddress:
    return chain.accounts[3]


@pytest.fixture
def stranger(chain: Chain) -> ChecksumAddress:
    """An account that never pledged: finalize is open to anyone."""
    return chain.accounts[9]
