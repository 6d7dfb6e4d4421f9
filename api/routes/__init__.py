"""The routers of the API, in the order they are mounted."""

from fastapi import APIRouter

from api.routes.assets import router as assets_router
from api.routes.auth import router as auth_router
from api.routes.directory import router as directory_router
from api.routes.health import router as health_router
from api.routes.ledger_routes import router as ledger_router
from api.routes.members import router as members_router

ROUTERS: tuple[APIRouter, ...] = (
    health_router,
    auth_router,
    members_router,
    directory_router,
    assets_router,
    ledger_router,
)

__all__ = ["ROUTERS"]
