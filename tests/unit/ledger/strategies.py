"""Hypothesis strategies shared by the core's tests."""

from __future__ import annotations

from hypothesis import strategies as st

# Text a ledger keeps: valid UTF-8, without NUL (text_nul).
_STORABLE = st.characters(codec="utf-8", exclude_characters="\x00")


def storable_text(max_size: int, min_size: int = 0) -> st.SearchStrategy[str]:
    """Text the ledger accepts anywhere: no lone surrogates, no NUL."""
    return st.text(_STORABLE, min_size=min_size, max_size=max_size)
