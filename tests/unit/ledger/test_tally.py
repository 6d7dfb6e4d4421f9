"""A vote's result from its ballots: turnout and shares in whole basis points decide
exactly what the exact fractions decide; a tie never leads and never passes; what
passes met the quorum and the threshold; ballots the ledger would never count raise."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.core.errors import IntegrityFailure
from ledger.core.tally import BP_WHOLE, Ballot, tally

OPTIONS = ("a", "b", "c")
ballots = st.lists(
    st.tuples(st.sampled_from(OPTIONS), st.integers(min_value=1, max_value=10**15)), max_size=12
)


@given(
    cast=ballots,
    spare=st.integers(min_value=0, max_value=10**15),
    quorum_bp=st.integers(min_value=0, max_value=BP_WHOLE),
    threshold_bp=st.integers(min_value=BP_WHOLE // 2 + 1, max_value=BP_WHOLE),
)
def test_the_result_decides_as_the_exact_fractions_do(
    cast: list[tuple[str, int]], spare: int, quorum_bp: int, threshold_bp: int
) -> None:
    weight = sum(w for _, w in cast)
    eligible = weight + spare
    found = tally(
        OPTIONS,
        [Ballot(f"v{i}", option, w) for i, (option, w) in enumerate(cast)],
        eligible_weight=eligible,
        quorum_bp=quorum_bp,
        threshold_bp=threshold_bp,
        final=False,
    )
    per = {o: sum(w for option, w in cast if option == o) for o in OPTIONS}
    assert found.tally == tuple(per.items()) and found.weight_cast == weight
    assert found.voters == len(cast)
    turnout = Fraction(weight, eligible) if eligible else Fraction(0)
    assert found.quorum_met == (turnout * BP_WHOLE >= quorum_bp)
    most = max(per.values())
    leaders = [o for o, w in per.items() if w == most]
    assert found.tied == (most > 0 and len(leaders) > 1)
    assert found.leading == (leaders[0] if most > 0 and len(leaders) == 1 else None)
    share_met = weight > 0 and Fraction(most, weight) * BP_WHOLE >= threshold_bp
    assert found.passed == (found.quorum_met and found.leading is not None and share_met)
    if found.tied:
        assert not found.passed


def test_exactly_at_the_quorum_and_the_threshold_passes_and_just_below_does_not() -> None:
    votes = [Ballot("x", "a", 8), Ballot("y", "b", 2)]  # 10 of 20 cast; "a" has 80 %
    at = tally(OPTIONS, votes, eligible_weight=20, quorum_bp=5_000, threshold_bp=8_000, final=True)
    assert (at.turnout_bp, at.leading_share_bp, at.passed, at.final) == (5_000, 8_000, True, True)
    assert not tally(OPTIONS, votes, eligible_weight=21, quorum_bp=5_000, threshold_bp=8_000,
                     final=True).quorum_met  # fmt: skip
    assert not tally(OPTIONS, votes, eligible_weight=20, quorum_bp=5_000, threshold_bp=8_001,
                     final=True).passed  # fmt: skip


@pytest.mark.parametrize(
    ("votes", "eligible"),
    [
        ([Ballot("x", "a", 1), Ballot("x", "b", 1)], 10),  # a voter counted twice
        ([Ballot("x", "z", 1)], 10),  # an option not offered
        ([Ballot("x", "a", 0)], 10),  # no weight
        ([Ballot("x", "a", 11)], 10),  # more cast than eligible
    ],
)
def test_ballots_the_ledger_never_counts_raise(votes: list[Ballot], eligible: int) -> None:
    with pytest.raises(IntegrityFailure) as caught:
        tally(
            OPTIONS, votes, eligible_weight=eligible, quorum_bp=0, threshold_bp=6_000, final=False
        )
    assert caught.value.code == "vote_tally_broken"
