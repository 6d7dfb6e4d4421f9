"""The kinds of journal entry: the one place their names are spelled.

A kind is part of every entry's hashed bytes, so a name never changes once written.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["REVERSIBLE_KINDS", "EntryKind"]


class EntryKind(StrEnum):
    """Every kind of entry the ledger writes, by the service that writes it."""

    # ledger.money
    TRANSFER = "transfer"
    CASH_DEPOSIT = "cash.deposit"
    CASH_WITHDRAW = "cash.withdraw"
    HOLD_PLACE = "hold.place"
    HOLD_RELEASE = "hold.release"
    REVERSAL = "reversal"
    # ledger.registry
    MEMBER_REGISTER = "member.register"
    MEMBER_UPDATE = "member.update"
    ASSET_REGISTER = "asset.register"
    ASSET_ISSUE = "asset.issue"
    ASSET_DOCUMENT = "asset.document"
    ASSET_SIGHTING = "asset.sighting"
    # ledger.access
    ROLE_GRANT = "role.grant"
    ROLE_REVOKE = "role.revoke"
    # ledger.directory
    NODE_REGISTER = "node.register"
    NODE_UPDATE = "node.update"
    # ledger.funding
    PROJECT_CREATE = "project.create"
    PROJECT_OPEN = "project.open"
    PROJECT_CANCEL = "project.cancel"
    PROJECT_FUND = "project.fund"
    PROJECT_FORWARD = "project.forward"
    PROJECT_FAIL = "project.fail"
    PLEDGE_MANUAL = "pledge.manual"
    # ledger.funding.mirror: escrow events copied from the chain, and their undoing
    CHAIN_ESCROW = "chain.escrow"
    CHAIN_PLEDGE = "chain.pledge"
    CHAIN_WITHDRAW = "chain.withdraw"
    CHAIN_FINALIZE = "chain.finalize"
    CHAIN_RECLAIM = "chain.reclaim"
    CHAIN_UNDO = "chain.undo"
    # market.engine: orders, their holds, and the trades that settle them
    ORDER_PLACE = "order.place"
    ORDER_CANCEL = "order.cancel"
    ORDER_AMEND = "order.amend"
    ORDER_EXPIRE = "order.expire"
    ORDER_RELEASE = "order.release"
    TRADE = "trade"
    LEASE = "lease"  # a match on a lease book: the rent, and the offer's units released
    MARKET_TERMS = "market.terms"
    # ledger.outputs: what an asset produces and who is entitled to it
    OUTPUT_TERMS = "output.terms"  # an asset's operator and share, where no project set them
    OUTPUT_KIND = "output.kind"
    PERIOD_OPEN = "period.open"
    OUTPUT_REQUEST = "output.request"
    OUTPUT_PRODUCE = "output.produce"  # production, and the entitlements it gives
    OUTPUT_DELIVER = "output.deliver"
    OUTPUT_WAIVE = "output.waive"
    OUTPUT_SELL_BACK = "output.sell_back"  # an entitlement sold back to the operator for cash
    # ledger.outputs.buyouts: a buyer purchases named sellers' units in installments
    BUYOUT_PROPOSE = "buyout.propose"
    BUYOUT_ACCEPT = "buyout.accept"  # a seller agrees; its units under the plan are held
    BUYOUT_CANCEL = "buyout.cancel"
    BUYOUT_SETTLE = "buyout.settle"  # an installment paid: units and cash in one entry
    BUYOUT_MISS = "buyout.miss"  # the buyer could not pay; nothing moved
    BUYOUT_DEFAULT = "buyout.default"  # missed too often: what is left is released
    # ledger.outputs.votes and participation
    VOTE_PROPOSE = "vote.propose"
    VOTE_CAST = "vote.cast"
    WORK_LOG = "work.log"


# What a reversal may undo: entries that only move value. Registrations, holds and
# reversals themselves are not reversible.
REVERSIBLE_KINDS = frozenset({EntryKind.TRANSFER, EntryKind.CASH_DEPOSIT, EntryKind.CASH_WITHDRAW})
