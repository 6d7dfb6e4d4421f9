"""Entitlements: a period's production of one output kind, shared exactly.

The operator's share comes first: ``produced * operator_share_bp / 10,000``, rounded
down (the holders get what rounding leaves). The rest is shared pro rata to the rights
each holder had at the period's record time, by the largest remainder method
(``ledger.core.shares``): the shares sum to the rest exactly, and none differs from its
exact value ``rest * rights / sum(rights)`` by one unit or more. Ties between equal
remainders go to the claim given first; callers give the claims in a fixed order (by
holder), so the same rights always give the same entitlements.

The operator is a rights holder like any other for the rest: an operator with 20 % of
the rights and a 10 % share gets 10 % + 20 % x 90 % = 28 % of what was produced.
Integers only.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from ledger.core.errors import InvalidInput
from ledger.core.shares import largest_remainder

__all__ = ["BP_WHOLE", "Entitlements", "entitlements"]

K = TypeVar("K", bound=Hashable)

BP_WHOLE = 10_000
"""Basis points in the whole."""


@dataclass(frozen=True, slots=True)
class Entitlements(Generic[K]):
    """How ``produced`` was shared: ``operator_first`` to the operator before anyone,
    and ``pro_rata`` (every claim's key, 0 where its share rounds to nothing) of the
    rest. ``of(key)`` is what a holder is entitled to in all."""

    produced: int
    operator: K
    operator_first: int
    pro_rata: dict[K, int]

    def of(self, key: K) -> int:
        """Everything ``key`` is entitled to: its pro rata share, and the operator's
        share first if it is the operator."""
        first = self.operator_first if key == self.operator else 0
        return first + self.pro_rata.get(key, 0)

    def holders(self) -> dict[K, int]:
        """Every claim's whole entitlement (the operator's included, even without rights)."""
        shares = dict(self.pro_rata)
        shares[self.operator] = shares.get(self.operator, 0) + self.operator_first
        return shares


def entitlements(
    produced: int, operator: K, operator_share_bp: int, claims: Sequence[tuple[K, int]]
) -> Entitlements[K]:
    """Share ``produced`` between ``operator`` (``operator_share_bp`` first) and the
    ``claims`` ((holder, rights) in tie-break order) pro rata to their rights.

    Raises ``InvalidInput`` for a negative ``produced``, a share outside 0..10,000 basis
    points, a negative or repeated claim, or something to share among claims whose rights
    sum to zero (after the operator's share)."""
    if isinstance(produced, bool) or not isinstance(produced, int) or produced < 0:
        raise InvalidInput("share_total", "what was produced must be a whole number >= 0")
    if (
        isinstance(operator_share_bp, bool)
        or not isinstance(operator_share_bp, int)
        or not 0 <= operator_share_bp <= BP_WHOLE
    ):
        raise InvalidInput(
            "operator_share_bp", f"the operator's share must be 0..{BP_WHOLE} basis points"
        )
    first = produced * operator_share_bp // BP_WHOLE
    return Entitlements(produced, operator, first, largest_remainder(produced - first, claims))
