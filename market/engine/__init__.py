"""The market engine: holds, sequencing, settlement and recovery around the pure book.

- ``engine``: ``MarketEngine``, batches of requests in one journal transaction each,
  one sequence per book across workers, rebuild and catch-up, the expiry clock;
- ``session``: the decisions of one transaction (checks, hold, book, settle);
- ``requests``: what owners ask and its limits; ``state``: what the engine keeps in
  memory; ``rows``: its tables; ``codec``: the order log's words; ``reads``: orders and
  trades read back;
- ``remote``: the engine in a process of its own, which several workers hand orders to.
"""

from market.engine.engine import BATCH_MAX, EngineStatus, MarketEngine, catch_up, rebuild
from market.engine.requests import (
    OPEN_ORDERS_PER_OWNER_MAX,
    PRICE_MAX_MINOR,
    SPEND_MAX_MINOR,
    AmendRequest,
    CancelRequest,
    OrderRequest,
    OrderType,
    Request,
    TermsRequest,
    UnitTransferRequest,
)
from market.engine.rows import CANDLE_INTERVALS_S, TradeRow
from market.engine.session import FEE_BPS_MAX, Outcome, TermsSet
from market.engine.state import AssetFacts, BookKey, EngineState, OrderState, OrderStatus

__all__ = [
    "BATCH_MAX",
    "CANDLE_INTERVALS_S",
    "FEE_BPS_MAX",
    "OPEN_ORDERS_PER_OWNER_MAX",
    "PRICE_MAX_MINOR",
    "SPEND_MAX_MINOR",
    "AmendRequest",
    "AssetFacts",
    "BookKey",
    "CancelRequest",
    "EngineState",
    "EngineStatus",
    "MarketEngine",
    "OrderRequest",
    "OrderState",
    "OrderStatus",
    "OrderType",
    "Outcome",
    "Request",
    "TermsRequest",
    "TermsSet",
    "TradeRow",
    "UnitTransferRequest",
    "catch_up",
    "rebuild",
]
