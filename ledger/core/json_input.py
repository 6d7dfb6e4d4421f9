"""JSON from outside, parsed with a limit on everything: the one way this codebase reads
a JSON document it did not write (request bodies, replay files, contract return data).

The standard decoder guards its nesting only by the interpreter's recursion limit,
which any import may raise (``py_ecc`` sets it to 100,000, and at that depth the C
decoder overflows the stack and the process dies). So the nesting is measured here,
on the bytes, before the decoder sees them; and the decoder runs with hooks that
refuse what JSON allows but nobody means: duplicate keys, ``NaN`` and ``Infinity``,
numbers of thousands of digits, objects of tens of thousands of members, and text
that is not UTF-8 or holds a lone surrogate.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from ledger.core.errors import InvalidInput

__all__ = ["JSON_INPUT_LIMITS", "JsonInputLimits", "nesting_exceeds", "parse_json_input"]


@dataclass(frozen=True, slots=True)
class JsonInputLimits:
    """The most a JSON document from outside may hold."""

    depth_max: int = 32  # arrays and objects inside each other
    members_max: int = 1_024  # keys of one object
    number_len_max: int = 64  # characters of one number literal


JSON_INPUT_LIMITS = JsonInputLimits()

# A JSON string: quote, then runs of ordinary characters or escapes, then quote.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_INNERMOST_PAIR = re.compile(rb"\[\]|\{\}")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# An escaped UTF-16 surrogate: where one appears, the parsed text is checked for a lone one.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def nesting_exceeds(document: bytes, depth_max: int) -> bool:
    """True if the arrays and objects of ``document`` nest deeper than ``depth_max`` (or
    its brackets do not balance, which the decoder would refuse anyway). Linear in the
    document's size and never recursive, whatever the input."""
    if document.count(b"[") + document.count(b"{") <= depth_max:
        return False  # too few brackets to nest that deep: the common case, two scans
    brackets = _STRING.sub(b"", document).translate(None, _NOT_BRACKETS)
    if re.search(rb"[\[{]{%d}" % (depth_max + 1), brackets):
        return True  # that many openers in a row: the usual hostile body, found at once
    if not brackets:
        return False  # every bracket was inside a string
    # Each pass removes the innermost pairs, so it peels one level of nesting.
    for _ in range(depth_max):
        brackets, peeled = _INNERMOST_PAIR.subn(b"", brackets)
        if not brackets:
            return False
        if not peeled:
            return True  # brackets that never pair up: not JSON
    return True


def parse_json_input(document: bytes, limits: JsonInputLimits = JSON_INPUT_LIMITS) -> Any:
    """The value of ``document`` (UTF-8 JSON), or ``InvalidInput`` with one of the codes
    ``json_encoding``, ``json_too_deep``, ``json_malformed``, ``json_duplicate_key``,
    ``json_too_many_members``, ``json_number_too_long``, ``json_not_finite`` and
    ``json_lone_surrogate``, whose message says what and where."""
    try:
        text = document.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            "json_encoding", f"the body is not UTF-8 (byte {exc.start} cannot be decoded)"
        ) from None
    if nesting_exceeds(document, limits.depth_max):
        raise InvalidInput(
            "json_too_deep", f"arrays and objects nest deeper than {limits.depth_max} levels"
        )
    try:
        value = json.loads(
            text,
            object_pairs_hook=lambda pairs: _object(pairs, limits),
            parse_int=lambda literal: int(_number(literal, limits)),
            parse_float=lambda literal: _finite(float(_number(literal, limits)), literal),
            parse_constant=_constant,
        )
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            "json_malformed", f"the body is not JSON: {exc.msg} at character {exc.pos}"
        ) from None
    if _SURROGATE_ESCAPE.search(document):
        _refuse_lone_surrogates(value)
    return value


def _object(pairs: list[tuple[str, Any]], limits: JsonInputLimits) -> dict[str, Any]:
    if len(pairs) > limits.members_max:
        raise InvalidInput(
            "json_too_many_members", f"an object has more than {limits.members_max} members"
        )
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InvalidInput("json_duplicate_key", f"the key {key[:64]!r} appears twice")
            seen.add(key)
    return found


def _number(literal: str, limits: JsonInputLimits) -> str:
    if len(literal) > limits.number_len_max:
        raise InvalidInput(
            "json_number_too_long",
            f"a number has more than {limits.number_len_max} characters; send large"
            " amounts as integer strings",
        )
    return literal


def _finite(value: float, literal: str) -> float:
    if not math.isfinite(value):
        raise InvalidInput("json_not_finite", f"the number {literal[:32]} is out of range")
    return value


def _constant(name: str) -> Any:
    raise InvalidInput("json_not_finite", f"{name} is not JSON")


def _refuse_lone_surrogates(value: Any) -> None:
    """Refuse text holding half of a UTF-16 pair: it cannot be written as UTF-8. The
    depth is already bounded, so this walk is too."""
    if isinstance(value, str):
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidInput(
                    "json_lone_surrogate", "text holds a lone UTF-16 surrogate (\\ud800-\\udfff)"
                ) from None
    elif isinstance(value, list):
        for item in value:
            _refuse_lone_surrogates(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_lone_surrogates(key)
            _refuse_lone_surrogates(item)
