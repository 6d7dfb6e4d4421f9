"""Ledger errors survive pickling whole: the engine process sends its refusals to the
workers that way (``market.engine.remote``)."""

from __future__ import annotations

import pickle

import pytest

from ledger.core.errors import (
    Conflict,
    Forbidden,
    IntegrityFailure,
    InvalidInput,
    LedgerError,
    NotFound,
    Refused,
    Unauthenticated,
    Unavailable,
)

KINDS = (
    LedgerError, InvalidInput, NotFound, Conflict, Refused, Unauthenticated, Forbidden,
    Unavailable, IntegrityFailure,
)  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_an_error_pickles_with_its_class_code_message_and_detail(kind: type[LedgerError]) -> None:
    error = kind("some_code", "what went wrong", available=5, asked="7")
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is kind
    assert (back.code, back.message) == ("some_code", "what went wrong")
    assert back.detail == {"available": 5, "asked": "7"}
    assert str(back) == "some_code: what went wrong"


def test_an_error_as_an_answer_drops_its_traceback_and_nothing_else() -> None:
    try:
        raise Refused("insufficient_funds", "not enough", available=1)
    except Refused as raised:
        assert raised.__traceback__ is not None
        answer = raised.as_answer()
        assert answer is raised
    assert answer.__traceback__ is None
    assert (answer.code, answer.detail) == ("insufficient_funds", {"available": 1})
