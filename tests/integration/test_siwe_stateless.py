"""Sign-In with Ethereum without storing challenges: the nonce is the server's HMAC of
the message's fields, checked when it comes back signed; a nonce is recorded only when
a real signature redeems it, once, and forgotten once it has expired."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from sqlalchemy import Connection, Engine, func, insert, select

from ledger.access import CLOCK_SKEW_S, SiweTerms, TokenIssued, issue_challenge, redeem_signature
from ledger.access.siwe import NONCES_PURGED_MAX, TOKENS_PURGED_MAX
from ledger.core.errors import Unauthenticated
from ledger.db.engine import make_engine
from ledger.db.migrate import upgrade
from ledger.db.schema import AccessToken, AuthNonce, Base, table
from ledger.journal.write import Ledger

KEY = (7).to_bytes(32, "big")
OTHER_KEY = (8).to_bytes(32, "big")
ADDRESS = Account.from_key(KEY).address
TERMS = SiweTerms(domain="ledger.example", uri="https://ledger.example", chain_id=1)
ISSUED = datetime(2027, 1, 1, tzinfo=UTC)
CHALLENGES = 1_000


class Clock:
    """A clock the test sets by hand."""

    def __init__(self, now: datetime = ISSUED) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _sign(message: str, key: bytes = KEY, prefix: str = "0x") -> str:
    signed = Account.sign_message(encode_defunct(text=message), private_key=key)
    signature: bytes = signed.signature
    return prefix + signature.hex().removeprefix("0x")


def _rows(conn: Connection) -> dict[str, int]:
    return {
        name: conn.execute(select(func.count()).select_from(t)).scalar_one()
        for name, t in Base.metadata.tables.items()
    }


def _refused(call: Callable[[], object]) -> Unauthenticated:
    with pytest.raises(Unauthenticated) as caught:
        call()
    return caught.value


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def signin(engine: Engine, clock: Clock) -> Ledger:
    return Ledger(engine, clock=clock)


def test_asking_for_challenges_stores_nothing(signin: Ledger, clock: Clock) -> None:
    with signin.engine.connect() as conn:
        before = _rows(conn)
    nonces = set()
    for _ in range(CHALLENGES):
        clock.advance(0.001)
        nonces.add(issue_challenge(signin, TERMS, ADDRESS).nonce)
    assert len(nonces) == CHALLENGES
    with signin.engine.connect() as conn:
        assert _rows(conn) == before


def test_a_signed_challenge_signs_in_once_and_records_its_nonce(
    signin: Ledger, clock: Clock
) -> None:
    challenge = issue_challenge(signin, TERMS, ADDRESS)
    assert f"\nNonce: {challenge.nonce}\n" in challenge.message
    clock.advance(10)
    issued = redeem_signature(signin, TERMS, challenge.message, _sign(challenge.message))
    assert issued.address == ADDRESS and issued.expires_at == clock.now + timedelta(hours=1)
    nonces = table(AuthNonce)
    with signin.engine.connect() as conn:
        row = conn.execute(select(nonces)).one()
    assert (row.nonce, row.address, row.used_at) == (challenge.nonce, ADDRESS, clock.now)
    again = _refused(
        lambda: redeem_signature(signin, TERMS, challenge.message, _sign(challenge.message))
    )
    assert again.code == "siwe_nonce_used"


def test_a_signature_without_0x_and_in_capitals_is_accepted(signin: Ledger, clock: Clock) -> None:
    first = issue_challenge(signin, TERMS, ADDRESS).message
    assert redeem_signature(signin, TERMS, first, _sign(first, prefix="")).address == ADDRESS
    clock.advance(1)
    second = issue_challenge(signin, TERMS, ADDRESS).message
    assert redeem_signature(signin, TERMS, second, "0x" + _sign(second)[2:].upper()).address


def test_racing_redemptions_of_one_message_sign_in_once(signin: Ledger) -> None:
    message = issue_challenge(signin, TERMS, ADDRESS).message
    signature = _sign(message)
    racers = 4
    start = threading.Barrier(racers)

    def race(_: int) -> TokenIssued | str:
        start.wait()
        try:
            return redeem_signature(signin, TERMS, message, signature)
        except Unauthenticated as refused:
            return refused.code

    with ThreadPoolExecutor(racers) as pool:
        outcomes = list(pool.map(race, range(racers)))
    assert sum(isinstance(o, TokenIssued) for o in outcomes) == 1
    assert sorted(o for o in outcomes if isinstance(o, str)) == ["siwe_nonce_used"] * 3


def _replace_line(message: str, label: str, value: str) -> str:
    return "\n".join(
        f"{label}: {value}" if line.startswith(f"{label}: ") else line
        for line in message.split("\n")
    )


@pytest.mark.parametrize(
    ("tamper", "code", "part"),
    [
        (lambda m: m.replace("Chain ID: 1", "Chain ID: 5"), "siwe_message_altered", "chain_id"),
        (
            lambda m: m.replace("ledger.example wants", "evil.example wants"),
            "siwe_message_altered",
            "domain",
        ),
        (lambda m: m.replace("Version: 1", "Version: 2"), "siwe_message_altered", "version"),
        (lambda m: m.replace("Sign in to", "Pay from"), "siwe_message_altered", "statement"),
        (lambda m: m + "\nResources: x", "siwe_message_altered", "message"),
        (lambda m: _replace_line(m, "Nonce", "0" * 32), "siwe_nonce_unknown", None),
        # A later expiry (or issue) with the nonce issued for the original times.
        (
            lambda m: _replace_line(m, "Expiration Time", "2027-01-01T00:04:59.000000Z"),
            "siwe_nonce_unknown",
            None,
        ),
        (
            lambda m: m.replace(ADDRESS, Account.from_key(OTHER_KEY).address),
            "siwe_nonce_unknown",
            None,
        ),
    ],
    ids=["chain", "domain", "version", "statement", "extra-line", "nonce", "expiry", "address"],
)
def test_a_tampered_message_is_refused_and_records_nothing(
    signin: Ledger, tamper: Callable[[str], str], code: str, part: str | None
) -> None:
    message = tamper(issue_challenge(signin, TERMS, ADDRESS).message)
    key = OTHER_KEY if Account.from_key(OTHER_KEY).address in message else KEY
    refused = _refused(lambda: redeem_signature(signin, TERMS, message, _sign(message, key)))
    assert refused.code == code and refused.detail.get("part") == part
    with signin.engine.connect() as conn:
        assert _rows(conn)["auth_nonces"] == 0 and _rows(conn)["access_tokens"] == 0


@pytest.mark.parametrize(
    ("tamper", "part"),
    [
        (lambda m: m.replace(ADDRESS, ADDRESS.lower()), "address"),
        (lambda m: m.replace(f"\n{ADDRESS}\n", "\n\n"), "address"),
        (lambda m: "\n".join(x for x in m.split("\n") if not x.startswith("Nonce")), "nonce"),
        (lambda m: _replace_line(m, "Nonce", "NOT-HEX"), "nonce"),
        (lambda m: _replace_line(m, "Issued At", "yesterday"), "issued_at"),
        (lambda m: _replace_line(m, "Issued At", "2027-01-01T00:00:00"), "issued_at"),
        (lambda m: _replace_line(m, "Expiration Time", "soon"), "expiration_time"),
        (lambda m: m + " " * 2_048, "message"),
    ],
    ids=[
        "checksum",
        "no-address",
        "no-nonce",
        "nonce-hex",
        "issued",
        "issued-naive",
        "expiration",
        "too-long",
    ],
)
def test_a_malformed_message_names_its_part(
    signin: Ledger, tamper: Callable[[str], str], part: str
) -> None:
    message = tamper(issue_challenge(signin, TERMS, ADDRESS).message)
    refused = _refused(lambda: redeem_signature(signin, TERMS, message, _sign(message)))
    assert (refused.code, refused.detail["part"]) == ("siwe_message_malformed", part)


@pytest.mark.parametrize(
    "signature",
    ["", "0x1234", "0x" + "ab" * 64, "0x" + "ab" * 66, "0X" + "ab" * 65, "0x" + "zz" * 65],
    ids=["empty", "short", "64-bytes", "66-bytes", "capital-x", "not-hex"],
)
def test_a_malformed_signature_says_so(signin: Ledger, signature: str) -> None:
    message = issue_challenge(signin, TERMS, ADDRESS).message
    refused = _refused(lambda: redeem_signature(signin, TERMS, message, signature))
    assert refused.code == "siwe_signature_malformed"
    assert "130 hex digits, with or without 0x" in refused.message


def test_a_signature_by_another_wallet_or_unreadable_is_refused(signin: Ledger) -> None:
    message = issue_challenge(signin, TERMS, ADDRESS).message
    wrong = _refused(lambda: redeem_signature(signin, TERMS, message, _sign(message, OTHER_KEY)))
    assert wrong.code == "siwe_wrong_signer"
    unreadable = "0x" + "00" * 64 + "05"  # v must be 0, 1, 27 or 28
    assert _refused(lambda: redeem_signature(signin, TERMS, message, unreadable)).code == (
        "siwe_bad_signature"
    )
    # Neither spent the nonce: the wallet still signs in with that message.
    assert redeem_signature(signin, TERMS, message, _sign(message)).address == ADDRESS


def test_an_expired_message_is_refused(signin: Ledger, clock: Clock) -> None:
    message = issue_challenge(signin, TERMS, ADDRESS).message
    clock.advance(TERMS.challenge_ttl_s)
    assert _refused(lambda: redeem_signature(signin, TERMS, message, _sign(message))).code == (
        "siwe_expired"
    )


def test_a_message_issued_in_the_future_is_refused(engine: Engine, clock: Clock) -> None:
    # A worker whose clock runs ahead by more than the allowed skew issued it.
    ahead = Clock(clock.now + timedelta(seconds=CLOCK_SKEW_S + 1))
    message = issue_challenge(Ledger(engine, clock=ahead), TERMS, ADDRESS).message
    now = Ledger(engine, clock=clock)
    refused = _refused(lambda: redeem_signature(now, TERMS, message, _sign(message)))
    assert refused.code == "siwe_issued_in_future"
    # Within the skew, it is taken.
    near = Clock(clock.now + timedelta(seconds=CLOCK_SKEW_S))
    message = issue_challenge(Ledger(engine, clock=near), TERMS, ADDRESS).message
    assert redeem_signature(now, TERMS, message, _sign(message)).address == ADDRESS


def test_a_lifetime_beyond_the_terms_is_refused(signin: Ledger) -> None:
    longer = SiweTerms(TERMS.domain, TERMS.uri, TERMS.chain_id, challenge_ttl_s=600)
    message = issue_challenge(signin, longer, ADDRESS).message
    refused = _refused(lambda: redeem_signature(signin, TERMS, message, _sign(message)))
    assert (refused.code, refused.detail["limit"]) == ("siwe_lifetime_too_long", 300)


def test_another_deployment_does_not_take_this_ones_challenges(
    signin: Ledger, tmp_path: Path
) -> None:
    other = make_engine(f"sqlite:///{tmp_path / 'other.sqlite3'}")
    try:
        upgrade(other)  # a secret of its own
        message = issue_challenge(Ledger(other, clock=signin.clock), TERMS, ADDRESS).message
    finally:
        other.dispose()
    refused = _refused(lambda: redeem_signature(signin, TERMS, message, _sign(message)))
    assert refused.code == "siwe_nonce_unknown"


def test_expired_nonces_are_purged_a_bounded_batch_at_a_time(signin: Ledger, clock: Clock) -> None:
    nonces = table(AuthNonce)
    stale = NONCES_PURGED_MAX + 5
    with signin.engine.begin() as conn:  # used long ago: expired
        conn.execute(
            insert(nonces),
            [
                {
                    "nonce": f"{n:032x}",
                    "address": ADDRESS,
                    "message": "m",
                    "issued_at": ISSUED - timedelta(days=1),
                    "expires_at": ISSUED - timedelta(days=1, seconds=-300),
                    "used_at": ISSUED - timedelta(days=1),
                }
                for n in range(stale)
            ],
        )
    for expected in (stale - NONCES_PURGED_MAX + 1, 2):
        message = issue_challenge(signin, TERMS, ADDRESS).message
        redeem_signature(signin, TERMS, message, _sign(message))
        with signin.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(nonces)).scalar_one() == expected
        clock.advance(1)
    # A nonce used and expired, but within the clock skew, is still remembered.
    clock.advance(TERMS.challenge_ttl_s + CLOCK_SKEW_S - 3)
    message = issue_challenge(signin, TERMS, ADDRESS).message
    redeem_signature(signin, TERMS, message, _sign(message))
    with signin.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(nonces)).scalar_one() == 3
    clock.advance(10)  # now past the skew too: the first two go
    message = issue_challenge(signin, TERMS, ADDRESS).message
    redeem_signature(signin, TERMS, message, _sign(message))
    with signin.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(nonces)).scalar_one() == 2


def test_expired_tokens_are_purged_a_bounded_batch_at_a_time(signin: Ledger, clock: Clock) -> None:
    tokens = table(AccessToken)
    stale = TOKENS_PURGED_MAX + 5
    with signin.engine.begin() as conn:  # issued and expired a day ago
        conn.execute(
            insert(tokens),
            [
                {
                    "token_hash": f"{n:064x}",
                    "address": ADDRESS,
                    "issued_at": ISSUED - timedelta(days=1),
                    "expires_at": ISSUED - timedelta(hours=23),
                }
                for n in range(stale)
            ],
        )

    def count() -> int:
        with signin.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(tokens)).scalar_one())

    signed_in = []
    for expected in (stale - TOKENS_PURGED_MAX + 1, 2):
        message = issue_challenge(signin, TERMS, ADDRESS).message
        signed_in.append(redeem_signature(signin, TERMS, message, _sign(message)))
        assert count() == expected  # the stale go, a batch at a time; live tokens stay
        clock.advance(1)
    with signin.engine.connect() as conn:
        live = set(conn.execute(select(tokens.c.expires_at)).scalars())
    assert live == {t.expires_at for t in signed_in}
