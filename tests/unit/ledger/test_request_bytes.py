"""The hand-assembled request bytes equal the generic canonical encoding, always."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core import AccountKey, EntryDraft, HoldChange, HoldOp, Posting, canonical_bytes
from ledger.core.canonical import request_json

from .strategies import storable_text

text = storable_text(12)
payloads = st.dictionaries(text, st.integers() | text | st.booleans() | st.none(), max_size=3)
postings = st.lists(st.tuples(text, text, st.integers(-(10**40), 10**40)), max_size=3)
holds = st.lists(
    st.tuples(text, text, text, st.sampled_from(list(HoldOp)), st.integers(1, 10**40)),
    max_size=2,
)


@settings(max_examples=500)
@given(text, text, text, payloads, postings, holds, st.none() | st.integers(0, 10**12))
def test_request_bytes_are_the_canonical_encoding(
    kind: str,
    actor: str,
    key: str,
    payload: dict[str, int | str | bool | None],
    posted: list[tuple[str, str, int]],
    held: list[tuple[str, str, str, HoldOp, int]],
    reverses: int | None,
) -> None:
    draft = EntryDraft(
        kind=kind,
        idempotency_key=key,
        actor=actor,
        payload=payload,
        postings=tuple(Posting(AccountKey(h, i), a) for h, i, a in posted),
        hold_changes=tuple(HoldChange(c, AccountKey(h, i), op, a) for c, h, i, op, a in held),
        reverses=reverses,
    )
    expected = canonical_bytes(
        request_json(kind, actor, key, payload, draft.postings, draft.hold_changes, reverses)
    )
    assert draft.request_bytes() == expected
