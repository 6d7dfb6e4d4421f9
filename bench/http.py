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
  so there should be none).

The clients share the machine with the server, so they are as cheap as they can be: one
asyncio event loop, one keep-alive connection per client, requests prebuilt as bytes and
responses parsed only as far as status and length. The client's own CPU time per phase
is reported (``client_cpu_share``: client CPU seconds per wall second) so its cost is
visible next to the figures, and so is the server's (``server_cpu_ms_per_request``: CPU
of the supervisor and workers per answer, from ``/proc``; PostgreSQL's own CPU is not in
it), which stays meaningful on a busy machine where throughput does not. Prints JSON.
Run: ``python -m bench.http --json`` or ``dpn bench http --json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ledger.db.engine import make_engine
from ledger.db.migrate import upgrade

__all__ = ["main"]

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
CURRENCY = "EUR"
FUNDING = 10**15  # minor units per member: no transfer of 1 is ever refused for funds
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
REQUESTS_PER_CLIENT_MAX = 1_000_000  # bounds every client loop, whatever the duration
RESPONSE_BYTES_MAX = 1 << 20
REQUEST_TIMEOUT_S = 30.0
# The figure this benchmark is held against (PostgreSQL, 2 workers).
TARGET: dict[str, Any] = {
    "database": "postgresql",
    "workers": 2,
    "write_rps_min": 1000,
    "write_p99_ms_max": 50,
}


# -- the server ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Wallet:
    address: str
    private_key: bytes

    def sign(self, message: str) -> str:
        signed = Account.sign_message(encode_defunct(text=message), private_key=self.private_key)
        signature: bytes = signed.signature
        return "0x" + signature.hex().removeprefix("0x")


def _wallet(n: int) -> Wallet:
    key = (0xB0000000 + n).to_bytes(32, "big")
    return Wallet(Account.from_key(key).address, key)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def _server(database_url: str, workers: int, admin: str, log: Path) -> Iterator[tuple[str, int]]:
    """``dpn serve`` in its own process group; yields its base URL and process group id
    once ready, and always stops it (SIGTERM, then SIGKILL to the group)."""
    port = _free_port()
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


@contextmanager
def _database(kind: str, postgres_url: str | None, workdir: Path) -> Iterator[str]:
    """A freshly migrated database; yields the URL a server process can use."""
    if kind == "sqlite":
        url = f"sqlite:///{workdir / f'bench-http-{uuid.uuid4().hex[:8]}.sqlite3'}"
        engine = make_engine(url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        yield url
        return
    if postgres_url is None:
        raise ValueError("no PostgreSQL URL")
    schema = f"bench_http_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        # The server's processes reach the schema through the URL: psycopg's options.
        url = (
            make_url(postgres_url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
        engine = make_engine(url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


# -- preparing the network (not measured) --------------------------------------------------


def _sign_in(client: httpx.Client, who: Wallet) -> str:
    challenge = client.post(
        "/v1/auth/challenge",
        json={"address": who.address},
        headers={"Idempotency-Key": f"c-{uuid.uuid4().hex}"},
    )
    challenge.raise_for_status()
    message = challenge.json()["message"]
    token = client.post(
        "/v1/auth/token",
        json={"message": message, "signature": who.sign(message)},
        headers={"Idempotency-Key": f"t-{uuid.uuid4().hex}"},
    )
    token.raise_for_status()
    access: str = token.json()["access_token"]
    return access


def _prepare(base_url: str, admin: Wallet, members: Sequence[Wallet]) -> list[str]:
    """Sign every member in and fund them; returns their bearer tokens."""
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        admin_token = _sign_in(client, admin)
        tokens = [_sign_in(client, m) for m in members]
        for n, member in enumerate(members):
            funded = client.post(
                "/v1/deposits",
                json={
                    "member": member.address,
                    "currency": CURRENCY,
                    "amount": str(FUNDING),
                    "reference": f"bench {n}",
                },
                headers={"Authorization": f"Bearer {admin_token}", "Idempotency-Key": f"f{n}"},
            )
            funded.raise_for_status()
    return tokens


# -- the load: raw HTTP/1.1 over keep-alive connections, one event loop --------------------


@dataclass
class Tally:
    latencies_s: list[float] = field(default_factory=list)
    answered: int = 0  # every answer, warm-up included
    errors: int = 0
    refused: int = 0
    error_samples: list[str] = field(default_factory=list)


BodyOf = Callable[[int], tuple[str, bytes]]  # the n-th request's (Idempotency-Key, body)


class _Request:
    """Prebuilt request bytes for one client."""

    def __init__(
        self, method: str, path: str, token: str | None, body_of: BodyOf | None = None
    ) -> None:
        self.head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n"
        if token:
            self.head += f"Authorization: Bearer {token}\r\n"
        self.body_of = body_of

    def render(self, n: int) -> bytes:
        if self.body_of is None:
            return (self.head + "\r\n").encode()
        key, body = self.body_of(n)
        return (
            self.head + f"Idempotency-Key: {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
            break
    if length > RESPONSE_BYTES_MAX:
        raise ValueError(f"response of {length} bytes")
    return status, await reader.readexactly(length)


async def _client(
    port: int, request: _Request, ok: int, measure_from: float, until: float, tally: Tally
) -> None:
    """One keep-alive connection sending ``request`` back to back until ``until``. A
    broken connection or a request slower than ``REQUEST_TIMEOUT_S`` counts as an error
    and the client reconnects."""
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    try:
        for n in range(REQUESTS_PER_CLIENT_MAX):
            started = time.perf_counter()
            if started >= until:
                break
            try:
                if connection is None:
                    connection = await asyncio.open_connection(HOST, port)
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    status, body = await _exchange(*connection, request.render(n))
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                if connection is not None:
                    connection[1].close()
                connection = None
                status, body = 0, repr(exc).encode()
            tally.answered += status != 0
            if started < measure_from:
                continue  # warm-up
            if status == ok:
                tally.latencies_s.append(time.perf_counter() - started)
            elif status == 422 and b'"insufficient_funds"' in body:
                tally.refused += 1
            else:
                tally.errors += 1
                if len(tally.error_samples) < 3:
                    tally.error_samples.append(f"{status} {body[:200]!r}")
    finally:
        if connection is not None:
            connection[1].close()


def _group_cpu_s(pgid: int) -> float | None:
    """CPU seconds (user + system) used so far by the live processes of a process group:
    the server's supervisor and workers. Linux ``/proc`` only; None elsewhere."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return None
    for entry in entries:
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[2]) == pgid:  # fields[0] is the state, field 5 of stat(5)
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def _percentile_ms(sorted_s: Sequence[float], q: float) -> float | None:
    if not sorted_s:
        return None
    return round(sorted_s[min(len(sorted_s) - 1, int(q * len(sorted_s)))] * 1000, 2)


async def _phase(
    server: tuple[int, int],
    requests: Sequence[_Request],
    ok: int,
    warmup_s: float,
    duration_s: float,
) -> dict[str, Any]:
    port, pgid = server
    tally = Tally()
    start = time.perf_counter()
    measure_from, until = start + warmup_s, start + warmup_s + duration_s
    cpu_before, server_cpu_before = time.process_time(), _group_cpu_s(pgid)
    await asyncio.gather(*(_client(port, r, ok, measure_from, until, tally) for r in requests))
    client_cpu_s = time.process_time() - cpu_before
    server_cpu_after = _group_cpu_s(pgid)
    wall_s = time.perf_counter() - start
    done = sorted(tally.latencies_s)
    result: dict[str, Any] = {
        "requests": len(done),
        "requests_per_s": round(len(done) / duration_s, 1),
        "p50_ms": _percentile_ms(done, 0.50),
        "p99_ms": _percentile_ms(done, 0.99),
        "max_ms": _percentile_ms(done, 1.0),
        "errors": tally.errors,
        "client_cpu_share": round(client_cpu_s / wall_s, 2),
    }
    if server_cpu_before is not None and server_cpu_after is not None and tally.answered:
        # Over the whole phase, warm-up included: CPU the server spent per answer.
        spent_s = server_cpu_after - server_cpu_before
        result["server_cpu_ms_per_request"] = round(spent_s * 1000 / tally.answered, 3)
        result["server_cpu_share"] = round(spent_s / wall_s, 2)
    if ok == 201:
        result["refused_insufficient_funds"] = tally.refused
    if tally.error_samples:
        result["error_samples"] = tally.error_samples
    return result


def _transfer_body(sender: int, recipient: str) -> BodyOf:
    def body_of(n: int) -> tuple[str, bytes]:
        body = json.dumps(
            {"recipient": recipient, "instrument": f"ccy:{CURRENCY}", "amount": "1"},
            separators=(",", ":"),
        ).encode()
        return f"w{sender}-{n}", body

    return body_of


def measure(
    kind: str, postgres_url: str | None, args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    """Start a server over a fresh database of ``kind``, prepare, run the three phases."""
    admin = _wallet(0)
    # One member more than clients, so that every client has someone to pay.
    members = [_wallet(1 + n) for n in range(args.clients + 1)]
    with (
        _database(kind, postgres_url, workdir) as url,
        _server(url, args.workers, admin.address, workdir / f"server-{kind}.log") as (
            base_url,
            pgid,
        ),
    ):
        tokens = _prepare(base_url, admin, members)[: args.clients]
        server = (int(base_url.rsplit(":", 1)[1]), pgid)
        phases: dict[str, tuple[list[_Request], int]] = {
            "floor": ([_Request("GET", "/healthz", None) for _ in tokens], 200),
            "read": ([_Request("GET", "/v1/holdings/me", t) for t in tokens], 200),
            "write": (
                [
                    _Request(
                        "POST",
                        "/v1/transfers",
                        t,
                        _transfer_body(i, members[(i + 1) % len(members)].address),
                    )
                    for i, t in enumerate(tokens)
                ],
                201,
            ),
        }
        result: dict[str, Any] = {}
        for name, (requests, ok) in phases.items():
            result[name] = asyncio.run(_phase(server, requests, ok, args.warmup_s, args.duration_s))
    for name in ("read", "write"):
        floor = result["floor"]["requests_per_s"]
        result[name]["of_floor"] = (
            round(result[name]["requests_per_s"] / floor, 3) if floor else None
        )
    return result


def _meets_target(out: dict[str, Any], workers: int) -> bool | None:
    found = out.get(TARGET["database"])
    if not isinstance(found, dict) or workers != TARGET["workers"]:
        return None
    write = found["write"]
    return bool(
        write["requests_per_s"] >= TARGET["write_rps_min"]
        and write["p99_ms"] is not None
        and write["p99_ms"] < TARGET["write_p99_ms_max"]
        and write["errors"] == 0
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
    postgres_url = args.postgres or os.environ.get("DPN_TEST_POSTGRES_URL")
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
        "client": "one asyncio loop, a keep-alive HTTP/1.1 connection per client, same machine",
        "target": TARGET,
        "meets_target": _meets_target(out, args.workers),
    }
    print(json.dumps(out, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
