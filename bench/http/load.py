"""The load: raw HTTP/1.1 over keep-alive connections, all clients on one event loop.

The clients share the machine with the server, so they are as cheap as they can be:
requests prebuilt as bytes, responses parsed only as far as status and length. A phase
reports throughput, latency percentiles, errors, and the CPU the clients and the server
spent on it.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.http.network import CURRENCY
from bench.http.server import HOST
from ledger.core.accounts import currency_of

__all__ = ["BodyOf", "Request", "Tally", "order_body", "phase", "transfer_body"]

REQUESTS_PER_CLIENT_MAX = 1_000_000  # bounds every client loop, whatever the duration
RESPONSE_BYTES_MAX = 1 << 20
REQUEST_TIMEOUT_S = 30.0
ORDER_MID_MINOR = 10_000  # the order phase's prices gather around 100.00 a unit
ORDER_BID_UNDER = 40  # a bid is priced mid - 40 .. mid + 8, an ask the mirror image
ORDER_BID_OVER = 8
ORDER_QTY_MAX_UNITS = 10


@dataclass
class Tally:
    """What the clients of one phase counted."""

    latencies_s: list[float] = field(default_factory=list)
    answered: int = 0  # every answer, warm-up included
    errors: int = 0
    refused: int = 0
    error_samples: list[str] = field(default_factory=list)


BodyOf = Callable[[int], tuple[str, bytes]]  # the n-th request's (Idempotency-Key, body)


class Request:
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


class _Connection(asyncio.Protocol):
    """One keep-alive connection, one request at a time: ``exchange`` writes a request
    and waits for its response, cut out of what arrives by its ``Content-Length``. A
    protocol, not streams: a stream's read and its buffers cost the client as much
    again per request, and the client's CPU is taken from the server's two cores."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.received = bytearray()
        self.waiting: asyncio.Future[tuple[int, bytes]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received += data
        waiting = self.waiting
        if waiting is None or waiting.done():
            return
        end = self.received.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.received[:end])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
                break
        if length > RESPONSE_BYTES_MAX:
            waiting.set_exception(ValueError(f"response of {length} bytes"))
            return
        if len(self.received) < end + 4 + length:
            return
        body = bytes(self.received[end + 4 : end + 4 + length])
        del self.received[: end + 4 + length]
        waiting.set_result((int(head[9:12]), body))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_exception(exc or ConnectionResetError("the server hung up"))

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        if self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("the connection is closed")
        self.waiting = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiting

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def _client(
    port: int, request: Request, ok: int, measure_from: float, until: float, tally: Tally
) -> None:
    """One keep-alive connection sending ``request`` back to back until ``until``. A
    broken connection or a request slower than ``REQUEST_TIMEOUT_S`` counts as an error
    and the client reconnects."""
    loop = asyncio.get_running_loop()
    connection: _Connection | None = None
    try:
        for n in range(REQUESTS_PER_CLIENT_MAX):
            started = time.perf_counter()
            if started >= until:
                break
            try:
                if connection is None:
                    _, connection = await loop.create_connection(_Connection, HOST, port)
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    status, body = await connection.exchange(request.render(n))
            except (OSError, TimeoutError, ValueError) as exc:
                if connection is not None:
                    connection.close()
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
            connection.close()


def _cpu_by_process(pgid: int) -> dict[str, float] | None:
    """CPU seconds (user + system) used so far by the live processes of the server's
    process group, summed by name (``dpn-worker``, ``dpn-market``, the supervisor's
    ``python``), and by every PostgreSQL process on the machine (``postgres``: the
    server's backends, and whatever else the database does meanwhile). Linux ``/proc``
    only; None elsewhere."""
    ticks = os.sysconf("SC_CLK_TCK")
    totals: dict[str, float] = {}
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return None
    for entry in entries:
        try:
            with open(f"/proc/{entry}/stat") as stat:
                head, tail = stat.read().rsplit(")", 1)
        except OSError:
            continue  # gone meanwhile
        comm, fields = head.split("(", 1)[1], tail.split()  # fields[0]: field 3 of stat(5)
        if int(fields[2]) == pgid:
            key = comm
        elif comm.startswith("postgres"):
            key = "postgres"
        else:
            continue
        totals[key] = totals.get(key, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return totals


def _percentile_ms(sorted_s: Sequence[float], q: float) -> float | None:
    if not sorted_s:
        return None
    return round(sorted_s[min(len(sorted_s) - 1, int(q * len(sorted_s)))] * 1000, 2)


async def phase(
    server: tuple[int, int],
    requests: Sequence[Request],
    ok: int,
    warmup_s: float,
    duration_s: float,
) -> dict[str, Any]:
    port, pgid = server
    tally = Tally()
    start = time.perf_counter()
    measure_from, until = start + warmup_s, start + warmup_s + duration_s
    cpu_before, server_before = time.process_time(), _cpu_by_process(pgid)
    await asyncio.gather(*(_client(port, r, ok, measure_from, until, tally) for r in requests))
    client_cpu_s = time.process_time() - cpu_before
    server_after = _cpu_by_process(pgid)
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
    if server_before is not None and server_after is not None and tally.answered:
        # Over the whole phase, warm-up included: CPU spent per answer, by process.
        spent = {k: v - server_before.get(k, 0.0) for k, v in server_after.items()}
        server_s = sum(v for k, v in spent.items() if k != "postgres")
        result["server_cpu_ms_per_request"] = round(server_s * 1000 / tally.answered, 3)
        result["server_cpu_share"] = round(server_s / wall_s, 2)
        by_process = {k: round(v * 1000 / tally.answered, 3) for k, v in sorted(spent.items())}
        by_process["client"] = round(client_cpu_s * 1000 / tally.answered, 3)
        by_process["all"] = round(sum(by_process.values()), 3)
        result["cpu_ms_per_request_by_process"] = by_process
    if ok == 201:
        result["refused_insufficient_funds"] = tally.refused
    if tally.error_samples:
        result["error_samples"] = tally.error_samples
    return result


def transfer_body(sender: int, recipient: str) -> BodyOf:
    def body_of(n: int) -> tuple[str, bytes]:
        body = json.dumps(
            {"recipient": recipient, "instrument": currency_of(CURRENCY), "amount": "1"},
            separators=(",", ":"),
        ).encode()
        return f"w{sender}-{n}", body

    return body_of


def order_body(client: int, asset_id: str) -> BodyOf:
    """Limit GTC orders of one client on the book of ``asset_id`` in ``CURRENCY``:
    buys and sells in turn, a price drawn around ``ORDER_MID_MINOR`` so that a good
    share cross and trade (the rest rest), 1 to ``ORDER_QTY_MAX_UNITS`` units. The
    n-th body is the same in every run."""

    def body_of(n: int) -> tuple[str, bytes]:
        rng = random.Random(client * 1_000_003 + n)
        side = "buy" if (client + n) % 2 else "sell"
        offset = rng.randint(-ORDER_BID_UNDER, ORDER_BID_OVER)
        price = ORDER_MID_MINOR + (offset if side == "buy" else -offset)
        body = json.dumps(
            {
                "asset_id": asset_id,
                "currency": CURRENCY,
                "side": side,
                "type": "limit",
                "price_minor": str(price),
                "qty_units": str(rng.randint(1, ORDER_QTY_MAX_UNITS)),
                "time_in_force": "GTC",
            },
            separators=(",", ":"),
        ).encode()
        return f"o{client}-{n}", body

    return body_of
