"""Text that people write for people to read: names, memos, titles, places.

Beyond what every stored text obeys (``check_text``), such text must show what it says:
no control characters (a newline, or a line or paragraph separator, in a name forges a
second line in a log or a list; tag characters and interlinear annotations carry text
no reader sees), no bidirectional embeddings, overrides or isolates (they reorder what a
reader sees, as in ``invoice_<U+202E>fdp.exe``), and something visible: a letter, digit,
mark of punctuation or symbol that is drawn, not only spaces, format characters,
combining marks or the fillers that are drawn as nothing (U+3164, U+2800, ...).
"""

from __future__ import annotations

import re
import unicodedata

from ledger.core.checks import check_text
from ledger.core.errors import InvalidInput

__all__ = ["check_display_text"]

# C0 and C1 controls; the line and paragraph separators; the deprecated format controls
# (U+206A..F), the interlinear annotations (U+FFF9..B) and the tag characters.
_CONTROL = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u206a-\u206f\ufff9-\ufffb\U000e0000-\U000e007f]"
)
# LRE RLE PDF LRO RLO, and LRI RLI FSI PDI.
_BIDI_CONTROL = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
# Letters and symbols drawn as nothing: the Hangul fillers and the blank Braille cell.
_BLANK = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _shows(value: str) -> bool:
    """Whether ``value`` holds a character a reader sees: a letter, number, punctuation or
    symbol (not a space, a format character, a combining mark alone, or a blank)."""
    if value.isascii():
        return not value.isspace()  # printable ASCII: no controls got this far
    return any(unicodedata.category(c)[0] in "LNPS" and c not in _BLANK for c in value)


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
    if not _shows(value):
        raise InvalidInput("field_empty", f"{name} must show something: it is blank")
    return value
