"""The API as it is deployed: ``dpn serve`` running uvicorn in its own process, reached
over real loopback HTTP with ``httpx``, signed into with real SIWE signatures.

A server over a SQLite file carries the whole flow (health, sign-in, an asset, units,
money, transfers, holdings, journal, digest, request ids, problem+json). A server with
two workers over PostgreSQL takes concurrent transfers from many clients; the ledger is
then checked directly: it verifies, its seqs have no gap, every accepted transfer is in
it exactly once, and money is conserved with no balance below zero. Two tests pin bugs
only a real server shows: long Idempotency-Keys, and Nagle's delay with two workers.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url

from api.serve import RESTARTS_MAX
from ledger.db.engine import make_engine, read_connection
from ledger.db.schema import Account, Balance, JournalEntry, table
from ledger.journal.verify import verify

from .signin import greenhouse, post, sign_in, wallet

REPO = Path(__file__).resolve().parents[2]
DPN = [sys.executable, "-m", "api.cli"]
ADMIN, OPERATOR, ANN, BOB = wallet(51), wallet(52), wallet(53), wallet(54)
ASSET = "1M8GDM9AXKP042788"
UNITS = f"units:{ASSET}"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
HTTP_TIMEOUT_S = 30.0


# -- a real server -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    """A running ``dpn serve`` process and how to reach it."""

    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _environment(database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("DPN_SIWE_DOMAIN", "DPN_SIWE_URI"):  # the server derives them from its port
        env.pop(name, None)
    return env | {"DPN_DATABASE_URL": database_url, "DPN_ADMINS": ADMIN.address}


def migrate(database_url: str) -> None:
    """``dpn db upgrade`` in its own process."""
    done = subprocess.run(
        [*DPN, "db", "upgrade"],
        cwd=REPO,
        env=_environment(database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def wait_until_ready(server: Server, timeout_s: float = READY_TIMEOUT_S) -> httpx.Response:
    """Poll ``/readyz`` until it answers 200; fail with the server's output if it dies or
    never gets there."""
    deadline = time.monotonic() + timeout_s
    last: httpx.Response | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"the server exited with {server.process.returncode}:\n{server.output()}")
        try:
            last = httpx.get(f"{server.base_url}/readyz", timeout=2.0)
            if last.status_code == 200:
                return last
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    shown = last.text if last is not None else "no answer"
    pytest.fail(f"not ready after {timeout_s} s ({shown}):\n{server.output()}")


def stop(server: Server) -> None:
    """SIGTERM the server (uvicorn's supervisor stops its workers), then SIGKILL its whole
    process group if it has not exited in time."""
    if server.process.poll() is None:
        server.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.process.wait(timeout=STOP_TIMEOUT_S)
    with contextlib.suppress(ProcessLookupError):  # any worker left behind shares the group
        os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=STOP_TIMEOUT_S)


def start(database_url: str, log: Path, *, workers: int = 1) -> Server:
    """``dpn serve`` on a free loopback port (not yet waited for)."""
    port = _free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*DPN, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
            cwd=REPO,
            env=_environment(database_url),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() can reap every worker
        )
    return Server(process, f"http://127.0.0.1:{port}", log)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Server]:
    """A migrated SQLite file and one server process over it."""
    url = f"sqlite:///{tmp_path / 'dpn.sqlite3'}"
    migrate(url)
    server = start(url, tmp_path / "server.log")
    try:
        wait_until_ready(server)
        yield server
    finally:
        stop(server)


# -- the flow over one SQLite server -------------------------------------------------------


def test_health_before_and_after_migration(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dpn.sqlite3'}"
    server = start(url, tmp_path / "server.log")
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:  # up, but its database is not migrated: alive and not ready
            try:
                alive = httpx.get(f"{server.base_url}/healthz", timeout=2.0)
                break
            except httpx.TransportError:
                assert server.process.poll() is None, server.output()
                assert time.monotonic() < deadline, server.output()
                time.sleep(0.1)
        assert alive.status_code == 200 and alive.json() == {"status": "ok"}
        unready = httpx.get(f"{server.base_url}/readyz", timeout=5.0)
        assert unready.status_code == 503, unready.text
        assert unready.json()["reason"] == "migrations_behind"
        migrate(url)
        ready = wait_until_ready(server).json()
        assert ready["status"] == "ready" and ready["revision"] == unready.json()["code"]
    finally:
        stop(server)


def test_a_network_over_real_http(running: Server) -> None:
    with httpx.Client(base_url=running.base_url, timeout=HTTP_TIMEOUT_S) as client:
        # Sign-in: the message names this very server, the signature is a real one.
        challenge = client.post(
            "/v1/auth/challenge", json={"address": ANN.address}, headers={"Idempotency-Key": "c0"}
        )
        assert challenge.status_code == 201, challenge.text
        assert challenge.json()["message"].startswith(
            f"{running.base_url.removeprefix('http://')} wants you to sign in"
        )
        admin, operator = sign_in(client, ADMIN), sign_in(client, OPERATOR)
        ann, bob = sign_in(client, ANN), sign_in(client, BOB)
        me = client.get("/v1/members/me", headers=admin).json()
        assert me["address"] == ADMIN.address and "admin" in me["roles"]

        asset = greenhouse(ASSET)
        made = post(client, "/v1/assets", admin, asset, "a1")
        assert made.status_code == 201, made.text
        role = {"address": OPERATOR.address, "role": "operator", "asset_id": ASSET}
        assert post(client, "/v1/roles", admin, role, "r1").status_code == 204
        issue = {"allocations": [[ANN.address, "600000"], [BOB.address, "400000"]]}
        issued = post(client, f"/v1/assets/{ASSET}/issue", operator, issue, "i1")
        assert issued.status_code == 201, issued.text
        cash = {"member": BOB.address, "currency": "EUR", "amount": "500000", "reference": "SEPA"}
        assert post(client, "/v1/deposits", admin, cash, "d1").status_code == 201

        sale = {"recipient": BOB.address, "instrument": UNITS, "amount": "10000"}
        sold = post(client, "/v1/transfers", ann, sale, "sale-1")
        assert sold.status_code == 201, sold.text
        entry = sold.json()
        replay = post(client, "/v1/transfers", ann, sale, "sale-1")
        assert replay.status_code == 201 and replay.json() == entry
        pay = {"recipient": ANN.address, "instrument": "ccy:EUR", "amount": "250000"}
        paid = post(client, "/v1/transfers", bob, pay, "pay-1")
        assert paid.status_code == 201, paid.text

        holdings = client.get("/v1/holdings/me", headers=ann)
        assert holdings.status_code == 200
        assert {h["instrument"]: h["available"] for h in holdings.json()} == {
            UNITS: "590000",
            "ccy:EUR": "250000",
        }
        before = client.get("/v1/holdings/me", headers=ann, params={"as_of_seq": entry["seq"] - 1})
        assert [(h["instrument"], h["balance"]) for h in before.json()] == [(UNITS, "600000")]

        journal = client.get("/v1/journal", params={"limit": 200}).json()["items"]
        assert [e["kind"] for e in journal[:3]] == ["transfer", "transfer", "cash.deposit"]
        seqs = [e["seq"] for e in journal]
        assert seqs == list(range(len(seqs), 0, -1))
        assert all(e["prev_hash"] == journal[i + 1]["hash"] for i, e in enumerate(journal[:-1]))
        by_asset = client.get("/v1/journal", params={"asset": ASSET}).json()["items"]
        assert [e["kind"] for e in by_asset] == ["transfer", "asset.issue", "asset.register"]
        head = client.get("/v1/digest").json()
        assert head == {"seq": seqs[0], "head_hash": journal[0]["hash"]}
        report = client.get("/v1/verify", headers=admin).json()
        assert report["ok"] and report["head_seq"] == head["seq"], report


def test_request_ids_and_problems_over_real_http(running: Server) -> None:
    with httpx.Client(base_url=running.base_url, timeout=HTTP_TIMEOUT_S) as client:
        echoed = client.get("/healthz", headers={"X-Request-ID": "e2e-req-42"})
        assert echoed.headers["x-request-id"] == "e2e-req-42"
        minted = client.get("/healthz", headers={"X-Request-ID": "not a sane id!"})
        assert (
            len(minted.headers["x-request-id"]) == 32
            and minted.headers["x-request-id"] != (client.get("/healthz").headers["x-request-id"])
        )

        anonymous = client.get("/v1/holdings/me", headers={"X-Request-ID": "anon-1"})
        assert anonymous.status_code == 401
        assert anonymous.headers["content-type"] == "application/problem+json"
        assert anonymous.headers["www-authenticate"] == "Bearer"
        problem = anonymous.json()
        assert problem["code"] == "credentials_missing" and problem["status"] == 401
        assert problem["request_id"] == "anon-1" == anonymous.headers["x-request-id"]

        ann, bob = sign_in(client, ANN), sign_in(client, BOB)
        broke = post(
            client,
            "/v1/transfers",
            ann,
            {"recipient": BOB.address, "instrument": "ccy:EUR", "amount": "1"},
            "broke-1",
        )
        assert broke.status_code == 422
        assert broke.headers["content-type"] == "application/problem+json"
        refused = broke.json()
        assert refused["code"] == "insufficient_funds"
        assert refused["type"] == "https://dpn.example/problems/insufficient_funds"
        assert refused["request_id"] == broke.headers["x-request-id"]

        keyless = client.post("/v1/transfers", json={}, headers=bob)
        assert keyless.status_code == 400 and keyless.json()["code"] == "idempotency_key_missing"
        nowhere = client.get("/v1/nowhere")
        assert nowhere.status_code == 404 and nowhere.json()["code"] == "route_not_found"
        huge = client.post(
            "/v1/transfers",
            content=b"{" + b" " * (256 * 1024) + b"}",
            headers=bob | {"Idempotency-Key": "huge", "Content-Type": "application/json"},
        )
        assert huge.status_code == 413 and huge.json()["code"] == "body_too_large"


def test_every_documented_idempotency_key_length_is_accepted(running: Server) -> None:
    # Keys of 81..100 characters were once refused (422 field_too_long): the journal's key
    # http:<address>:<key> outgrew its own limit.
    with httpx.Client(base_url=running.base_url, timeout=HTTP_TIMEOUT_S) as client:
        admin = sign_in(client, ADMIN)
        sign_in(client, ANN)
        cash = {"member": ANN.address, "currency": "EUR", "amount": "5", "reference": "r"}
        for length in (1, 80, 81, 100):
            made = post(
                client, "/v1/deposits", admin, cash | {"reference": f"r{length}"}, "k" * length
            )
            assert made.status_code == 201, (length, made.text)


KEEP_ALIVE_REQUESTS = 20
KEEP_ALIVE_MEDIAN_MS_MAX = 20.0


def test_keep_alive_requests_are_not_delayed_with_two_workers(tmp_path: Path) -> None:
    # With several workers uvicorn shares a listener bound with proto 0, so asyncio never
    # set TCP_NODELAY (Kludex/uvicorn#3149); h11 writes head and body apart, and every
    # keep-alive request after the first waited ~40 ms for the client's delayed ACK.
    url = f"sqlite:///{tmp_path / 'dpn.sqlite3'}"
    migrate(url)
    server = start(url, tmp_path / "server.log", workers=2)
    try:
        wait_until_ready(server)
        with httpx.Client(base_url=server.base_url, timeout=HTTP_TIMEOUT_S) as client:
            elapsed_ms = []
            for _ in range(KEEP_ALIVE_REQUESTS):  # one connection, reused
                started = time.perf_counter()
                assert client.get("/healthz").status_code == 200
                elapsed_ms.append((time.perf_counter() - started) * 1000)
    finally:
        stop(server)
    median_ms = sorted(elapsed_ms)[KEEP_ALIVE_REQUESTS // 2]
    assert median_ms < KEEP_ALIVE_MEDIAN_MS_MAX, [round(ms, 1) for ms in elapsed_ms]


def _workers_of(server: Server) -> list[int]:
    """The pids of the supervisor's worker processes (Linux ``/proc``), leaving out
    multiprocessing's resource tracker and the market engine process."""
    return _children_named(server, "dpn-worker")


def _engine_of(server: Server) -> list[int]:
    """The pid of the supervisor's market engine process, as a list (empty while none
    runs)."""
    return _children_named(server, "dpn-market")


def _children_named(server: Server, name: str) -> list[int]:
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    pids = [int(pid) for pid in children.read_text().split()]
    return [pid for pid in pids if _comm(pid) == name]


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:  # gone meanwhile
        return ""


def _connections_of(pid: int, port: int) -> int:
    """How many established TCP connections to ``port`` the process ``pid`` holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    established = 0
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if local_port == port and fields[3] == "01" and fields[9] in inodes:
            established += 1
    return established


SPREAD_CONNECTIONS = 16


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads Linux /proc")
def test_connections_spread_over_workers_and_a_dead_worker_is_replaced(tmp_path: Path) -> None:
    # Each worker has its own SO_REUSEPORT listener: a burst of keep-alive connections
    # lands on every worker (on one shared listener, the first awake took them all).
    url = f"sqlite:///{tmp_path / 'dpn.sqlite3'}"
    migrate(url)
    server = start(url, tmp_path / "server.log", workers=2)
    connections: list[socket.socket] = []
    try:
        wait_until_ready(server)
        port = int(server.base_url.rsplit(":", 1)[1])
        workers = _workers_of(server)
        assert len(workers) == 2
        # The first worker is frozen while the connections arrive: on a shared listener
        # the other one would take them all; on its own listener each gets its share.
        os.kill(workers[0], signal.SIGSTOP)
        try:
            connections = [
                socket.create_connection(("127.0.0.1", port)) for _ in range(SPREAD_CONNECTIONS)
            ]
            for connection in connections:
                connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            time.sleep(0.2)
        finally:
            os.kill(workers[0], signal.SIGCONT)
        for connection in connections:
            connection.settimeout(HTTP_TIMEOUT_S)
            assert connection.recv(4096).startswith(b"HTTP/1.1 200")
        spread = [_connections_of(pid, port) for pid in workers]
        assert sum(spread) == SPREAD_CONNECTIONS and min(spread) > 0, spread

        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while workers[0] in _workers_of(server) or len(_workers_of(server)) < 2:
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.05)
        for _ in range(SPREAD_CONNECTIONS):  # new connections, whichever worker takes them
            answer = httpx.get(f"{server.base_url}/healthz", timeout=HTTP_TIMEOUT_S)
            assert answer.status_code == 200
        assert server.process.poll() is None
    finally:
        for connection in connections:
            connection.close()
        stop(server)
    assert server.process.returncode == 0


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads Linux /proc")
def test_the_supervisor_gives_up_on_workers_that_keep_dying(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dpn.sqlite3'}"
    migrate(url)
    server = start(url, tmp_path / "server.log", workers=2)
    try:
        wait_until_ready(server)
        killed: set[int] = set()
        deadline = time.monotonic() + READY_TIMEOUT_S
        # Kill each worker as soon as it is there: the supervisor restarts RESTARTS_MAX of
        # them within RESTART_WINDOW_S, then stops and says so by its exit status.
        while server.process.poll() is None:
            assert time.monotonic() < deadline, server.output()
            for pid in set(_workers_of(server)) - killed:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            time.sleep(0.05)
    finally:
        stop(server)
    assert server.process.returncode == 1, server.output()
    assert RESTARTS_MAX + 1 <= len(killed) <= RESTARTS_MAX + 2
    assert "dpn-worker keeps exiting" in server.output()


# -- concurrent transfers over two workers on PostgreSQL -----------------------------------

MEMBERS = [wallet(61), wallet(62), wallet(63), wallet(64)]
FUNDS_EACH = 1_000  # minor units of EUR: little enough that some transfers are refused
THREADS = 16
TRANSFERS_PER_THREAD = 50
REPLAY_EVERY = 10  # every 10th transfer is sent twice with the same key


@dataclass
class Outcome:
    accepted: dict[str, int] = field(default_factory=dict)  # journal key -> seq
    refused: int = 0
    replays: int = 0
    unexpected: list[str] = field(default_factory=list)


def _schema_url(engine: Engine) -> str:
    """The test database URL, pinned to ``engine``'s schema the way a server process gets
    it: psycopg's ``options=-csearch_path=...`` in the URL."""
    with engine.connect() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
    url = make_url(engine.url.render_as_string(hide_password=False))
    return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


def _client_thread(
    base_url: str, tokens: list[dict[str, str]], n: int, outcome: Outcome, lock: threading.Lock
) -> None:
    rng = random.Random(n)
    sender = n % len(MEMBERS)
    try:
        with httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT_S) as client:
            for i in range(TRANSFERS_PER_THREAD):
                recipient = rng.choice([m for m in range(len(MEMBERS)) if m != sender])
                key = f"p{n}-{i}"
                body = {
                    "recipient": MEMBERS[recipient].address,
                    "instrument": "ccy:EUR",
                    "amount": str(rng.randint(1, 400)),
                }
                sends = 2 if i % REPLAY_EVERY == 0 else 1
                answers = [
                    post(client, "/v1/transfers", tokens[sender], body, key) for _ in range(sends)
                ]
                with lock:
                    _record(outcome, f"http:{MEMBERS[sender].address}:{key}", answers)
    except Exception as exc:  # a dead thread must show in the outcome, not only on stderr
        with lock:
            outcome.unexpected.append(f"client {n}: {exc!r}")


def _record(outcome: Outcome, journal_key: str, answers: list[httpx.Response]) -> None:
    """File one transfer's answers (the first send and any replays with the same key)."""
    first = answers[0]
    outcome.replays += len(answers) - 1
    for answer in answers:
        if answer.status_code == 201:
            seq = answer.json()["seq"]
            if outcome.accepted.setdefault(journal_key, seq) != seq:
                outcome.unexpected.append(f"{journal_key} accepted twice, as two entries")
        elif answer.status_code != 422 or answer.json()["code"] != "insufficient_funds":
            outcome.unexpected.append(f"{answer.status_code} {answer.text[:200]}")
    if first.status_code == 201 and any(a.json() != first.json() for a in answers[1:]):
        outcome.unexpected.append(f"{journal_key}: a replay answered differently")
    # A refusal writes nothing, so its replay may succeed if money arrived in between.
    if journal_key not in outcome.accepted:
        outcome.refused += 1


@pytest.mark.postgres
@pytest.mark.slow
def test_parallel_http_transfers_on_postgres(postgres_engine: Engine, tmp_path: Path) -> None:
    url = _schema_url(postgres_engine)
    server = start(url, tmp_path / "server.log", workers=2)
    try:
        wait_until_ready(server)
        with httpx.Client(base_url=server.base_url, timeout=HTTP_TIMEOUT_S) as client:
            admin = sign_in(client, ADMIN)
            tokens = [sign_in(client, m) for m in MEMBERS]
            for n, member in enumerate(MEMBERS):
                cash = {"member": member.address, "currency": "EUR", "amount": str(FUNDS_EACH)}
                funded = post(client, "/v1/deposits", admin, cash | {"reference": f"f{n}"}, f"f{n}")
                assert funded.status_code == 201, funded.text
        outcome, lock = Outcome(), threading.Lock()
        threads = [
            threading.Thread(
                target=_client_thread, args=(server.base_url, tokens, n, outcome, lock)
            )
            for n in range(THREADS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads)
    finally:
        stop(server)

    assert outcome.unexpected == []
    total = THREADS * TRANSFERS_PER_THREAD
    assert len(outcome.accepted) + outcome.refused == total
    assert outcome.refused > 0 and len(outcome.accepted) > total // 4, (outcome.refused, total)
    assert outcome.replays == THREADS * (TRANSFERS_PER_THREAD // REPLAY_EVERY)

    # The ledger itself, through an engine of its own on the schema the server used.
    engine = make_engine(url)
    entries, balances, accounts = table(JournalEntry), table(Balance), table(Account)
    try:
        with read_connection(engine) as conn:
            report = verify(conn)
            assert report.ok, report.problems
            seqs = conn.execute(select(entries.c.seq).order_by(entries.c.seq)).scalars().all()
            assert seqs == list(range(1, len(seqs) + 1))
            keys = conn.execute(
                select(entries.c.idempotency_key, func.count(), func.min(entries.c.seq))
                .where(entries.c.kind == "transfer")
                .group_by(entries.c.idempotency_key)
            ).all()
            found = {key: (count, seq) for key, count, seq in keys}
            assert found == {key: (1, seq) for key, seq in outcome.accepted.items()}
            money = conn.execute(
                select(accounts.c.holder, balances.c.balance, balances.c.held)
                .join(balances, balances.c.account_id == accounts.c.id)
                .where(accounts.c.instrument == "ccy:EUR")
            ).all()
    finally:
        engine.dispose()
    held = {holder: (int(balance), int(held)) for holder, balance, held in money}
    members = {f"member:{m.address}" for m in MEMBERS}
    assert members <= set(held)
    assert all(balance - hold >= 0 for holder, (balance, hold) in held.items() if holder in members)
    assert sum(held[m][0] for m in members) == FUNDS_EACH * len(MEMBERS)
    assert sum(balance for balance, _ in held.values()) == 0  # deposits' source balances it
