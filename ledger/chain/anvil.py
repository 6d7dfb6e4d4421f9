"""A local anvil node: found in ``contracts/node_modules``, started on a port, its dev keys,
raw RPC, stopped. Used by ``make run`` (``dpn run``), the chain benchmark and the tests.

The binary comes from ``contracts/node_modules`` (``make`` runs ``npm ci --ignore-scripts``
there). With ``--ignore-scripts`` the ``@foundry-rs/anvil`` package's postinstall never runs,
and its ``.bin/anvil`` is only a node script that looks for the platform package, so the
native binary is taken straight from ``@foundry-rs/anvil-<os>-<arch>/bin/anvil`` (anvil 1.7.1
at the time of writing). Without it the tests that need a node skip, saying why.

Anvil listens on ``--port 0`` (the kernel picks a free port, no race with another test run)
and prints ``Listening on 127.0.0.1:<port>``; its output goes to a temporary file, never
to a pipe that would fill up and stall the node.

Reorgs on anvil 1.7.1 (``tests/chain/test_anvil_client.py`` holds all this true):

- ``anvil_reorg`` works: params ``[depth, [[tx, block_offset], ...]]``. It drops the last
  ``depth`` blocks and mines ``depth`` new ones at the same numbers (new hashes, new
  timestamps); each listed ``tx`` (a transaction request object for an unlocked dev
  account, or raw signed bytes as hex) goes into the new block ``block_offset``
  (0..depth-1) of them. The dropped blocks' transactions are not replayed: a pledge
  left out of the list is gone, and its sender's nonce with it.
- ``evm_snapshot`` / ``evm_revert`` then ``evm_mine`` works as well: the chain is cut
  back to the snapshot and new blocks take the old numbers with other hashes.
"""

from __future__ import annotations

import json
import platform
import re
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from eth_account import Account

__all__ = [
    "ANVIL_MNEMONIC",
    "NODE_MODULES",
    "Anvil",
    "AnvilError",
    "AnvilProcess",
    "anvil_binary",
    "dev_private_keys",
    "start_anvil",
]

REPO = Path(__file__).resolve().parents[2]
NODE_MODULES = REPO / "contracts" / "node_modules"
# anvil's default dev accounts come from this mnemonic at m/44'/60'/0'/0/i.
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
DEV_ACCOUNTS = 10
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0
RPC_TIMEOUT_S = 10.0
_LISTENING = re.compile(r"Listening on ([0-9.]+):(\d+)")
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


class AnvilError(RuntimeError):
    """anvil answered a raw RPC call with an error, or did not start."""


def anvil_binary() -> Path | None:
    """The native anvil of ``contracts/node_modules`` for this platform, or None."""
    system = platform.system().lower().replace("windows", "win32")
    arch = _ARCH.get(platform.machine().lower(), platform.machine().lower())
    exe = "anvil.exe" if system == "win32" else "anvil"
    native = NODE_MODULES / "@foundry-rs" / f"anvil-{system}-{arch}" / "bin" / exe
    return native if native.is_file() else None


@cache
def dev_private_keys(count: int = DEV_ACCOUNTS) -> tuple[str, ...]:
    """anvil's default dev keys (0x + 64 hex), derived from its mnemonic."""
    Account.enable_unaudited_hdwallet_features()
    return tuple(
        Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key.to_0x_hex()
        for i in range(count)
    )


@dataclass(frozen=True, slots=True)
class Anvil:
    """A running anvil: its URL, its funded dev keys (10,000 ETH each), and raw RPC."""

    url: str
    private_keys: tuple[str, ...]
    pid: int

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        """The ``result`` of one JSON-RPC call; ``AnvilError`` on an error answer."""
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
        request = urllib.request.Request(
            self.url, data=body.encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=RPC_TIMEOUT_S) as response:
            answer = json.loads(response.read())
        if "error" in answer:
            raise AnvilError(f"{method}: {answer['error']}")
        return answer["result"]

    def mine(self, blocks: int = 1) -> None:
        """Mines ``blocks`` empty blocks."""
        self.rpc("anvil_mine", [hex(blocks)])

    def snapshot(self) -> str:
        return str(self.rpc("evm_snapshot"))

    def revert(self, snapshot: str) -> None:
        if self.rpc("evm_revert", [snapshot]) is not True:
            raise AnvilError(f"evm_revert {snapshot}: refused")

    def reorg(self, depth: int, txs: list[tuple[Any, int]] | None = None) -> None:
        """``anvil_reorg``: replaces the last ``depth`` blocks with as many new ones, each
        ``(tx, block_offset)`` of ``txs`` going into the new block at that offset."""
        self.rpc("anvil_reorg", [depth, [[tx, offset] for tx, offset in txs or []]])

    def increase_time(self, seconds: int) -> None:
        """Moves the clock of the next block ``seconds`` ahead."""
        self.rpc("evm_increaseTime", [seconds])

    def block_number(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)


def _wait_listening(log: Path, process: subprocess.Popen[bytes]) -> str:
    """The URL anvil prints once it listens."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        found = _LISTENING.search(log.read_text(errors="replace"))
        if found:
            return f"http://{found.group(1)}:{found.group(2)}"
        if process.poll() is not None:
            raise AnvilError(f"anvil exited with {process.returncode}: {log.read_text()[-500:]}")
        time.sleep(0.02)
    raise AnvilError(f"anvil did not listen within {START_TIMEOUT_S} s")


def _wait_answering(anvil: Anvil) -> None:
    """Returns once anvil answers ``eth_chainId``."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            anvil.rpc("eth_chainId")
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stops our anvil by its process: terminate, then kill after a timeout."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)


class AnvilProcess:
    """An anvil this process started; ``stop()`` ends it (terminate, then kill)."""

    def __init__(self, anvil: Anvil, process: subprocess.Popen[bytes], log: Path) -> None:
        self.anvil = anvil
        self.process = process
        self.log = log

    def stop(self) -> None:
        _stop(self.process)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """On Linux, anvil gets SIGTERM when the process that started it dies, even by
    SIGKILL: no orphaned node keeps the port (or the state file) after a crash."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def start_anvil(
    binary: Path,
    folder: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    block_time: float | None = None,
    state: Path | None = None,
    state_interval_s: int | None = None,
    die_with_parent: bool = False,
) -> AnvilProcess:
    """Start anvil with its log in ``folder``; returns once it answers. ``state``: a
    file it loads at start and dumps to on exit (and every ``state_interval_s``)."""
    args = [str(binary), "--host", host, "--port", str(port), "--accounts", str(DEV_ACCOUNTS)]
    if block_time is not None:
        args += ["--block-time", str(block_time)]
    if state is not None:
        args += ["--state", str(state)]
        if state_interval_s is not None:
            args += ["--state-interval", str(state_interval_s)]
    log = folder / "anvil.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=folder,
            preexec_fn=_die_with_parent if die_with_parent else None,
        )
    try:
        url = _wait_listening(log, process)
        anvil = Anvil(url=url, private_keys=dev_private_keys(), pid=process.pid)
        _wait_answering(anvil)
    except BaseException:
        _stop(process)
        raise
    return AnvilProcess(anvil, process, log)
