"""The largest remainder method: exact sums, each share within one unit of its exact
value, the tie-break by order, and every refusal."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.core.errors import InvalidInput
from ledger.core.shares import largest_remainder

weights = st.lists(st.integers(min_value=0, max_value=10**30), min_size=1, max_size=40).filter(
    lambda ws: sum(ws) > 0
)


@given(total=st.integers(min_value=0, max_value=10**15), ws=weights)
def test_shares_sum_exactly_and_stay_within_a_unit(total: int, ws: list[int]) -> None:
    shares = largest_remainder(total, list(enumerate(ws)))
    assert sum(shares.values()) == total
    whole = sum(ws)
    for i, w in enumerate(ws):
        exact = Fraction(total * w, whole)
        assert abs(shares[i] - exact) < 1
        assert shares[i] >= 0


@given(total=st.integers(min_value=0, max_value=10**6), ws=weights)
def test_a_larger_weight_never_gets_fewer_units(total: int, ws: list[int]) -> None:
    shares = largest_remainder(total, list(enumerate(ws)))
    for i, a in enumerate(ws):
        for j, b in enumerate(ws):
            if a > b:
                assert shares[i] >= shares[j]


def test_ties_go_to_the_earlier_claim() -> None:
    assert largest_remainder(2, [("late", 1), ("early", 1), ("last", 1)]) == {
        "late": 1,
        "early": 1,
        "last": 0,
    }
    assert largest_remainder(1, [("b", 5), ("a", 5)]) == {"b": 1, "a": 0}


def test_the_networks_example() -> None:
    # 20 % from the organizer, 80 % from three finance nodes in awkward amounts.
    shares = largest_remainder(
        1_000_000, [("org", 600_000), ("n1", 1_000_001), ("n2", 700_000), ("n3", 699_999)]
    )
    assert shares == {"org": 200_000, "n1": 333_334, "n2": 233_333, "n3": 233_333}


@pytest.mark.parametrize(
    ("total", "claims", "code"),
    [
        (-1, [("a", 1)], "share_total"),
        (1, [("a", -1)], "share_weight"),
        (1, [("a", True)], "share_weight"),
        (1, [("a", 1), ("a", 2)], "share_repeated"),
        (1, [("a", 0)], "share_weightless"),
    ],
)
def test_refusals(total: int, claims: list[tuple[str, int]], code: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        largest_remainder(total, claims)
    assert caught.value.code == code


def test_nothing_to_share_among_nothing() -> None:
    assert largest_remainder(0, [("a", 0)]) == {"a": 0}
