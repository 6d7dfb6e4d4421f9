"""``dpn chain follow`` as a process against a real anvil: killed mid-stream (SIGKILL), it
resumes from its cursor without a duplicate or a gap; SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from ledger.chain import ChainClient, Wallet
from ledger.chain.gateway import ChainConfig, FundingChain
from ledger.core import with_check_character
from ledger.db.engine import make_engine
from ledger.db.migrate import upgrade
from ledger.db.schema import ChainEvent, JournalEntry, table
from ledger.funding import ProjectTerms, create_project, get_project
from ledger.journal.verify import verify
from ledger.journal.write import Ledger
from ledger.registry.members import register_member
from tests.anvil import Anvil, running_anvil

PLEDGES = 40
ETHER = 10**18


@pytest.fixture
def anvil() -> Iterator[Anvil]:
    with running_anvil() as node:
        yield node


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table(ChainEvent))).scalar_one())


def _follow(url: str, anvil: Anvil) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "DPN_CHAIN_RPC_URL": anvil.url,
        "DPN_CHAIN_DEPLOYER_KEY": anvil.private_keys[0],
        "DPN_CHAIN_CONFIRMATIONS": "0",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "api.cli",
            "--database",
            url,
            "chain",
            "follow",
            "--batch-blocks",
            "1",
            "--poll",
            "0.05",
            "--lease",
            "2",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _wait(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_killed_follower_resumes_without_duplicate_or_gap(tmp_path: Path, anvil: Anvil) -> None:
    url = f"sqlite:///{tmp_path / 'dpn.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine)
    ledger = Ledger(engine)
    client = ChainClient(anvil.url)
    keys = anvil.private_keys
    lister, organizer = (Wallet(client, k).address for k in keys[8:10])
    register_member(ledger, lister, "finance_node", "North", key="m1", actor="t")
    register_member(ledger, organizer, "individual", "Olga", key="m2", actor="t")
    terms = ProjectTerms(
        title="Mill roof",
        description="Panels.",
        organizer=organizer,
        asset_id=with_check_character("5SLRR00F0K7000421"),
        jurisdiction="NL",
        currency="ETH",
        goal_minor=1_000 * ETHER,
        deadline=datetime.now(UTC) + timedelta(days=30),
        min_pledge_minor=1,
    )
    project_id = create_project(ledger, lister, terms, key="p", actor="t").id
    funding = FundingChain(ledger, ChainConfig(anvil.url, keys[0], confirmations=0))
    escrow = funding.open_project(project_id, by=lister, key="o", actor="t").escrow
    assert escrow is not None
    wallets = [Wallet(client, k) for k in keys[1:8]]
    amounts = [ETHER // 1_000 + i for i in range(PLEDGES)]
    for i, amount in enumerate(amounts):  # one block each: the follower reads one a round
        wallets[i % len(wallets)].pledge_eth(escrow.address, amount)

    first = _follow(url, anvil)
    try:
        _wait(lambda: _count(engine) >= PLEDGES // 4)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    killed_at = _count(engine)
    assert 0 < killed_at < PLEDGES, "killed mid-stream"

    second = _follow(url, anvil)
    try:
        _wait(lambda: _count(engine) == PLEDGES)
        time.sleep(0.5)  # a few more rounds: nothing more may come
    finally:
        second.send_signal(signal.SIGTERM)
        out, _ = second.communicate(timeout=10)
    assert second.returncode == 0, out.decode()[-2000:]
    assert b"stopped: stopped" in out

    with engine.connect() as conn:
        rows = conn.execute(select(table(ChainEvent))).all()
        assert len({(r.tx_hash, r.log_index) for r in rows}) == len(rows) == PLEDGES
        assert sorted(r.amount for r in rows) == amounts
        pledges = conn.execute(
            select(func.count())
            .select_from(table(JournalEntry))
            .where(table(JournalEntry).c.kind == "chain.pledge")
        ).scalar_one()
        assert pledges == PLEDGES
        assert get_project(conn, project_id).chain_total_minor == sum(amounts)
        assert verify(conn).ok
    assert client.total_pledged(escrow.address) == sum(amounts)
    engine.dispose()
