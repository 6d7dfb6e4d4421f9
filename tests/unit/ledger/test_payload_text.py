"""The payload's canonical text, written directly for flat payloads, equals the generic
encoding and refuses what it refuses."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core import canonical_bytes
from ledger.core.canonical import payload_text
from ledger.core.errors import InvalidInput

from .strategies import storable_text

keys = storable_text(12) | st.sampled_from(["a", "b", "A", "_", "a\x00", "\x00", "é", "\ud800"])
scalars = (
    st.integers()
    | st.integers(-(10**80), 10**80)
    | st.sampled_from([10**78, -(10**78), 10**78 + 1, -(10**78) - 1])
    | storable_text(12)
    | st.sampled_from(["", "x\x00y", "Zürich", "\ud800", 'a"b\\c\n\t\x1f'])
    | st.booleans()
    | st.none()
)
values = scalars | st.lists(scalars, max_size=2) | st.floats(allow_nan=False)


def _generic(payload: dict[Any, Any]) -> str | InvalidInput:
    try:
        return canonical_bytes(dict(payload)).decode() if payload else "{}"
    except InvalidInput as error:
        return error


def _direct(payload: dict[Any, Any]) -> str | InvalidInput:
    try:
        return payload_text(payload)
    except InvalidInput as error:
        return error


@settings(max_examples=1_000)
@given(st.dictionaries(keys, values, max_size=8))
def test_payload_text_is_the_canonical_encoding(payload: dict[str, Any]) -> None:
    direct, generic = _direct(payload), _generic(payload)
    if isinstance(generic, InvalidInput):
        assert isinstance(direct, InvalidInput)
        assert direct.code == generic.code
    else:
        assert direct == generic


def test_payload_text_sorts_keys_by_code_point() -> None:
    assert payload_text({"b": 1, "B": 2, "a_": 3, "a": 4}) == '{"B":2,"a":4,"a_":3,"b":1}'


@pytest.mark.parametrize(
    "payload",
    [{1: 1}, {1: 1, "a": 2}, {"a": 1.5}, {"a": object()}, {"a": b"x"}],
)
def test_payload_text_refuses_what_is_not_json(payload: dict[Any, Any]) -> None:
    with pytest.raises(InvalidInput):
        payload_text(payload)


def test_a_mapping_that_is_not_a_dict_is_encoded_alike() -> None:
    payload = cast(Any, OrderedDict([("b", 1), ("a", "x")]))
    assert payload_text(payload) == '{"a":"x","b":1}'
