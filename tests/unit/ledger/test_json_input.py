"""JSON from outside: every document that is too deep, too long, ambiguous or not UTF-8
is refused with its own code, in bounded time, whatever the recursion limit."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ledger.core.errors import InvalidInput
from ledger.core.json_input import JSON_INPUT_LIMITS, nesting_exceeds, parse_json_input

DEEP = b'{"address":' + b"[" * 100_000 + b"]" * 100_000 + b"}"


@pytest.mark.parametrize(
    ("document", "code"),
    [
        (DEEP, "json_too_deep"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, "json_too_deep"),
        (b"[" * 33 + b"]" * 33, "json_too_deep"),
        (b"[" * 50_000, "json_too_deep"),  # unbalanced as well
        (b"[" + b"9" * 200_000 + b"]", "json_number_too_long"),
        (b"[1e" + b"9" * 100 + b"]", "json_number_too_long"),
        (b"[1e999]", "json_not_finite"),
        (b"[NaN]", "json_not_finite"),
        (b'{"a": -Infinity}', "json_not_finite"),
        (b'{"a": 1, "a": 2}', "json_duplicate_key"),
        (b"{" + b",".join(b'"k%d":1' % i for i in range(20_000)) + b"}", "json_too_many_members"),
        (b'{"a": "\xff"}', "json_encoding"),
        ('{"a": 1}'.encode("utf-16"), "json_encoding"),
        (b"\xef\xbb\xbf{}", "json_malformed"),  # a byte-order mark is not JSON
        (b'{"a": 1', "json_malformed"),
        (b'{"\\ud800": 1}', "json_lone_surrogate"),
        (b'["\\udc00x"]', "json_lone_surrogate"),
    ],
)
def test_a_hostile_document_is_refused_with_its_code(document: bytes, code: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_json_input(document)
    assert refused.value.code == code


def test_documents_at_every_limit_are_read() -> None:
    depth = JSON_INPUT_LIMITS.depth_max
    assert parse_json_input(b"[" * depth + b"]" * depth) is not None
    members = {f"k{i}": i for i in range(JSON_INPUT_LIMITS.members_max)}
    assert parse_json_input(json.dumps(members).encode()) == members
    longest = "9" * JSON_INPUT_LIMITS.number_len_max
    assert parse_json_input(f"[{longest}]".encode()) == [int(longest)]
    # Brackets inside strings are text, not nesting; an escaped quote does not end one.
    text = '{"a": "' + "[" * 1000 + '\\"' + "{" * 1000 + '"}'
    assert parse_json_input(text.encode()) == json.loads(text)
    assert parse_json_input(b'"\\ud83d\\ude00"') == "\U0001f600"  # a pair is fine


@given(st.recursive(st.none() | st.integers() | st.text(), lambda inner: st.lists(inner)))
@example("{")  # every bracket inside a string: depth 0
@example(["[", ["{"]])
def test_nesting_is_measured_exactly(value: object) -> None:
    def depth(v: object) -> int:
        return 1 + max(map(depth, v), default=0) if isinstance(v, list) else 0

    document = json.dumps(value).encode()
    for limit in range(0, 8):
        assert nesting_exceeds(document, limit) == (depth(value) > limit)


def test_a_deep_document_is_refused_even_where_an_import_raised_the_recursion_limit() -> None:
    # eth_account imports py_ecc, which sets the limit to 100,000; the standard decoder
    # then overflows the C stack on this document and the process dies (SIGSEGV).
    program = (
        "import sys, eth_account\n"
        "assert sys.getrecursionlimit() >= 100_000\n"
        "from ledger.core.json_input import parse_json_input\n"
        "from ledger.core.errors import InvalidInput\n"
        "try:\n"
        "    parse_json_input(b'[' * 200_000 + b']' * 200_000)\n"
        "except InvalidInput as refused:\n"
        "    print(refused.code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "json_too_deep"
