"""Hostile bodies against a real ``dpn serve`` with two workers: every one is a 4xx
problem+json, and no worker dies.

Before the JSON guard, the first body here (``{"address":`` and 100,000 brackets, sent
without signing in) killed a worker with SIGSEGV: ``py_ecc`` raises the recursion limit
to 100,000, so the C JSON decoder overflowed the stack instead of raising; six of them
and the supervisor gave up and the service exited.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .signin import greenhouse, post, sign_in
from .test_server import ADMIN, HTTP_TIMEOUT_S, Server, _workers_of, migrate, start, stop
from .test_server import wait_until_ready as ready

DEEP_ADDRESS = b'{"address":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
KEYS = b"{" + b",".join(b'"k%d":1' % i for i in range(20_000)) + b"}"
HOSTILE: list[tuple[str, bytes, str]] = [
    ("deep arrays", DEEP_ADDRESS, "json_too_deep"),
    ("deep objects", b'{"a":' * 5_000 + b"1" + b"}" * 5_000, "json_too_deep"),
    ("huge number", b'{"address":' + b"9" * 200_000 + b"}", "json_number_too_long"),
    ("many keys", KEYS, "json_too_many_members"),
    ("invalid UTF-8", b'{"address": "\xc3\x28"}', "json_encoding"),
    ("UTF-16", '{"address": "0x"}'.encode("utf-16"), "json_encoding"),
    ("NaN", b'{"address": NaN}', "json_not_finite"),
    ("Infinity", b'{"address": 1e999}', "json_not_finite"),
    ("duplicate keys", b'{"address": "a", "address": "b"}', "json_duplicate_key"),
    ("lone surrogate", b'{"\\ud800": 1}', "json_lone_surrogate"),
    ("not JSON", b'{"address": ', "json_malformed"),
]
ROUTES = ["/v1/auth/challenge", "/v1/auth/token", "/v1/transfers", "/v1/assets", "/v1/nodes"]


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # One server for the module: starting two workers costs seconds, and no test here
    # changes what another relies on (the first checks no worker died all along).
    tmp_path = tmp_path_factory.mktemp("hostile")
    url = f"sqlite:///{tmp_path / 'dpn.sqlite3'}"
    migrate(url)
    server = start(url, tmp_path / "server.log", workers=2)
    ready(server)
    try:
        yield server
    finally:
        stop(server)


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads Linux /proc")
def test_hostile_bodies_are_problems_and_no_worker_dies(two_workers: Server) -> None:
    workers = sorted(_workers_of(two_workers))
    assert len(workers) == 2
    with httpx.Client(base_url=two_workers.base_url, timeout=HTTP_TIMEOUT_S) as client:
        admin = sign_in(client, ADMIN)
        for name, body, code in HOSTILE:
            for route in ROUTES:
                for who in ({}, admin):
                    # A fresh connection each time: the kernel spreads them over both
                    # workers, so each worker gets its share of every body.
                    answer = httpx.post(
                        f"{two_workers.base_url}{route}",
                        content=body,
                        headers=who
                        | {"Content-Type": "application/json", "Idempotency-Key": "hostile"},
                        timeout=HTTP_TIMEOUT_S,
                    )
                    assert answer.status_code == 400, (name, route, answer.text[:300])
                    assert answer.headers["content-type"] == "application/problem+json"
                    assert answer.json()["code"] == code, (name, route)
        # Integers are JSON integers: not true, not 1.0e3, not "42".
        for i, total_units in enumerate(("true", "1.0e3", '"42"', "1000.0")):
            asset = (
                json.dumps(greenhouse("1M8GDM9AXKP042788"))[:-1]
                + f', "total_units": {total_units}}}'
            )
            answer = client.post(
                "/v1/assets",
                content=asset,
                headers=admin
                | {"Idempotency-Key": f"units{i}", "Content-Type": "application/json"},
            )
            assert answer.status_code == 422, answer.text
            assert answer.json()["code"] == "request_invalid"
            assert answer.json()["errors"][0]["loc"] == ["body", "total_units"], answer.text
        # The same request, well formed, still works on the same server.
        made = post(client, "/v1/assets", admin, greenhouse("1M8GDM9AXKP042788"), "ok")
        assert made.status_code == 201, made.text
    assert two_workers.process.poll() is None, two_workers.output()
    assert sorted(_workers_of(two_workers)) == workers, two_workers.output()
    log = two_workers.log.read_text(errors="replace")
    assert "exited with" not in log
    # Each request left an access line when it came in and when it was answered.
    assert "> POST /v1/auth/challenge" in log
    assert "< POST /v1/auth/challenge 400" in log


def test_the_deep_body_is_refused_without_reading_json_at_all(two_workers: Server) -> None:
    # Bodies that are not JSON by their type are left to their routes (photos).
    answer = httpx.post(
        f"{two_workers.base_url}/v1/auth/challenge",
        content=json.dumps({"address": "0x"}).encode(),
        headers={"Content-Type": "text/plain", "Idempotency-Key": "plain"},
        timeout=HTTP_TIMEOUT_S,
    )
    assert answer.status_code == 422, answer.text


def _raw_post(server: Server, path: str, headers: list[bytes], body: bytes) -> tuple[int, Any]:
    """POST exactly these header lines (bytes beyond ASCII as they stand, a header twice
    if given twice), on a connection of its own; the status and the JSON answer."""
    url = httpx.URL(server.base_url)
    lines = [
        f"POST {path} HTTP/1.1".encode(),
        f"Host: {url.host}:{url.port}".encode(),
        f"Content-Length: {len(body)}".encode(),
        b"Connection: close",
        *headers,
    ]
    with socket.create_connection((url.host, url.port or 80), timeout=HTTP_TIMEOUT_S) as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(payload)


def test_every_spelling_of_json_meets_the_guard(two_workers: Server) -> None:
    """FastAPI takes a Content-Type for JSON after stripping it as text (0xA0 and 0x85
    go) and reads the first of two: the guard decides alike, so a body with a key twice
    never reaches a decoder that keeps the last."""
    body = b'{"address": "a", "address": "b"}'
    for content_type in (
        [b"Content-Type: application/json\xa0"],
        [b"Content-Type: application/json\x85"],
        [b"Content-Type: application/json", b"Content-Type: text/plain"],
    ):
        status, problem = _raw_post(two_workers, "/v1/auth/challenge", content_type, body)
        assert (status, problem["code"]) == (400, "json_duplicate_key"), content_type
