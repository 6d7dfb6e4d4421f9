"""Asset identifiers: 17 characters of the VIN alphabet with an ISO 3779 check character.

The alphabet is the digits and the capitals except I, O and Q. Position 9 (index 8) is
the check character: transliterate each character to a number, weight it by position,
sum, take the remainder mod 11; a remainder of 10 is written ``X``.
"""

from __future__ import annotations

from ledger.core.errors import InvalidInput

__all__ = ["ASSET_ID_ALPHABET", "check_character", "validate_asset_id", "with_check_character"]

ASSET_ID_LEN = 17
ASSET_ID_ALPHABET = frozenset("0123456789ABCDEFGHJKLMNPRSTUVWXYZ")
_CHECK_INDEX = 8

_VALUE = (
    {str(d): d for d in range(10)}
    | dict(zip("ABCDEFGH", range(1, 9), strict=True))
    | dict(zip("JKLMN", range(1, 6), strict=True))
    | {"P": 7, "R": 9}
    | dict(zip("STUVWXYZ", range(2, 10), strict=True))
)
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def check_character(asset_id: str) -> str:
    """Return the ISO 3779 check character for a 17-character ID (its own position 9 ignored)."""
    total = sum(_VALUE[c] * w for c, w in zip(asset_id, _WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def _check_shape(asset_id: str) -> None:
    if len(asset_id) != ASSET_ID_LEN:
        raise InvalidInput(
            "asset_id_length",
            f"asset ID must be {ASSET_ID_LEN} characters, got {len(asset_id)}",
            asset_id=asset_id[:64],
        )
    bad = sorted({c for c in asset_id if c not in ASSET_ID_ALPHABET})
    if bad:
        raise InvalidInput(
            "asset_id_alphabet",
            f"asset ID {asset_id!r} has characters outside the VIN alphabet: {''.join(bad)!r}"
            " (digits and capitals except I, O, Q)",
            asset_id=asset_id,
        )


def validate_asset_id(asset_id: str) -> str:
    """Return ``asset_id`` unchanged if it is well formed, else raise ``InvalidInput``."""
    _check_shape(asset_id)
    expected = check_character(asset_id)
    if asset_id[_CHECK_INDEX] != expected:
        raise InvalidInput(
            "asset_id_check_digit",
            f"asset ID {asset_id!r} has check character {asset_id[_CHECK_INDEX]!r} at"
            f" position 9; expected {expected!r} (is it mistyped?)",
            asset_id=asset_id,
        )
    return asset_id


def with_check_character(asset_id: str) -> str:
    """Return ``asset_id`` with position 9 replaced by its correct check character."""
    _check_shape(asset_id)
    return asset_id[:_CHECK_INDEX] + check_character(asset_id) + asset_id[_CHECK_INDEX + 1 :]
