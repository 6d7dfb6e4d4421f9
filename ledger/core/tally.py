"""A vote's result from its ballots: pure arithmetic on whole units, no clock, no I/O.

Each ballot weighs its voter's rights at the proposal's record time (whole units). The
result is, in integers only:

- ``tally``: the weight cast for each option, in the proposal's order of options;
- ``weight_cast``: their sum; ``eligible_weight``: the rights of every member at the
  record time (the asset's unissued pool does not vote);
- ``turnout_bp = weight_cast * 10_000 // eligible_weight`` (0 when nobody is eligible),
  and ``quorum_met`` when ``turnout_bp >= quorum_bp``. Floor division decides nothing
  the exact fraction would not: for a whole ``quorum_bp``, ``floor(x) >= q`` exactly
  when ``x >= q``;
- ``leading``: the option with the most weight, None when no weight was cast or when
  two or more options share the most (``tied``); ``leading_share_bp``: the most weight
  any option has, as a share of the weight cast, floored (so, again, exact against a
  whole ``threshold_bp``);
- ``passed``: the quorum is met and the leading option (not tied) has at least
  ``threshold_bp`` of the weight cast. A tie never passes. Before the deadline this is
  what the result would be if voting stopped now; ``final`` says it can no longer change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ledger.core.entitlements import BP_WHOLE
from ledger.core.errors import IntegrityFailure

__all__ = ["BP_WHOLE", "Ballot", "VoteResult", "tally"]


@dataclass(frozen=True, slots=True)
class Ballot:
    """One voter's counted vote: the last it cast, with its weight in units."""

    voter: str
    option: str
    weight_units: int


@dataclass(frozen=True, slots=True)
class VoteResult:
    """A proposal's result as its ballots give it (see the module's docstring)."""

    tally: tuple[tuple[str, int], ...]  # (option, weight units), in the proposal's order
    weight_cast: int
    eligible_weight: int
    turnout_bp: int
    quorum_met: bool
    leading: str | None
    leading_share_bp: int
    tied: bool
    passed: bool
    final: bool
    voters: int


def tally(
    options: Sequence[str],
    ballots: Iterable[Ballot],
    *,
    eligible_weight: int,
    quorum_bp: int,
    threshold_bp: int,
    final: bool,
) -> VoteResult:
    """The result of ``ballots`` (one per voter) on a proposal with ``options``.

    Raises ``IntegrityFailure`` if the ballots break what the ledger guarantees: a voter
    counted twice, an option not offered, a weight that is not positive, or more weight
    cast than is eligible (``vote_tally_broken``)."""
    weights = {option: 0 for option in options}
    seen: set[str] = set()
    for ballot in ballots:
        if ballot.voter in seen or ballot.option not in weights or ballot.weight_units <= 0:
            raise IntegrityFailure(
                "vote_tally_broken",
                f"ballot of {ballot.voter} ({ballot.option!r}, {ballot.weight_units}) cannot count",
            )
        seen.add(ballot.voter)
        weights[ballot.option] += ballot.weight_units
    cast = sum(weights.values())
    if cast > eligible_weight:
        raise IntegrityFailure(
            "vote_tally_broken", f"{cast} units cast of {eligible_weight} eligible"
        )
    turnout_bp = cast * BP_WHOLE // eligible_weight if eligible_weight else 0
    quorum_met = turnout_bp >= quorum_bp
    most = max(weights.values(), default=0)
    at_most = [option for option, weight in weights.items() if weight == most]
    tied = most > 0 and len(at_most) > 1
    leading = at_most[0] if most > 0 and not tied else None
    share_bp = most * BP_WHOLE // cast if cast else 0
    return VoteResult(
        tally=tuple(weights.items()),
        weight_cast=cast,
        eligible_weight=eligible_weight,
        turnout_bp=turnout_bp,
        quorum_met=quorum_met,
        leading=leading,
        leading_share_bp=share_bp,
        tied=tied,
        passed=quorum_met and leading is not None and share_bp >= threshold_bp,
        final=final,
        voters=len(seen),
    )
