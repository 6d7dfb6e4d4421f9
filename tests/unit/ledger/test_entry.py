"""Entry drafts and sealed entries: the shape check, the hash and the text form of time."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.core import (
    GENESIS_HASH,
    AccountKey,
    Entry,
    EntryDraft,
    HoldChange,
    HoldOp,
    JsonValue,
    Posting,
    canonical_bytes,
    chain_hash,
    check_amount,
    check_draft,
    entry_id_for,
    format_time,
    limits,
    parse_time,
    seal,
)
from ledger.core.canonical import sealed_body_bytes
from ledger.core.errors import InvalidInput, LedgerError

from .strategies import storable_text


def code_of(call: Callable[[], object], error: type[LedgerError]) -> str:
    """Run ``call``; fail unless it raises ``error``; return the error's stable code."""
    with pytest.raises(error) as info:
        call()
    return info.value.code


ALICE = "member:0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
BOB = "member:0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
USD = "ccy:USD"
UNITS = "units:1M8GDM9AXKP042788"
A_USD, B_USD = AccountKey(ALICE, USD), AccountKey(BOB, USD)
A_UNITS, B_UNITS = AccountKey(ALICE, UNITS), AccountKey(BOB, UNITS)
DEPOSITS_USD = AccountKey("external:deposits", USD)
T0 = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


def transfer(amount: int = 5, /, **changes: Any) -> EntryDraft:
    base = EntryDraft(
        kind="transfer",
        idempotency_key="key-1",
        actor="tester",
        postings=(Posting(A_USD, -amount), Posting(B_USD, amount)),
    )
    return dataclasses.replace(base, **changes)


def refusal(draft: EntryDraft) -> str:
    return code_of(lambda: check_draft(draft), InvalidInput)


# -- check_amount and check_draft -----------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        (0, "amount_not_positive"),
        (-1, "amount_not_positive"),
        (-(10**40), "amount_not_positive"),
        (limits.AMOUNT_MAX + 1, "amount_over_limit"),
        (True, "amount_type"),
    ],
)
def test_check_amount_refuses(amount: int, code: str) -> None:
    assert code_of(lambda: check_amount(amount), InvalidInput) == code


@pytest.mark.parametrize("amount", [1, 2**64, limits.AMOUNT_MAX])
def test_check_amount_accepts_one_up_to_the_limit(amount: int) -> None:
    check_amount(amount)


def test_a_balanced_draft_passes() -> None:
    check_draft(transfer())
    two_instruments = transfer(
        postings=(
            Posting(A_USD, -5),
            Posting(B_USD, 5),
            Posting(B_UNITS, -7),
            Posting(A_UNITS, 7),
        )
    )
    check_draft(two_instruments)


def test_unbalanced_postings_are_refused() -> None:
    draft = transfer(postings=(Posting(A_USD, -5), Posting(B_USD, 4)))
    with pytest.raises(InvalidInput) as info:
        check_draft(draft)
    assert info.value.code == "postings_unbalanced"
    assert "ccy:USD is off by -1" in info.value.message


def test_balance_is_per_instrument() -> None:
    # Sums to zero overall, but moves dollars one way and units the other without a match.
    draft = transfer(postings=(Posting(A_USD, -5), Posting(B_UNITS, 5)))
    assert refusal(draft) == "postings_unbalanced"


def test_a_single_posting_is_unbalanced() -> None:
    assert refusal(transfer(postings=(Posting(A_USD, 5),))) == "postings_unbalanced"


@pytest.mark.parametrize(
    ("amount", "code"),
    [(0, "amount_not_positive"), (limits.AMOUNT_MAX + 1, "amount_over_limit")],
)
def test_posting_amounts_are_checked(amount: int, code: str) -> None:
    assert refusal(transfer(amount)) == code


def test_a_maximal_posting_passes() -> None:
    check_draft(transfer(limits.AMOUNT_MAX))


def test_a_boolean_posting_amount_is_refused() -> None:
    draft = transfer(postings=(Posting(A_USD, -1), Posting(B_USD, True)))
    assert refusal(draft) == "amount_type"


def test_an_account_posted_twice_is_refused() -> None:
    draft = transfer(postings=(Posting(A_USD, -5), Posting(B_USD, 3), Posting(B_USD, 2)))
    assert refusal(draft) == "posting_duplicate_account"


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        (0, "amount_not_positive"),
        (-3, "amount_not_positive"),
        (limits.AMOUNT_MAX + 1, "amount_over_limit"),
    ],
)
def test_hold_amounts_are_checked(amount: int, code: str) -> None:
    draft = transfer(postings=(), hold_changes=(HoldChange("h", A_USD, HoldOp.PLACE, amount),))
    assert refusal(draft) == code


def test_a_hold_on_an_external_account_is_refused() -> None:
    draft = transfer(postings=(), hold_changes=(HoldChange("h", DEPOSITS_USD, HoldOp.PLACE, 1),))
    assert refusal(draft) == "hold_on_external"


def _pairs(count: int) -> tuple[Posting, ...]:
    """``count`` postings (even), on distinct accounts, balanced."""
    return tuple(Posting(AccountKey(f"member:{i}", USD), 1 if i % 2 else -1) for i in range(count))


def test_postings_per_entry_are_limited() -> None:
    check_draft(transfer(postings=_pairs(limits.POSTINGS_PER_ENTRY_MAX)))
    over = _pairs(limits.POSTINGS_PER_ENTRY_MAX + 2)
    assert refusal(transfer(postings=over)) == "too_many_postings"


def test_hold_changes_per_entry_are_limited() -> None:
    def holds(n: int) -> tuple[HoldChange, ...]:
        return tuple(HoldChange(f"h{i}", A_USD, HoldOp.PLACE, 1) for i in range(n))

    check_draft(transfer(hold_changes=holds(limits.HOLD_CHANGES_PER_ENTRY_MAX)))
    over = transfer(hold_changes=holds(limits.HOLD_CHANGES_PER_ENTRY_MAX + 1))
    assert refusal(over) == "too_many_hold_changes"


@pytest.mark.parametrize(
    ("field", "limit"),
    [
        ("kind", limits.KIND_LEN_MAX),
        ("actor", limits.ACTOR_LEN_MAX),
        ("idempotency_key", limits.IDEMPOTENCY_KEY_LEN_MAX),
    ],
)
def test_text_fields_are_limited_and_not_empty(field: str, limit: int) -> None:
    check_draft(transfer(**{field: "k" * limit}))
    assert refusal(transfer(**{field: "k" * (limit + 1)})) == "field_too_long"
    assert refusal(transfer(**{field: ""})) == "field_empty"


def test_hold_ids_are_limited_and_not_empty() -> None:
    def with_hold(hold_id: str) -> EntryDraft:
        return transfer(hold_changes=(HoldChange(hold_id, A_USD, HoldOp.PLACE, 1),))

    check_draft(with_hold("h" * limits.HOLD_ID_LEN_MAX))
    assert refusal(with_hold("h" * (limits.HOLD_ID_LEN_MAX + 1))) == "field_too_long"
    assert refusal(with_hold("")) == "field_empty"


def test_payload_size_is_limited_in_bytes() -> None:
    overhead = len(b'{"x":""}')
    check_draft(transfer(payload={"x": "a" * (limits.PAYLOAD_BYTES_MAX - overhead)}))
    too_large = transfer(payload={"x": "a" * (limits.PAYLOAD_BYTES_MAX - overhead + 1)})
    assert refusal(too_large) == "payload_too_large"
    # Counted in UTF-8 bytes, not characters: 'é' is two bytes.
    wide = transfer(payload={"x": "é" * (limits.PAYLOAD_BYTES_MAX // 2)})
    assert refusal(wide) == "payload_too_large"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"price": 1.5}, "payload_float"),
        ({"a": {"b": [1.0]}}, "payload_float"),
        ({"a": {1: 2}}, "payload_key"),
        ({"a": b"raw"}, "payload_type"),
    ],
)
def test_payload_must_be_plain_json(payload: dict[str, Any], code: str) -> None:
    assert refusal(transfer(payload=payload)) == code


@pytest.mark.parametrize(
    "changes",
    [
        {"payload": {"n": 10**5000}},
        {"payload": {"memo": "\ud800"}},
        {"kind": "transfer\udfff"},
        {"idempotency_key": "key-\ud800"},
    ],
    ids=["long-int", "surrogate-payload", "surrogate-kind", "surrogate-key"],
)
def test_a_draft_that_cannot_be_encoded_is_refused_as_invalid_input(
    changes: dict[str, Any],
) -> None:
    assert refusal(transfer(**changes))  # any InvalidInput code will do


# -- sealing and hashing ----------------------------------------------------------------------

texts = storable_text(12, min_size=1)
json_scalars = st.none() | st.booleans() | st.integers() | storable_text(8)
json_values: st.SearchStrategy[JsonValue] = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(storable_text(5), inner, max_size=3)
    ),
    max_leaves=10,
)
payloads = st.dictionaries(storable_text(6), json_values, max_size=4)
accounts = st.builds(AccountKey, st.sampled_from([ALICE, BOB, "pool:X", "external:deposits"]),
                     st.sampled_from([USD, UNITS, "ccy:ETH"]))  # fmt: skip
amounts = st.integers(-limits.AMOUNT_MAX, limits.AMOUNT_MAX).filter(bool)
postings = st.lists(st.builds(Posting, accounts, amounts), max_size=4).map(tuple)
hold_changes = st.lists(
    st.builds(HoldChange, texts, accounts, st.sampled_from(HoldOp), st.integers(1, 10**40)),
    max_size=3,
).map(tuple)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
hashes = st.binary(min_size=32, max_size=32).map(bytes.hex)

drafts = st.builds(
    EntryDraft,
    kind=texts,
    idempotency_key=texts,
    actor=texts,
    postings=postings,
    hold_changes=hold_changes,
    payload=payloads,
    effective_at=st.none() | moments,
    reverses=st.none() | st.integers(1, 2**62),
)


@st.composite
def sealed_entries(draw: st.DrawFn) -> Entry:
    return seal(
        draw(drafts),
        seq=draw(st.integers(1, 2**62)),
        prev_hash=draw(hashes),
        recorded_at=draw(moments),
    )


def _different(strategy: st.SearchStrategy[Any], old: Any, key: Callable[[Any], object]) -> Any:
    return strategy.filter(lambda new: key(new) != key(old))


def _same(value: Any) -> object:
    return value


# How to draw a genuinely different value for each hashed field of an entry. A new time
# must differ in its text form (the same instant in another zone is the same time).
MUTATIONS: dict[str, Callable[[Any], st.SearchStrategy[Any]]] = {
    "seq": lambda old: _different(st.integers(0, 2**63), old, _same),
    "id": lambda old: _different(st.uuids().map(str), old, _same),
    "kind": lambda old: _different(texts, old, _same),
    "actor": lambda old: _different(texts, old, _same),
    "idempotency_key": lambda old: _different(texts, old, _same),
    "payload": lambda old: _different(payloads, old, canonical_bytes),
    "postings": lambda old: _different(postings, old, _same),
    "hold_changes": lambda old: _different(hold_changes, old, _same),
    "effective_at": lambda old: _different(moments, old, format_time),
    "recorded_at": lambda old: _different(moments, old, format_time),
    "reverses": lambda old: _different(st.none() | st.integers(0, 2**62), old, _same),
    "prev_hash": lambda old: _different(hashes, old, _same),
}


def test_every_hashed_field_has_a_mutation() -> None:
    fields = {f.name for f in dataclasses.fields(Entry)} - {"hash"}
    assert set(MUTATIONS) == fields


@given(sealed_entries())
def test_an_untouched_entry_verifies(entry: Entry) -> None:
    assert entry.computed_hash() == entry.hash
    assert entry.hash == chain_hash(entry.prev_hash, canonical_bytes(entry.body()))


@given(drafts, st.integers(1, 2**62), hashes, moments)
def test_the_assembled_body_is_the_canonical_body(
    draft: EntryDraft, seq: int, prev_hash: str, recorded_at: datetime
) -> None:
    entry = seal(draft, seq=seq, prev_hash=prev_hash, recorded_at=recorded_at)
    assembled = sealed_body_bytes(
        seq,
        entry.id,
        prev_hash,
        format_time(recorded_at),
        format_time(entry.effective_at),
        draft.request_bytes(),
    )
    assert assembled == canonical_bytes(entry.body())


@given(sealed_entries(), st.sampled_from(sorted(MUTATIONS)), st.data())
def test_changing_any_field_changes_the_hash(entry: Entry, field: str, data: st.DataObject) -> None:
    new = data.draw(MUTATIONS[field](getattr(entry, field)), label=field)
    tampered = dataclasses.replace(entry, **{field: new})
    assert tampered.computed_hash() != entry.hash


@given(sealed_entries(), st.sampled_from(sorted(MUTATIONS)), st.data())
def test_the_encoder_of_any_entry_writes_its_canonical_body(
    entry: Entry, field: str, data: st.DataObject
) -> None:
    # Verify encodes entries read back, altered or not, with the encoder seal used: it
    # must still write exactly what the generic encoder writes of the entry's body.
    new = data.draw(MUTATIONS[field](getattr(entry, field)), label=field)
    entry = dataclasses.replace(entry, **{field: new})
    assert entry.body_bytes() == canonical_bytes(entry.body())


@pytest.mark.parametrize("field", ["id", "prev_hash", "kind", "actor", "idempotency_key"])
def test_an_entry_with_text_no_database_keeps_cannot_be_encoded(field: str) -> None:
    entry = seal(transfer(), seq=1, prev_hash=GENESIS_HASH, recorded_at=T0)
    changes: dict[str, Any] = {field: "a\x00b"}
    altered = dataclasses.replace(entry, **changes)
    assert code_of(altered.computed_hash, InvalidInput) == "text_nul"
    assert code_of(lambda: canonical_bytes(altered.body()), InvalidInput) == "text_nul"


@given(sealed_entries())
def test_changing_the_stored_hash_is_detected(entry: Entry) -> None:
    tampered = dataclasses.replace(entry, hash=GENESIS_HASH)
    assert tampered.computed_hash() != tampered.hash


def test_seal_fills_id_and_effective_time_and_is_deterministic() -> None:
    draft = transfer()
    entry = seal(draft, seq=1, prev_hash=GENESIS_HASH, recorded_at=T0)
    assert entry.id == entry_id_for("key-1")
    assert entry.effective_at == T0 == entry.recorded_at
    assert (entry.seq, entry.prev_hash, entry.postings) == (1, GENESIS_HASH, draft.postings)
    again = seal(draft, seq=1, prev_hash=GENESIS_HASH, recorded_at=T0)
    assert again == entry
    later = seal(draft, seq=1, prev_hash=GENESIS_HASH, recorded_at=T0 + timedelta(microseconds=1))
    assert later.hash != entry.hash


def test_seal_keeps_a_given_effective_time() -> None:
    effective = T0 - timedelta(days=3)
    entry = seal(transfer(effective_at=effective), seq=2, prev_hash="ab" * 32, recorded_at=T0)
    assert entry.effective_at == effective
    assert entry.recorded_at == T0
    assert entry.computed_hash() == entry.hash


def test_entries_chain() -> None:
    first = seal(transfer(), seq=1, prev_hash=GENESIS_HASH, recorded_at=T0)
    second = seal(transfer(idempotency_key="key-2"), seq=2, prev_hash=first.hash, recorded_at=T0)
    assert second.prev_hash == first.hash
    assert second.id != first.id
    assert second.hash != first.hash


def test_chain_hash_is_sha256_of_prev_hash_bytes_then_body() -> None:
    import hashlib

    body = b'{"a":1}'
    expected = hashlib.sha256(bytes.fromhex("ab" * 32) + body).hexdigest()
    assert chain_hash("ab" * 32, body) == expected


def test_entry_ids_are_stable_uuids_of_the_key() -> None:
    assert entry_id_for("key-1") == entry_id_for("key-1")
    assert entry_id_for("key-1") != entry_id_for("key-2")
    assert len(entry_id_for("key-1")) == 36


@given(st.text(max_size=limits.IDEMPOTENCY_KEY_LEN_MAX))
def test_entry_ids_are_uuid5_of_the_key(key: str) -> None:
    expected = uuid.uuid5(uuid.UUID("7d3c6f0e-5b8a-4e0f-9f59-1f0a6b2dc8e1"), key)
    assert entry_id_for(key) == str(expected)
    assert uuid.UUID(entry_id_for(key)).version == 5


def test_request_hash_covers_the_request_and_the_effective_time() -> None:
    draft = transfer()
    assert draft.request_hash() == transfer().request_hash()
    assert draft.request_hash(draft.request_bytes()) == draft.request_hash()
    assert transfer(6).request_hash() != draft.request_hash()
    assert transfer(actor="someone-else").request_hash() != draft.request_hash()
    assert transfer(payload={"memo": "x"}).request_hash() != draft.request_hash()
    assert transfer(effective_at=T0).request_hash() != draft.request_hash()
    assert (
        transfer(effective_at=T0).request_hash()
        != transfer(effective_at=T0 + timedelta(seconds=1)).request_hash()
    )


# -- the text form of time ---------------------------------------------------------------------


def test_format_time_is_utc_with_microseconds_and_z() -> None:
    moment = datetime(2027, 3, 1, 13, 30, 5, 42, tzinfo=timezone(timedelta(hours=1)))
    assert format_time(moment) == "2027-03-01T12:30:05.000042Z"


def test_the_same_instant_in_any_zone_has_one_text_form() -> None:
    in_utc = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
    in_tokyo = in_utc.astimezone(timezone(timedelta(hours=9)))
    assert format_time(in_tokyo) == format_time(in_utc)


def test_naive_times_are_refused() -> None:
    assert code_of(lambda: format_time(datetime(2027, 1, 1)), InvalidInput) == "time_naive"
    assert code_of(lambda: parse_time("2027-01-01T00:00:00"), InvalidInput) == "time_naive"


@pytest.mark.parametrize("text", ["", "yesterday", "2027-13-01T00:00:00Z", "2027-01-01T25:00Z"])
def test_malformed_times_are_refused(text: str) -> None:
    assert code_of(lambda: parse_time(text), InvalidInput) == "time_malformed"


@given(st.datetimes(min_value=datetime(1000, 1, 1), timezones=st.just(UTC)))
def test_format_then_parse_round_trips(moment: datetime) -> None:
    text = format_time(moment)
    assert parse_time(text) == moment
    assert format_time(parse_time(text)) == text


def test_format_time_pads_years_before_1000() -> None:
    moment = datetime(999, 1, 1, tzinfo=UTC)
    assert format_time(moment) == "0999-01-01T00:00:00.000000Z"
    assert parse_time(format_time(moment)) == moment


@pytest.mark.parametrize(
    "moment",
    [
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),  # year 0 in UTC
        datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-2))),  # year 10000
    ],
)
def test_times_beyond_years_1_to_9999_in_utc_are_refused(moment: datetime) -> None:
    assert code_of(lambda: format_time(moment), InvalidInput) == "time_out_of_range"
    assert code_of(lambda: parse_time(moment.isoformat()), InvalidInput) == "time_out_of_range"


_NUL_ACCOUNT = AccountKey("member:0x\x00", USD)
_SURROGATE_ACCOUNT = AccountKey("member:0x\ud800", USD)


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"payload": {"memo": "a\x00b"}}, "text_nul"),
        ({"payload": {"a\x00": 1}}, "text_nul"),
        ({"actor": "x\x00"}, "text_nul"),
        ({"postings": (Posting(_NUL_ACCOUNT, -5), Posting(B_USD, 5))}, "text_nul"),
        ({"hold_changes": (HoldChange("h", _NUL_ACCOUNT, HoldOp.PLACE, 5),)}, "text_nul"),
        ({"hold_changes": (HoldChange("h", _SURROGATE_ACCOUNT, HoldOp.PLACE, 5),)},
         "text_not_utf8"),
    ],
    ids=["payload-value", "payload-key", "actor", "posting-account", "hold-account",
         "hold-account-surrogate"],
)  # fmt: skip
def test_text_no_database_can_keep_is_refused_everywhere(
    changes: dict[str, Any], code: str
) -> None:
    assert refusal(transfer(**changes)) == code


def test_text_that_spells_out_an_escaped_nul_is_not_refused() -> None:
    check_draft(transfer(payload={"memo": "\\u0000", "\\u0000": 1}))  # six characters each
