"""HTTP throughput and latency of the real server: ``dpn serve`` (uvicorn, ``--workers 2``
by default) on a free loopback port, over SQLite and, when ``--postgres URL`` or
``DPN_TEST_POSTGRES_URL`` is given, over a fresh PostgreSQL schema (dropped afterwards).

For each database it prepares a network (members signed in with real SIWE signatures,
an admin, generous funds), then runs ``--clients`` concurrent clients for a fixed time
per phase:

- ``floor``: ``GET /healthz``, no database: the HTTP stack's own ceiling (the baseline);
- ``read``: ``GET /v1/holdings/me``, each client with its own member's token;
- ``write``: ``POST /v1/transfers`` of 1 minor unit to the next member, each with a unique
  ``Idempotency-Key``; refusals for funds count apart from errors (the funds are ample,
  so there should be none);
- ``orders``: ``POST /v1/orders``, limit GTC orders on one book (an asset the admin
  registered and issued to every member, traded in EUR), buys and sells priced around
  one mid so that a good share trade (``bench.http.load.order_body``), each with a
  unique ``Idempotency-Key``: every order goes through the market engine of the worker
  it reaches, which batches what waits and sequences with the other worker's through
  the journal lock.

The clients share the machine with the server, so they are as cheap as they can be: one
uvloop event loop (the server's own), one keep-alive connection per client read as an
asyncio protocol, requests prebuilt as bytes and responses parsed only as far as status
and length. The client's own CPU time per phase is reported (``client_cpu_share``:
client CPU seconds per wall second) so its cost is visible next to the figures, and so
is the server's (``server_cpu_ms_per_request``: CPU of the supervisor, workers and
market engine per answer, from ``/proc``; PostgreSQL's own CPU is not in it), which
stays meaningful on a busy machine where throughput does not;
``cpu_ms_per_request_by_process`` splits the CPU per answer by process (the workers, the
market engine, the supervisor, every PostgreSQL process, the clients) and adds it up
(``all``): 2 cores give at most ``2000 / all`` answers a second. Prints JSON.
Run: ``python -m bench.http --json`` or ``dpn bench http --json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import uvloop

from bench.harness import fresh_database, pick_postgres_url
from bench.http.load import Request, order_body, phase, transfer_body
from bench.http.network import list_asset, sign_in_and_fund, wallet
from bench.http.server import running_server

__all__ = ["main"]

# The figures this benchmark is held against (PostgreSQL, 2 workers).
TARGET: dict[str, Any] = {
    "database": "postgresql",
    "workers": 2,
    "write_rps_min": 1000,
    "write_p99_ms_max": 50,
    "orders_rps_min": 1000,
    "orders_p99_ms_max": 50,
}


def measure(
    kind: str, postgres_url: str | None, args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    """Start a server over a fresh database of ``kind``, prepare, run the four phases."""
    admin = wallet(0)
    # One member more than clients, so that every client has someone to pay.
    members = [wallet(1 + n) for n in range(args.clients + 1)]
    with (
        fresh_database(kind, postgres_url, workdir, "bench-http") as url,
        running_server(url, args.workers, admin.address, workdir / f"server-{kind}.log") as (
            base_url,
            pgid,
        ),
    ):
        tokens = sign_in_and_fund(base_url, admin, members)[: args.clients]
        asset_id = list_asset(base_url, admin, members)
        server = (int(base_url.rsplit(":", 1)[1]), pgid)
        phases: dict[str, tuple[list[Request], int]] = {
            "floor": ([Request("GET", "/healthz", None) for _ in tokens], 200),
            "read": ([Request("GET", "/v1/holdings/me", t) for t in tokens], 200),
            "write": (
                [
                    Request(
                        "POST",
                        "/v1/transfers",
                        t,
                        transfer_body(i, members[(i + 1) % len(members)].address),
                    )
                    for i, t in enumerate(tokens)
                ],
                201,
            ),
            "orders": (
                [
                    Request("POST", "/v1/orders", t, order_body(i, asset_id))
                    for i, t in enumerate(tokens)
                ],
                201,
            ),
        }
        result: dict[str, Any] = {}
        for name, (requests, ok) in phases.items():
            # The server's own loop: the standard one costs the clients more CPU a request.
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                result[name] = runner.run(
                    phase(server, requests, ok, args.warmup_s, args.duration_s)
                )
    for name in ("read", "write", "orders"):
        floor = result["floor"]["requests_per_s"]
        result[name]["of_floor"] = (
            round(result[name]["requests_per_s"] / floor, 3) if floor else None
        )
    return result


def _meets_target(out: dict[str, Any], workers: int, name: str = "write") -> bool | None:
    """Whether phase ``name`` (``write`` or ``orders``) met its target, or None when the
    run was not the one the target is for."""
    found = out.get(TARGET["database"])
    if not isinstance(found, dict) or workers != TARGET["workers"]:
        return None
    phase = found[name]
    return bool(
        phase["requests_per_s"] >= TARGET[f"{name}_rps_min"]
        and phase["p99_ms"] is not None
        and phase["p99_ms"] < TARGET[f"{name}_p99_ms_max"]
        and phase["errors"] == 0
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print its JSON. Exit 2 on bad arguments."""
    parser = argparse.ArgumentParser(prog="dpn bench http", description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers (default 2)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    parser.add_argument("--duration-s", type=float, default=5.0, help="measured seconds per phase")
    parser.add_argument("--warmup-s", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument("--postgres", help="PostgreSQL URL (default: $DPN_TEST_POSTGRES_URL)")
    parser.add_argument("--no-sqlite", action="store_true", help="skip SQLite")
    parser.add_argument("--json", action="store_true", help="print only the JSON, on one line")
    args = parser.parse_args(argv)
    if not (
        1 <= args.workers <= 16
        and 1 <= args.clients <= 256
        and 0.5 <= args.duration_s <= 600
        and 0 <= args.warmup_s <= 60
    ):
        print(
            "dpn bench http: --workers 1..16, --clients 1..256, --duration-s 0.5..600,"
            " --warmup-s 0..60",
            file=sys.stderr,
        )
        return 2
    postgres_url = pick_postgres_url(args.postgres)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="dpn-bench-http-") as tmp:
        if not args.no_sqlite:
            out["sqlite"] = measure("sqlite", None, args, Path(tmp))
        out["postgresql"] = (
            measure("postgresql", postgres_url, args, Path(tmp)) if postgres_url else None
        )
    out |= {
        "clients": args.clients,
        "workers": args.workers,
        "duration_s": args.duration_s,
        "warmup_s": args.warmup_s,
        "cpus": os.cpu_count(),
        "client": "one uvloop loop, a keep-alive HTTP/1.1 connection per client, same machine",
        "target": TARGET,
        "meets_target": _meets_target(out, args.workers),
        "orders_meets_target": _meets_target(out, args.workers, "orders"),
    }
    print(json.dumps(out, indent=None if args.json else 2))
    return 0
