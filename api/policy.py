"""Who may do what: every access rule of the HTTP API, in one place.

Routes name a rule and the resource it concerns; they never test roles themselves.
The matrix test in ``tests/e2e`` tries every write route as an anonymous caller, as
another member and as the rightful one.
"""

from __future__ import annotations

from ledger.access import Principal, Role
from ledger.core.errors import Forbidden

__all__ = [
    "require_admin",
    "require_asset_operator",
    "require_asset_registrar",
    "require_self",
]


def require_admin(caller: Principal) -> None:
    """Admins only."""
    if not caller.has(Role.ADMIN):
        raise Forbidden("not_admin", "only an admin may do this")


def require_asset_registrar(caller: Principal, asset_id: str) -> None:
    """Registering an asset: an admin or an operator (DESIGN "Access", issue 3), where
    "operator" is the role granted without an asset (an operator of any asset). An
    operator granted one asset acts only on that asset, and a new asset is not it."""
    if not caller.operates_asset(asset_id):
        raise Forbidden(
            "not_operator", "only an admin or an operator of any asset may register assets"
        )


def require_asset_operator(caller: Principal, asset_id: str) -> None:
    """Changing an asset's records: its operator or an admin."""
    if not caller.operates_asset(asset_id):
        raise Forbidden("not_operator", f"only the operator of {asset_id} or an admin may")


def require_self(caller: Principal, address: str) -> None:
    """Acting on a member's own holdings, orders, nodes or keys: that member only."""
    if caller.address != address:
        raise Forbidden("not_owner", "members act only on their own holdings and records")
