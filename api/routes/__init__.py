"""The routers of the API, in the order requests are matched against them: the busiest
first (routes are tried one by one, and no path of one router matches another's)."""

from fastapi import APIRouter

from api.routes.assets import router as assets_router
from api.routes.auth import router as auth_router
from api.routes.buyouts import router as buyouts_router
from api.routes.directory import router as directory_router
from api.routes.health import router as health_router
from api.routes.leases import router as leases_router
from api.routes.ledger_routes import router as ledger_router
from api.routes.market_terms import router as market_terms_router
from api.routes.markets import router as markets_router
from api.routes.members import router as members_router
from api.routes.orders import router as orders_router
from api.routes.outputs import router as outputs_router
from api.routes.projects import router as projects_router
from api.routes.rights import router as rights_router
from api.routes.votes import router as votes_router

ROUTERS: tuple[APIRouter, ...] = (
    health_router,
    ledger_router,
    orders_router,
    markets_router,
    leases_router,
    rights_router,
    market_terms_router,
    auth_router,
    members_router,
    assets_router,
    projects_router,
    outputs_router,
    buyouts_router,
    votes_router,
    directory_router,
)

# The order the documentation shows them in, with what each is for.
TAGS: list[dict[str, str]] = [
    {"name": "health", "description": "Liveness and readiness."},
    {"name": "auth", "description": "Sign-In with Ethereum, bearer tokens and API keys."},
    {"name": "members", "description": "Members and their profiles."},
    {"name": "directory", "description": "The network directory: nodes, functions, flows."},
    {"name": "assets", "description": "Assets, their units, documents and sightings."},
    {
        "name": "projects",
        "description": "Projects to fund, their escrows, pledges and reconciliation.",
    },
    {
        "name": "market",
        "description": "Orders and trades; books, depth, tape, candles and live streams.",
    },
    {
        "name": "leasing",
        "description": "Lease orders and leases; lease books, their depth and tape.",
    },
    {
        "name": "outputs",
        "description": "Output kinds, production periods, requests and plans, entitlements"
        " and deliveries.",
    },
    {
        "name": "buy-outs",
        "description": "Buy-out plans: a buyer purchases named sellers' units in installments.",
    },
    {
        "name": "participation",
        "description": "Votes of an asset's rights holders, logged work, and who took part.",
    },
    {
        "name": "ledger",
        "description": "Holdings, transfers, deposits, roles, the journal and its digest.",
    },
]

__all__ = ["ROUTERS", "TAGS"]
