"""Roles granted and revoked in the ledger: journaled, once, and only of things that
exist; a revoke only of a grant that is there."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, select

from ledger.access import grant_role, revoke_role
from ledger.core.errors import Conflict, InvalidInput, LedgerError, NotFound, Refused
from ledger.db.schema import MemberRole, table
from ledger.journal.reads import digest, journal_page
from ledger.journal.verify import verify
from ledger.journal.write import Ledger
from ledger.registry.assets import register_asset
from ledger.registry.members import register_member

from .network import ANN, ASSET, BOB, build_network

UNREGISTERED = "11111111111111111"  # a well-formed ID no asset has


def _grants(conn: Connection) -> list[tuple[str, str, str | None]]:
    grants = table(MemberRole)
    rows = conn.execute(select(grants.c.address, grants.c.role, grants.c.asset_id))
    return [(address, role, asset_id) for address, role, asset_id in rows]


def test_an_operator_grant_is_journaled_once(ledger: Ledger) -> None:
    build_network(ledger)
    grant_role(ledger, BOB, "operator", ASSET, key="g", actor="admin")
    grant_role(ledger, BOB, "operator", ASSET, key="g", actor="admin")  # a replay
    with ledger.engine.connect() as conn:
        assert _grants(conn) == [(BOB, "operator", ASSET)]
        grants = journal_page(conn, kind="role.grant")
        assert [e.payload for e in grants] == [
            {"address": BOB, "role": "operator", "asset_id": ASSET}
        ]


@pytest.mark.parametrize(
    ("address", "role", "asset_id", "error", "code"),
    [
        (BOB, "operator", UNREGISTERED, NotFound, "unknown_asset"),
        (BOB, "operator", "1M8GDM9AYKP042788", InvalidInput, "asset_id_check_digit"),
        (BOB, "admin", ASSET, InvalidInput, "role_asset"),
        (BOB, "emperor", None, InvalidInput, "role_unknown"),
        (
            "0xd09Ad14080d4b257a819a4f579b8485Be88f086c",
            "operator",
            ASSET,
            NotFound,
            "unknown_member",
        ),
        (ANN.lower(), "operator", ASSET, InvalidInput, "address_checksum"),
    ],
)
def test_a_grant_of_something_wrong_is_refused_and_changes_nothing(
    ledger: Ledger,
    address: str,
    role: str,
    asset_id: str | None,
    error: type[LedgerError],
    code: str,
) -> None:
    build_network(ledger)
    with ledger.engine.connect() as conn:
        before = digest(conn)
    with pytest.raises(error) as caught:
        grant_role(ledger, address, role, asset_id, key="g", actor="admin")
    assert caught.value.code == code
    with ledger.engine.connect() as conn:
        assert digest(conn) == before
        assert _grants(conn) == []


def test_a_revoke_deletes_the_grant_is_journaled_once_and_may_be_granted_again(
    ledger: Ledger,
) -> None:
    build_network(ledger)
    grant_role(ledger, BOB, "operator", ASSET, key="g", actor="admin")
    grant_role(ledger, BOB, "operator", None, key="g-any", actor="admin")
    revoke_role(ledger, BOB, "operator", ASSET, key="r", actor="admin")
    revoke_role(ledger, BOB, "operator", ASSET, key="r", actor="admin")  # a replay
    with ledger.engine.connect() as conn:
        assert _grants(conn) == [(BOB, "operator", None)]  # the other grant stays
        revokes = journal_page(conn, kind="role.revoke")
        assert [(e.payload, e.actor) for e in revokes] == [
            ({"address": BOB, "role": "operator", "asset_id": ASSET}, "admin")
        ]
    with pytest.raises(Conflict):  # the key names another request now
        revoke_role(ledger, BOB, "operator", None, key="r", actor="admin")
    grant_role(ledger, BOB, "operator", ASSET, key="g2", actor="admin")
    revoke_role(ledger, BOB, "operator", ASSET, key="r2", actor="admin")
    with ledger.engine.connect() as conn:
        assert _grants(conn) == [(BOB, "operator", None)]
        assert len(journal_page(conn, kind="role.revoke")) == 2
        assert verify(conn).ok


FINANCE = "0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF"
OTHER_ASSET = "1HGCM82633A004352"


@pytest.mark.parametrize(
    ("address", "role", "asset_id", "error", "code"),
    [
        (BOB, "operator", ASSET, NotFound, "role_not_held"),
        (BOB, "operator", None, NotFound, "role_not_held"),  # BOB operates OTHER_ASSET only
        (BOB, "admin", None, NotFound, "role_not_held"),
        (ANN, "admin", None, Refused, "role_not_granted"),  # an admin by DPN_ADMINS
        (FINANCE, "finance_node", None, Refused, "role_not_granted"),  # by member kind
        (BOB, "member", None, Refused, "role_not_granted"),  # everyone's
        (BOB, "operator", UNREGISTERED, NotFound, "role_not_held"),
        (BOB, "admin", ASSET, InvalidInput, "role_asset"),
        (BOB, "emperor", None, InvalidInput, "role_unknown"),
        ("0xd09Ad14080d4b257a819a4f579b8485Be88f086c", "admin", None, NotFound, "unknown_member"),
        (ANN.lower(), "admin", None, InvalidInput, "address_checksum"),
    ],
)
def test_a_revoke_of_what_is_not_granted_is_refused_and_changes_nothing(
    ledger: Ledger,
    address: str,
    role: str,
    asset_id: str | None,
    error: type[LedgerError],
    code: str,
) -> None:
    build_network(ledger)
    register_member(ledger, FINANCE, "finance_node", "Fin", key="m:fin", actor="test")
    register_asset(
        ledger,
        OTHER_ASSET,
        make="m",
        model="m",
        serial="s",
        location="l",
        jurisdiction="NL",
        key="a2",
        actor="test",
    )
    grant_role(ledger, BOB, "operator", OTHER_ASSET, key="g", actor="admin")
    with ledger.engine.connect() as conn:
        before, grants = digest(conn), _grants(conn)
    with pytest.raises(error) as caught:
        revoke_role(
            ledger, address, role, asset_id, key="r", actor="admin", admins=frozenset({ANN})
        )
    assert caught.value.code == code
    with ledger.engine.connect() as conn:
        assert digest(conn) == before
        assert _grants(conn) == grants


def test_a_granted_finance_node_role_is_revoked_like_any_grant(ledger: Ledger) -> None:
    build_network(ledger)
    grant_role(ledger, BOB, "finance_node", None, key="g", actor="admin")
    revoke_role(ledger, BOB, "finance_node", None, key="r", actor="admin")
    with ledger.engine.connect() as conn:
        assert _grants(conn) == []
