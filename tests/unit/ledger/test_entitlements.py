"""Entitlements of a period's production: the operator's share first, the rest pro rata
to rights by largest remainder; they sum exactly to what was produced, and no holder's
pro rata part differs from its exact share by one unit or more."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.core.entitlements import BP_WHOLE, entitlements
from ledger.core.errors import InvalidInput

rights = st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=60).filter(
    lambda rs: sum(rs) > 0
)


@given(
    produced=st.integers(min_value=0, max_value=10**15),
    share_bp=st.integers(min_value=0, max_value=BP_WHOLE),
    rs=rights,
    operator=st.integers(min_value=0, max_value=80),
)
def test_entitlements_sum_to_production_and_stay_within_a_unit(
    produced: int, share_bp: int, rs: list[int], operator: int
) -> None:
    claims = list(enumerate(rs))
    shared = entitlements(produced, operator, share_bp, claims)
    whole = shared.holders()
    assert sum(whole.values()) == produced
    assert all(units >= 0 for units in whole.values())
    assert shared.operator_first == produced * share_bp // BP_WHOLE
    rest = produced - shared.operator_first
    for holder, r in claims:
        exact = Fraction(rest * r, sum(rs))
        assert abs(shared.pro_rata[holder] - exact) < 1
        first = shared.operator_first if holder == operator else 0
        assert shared.of(holder) == shared.pro_rata[holder] + first == whole[holder]
    if operator >= len(rs):  # an operator without rights still gets its share first
        assert shared.of(operator) == shared.operator_first


def test_the_organizer_with_a_fifth_and_a_tenth_share_gets_28_percent() -> None:
    claims = [("organizer", 200_000), ("north", 500_000), ("river", 300_000)]
    shared = entitlements(1_000_000, "organizer", 1_000, claims)
    assert shared.of("organizer") == 280_000
    assert shared.of("north") == 450_000
    assert shared.of("river") == 270_000


def test_rounding_goes_to_the_largest_remainder_then_the_first_claim() -> None:
    # 10 units, 10 % first (1): 9 among three equal holders: 3 each, nothing left over.
    assert entitlements(10, "op", 1_000, [("a", 1), ("b", 1), ("c", 1)]).pro_rata == {
        "a": 3,
        "b": 3,
        "c": 3,
    }
    # 11 units, no share: 3 each and 2 left, to the first two claims (equal remainders).
    assert entitlements(11, "op", 0, [("a", 1), ("b", 1), ("c", 1)]).pro_rata == {
        "a": 4,
        "b": 4,
        "c": 3,
    }
    # The operator's share rounds down: 9 units at 15 % is 1.35 -> 1; the holders get 8.
    shared = entitlements(9, "op", 1_500, [("a", 1), ("b", 1)])
    assert (shared.operator_first, shared.pro_rata) == (1, {"a": 4, "b": 4})


@pytest.mark.parametrize(
    ("produced", "share_bp", "claims", "code"),
    [
        (-1, 0, [("a", 1)], "share_total"),
        (10, -1, [("a", 1)], "operator_share_bp"),
        (10, 10_001, [("a", 1)], "operator_share_bp"),
        (10, 0, [("a", 0)], "share_weightless"),
        (10, 0, [("a", 1), ("a", 2)], "share_repeated"),
        (10, 0, [("a", -1)], "share_weight"),
    ],
)
def test_what_cannot_be_shared_is_refused(
    produced: int, share_bp: int, claims: list[tuple[str, int]], code: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        entitlements(produced, "op", share_bp, claims)
    assert refused.value.code == code


def test_all_to_the_operator_needs_no_rights() -> None:
    shared = entitlements(7, "op", BP_WHOLE, [("a", 0)])
    assert shared.holders() == {"a": 0, "op": 7}
