"""Canonical JSON: one byte string per value; the hash chain depends on it."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.core import JsonValue, canonical_bytes
from ledger.core.canonical import check_json_value
from ledger.core.errors import InvalidInput, LedgerError

from .strategies import storable_text


def code_of(call: Callable[[], object], error: type[LedgerError]) -> str:
    """Run ``call``; fail unless it raises ``error``; return the error's stable code."""
    with pytest.raises(error) as info:
        call()
    return info.value.code


json_scalars = st.none() | st.booleans() | st.integers() | storable_text(8)
json_values: st.SearchStrategy[JsonValue] = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(storable_text(6), inner, max_size=4)
    ),
    max_leaves=16,
)


def nested(depth: int) -> JsonValue:
    value: JsonValue = 1
    for _ in range(depth):
        value = [value]
    return value


def test_keys_are_sorted_at_every_level() -> None:
    value = {"b": 1, "a": {"z": [], "y": {"d": None, "c": True}}, "A": 0}
    assert canonical_bytes(value) == b'{"A":0,"a":{"y":{"c":true,"d":null},"z":[]},"b":1}'


def test_there_is_no_whitespace_between_tokens() -> None:
    assert canonical_bytes({"a": [1, 2, {"b": "c d"}]}) == b'{"a":[1,2,{"b":"c d"}]}'


def test_text_is_utf8_not_escaped_and_controls_are_escaped() -> None:
    assert canonical_bytes("Zürich €") == '"Zürich €"'.encode()
    assert canonical_bytes('a"b\\c\n') == b'"a\\"b\\\\c\\n"'


@pytest.mark.parametrize("number", [0, -1, 2**53 + 1, 2**64, 10**36, -(10**36), 2**256 - 1])
def test_big_integers_are_exact(number: int) -> None:
    encoded = canonical_bytes({"n": number})
    assert encoded == b'{"n":' + str(number).encode() + b"}"
    assert json.loads(encoded)["n"] == number


def test_empty_containers() -> None:
    assert canonical_bytes({}) == b"{}"
    assert canonical_bytes([]) == b"[]"
    assert canonical_bytes({"a": {}}) == b'{"a":{}}'


@pytest.mark.parametrize("value", [1.5, 0.0, {"price": 1.0}, [1, 2.5], float("nan")])
def test_canonical_bytes_refuses_floats(value: Any) -> None:
    assert code_of(lambda: canonical_bytes(value), InvalidInput) == "payload_float"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (1.5, "payload_float"),
        ({"a": [0.0]}, "payload_float"),
        (float("inf"), "payload_float"),
        ({1: "a"}, "payload_key"),
        ({"a": {None: 1}}, "payload_key"),
        ({"a": {1, 2}}, "payload_type"),
        (b"bytes", "payload_type"),
        ({"a": object()}, "payload_type"),
        (nested(17), "payload_too_deep"),
    ],
)
def test_check_json_value_refuses_what_is_not_plain_json(value: Any, code: str) -> None:
    assert code_of(lambda: check_json_value(value), InvalidInput) == code


def test_check_json_value_accepts_sixteen_levels() -> None:
    check_json_value(nested(16))
    assert code_of(lambda: check_json_value(nested(17)), InvalidInput) == "payload_too_deep"


@given(json_values)
def test_plain_json_round_trips_and_is_a_fixed_point(value: JsonValue) -> None:
    check_json_value(value)
    encoded = canonical_bytes(value)
    assert json.loads(encoded) == value
    assert canonical_bytes(json.loads(encoded)) == encoded


@given(st.dictionaries(storable_text(6), json_values, max_size=8), st.randoms())
def test_insertion_order_does_not_matter(value: dict[str, JsonValue], rnd: random.Random) -> None:
    items = list(value.items())
    rnd.shuffle(items)
    assert canonical_bytes(dict(items)) == canonical_bytes(value)


@given(json_values, json_values)
def test_different_values_encode_differently(a: JsonValue, b: JsonValue) -> None:
    # JSON tells true from 1, which Python's == does not: compare with types.
    def typed(v: JsonValue) -> object:
        if isinstance(v, dict):
            return ("dict", sorted((k, typed(x)) for k, x in v.items()))
        if isinstance(v, list):
            return ("list", [typed(x) for x in v])
        return (type(v).__name__, v)

    assert (canonical_bytes(a) == canonical_bytes(b)) == (typed(a) == typed(b))


def test_tuples_encode_as_lists() -> None:
    assert canonical_bytes(cast(Any, {"a": (1, 2)})) == canonical_bytes({"a": [1, 2]})
