"""Answers kept under an idempotency key (``ledger.idempotency``), on SQLite and
PostgreSQL: claimed once, answered the same, refused for another request, released on
failure, taken over when abandoned, and sealed so that an altered or moved sealed answer
is refused, never returned."""

from __future__ import annotations

import base64
import hashlib
import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from ledger.core.errors import Conflict, IntegrityFailure, Refused
from ledger.db.schema import HttpIdempotency, table
from ledger.idempotency import CLAIM_ABANDONED_S, Answer, answer_once
from ledger.journal.write import Ledger

records = table(HttpIdempotency)
TOKEN = {"access_token": "dpn_secret-token-value", "expires_at": "2027-01-01T01:00:00Z"}
ISSUED = Answer(201, TOKEN)


class Counter:
    def __init__(self, answer: Answer = ISSUED) -> None:
        self.calls = 0
        self.answer = answer

    def __call__(self) -> Answer:
        self.calls += 1
        return self.answer


def ask(
    ledger: Ledger,
    run: Any,
    *,
    key: str = "k1",
    request: Any = None,
    secret: bytes | None = b"the caller's own secret",
    scope: str = "token:0xAnn",
) -> Answer:
    return answer_once(
        ledger,
        scope=scope,
        key=key,
        request={"n": 1} if request is None else request,
        run=run,
        secret=secret,
    )


def stored_body(ledger: Ledger, key: str = "k1") -> str:
    with ledger.engine.connect() as conn:
        return str(conn.execute(select(records.c.body).where(records.c.key == key)).scalar_one())


def store_body(ledger: Ledger, body: str, key: str = "k1") -> None:
    with ledger.engine.begin() as conn:
        conn.execute(update(records).where(records.c.key == key).values(body=body))


def test_a_repeat_gets_the_first_answer_and_another_request_is_refused(ledger: Ledger) -> None:
    run = Counter()
    first = ask(ledger, run)
    again = ask(ledger, run)
    assert first == again == Answer(201, TOKEN) and run.calls == 1
    with pytest.raises(Conflict) as refused:
        ask(ledger, run, request={"n": 2})
    assert refused.value.code == "idempotency_conflict" and run.calls == 1


def test_a_sealed_answer_is_not_readable_from_the_database(ledger: Ledger) -> None:
    ask(ledger, Counter())
    body = stored_body(ledger)
    assert body.startswith("aes256gcm:")
    assert "secret-token" not in body and "access_token" not in body
    # Two sealings of one answer differ: a fresh nonce each time.
    ask(ledger, Counter(), key="k2")
    assert stored_body(ledger, "k2").split(":")[3] != body.split(":")[3]


def test_an_answer_without_a_secret_is_stored_plain(ledger: Ledger) -> None:
    answer = ask(ledger, Counter(Answer(201, {"sha256": "ab"})), secret=None)
    assert answer.body == {"sha256": "ab"} and stored_body(ledger) == '{"sha256": "ab"}'


def _flip_one_byte(sealed: str) -> str:
    mark, key_id, nonce, data = sealed.split(":")
    raw = bytearray(base64.b64decode(data))
    raw[len(raw) // 2] ^= 0x01
    return ":".join([mark, key_id, nonce, base64.b64encode(bytes(raw)).decode()])


def test_a_tampered_sealed_answer_is_refused_not_returned(ledger: Ledger) -> None:
    run = Counter()
    ask(ledger, run)
    store_body(ledger, _flip_one_byte(stored_body(ledger)))
    with pytest.raises(IntegrityFailure) as refused:
        ask(ledger, run)
    assert refused.value.code == "idempotency_answer_tampered" and run.calls == 1
    # So is a body cut short or no longer in the sealed format's shape.
    store_body(ledger, "aes256gcm:00:11:not base64!")
    with pytest.raises(IntegrityFailure, match="altered"):
        ask(ledger, run)


def test_a_sealed_answer_moved_to_another_row_is_refused(ledger: Ledger) -> None:
    ask(ledger, Counter(), key="ann")
    ask(ledger, Counter(Answer(201, {"access_token": "another"})), key="bob")
    # Same secret, same request: only the row's key differs, and it is bound in.
    store_body(ledger, stored_body(ledger, "ann"), key="bob")
    with pytest.raises(IntegrityFailure, match="altered"):
        ask(ledger, Counter(), key="bob")
    # The status is bound in too.
    with ledger.engine.begin() as conn:
        conn.execute(update(records).where(records.c.key == "ann").values(status=200))
    with pytest.raises(IntegrityFailure):
        ask(ledger, Counter(), key="ann")


def test_an_answer_sealed_for_another_credential_is_refused_as_unreadable(
    ledger: Ledger,
) -> None:
    run = Counter()
    ask(ledger, run, secret=b"the first bearer token")
    with pytest.raises(Conflict) as refused:
        ask(ledger, run, secret=b"a later bearer token")
    assert refused.value.code == "idempotency_answer_unreadable" and run.calls == 1


def test_an_answer_sealed_by_the_old_xor_scheme_is_refused_as_unreadable(
    ledger: Ledger,
) -> None:
    # Rows sealed before AES-GCM hold bare hex with no integrity: they cannot be told
    # apart from altered ones, so they are never returned.
    run = Counter()
    ask(ledger, run)
    store_body(ledger, "7b2261636365737322")
    with pytest.raises(Conflict) as refused:
        ask(ledger, run)
    assert refused.value.code == "idempotency_answer_unreadable" and run.calls == 1


def test_a_failed_action_releases_its_key(ledger: Ledger) -> None:
    def fail() -> Answer:
        raise Refused("nope", "refused")

    with pytest.raises(Refused):
        ask(ledger, fail, request={"n": 1})
    # Not remembered: the same key works again, even for another request.
    assert ask(ledger, Counter(), request={"n": 2}).status == 201


def test_a_twin_waits_for_the_first_answer_and_the_action_runs_once(ledger: Ledger) -> None:
    started, finish = threading.Event(), threading.Event()
    calls = []

    def slow() -> Answer:
        calls.append(1)
        started.set()
        assert finish.wait(10)
        return Answer(201, TOKEN)

    answers: list[Answer] = []
    first = threading.Thread(target=lambda: answers.append(ask(ledger, slow)))
    first.start()
    assert started.wait(10)
    twin = threading.Thread(target=lambda: answers.append(ask(ledger, slow)))
    twin.start()
    threading.Timer(0.3, finish.set).start()
    first.join(15)
    twin.join(15)
    assert answers == [Answer(201, TOKEN)] * 2 and len(calls) == 1


def test_an_abandoned_claim_is_taken_over(ledger: Ledger) -> None:
    with ledger.engine.begin() as conn:
        conn.execute(
            records.insert().values(
                scope="token:0xAnn",
                key="k1",
                # The hash of ``ask``'s request: the claim of an identical request.
                request_hash=hashlib.sha256(b'{"n": 1}').hexdigest(),
                status=0,
                body="",
                sealed=False,
                created_at=ledger.clock() - timedelta(seconds=CLAIM_ABANDONED_S + 1),
            )
        )
    run = Counter()
    assert ask(ledger, run) == Answer(201, TOKEN) and run.calls == 1
