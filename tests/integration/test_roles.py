"""Roles granted in the ledger: journaled, once, and only of things that exist."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, select

from ledger.access import grant_role
from ledger.db.schema import MemberRole, table
from ledger.errors import InvalidInput, LedgerError, NotFound
from ledger.journal import Ledger
from ledger.reads import digest, journal_page

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
