"""Canonical JSON: one byte string per value, so hashes are reproducible anywhere.

Keys sorted, no whitespace, UTF-8, integers as JSON integers of any size. Floats are
refused: they have no single exact text form and the ledger never uses them.

An entry's hashed bytes have one encoder, ``request_bytes`` and ``sealed_body_bytes``:
the write path seals with it and ``dpn verify`` checks with it. It writes what
``canonical_bytes`` would of the entry's JSON form (``request_json``, ``postings_json``,
``holds_json``), assembled directly because it runs for every entry written; the tests
hold the two equal.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ledger.core.errors import InvalidInput

if TYPE_CHECKING:  # the entry's types are built on this encoding, not the reverse
    from ledger.core.accounts import AccountKey
    from ledger.core.entry import HoldChange, Posting

__all__ = [
    "JsonValue",
    "canonical_bytes",
    "check_json_value",
    "check_text_storable",
    "holds_json",
    "payload_text",
    "postings_json",
    "request_bytes",
    "request_json",
    "sealed_body_bytes",
]

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
    if type(value) is dict:  # most payloads: flat, of ints and ASCII text (checked inline)
        for key, item in value.items():
            if type(key) is not str:
                raise InvalidInput("payload_key", "payload keys must be strings")
            if not key.isascii() or "\x00" in key:
                check_text_storable(key)
            kind = type(item)
            if kind is str:
                if not item.isascii() or "\x00" in item:
                    check_text_storable(item)
            elif kind is not int or abs(item) > _INT_MAX:
                check_json_value(item, depth + 1)
        return
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


def payload_text(payload: Mapping[str, JsonValue]) -> str:
    """The canonical text of an entry's payload (``{}`` when empty): stored as it is, and
    part of the hashed request. Refuses what ``canonical_bytes`` refuses."""
    if not payload:
        return "{}"
    if type(payload) is dict:
        text = _flat_text(payload)
        if text is not None:
            return text
    return canonical_bytes(dict(payload)).decode()


def _flat_text(payload: dict[str, JsonValue]) -> str | None:
    """``canonical_bytes(payload)`` as text, written directly for the common payload
    (the market's orders, trades and releases): flat, its keys and texts ASCII without
    NUL, its integers within the limit; None for any other, which the general encoder
    checks and writes. Half the cost of ``json.dumps``; the tests hold the two equal."""
    try:
        keys = sorted(payload)  # as sort_keys does: by code point
    except TypeError:  # keys of several types: not JSON
        return None
    q = _json_string
    parts: list[str] = []
    for key in keys:
        quoted = _QUOTED_KEYS.get(key)
        if quoted is None:
            if type(key) is not str or not key.isascii() or "\x00" in key:
                return None
            quoted = q(key) + ":"
            if len(_QUOTED_KEYS) < _QUOTED_KEYS_MAX:
                _QUOTED_KEYS[key] = quoted
        value = payload[key]
        if type(value) is int:
            if not -_INT_MAX <= value <= _INT_MAX:
                return None
            parts.append(quoted + str(value))
        elif type(value) is str:
            if not value.isascii() or "\x00" in value:
                return None
            parts.append(quoted + q(value))
        elif value is None:
            parts.append(quoted + "null")
        elif type(value) is bool:
            parts.append(quoted + ("true" if value else "false"))
        else:
            return None
    return "{" + ",".join(parts) + "}"


# Payload keys are few (a service's field names): each is checked and quoted once.
_QUOTED_KEYS: dict[str, str] = {}
_QUOTED_KEYS_MAX = 1_024


def postings_json(postings: tuple[Posting, ...]) -> list[list[str]]:
    """Postings as JSON: ``[holder, instrument, amount]``, the amount a decimal string
    (exact in every JSON reader, whatever its integer width)."""
    return [[p.account.holder, p.account.instrument, str(p.amount)] for p in postings]


def holds_json(changes: tuple[HoldChange, ...]) -> list[list[str]]:
    """Hold changes as JSON: ``[hold id, holder, instrument, op, amount]``."""
    return [
        [h.hold_id, h.account.holder, h.account.instrument, h.op.value, str(h.amount)]
        for h in changes
    ]


def request_json(
    kind: str,
    actor: str,
    idempotency_key: str,
    payload: Mapping[str, JsonValue],
    postings: tuple[Posting, ...],
    hold_changes: tuple[HoldChange, ...],
    reverses: int | None,
) -> dict[str, Any]:
    """What was asked of an entry, as a JSON-ready dict: ``request_bytes`` encodes it."""
    return {
        "kind": kind,
        "actor": actor,
        "idempotency_key": idempotency_key,
        "payload": dict(payload),
        "postings": postings_json(postings),
        "holds": holds_json(hold_changes),
        "reverses": reverses,
    }


# The C string encoder behind json.dumps(..., ensure_ascii=False): quotes and escapes.
_json_string: Callable[[str], str] = json.encoder.encode_basestring


def request_bytes(
    kind: str,
    actor: str,
    idempotency_key: str,
    payload: Mapping[str, JsonValue],
    postings: tuple[Posting, ...],
    hold_changes: tuple[HoldChange, ...],
    reverses: int | None,
    payload_json: str | None = None,
) -> bytes:
    """``canonical_bytes(request_json(...))``, assembled directly: keys in sorted order,
    the payload by ``canonical_bytes`` (or ``payload_json``, its ``payload_text`` already
    made by the caller). The caller has checked the texts storable."""
    q = _json_string
    quoted = _QUOTED_ACCOUNTS.get
    parts = []
    for p in postings:
        account = quoted(p.account) or _quote_account(p.account)
        parts.append(f'[{account},"{p.amount}"]')
    posted = ",".join(parts)
    parts = []
    for h in hold_changes:
        account = quoted(h.account) or _quote_account(h.account)
        parts.append(f'[{q(h.hold_id)},{account},{q(h.op.value)},"{h.amount}"]')
    holds = ",".join(parts)
    reversed_seq = "null" if reverses is None else str(reverses)
    return (
        f'{{"actor":{q(actor)},"holds":[{holds}],'
        f'"idempotency_key":{q(idempotency_key)},"kind":{q(kind)},'
        f'"payload":{payload_text(payload) if payload_json is None else payload_json},'
        f'"postings":[{posted}],"reverses":{reversed_seq}}}'
    ).encode()


def sealed_body_bytes(
    seq: int, entry_id: str, prev_hash: str, recorded_at: str, effective_at: str, request: bytes
) -> bytes:
    """The canonical bytes of a sealed entry's hashed body: its place (``seq``, ``id``,
    ``prev_hash``), its times in their text form and the ``request`` bytes, keys in
    sorted order. Every piece but ``request`` is ASCII that JSON writes unescaped."""
    return (
        (
            f'{{"effective_at":"{effective_at}","id":"{entry_id}","prev_hash":"{prev_hash}",'
            f'"recorded_at":"{recorded_at}","request":'
        ).encode()
        + request
        + f',"seq":{seq}}}'.encode()
    )


def _quote_account(account: AccountKey) -> str:
    """``holder,instrument`` of ``account`` as JSON strings, kept for the next entry."""
    text = f"{_json_string(account.holder)},{_json_string(account.instrument)}"
    if len(_QUOTED_ACCOUNTS) < _QUOTED_ACCOUNTS_MAX:
        _QUOTED_ACCOUNTS[account] = text
    return text


# The accounts an entry names recur (a member's cash and units, the fees): each is
# quoted once, up to this many.
_QUOTED_ACCOUNTS: dict[AccountKey, str] = {}
_QUOTED_ACCOUNTS_MAX = 65_536
