"""The server under test: ``dpn serve`` on a free loopback port, in its own process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx

__all__ = ["HOST", "free_port", "running_server"]

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


def free_port() -> int:
    """A TCP port free on ``HOST`` at the time of asking."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running_server(
    database_url: str, workers: int, admin: str, log: Path
) -> Iterator[tuple[str, int]]:
    """``dpn serve`` in its own process group; yields its base URL and process group id
    once ready, and always stops it (SIGTERM, then SIGKILL to the group)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DPN_SIWE_DOMAIN", "DPN_SIWE_URI")}
    env |= {"DPN_DATABASE_URL": database_url, "DPN_ADMINS": admin}
    command = [sys.executable, "-m", "api.cli", "serve", "--host", HOST, "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--workers", str(workers)],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the server exited:\n{log.read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(f"{base_url}/readyz", timeout=2.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the server was not ready in {READY_TIMEOUT_S} s")
            time.sleep(0.1)
        yield base_url, process.pid
    finally:
        if process.poll() is None:
            process.terminate()
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_TIMEOUT_S)
        with suppress(ProcessLookupError):  # any worker left behind shares the group
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT_S)
