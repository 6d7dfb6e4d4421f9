"""Whole shares of a whole: the largest remainder method, exact and deterministic.

``total`` units are shared among claims in proportion to their weights. Each claim first
gets the floor of its exact share ``total * weight / sum(weights)``; the units left over
(fewer than the number of claims) go one each to the largest remainders, ties broken by
the claims' order as given (for the issue of a project's units: the earlier first pledge
first). The shares sum to ``total`` exactly, and no share differs from its exact value by
one unit or more. Integers only: no float ever touches a weight.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

from ledger.core.errors import InvalidInput

__all__ = ["largest_remainder"]

K = TypeVar("K", bound=Hashable)


def largest_remainder(total: int, claims: Sequence[tuple[K, int]]) -> dict[K, int]:
    """Share ``total`` among ``claims`` ((key, weight) pairs, in tie-break order).

    Every key appears in the result, with 0 where its share rounds to nothing. Raises
    ``InvalidInput`` for a negative total or weight, a repeated key, or weights that sum
    to zero while something is to be shared."""
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise InvalidInput("share_total", "the total to share must be a whole number >= 0")
    weights = 0
    for key, weight in claims:
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
            raise InvalidInput("share_weight", f"the weight of {key!r} must be a whole number >= 0")
        weights += weight
    keys = [key for key, _ in claims]
    if len(set(keys)) != len(keys):
        raise InvalidInput("share_repeated", "a claim is named twice")
    if weights == 0:
        if total:
            raise InvalidInput("share_weightless", "nothing to share by: every weight is 0")
        return dict.fromkeys(keys, 0)
    shares: dict[K, int] = {}
    remainders: list[tuple[int, int, K]] = []
    for order, (key, weight) in enumerate(claims):
        whole, remainder = divmod(total * weight, weights)
        shares[key] = whole
        remainders.append((-remainder, order, key))
    left = total - sum(shares.values())
    remainders.sort(key=lambda r: (r[0], r[1]))  # largest remainder, then earlier claim
    for _, _, key in remainders[:left]:
        shares[key] += 1
    return shares
