"""``dpn serve``: the API under uvicorn, in one process or several workers.

Every worker listens on a socket of its own, all bound to the same port with
``SO_REUSEPORT``, so the kernel spreads new connections evenly over them. With one
shared socket (uvicorn's own way), whichever worker wakes first accepts every pending
connection at once, and a burst of keep-alive clients ends up on a single worker while
the others idle.

Each socket also has ``TCP_NODELAY``, which Linux passes on to the connections it accepts:
without it, a keep-alive response can wait ~40 ms for the client's delayed ACK.

The supervisor starts the workers, restarts one that dies (giving up, and stopping, when
workers die more than ``RESTARTS_MAX`` times in ``RESTART_WINDOW_S``: they cannot start),
and on SIGTERM or SIGINT stops them all.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import threading
import time
from collections import deque
from multiprocessing.process import BaseProcess
from types import FrameType

import uvicorn

__all__ = ["serve"]

APP = "api.asgi:app"
RESTARTS_MAX = 5
RESTART_WINDOW_S = 30.0
STOP_TIMEOUT_S = 10.0

log = logging.getLogger("dpn.serve")


def serve(host: str, port: int, workers: int) -> int:
    """Serve until SIGTERM or SIGINT; 0 on a clean stop, 1 if a worker could not start."""
    if workers == 1:
        _run_worker(_listener(host, port, reuse_port=False))
        return 0
    sockets = [_listener(host, port, reuse_port=True) for _ in range(workers)]
    return _supervise(sockets)


def _listener(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind((host, port))
    listener.listen(2048)
    listener.set_inheritable(True)
    return listener


def _run_worker(listener: socket.socket) -> None:
    config = uvicorn.Config(APP, log_level="warning", access_log=False, backlog=2048)
    uvicorn.Server(config).run(sockets=[listener])


def _supervise(sockets: list[socket.socket]) -> int:
    spawn = multiprocessing.get_context("spawn")
    stopping = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)

    def start(listener: socket.socket) -> BaseProcess:
        process = spawn.Process(target=_run_worker, args=(listener,), name="dpn-worker")
        process.start()
        return process

    running = [start(s) for s in sockets]
    restarts: deque[float] = deque()
    status = 0
    while not stopping.wait(0.2):
        for i, process in enumerate(running):
            if process.is_alive():
                continue
            now = time.monotonic()
            while restarts and restarts[0] < now - RESTART_WINDOW_S:
                restarts.popleft()
            if len(restarts) >= RESTARTS_MAX:
                log.error("workers keep exiting (the last with %s): stopping", process.exitcode)
                stopping.set()
                status = 1
                break
            log.warning("worker %s exited with %s; restarting it", process.pid, process.exitcode)
            restarts.append(now)
            running[i] = start(sockets[i])
    for process in running:
        if process.is_alive():
            process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for process in running:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
    return status
