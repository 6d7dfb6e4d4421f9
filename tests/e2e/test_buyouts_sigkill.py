"""The server's buy-out clock survives SIGKILL without losing or duplicating anything.

A SQLite database holds 960 installments already due (8 sellers, 120 each, one unit at
a time). ``dpn serve`` starts paying them at once, each in its own transaction; it is
killed (SIGKILL, the whole process group) part-way. At that moment every installment
paid has exactly one ``buyout.settle`` entry and every entry its paid row. A second
``dpn serve`` pays the rest, and stops cleanly on SIGTERM. Then each installment was paid
exactly once, the units and cash moved exactly, holds equal what is left (nothing), and
``dpn verify`` is clean.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.http.server import free_port
from ledger.core import EntryKind
from ledger.core.accounts import currency_of, member_holder, units_of
from ledger.db.engine import make_engine
from ledger.db.migrate import upgrade
from ledger.journal.write import Ledger
from ledger.money import deposit
from ledger.outputs.buyouts import BuyoutTerms, InstallmentTerms, accept_plan, propose_plan
from ledger.registry.assets import issue_units, register_asset
from ledger.registry.members import register_member

from .signin import wallet

REPO = Path(__file__).resolve().parents[2]
ASSET = "1M8GDM9AXKP042788"
BUYER = wallet(151).address
SELLERS = [wallet(152 + n).address for n in range(8)]
EACH = 120  # installments a seller: the most a plan takes
TOTAL = len(SELLERS) * EACH
WAIT_S = 90.0
SETTLE = EntryKind.BUYOUT_SETTLE.value


def _prepare(url: str) -> None:
    """Everything due already: the plans are made on a clock two hours behind."""
    engine = make_engine(url)
    try:
        upgrade(engine)
        ledger = Ledger(engine, clock=lambda: datetime.now(UTC) - timedelta(hours=2))
        for n, who in enumerate([BUYER, *SELLERS]):
            register_member(ledger, who, "individual", f"m{n}", key=f"m{n}", actor="t")
        register_asset(ledger, ASSET, make="R", model="G", serial="1", location="W",
                       jurisdiction="NL", key="asset", actor="t")  # fmt: skip
        issue_units(ledger, ASSET, [(s, 1_000) for s in SELLERS], key="issue", actor="t")
        deposit(ledger, member=BUYER, currency="EUR", amount=10**9, reference="w", key="d",
                actor="t")  # fmt: skip
        start = datetime.now(UTC) - timedelta(hours=1)
        for n, seller in enumerate(SELLERS):
            steps = tuple(
                InstallmentTerms(seller, start + timedelta(seconds=i), 1, 7) for i in range(EACH)
            )
            plan = propose_plan(ledger, BUYER, BuyoutTerms(ASSET, "EUR", steps), key=f"p{n}",
                                actor="t")  # fmt: skip
            accept_plan(ledger, plan.id, seller=seller, key=f"a{n}", actor="t")
    finally:
        engine.dispose()


def _serve(url: str, log: Path) -> subprocess.Popen[bytes]:
    env = os.environ | {"DPN_DATABASE_URL": url}
    command = [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1"]
    with log.open("ab") as out:
        return subprocess.Popen(
            [*command, "--port", str(free_port()), "--workers", "1"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def _counts(path: Path) -> tuple[int, int]:
    """(installments paid, buyout.settle entries), read in one transaction."""
    with sqlite3.connect(path, timeout=30) as conn:
        conn.execute("BEGIN")
        paid = conn.execute(
            "SELECT count(*) FROM buyout_installments WHERE state = 'paid'"
        ).fetchone()[0]
        settled = conn.execute(
            f"SELECT count(*) FROM journal_entries WHERE kind = '{SETTLE}'"
        ).fetchone()[0]
        return int(paid), int(settled)


def _until(path: Path, done: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while _counts(path)[0] < done:
        assert process.poll() is None, log.read_text(errors="replace")[-2000:]
        assert time.monotonic() < deadline, _counts(path)
        time.sleep(0.02)


def test_a_killed_server_pays_each_installment_once(tmp_path: Path) -> None:
    path = tmp_path / "dpn.sqlite3"
    url = f"sqlite:///{path}"
    log = tmp_path / "server.log"
    _prepare(url)
    first = _serve(url, log)
    try:
        _until(path, 10, first, log)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    paid, settled = _counts(path)
    assert 10 <= paid < TOTAL, paid  # killed part-way
    assert settled == paid  # no entry without its row, no row without its entry

    second = _serve(url, log)
    try:
        _until(path, TOTAL, second, log)
    finally:
        second.send_signal(signal.SIGTERM)
        stopped = second.wait(timeout=30)
        if second.poll() is None:  # pragma: no cover - only if SIGTERM did not stop it
            os.killpg(second.pid, signal.SIGKILL)
    # A clean stop: uvicorn finishes the lifespan (the clock stopped), then raises the
    # signal again as it leaves (hence -SIGTERM).
    assert stopped in (0, -signal.SIGTERM), log.read_text(errors="replace")[-2000:]
    assert _counts(path) == (TOTAL, TOTAL)
    with sqlite3.connect(path) as conn:
        keys = conn.execute(
            f"SELECT count(DISTINCT idempotency_key) FROM journal_entries WHERE kind = '{SETTLE}'"
        ).fetchone()[0]
        assert keys == TOTAL
        states = dict(conn.execute("SELECT state, count(*) FROM buyout_plans GROUP BY state"))
        assert states == {"completed": len(SELLERS)}
        balances = dict(
            conn.execute(
                "SELECT a.holder || ' ' || a.instrument, b.balance || ' ' || b.held"
                " FROM balances b JOIN accounts a ON a.id = b.account_id"
            ).fetchall()
        )
    units, cash = units_of(ASSET), currency_of("EUR")
    assert balances[f"{member_holder(BUYER)} {units}"] == f"{TOTAL} 0"
    assert balances[f"{member_holder(BUYER)} {cash}"] == f"{10**9 - 7 * TOTAL} 0"
    for seller in SELLERS:
        assert balances[f"{member_holder(seller)} {units}"] == f"{1_000 - EACH} 0"
        assert balances[f"{member_holder(seller)} {cash}"] == f"{7 * EACH} 0"
    verified = subprocess.run(
        [sys.executable, "-m", "api.cli", "verify"], cwd=REPO, capture_output=True, text=True,
        env=os.environ | {"DPN_DATABASE_URL": url}, timeout=120,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr
