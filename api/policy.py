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
    "require_output_operator",
    "require_reconciler",
    "require_self",
    "sees_all_pledges",
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


def require_output_operator(caller: Principal, operator: str) -> None:
    """Recording production and deliveries: the operator the asset's output terms name
    (who takes the share first, pays for what is sold back and delivers), or an admin.
    Another holder of the asset's operator role may run the asset's records, not spend
    that operator's cash or answer for its deliveries."""
    if caller.address != operator and not caller.has(Role.ADMIN):
        raise Forbidden("not_operator", "only the asset's operator or an admin may")


def require_self(caller: Principal, address: str) -> None:
    """Acting on a member's own holdings, orders, nodes or keys: that member only."""
    if caller.address != address:
        raise Forbidden("not_owner", "members act only on their own holdings and records")


def sees_all_pledges(caller: Principal, *, lister: str, organizer: str) -> bool:
    """Who put what into a project (manual pledges name people and their bank evidence):
    all of it to its listing node, its organizer and admins. Anyone else signed in sees
    only their own contribution (on-chain pledges are public on-chain anyway; the
    project's totals and pledger count are public)."""
    return caller.has(Role.ADMIN) or caller.address in (lister, organizer)


def require_reconciler(caller: Principal) -> None:
    """Reconciling the ledger with the escrows (it reads every escrowed project from the
    node): admins and finance nodes."""
    if not (caller.has(Role.ADMIN) or caller.has(Role.FINANCE_NODE)):
        raise Forbidden("not_finance_node", "only an admin or a finance node may reconcile")
