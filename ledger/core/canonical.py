"""Canonical JSON: one byte string per value, so hashes are reproducible anywhere.

Keys sorted, no whitespace, UTF-8, integers as JSON integers of any size. Floats are
refused: they have no single exact text form and the ledger never uses them.
"""

from __future__ import annotations

import json
from typing import Any

from ledger.core.errors import InvalidInput

__all__ = ["JsonValue", "canonical_bytes", "check_json_value", "check_text_storable"]

JsonValue = None | bool | int | str | list["JsonValue"] | dict[str, "JsonValue"]

_DEPTH_MAX = 16
_INT_MAX = 10**78


def check_text_storable(text: str) -> None:
    """Raise ``InvalidInput`` unless ``text`` can be kept alike on every database: valid
    Unicode (no lone surrogate, so it can be written as UTF-8) and without NUL, which
    PostgreSQL text cannot hold."""
    if "\x00" in text:
        raise InvalidInput("text_nul", "text must not contain NUL (U+0000)")
    if text.isascii():  # the common case, without encoding a copy
        return
    try:
        text.encode()
    except UnicodeEncodeError:
        raise InvalidInput(
            "text_not_utf8", "text must be valid Unicode (no lone surrogates)"
        ) from None


def check_json_value(value: Any, depth: int = 0) -> None:
    """Raise ``InvalidInput`` unless ``value`` is plain JSON without floats, nested <= 16."""
    if depth > _DEPTH_MAX:
        raise InvalidInput("payload_too_deep", f"payload nests deeper than {_DEPTH_MAX}")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if abs(value) > _INT_MAX:
            raise InvalidInput("payload_int_too_large", "payload integers have at most 78 digits")
        return
    if isinstance(value, str):
        check_text_storable(value)
        return
    if isinstance(value, float):
        raise InvalidInput("payload_float", "payload may not contain floats; use integers")
    if isinstance(value, list | tuple):
        for item in value:
            check_json_value(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput("payload_key", "payload keys must be strings")
            check_text_storable(key)
            check_json_value(item, depth + 1)
        return
    raise InvalidInput("payload_type", f"payload may not contain {type(value).__name__}")


def canonical_bytes(value: Any) -> bytes:
    """Return the canonical UTF-8 JSON encoding of ``value`` (sorted keys, no spaces)."""
    if value == {}:
        return b"{}"
    check_json_value(value)
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()
