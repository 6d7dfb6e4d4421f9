"""The chain's part of the command line: ``dpn chain follow | reconcile | status`` and
``dpn run`` (what ``make run`` runs: a local anvil when there is one, the demo, the API).

``dpn chain follow`` runs the chain mirror alone, in the foreground, until SIGTERM or
SIGINT; it takes the same database lease as the mirror inside ``dpn serve``, so running
both writes through one of them at a time. ``dpn chain reconcile`` prints, per escrowed
project, the ledger's total against the contract's, and exits 1 if any differs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from ledger.core.errors import LedgerError, Refused
from ledger.journal.write import Ledger

if TYPE_CHECKING:  # web3 and the chain are imported when a command needs them: every
    # other ``dpn`` command starts a second sooner without them
    from ledger.chain.anvil import AnvilProcess
    from ledger.chain.gateway import FundingChain

__all__ = ["add_chain_commands", "chain_demo_lines", "dev_chain", "run_chain_command"]

log = logging.getLogger("dpn.chain")
# Where ``dpn run`` keeps its anvil's chain between runs (beside the SQLite database).
DEV_CHAIN_FOLDER = Path("var/anvil")
DEV_CHAIN_PORT = 8545
DEV_CONFIRMATIONS = "2"


def add_chain_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    chain = commands.add_parser("chain", help="the chain mirror of the pledge escrows")
    actions = chain.add_subparsers(dest="chain_command", required=True)
    follow = actions.add_parser("follow", help="run the chain mirror alone until SIGTERM")
    follow.add_argument("--poll", type=float, default=1.0, help="seconds between rounds")
    follow.add_argument(
        "--batch-blocks", type=int, default=2_000, help="blocks read per round (1..2000)"
    )
    follow.add_argument(
        "--lease", type=float, default=15.0, help="seconds the writer's lease lasts (1..300)"
    )
    reconcile = actions.add_parser("reconcile", help="ledger totals against the contracts'")
    reconcile.add_argument("--json", action="store_true", help="print JSON")
    actions.add_parser("status", help="where the mirror stands against the chain")


def _funding(engine: Engine) -> FundingChain:
    from ledger.chain.gateway import ChainConfig, FundingChain

    config = ChainConfig.from_env()
    if config is None:
        raise Refused("chain_off", "no chain configured: set DPN_CHAIN_RPC_URL")
    return FundingChain(Ledger(engine), config)


def run_chain_command(engine: Engine, args: argparse.Namespace) -> int:
    funding = _funding(engine)
    if args.chain_command == "follow":
        if (
            not 1 <= args.batch_blocks <= 2_000
            or not 0.01 <= args.poll <= 3_600
            or not 1 <= args.lease <= 300
        ):
            raise Refused(
                "follow_args", "--batch-blocks is 1..2000, --poll 0.01..3600, --lease 1..300"
            )
        return _follow(funding, args.poll, args.batch_blocks, args.lease)
    if args.chain_command == "reconcile":
        lines = funding.reconcile()
        differing = [
            line for line in lines if line.difference_minor != 0 or line.pledger_differences
        ]
        if args.json:
            print(
                json.dumps(
                    [
                        {
                            "project_id": line.project_id,
                            "escrow": line.escrow,
                            "ledger_total_minor": str(line.ledger_total_minor),
                            "contract_total_minor": None
                            if line.contract_total_minor is None
                            else str(line.contract_total_minor),
                            "difference_minor": None
                            if line.difference_minor is None
                            else str(line.difference_minor),
                            "pledgers": [
                                {"pledger": p, "ledger_minor": str(a), "contract_minor": str(b)}
                                for p, a, b in line.pledger_differences
                            ],
                        }
                        for line in lines
                    ]
                )
            )
        else:
            for line in lines:
                mark = "ok" if line not in differing else "DIFFERS"
                print(
                    f"project {line.project_id} escrow {line.escrow}: ledger"
                    f" {line.ledger_total_minor}, contract {line.contract_total_minor} {mark}"
                )
                for pledger, ours, theirs in line.pledger_differences:
                    print(f"  {pledger}: ledger {ours}, contract {theirs}")
            print(f"{len(lines)} escrows, {len(differing)} differ")
        return 1 if differing else 0
    follower = funding.follower()
    result = follower.round()
    follower.release()
    status = follower.status()
    print(
        json.dumps(
            {
                "state": status.state,
                "chain_id": status.chain_id,
                "head": status.head,
                "cursor": status.cursor,
                "confirmations": status.confirmations,
                "lag_blocks": status.lag_blocks,
                "recorded_now": None if result is None else result.recorded,
            }
        )
    )
    return 0


def _follow(funding: FundingChain, poll_s: float, batch_blocks: int, lease_s: float) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    follower = funding.follower(poll_s=poll_s, batch_blocks=batch_blocks, lease_ttl_s=lease_s)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"following chain at {funding.config.confirmations} confirmations", flush=True)
    follower.run(stop)
    status = follower.status()
    print(f"stopped: {status.state}, cursor {status.cursor}, {status.recorded} events recorded")
    return 0 if status.state == "stopped" else 1


def chain_demo_lines(engine: Engine) -> list[str]:
    """Run the chain demo when a chain is configured; its lines, or one that says why not."""
    if not os.environ.get("DPN_CHAIN_RPC_URL", "").strip():  # as ChainConfig.from_env
        return ["no chain configured (DPN_CHAIN_RPC_URL): demo projects without escrows"]
    from api.demo_chain import run_chain_demo
    from ledger.chain.gateway import ChainConfig, FundingChain

    config = ChainConfig.from_env()
    if config is None:  # pragma: no cover - the variable was read just above
        return ["no chain configured (DPN_CHAIN_RPC_URL): demo projects without escrows"]
    try:
        return run_chain_demo(Ledger(engine), FundingChain(Ledger(engine), config))
    except LedgerError as error:
        return [f"chain demo not loaded: {error.code}: {error.message}"]


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def dev_chain(print_line: Callable[[str], None] = print) -> AnvilProcess | None:
    """For ``dpn run``: start a local anvil unless a chain is configured (or none is
    installed), keeping its chain in ``var/anvil`` between runs, and point the
    environment at it. Prints where it listens and the dev wallets."""
    if os.environ.get("DPN_CHAIN_RPC_URL"):
        print_line(f"chain: {os.environ['DPN_CHAIN_RPC_URL'].split('@')[-1]} (configured)")
        return None
    from ledger.chain.anvil import anvil_binary, start_anvil

    binary = anvil_binary()
    if binary is None:
        print_line("anvil not installed (contracts/node_modules): running without chain features")
        return None
    DEV_CHAIN_FOLDER.mkdir(parents=True, exist_ok=True)
    node = start_anvil(
        binary,
        DEV_CHAIN_FOLDER.resolve(),
        port=DEV_CHAIN_PORT if _free(DEV_CHAIN_PORT) else 0,
        state=(DEV_CHAIN_FOLDER / "state.json").resolve(),
        state_interval_s=2,
        die_with_parent=True,
    )
    keys = node.anvil.private_keys
    os.environ["DPN_CHAIN_RPC_URL"] = node.anvil.url
    os.environ["DPN_CHAIN_DEPLOYER_KEY"] = keys[0]
    os.environ.setdefault("DPN_CHAIN_CONFIRMATIONS", DEV_CONFIRMATIONS)
    from eth_account import Account

    print_line(
        f"anvil at {node.anvil.url} (chain 31337, state in {DEV_CHAIN_FOLDER}/state.json);"
        f" confirmations {os.environ['DPN_CHAIN_CONFIRMATIONS']}"
    )
    print_line("  dev wallets (anvil's well-known keys, 10,000 ETH each; #0 deploys the escrows):")
    for i, key in enumerate(keys):
        print_line(f"  #{i} {Account.from_key(key).address}  {key}")
    return node


def mine_every_second(node: AnvilProcess | None) -> None:
    """After the demo (sent with automine, at once), a block every second: confirmations
    come even when nobody sends a transaction."""
    if node is not None:
        node.anvil.rpc("evm_setIntervalMining", [1])
