"""Text that people write for people to read: names, memos, titles, places.

Beyond what every stored text obeys (``check_text``), such text must show what it says:
no control characters (a newline in a name forges a second line in a log or a list), no
bidirectional embeddings, overrides or isolates (they reorder what a reader sees, as in
``invoice_<U+202E>fdp.exe``), and something visible: not blank and not only zero-width
characters.
"""

from __future__ import annotations

import re

from ledger.core.checks import check_text
from ledger.core.errors import InvalidInput

__all__ = ["check_display_text"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# LRE RLE PDF LRO RLO, and LRI RLI FSI PDI.
_BIDI_CONTROL = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
# Something a reader sees: neither white space nor a character that takes no room.
_VISIBLE = re.compile(r"[^\s\u200b\u200c\u200d\u2060\ufeff\u180e\u00ad]")


def check_display_text(name: str, value: str, limit: int) -> str:
    """Return ``value`` if it is storable text of 1..``limit`` characters (``check_text``)
    that shows what it says; otherwise raise ``InvalidInput`` (``field_control_character``,
    ``field_bidi_control`` or ``field_empty``)."""
    check_text(name, value, limit)
    if _CONTROL.search(value):
        raise InvalidInput("field_control_character", f"{name} contains a control character")
    if not value.isascii() and _BIDI_CONTROL.search(value):
        raise InvalidInput(
            "field_bidi_control", f"{name} contains a bidirectional override, embedding or isolate"
        )
    if not _VISIBLE.search(value):
        raise InvalidInput("field_empty", f"{name} must show something: it is blank")
    return value
