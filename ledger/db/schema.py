"""The tables, as SQLAlchemy 2 typed mappings. Alembic migrations build exactly this.

``journal_entries``, ``journal_postings`` and ``journal_hold_changes`` are the journal:
append-only, refused UPDATE and DELETE by triggers. Everything else here is
materialized from the journal in the same transaction (balances, holds) or is
registry data whose every change is also an entry (members, assets, documents,
sightings). Currencies are reference data seeded by the migrations.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ledger.db.types import Amount, UTCDateTime

__all__ = [
    "AccessToken",
    "Account",
    "ApiKey",
    "Asset",
    "AssetDocument",
    "AuthNonce",
    "Balance",
    "Base",
    "BuyoutInstallment",
    "BuyoutPlan",
    "BuyoutSeller",
    "ChainBlock",
    "ChainCursor",
    "ChainEvent",
    "ChainFactory",
    "Currency",
    "Hold",
    "HttpIdempotency",
    "JournalEntry",
    "JournalHoldChange",
    "JournalPosting",
    "ManualPledge",
    "MarketBook",
    "MarketCandle",
    "MarketCommand",
    "MarketLease",
    "MarketOrder",
    "MarketTerms",
    "MarketTrade",
    "Member",
    "MemberRole",
    "Node",
    "NodeFlow",
    "NodeFunction",
    "OutputEntitlement",
    "OutputKind",
    "OutputPeriod",
    "OutputProduction",
    "OutputRequest",
    "OutputSettlement",
    "OutputTerms",
    "Photo",
    "PhotoUpload",
    "Project",
    "ProjectContribution",
    "ProjectDocument",
    "ServiceLease",
    "ServiceSecret",
    "Sighting",
    "VoteBallot",
    "VoteProposal",
    "WorkLog",
    "table",
]

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def table(model: type[Base]) -> Table:
    """The Core table behind a mapped class, typed for Core statements."""
    return cast(Table, model.__table__)


class Currency(Base):
    __tablename__ = "currencies"

    code: Mapped[str] = mapped_column(String(10), primary_key=True)
    decimals: Mapped[int] = mapped_column(SmallInteger)
    name: Mapped[str] = mapped_column(String(64))


class JournalEntry(Base):
    __tablename__ = "journal_entries"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # UUIDv5 of the idempotency key, so unique with it; not indexed, as nothing looks an
    # entry up by id, and a random key costs every append a B-tree insert (0003).
    id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(64), index=True)
    payload: Mapped[str] = mapped_column(Text)
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    reverses: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("holder", "instrument"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    instrument: Mapped[str] = mapped_column(String(32), index=True)


class JournalPosting(Base):
    __tablename__ = "journal_postings"
    __table_args__ = (Index(None, "account_id", "seq"),)

    seq: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq"), primary_key=True)
    idx: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    amount: Mapped[int] = mapped_column(Amount)


class JournalHoldChange(Base):
    __tablename__ = "journal_hold_changes"

    seq: Mapped[int] = mapped_column(ForeignKey("journal_entries.seq"), primary_key=True)
    idx: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    hold_id: Mapped[str] = mapped_column(String(64), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    op: Mapped[str] = mapped_column(String(8))
    amount: Mapped[int] = mapped_column(Amount)


class Balance(Base):
    """Materialized balance of an account: a cache of its postings, kept in step."""

    __tablename__ = "balances"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    balance: Mapped[int] = mapped_column(Amount)
    held: Mapped[int] = mapped_column(Amount)
    last_seq: Mapped[int] = mapped_column(BigInteger)


class Hold(Base):
    """Materialized hold: an amount reserved on an account until consumed or released."""

    __tablename__ = "holds"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount: Mapped[int] = mapped_column(Amount)
    remaining: Mapped[int] = mapped_column(Amount)
    placed_seq: Mapped[int] = mapped_column(BigInteger)
    closed_seq: Mapped[int | None] = mapped_column(BigInteger)


class Member(Base):
    __tablename__ = "members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(42), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(128))
    registered_seq: Mapped[int] = mapped_column(BigInteger)


class Asset(Base):
    __tablename__ = "assets"

    id: Mapped[str] = mapped_column(String(17), primary_key=True)
    make: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(64))
    serial: Mapped[str] = mapped_column(String(64))
    location: Mapped[str] = mapped_column(String(128))
    total_units: Mapped[int] = mapped_column(BigInteger)
    legal_framework: Mapped[str] = mapped_column(String(32))
    jurisdiction: Mapped[str] = mapped_column(String(64))
    registered_seq: Mapped[int] = mapped_column(BigInteger)


class AssetDocument(Base):
    __tablename__ = "asset_documents"
    __table_args__ = (UniqueConstraint("asset_id", "sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"))
    title: Mapped[str] = mapped_column(String(128))
    sha256: Mapped[str] = mapped_column(String(64))
    recorded_seq: Mapped[int] = mapped_column(BigInteger)


class Sighting(Base):
    """One entry of an asset's tracking history: seen when, where, by whom, with a photo."""

    __tablename__ = "sightings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"), index=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    location: Mapped[str] = mapped_column(String(128))
    reporter: Mapped[str] = mapped_column(String(42))
    photo_sha256: Mapped[str] = mapped_column(String(64))
    recorded_seq: Mapped[int] = mapped_column(BigInteger)


# -- funding: projects listed by finance nodes ------------------------------------------


class Project(Base):
    """A project to buy an asset together; its id is the seq of its ``project.create``."""

    __tablename__ = "projects"
    __table_args__ = (Index(None, "state", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    lister: Mapped[str] = mapped_column(String(42))
    organizer: Mapped[str] = mapped_column(String(42))
    title: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(String(1000))
    asset_id: Mapped[str] = mapped_column(String(17), index=True)
    legal_framework: Mapped[str] = mapped_column(String(32))
    jurisdiction: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(ForeignKey("currencies.code"))
    goal_minor: Mapped[int] = mapped_column(Amount)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    min_pledge_minor: Mapped[int] = mapped_column(Amount)
    organizer_contribution_minor: Mapped[int] = mapped_column(Amount)
    total_units: Mapped[int] = mapped_column(BigInteger)
    retained_min_units: Mapped[int] = mapped_column(BigInteger)
    operator_share_bp: Mapped[int] = mapped_column(Integer)
    manual_pledges_allowed: Mapped[bool] = mapped_column(Boolean)
    state: Mapped[str] = mapped_column(String(16))
    registered_seq: Mapped[int] = mapped_column(BigInteger)
    state_seq: Mapped[int] = mapped_column(BigInteger)
    # Its escrow, once deployed (chain.escrow or project.open), and the totals the ledger
    # keeps: what the chain mirror has seen pledged (live, after withdrawals and reclaims)
    # and what the listing node recorded by hand.
    # The project's id on-chain (the factory's bytes32): the hash of its project.create
    # entry, unique to this ledger and checkable against its journal.
    chain_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    chain_id: Mapped[int | None] = mapped_column(BigInteger)
    escrow_address: Mapped[str | None] = mapped_column(String(42), unique=True)
    escrow_goal_minor: Mapped[int | None] = mapped_column(Amount)
    escrow_block: Mapped[int | None] = mapped_column(BigInteger)
    chain_total_minor: Mapped[int] = mapped_column(Amount, server_default="0")
    manual_total_minor: Mapped[int] = mapped_column(Amount, server_default="0")


class ProjectContribution(Base):
    """What one contributor has put into a project and not taken back: on-chain pledges
    (mirrored), manual pledges, and the organizer's own contribution. ``first_seq`` is the
    entry of their first contribution: the tie-break when units are issued."""

    __tablename__ = "project_contributions"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    contributor: Mapped[str] = mapped_column(String(42), primary_key=True)
    chain_minor: Mapped[int] = mapped_column(Amount)
    manual_minor: Mapped[int] = mapped_column(Amount)
    first_seq: Mapped[int] = mapped_column(BigInteger)


class ManualPledge(Base):
    """A pledge paid outside the chain (bank transfer, cash), recorded by the listing
    finance node with the SHA-256 of its evidence; its id is the seq of its entry."""

    __tablename__ = "manual_pledges"
    __table_args__ = (UniqueConstraint("project_id", "evidence_sha256"),)

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    contributor: Mapped[str] = mapped_column(String(42))
    amount_minor: Mapped[int] = mapped_column(Amount)
    evidence_sha256: Mapped[str] = mapped_column(String(64))
    recorded_by: Mapped[str] = mapped_column(String(42))


class ChainEvent(Base):
    """An escrow event the chain mirror recorded: one row per (chain, transaction, log,
    block). A reorganisation that drops the block marks it undone (``undone_seq``, the
    compensating entry); if the same transaction lands again it is a new row."""

    __tablename__ = "chain_events"
    __table_args__ = (
        UniqueConstraint("chain_id", "tx_hash", "log_index", "block_hash"),
        Index(None, "chain_id", "block_number"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(Integer)
    block_hash: Mapped[str] = mapped_column(String(66))
    block_number: Mapped[int] = mapped_column(BigInteger)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    account: Mapped[str] = mapped_column(String(42))
    amount: Mapped[int] = mapped_column(Amount)
    seq: Mapped[int] = mapped_column(BigInteger)
    undone_seq: Mapped[int | None] = mapped_column(BigInteger)


class ChainCursor(Base):
    """How far the chain mirror has read a chain: every block up to ``block_number`` is
    mirrored. Moved in the same transaction as the entries of the blocks it passes."""

    __tablename__ = "chain_cursors"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(66))


class ChainBlock(Base):
    """The hashes of recent blocks the mirror read up to: where a reorganisation is
    found (a stored hash the chain no longer has) and how far back it reaches."""

    __tablename__ = "chain_blocks"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(66))


class ChainFactory(Base):
    """The escrow factory the service deploys through on a chain, and who creates."""

    __tablename__ = "chain_factories"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    address: Mapped[str] = mapped_column(String(42))
    creator: Mapped[str] = mapped_column(String(42))
    deployed_block: Mapped[int] = mapped_column(BigInteger)


class ServiceLease(Base):
    """A lease on a single-writer job (the chain mirror of one chain): the worker that
    holds it until ``expires_at`` is the only one that runs the job."""

    __tablename__ = "service_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProjectDocument(Base):
    __tablename__ = "project_documents"
    __table_args__ = (UniqueConstraint("project_id", "sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    title: Mapped[str] = mapped_column(String(128))
    sha256: Mapped[str] = mapped_column(String(64))
    recorded_seq: Mapped[int] = mapped_column(BigInteger)


# -- access: sign-in nonces, bearer tokens, API keys, roles ------------------------------


class AuthNonce(Base):
    """A Sign-In with Ethereum challenge: the exact message issued, usable once."""

    __tablename__ = "auth_nonces"

    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    address: Mapped[str] = mapped_column(String(42))
    message: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AccessToken(Base):
    """A short-lived bearer token, stored as its SHA-256 only."""

    __tablename__ = "access_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(String(42), index=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiKey(Base):
    """A key for automation: shown once, stored as its SHA-256, scoped to roles, revocable."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    address: Mapped[str] = mapped_column(String(42), index=True)
    name: Mapped[str] = mapped_column(String(64))
    roles: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A key may carry an expiry; one without lasts until revoked.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MemberRole(Base):
    """A role a member holds: admin, finance_node, operator (of one asset, or of any)."""

    __tablename__ = "member_roles"
    __table_args__ = (UniqueConstraint("address", "role", "asset_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(42), index=True)
    role: Mapped[str] = mapped_column(String(16))
    asset_id: Mapped[str | None] = mapped_column(String(17))
    granted_seq: Mapped[int] = mapped_column(BigInteger)


class Photo(Base):
    """A sighting's photo, stored once by content hash."""

    __tablename__ = "photos"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class PhotoUpload(Base):
    """Who uploaded which photo: what a member's storage quota counts (each photo once a
    member, however often it is uploaded)."""

    __tablename__ = "photo_uploads"

    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("photos.sha256"), primary_key=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ServiceSecret(Base):
    """A secret of this deployment, shared by every worker, made once by a migration (for
    example the key that signs sign-in challenges, so that they need not be stored)."""

    __tablename__ = "service_secrets"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret: Mapped[str] = mapped_column(String(64))


# -- the network directory ----------------------------------------------------------------


class Node(Base):
    """A member's node: a workshop, farm or factory, where it is and what it can do."""

    __tablename__ = "nodes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(42), index=True)
    name: Mapped[str] = mapped_column(String(128))
    place: Mapped[str] = mapped_column(String(128), index=True)
    # Microdegrees: integers, like every other quantity here.
    latitude_e6: Mapped[int | None] = mapped_column(Integer)
    longitude_e6: Mapped[int | None] = mapped_column(Integer)
    registered_seq: Mapped[int] = mapped_column(BigInteger)


class NodeFunction(Base):
    """An atomic function a node performs, e.g. ``cnc-milling``."""

    __tablename__ = "node_functions"

    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), primary_key=True)
    function: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class NodeFlow(Base):
    """A flow a node takes in or puts out, e.g. ``lumber`` in."""

    __tablename__ = "node_flows"

    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), primary_key=True)
    flow: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    direction: Mapped[str] = mapped_column(String(3), primary_key=True)


class HttpIdempotency(Base):
    """The answer given to a POST that wrote no journal entry (sign-in, API keys,
    photos), kept under its Idempotency-Key so a retry gets the same answer. Answers
    that carry a secret are stored sealed (AES-GCM, ``ledger.idempotency``) under a key
    derived from the requester's own secret."""

    __tablename__ = "http_idempotency"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(SmallInteger)
    body: Mapped[str] = mapped_column(Text)
    sealed: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MarketTerms(Base):
    """An asset's trading terms: every price on its books is a multiple of the tick,
    every quantity of the lot. Changed only while none of its books holds an order."""

    __tablename__ = "market_terms"

    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"), primary_key=True)
    tick_size_minor: Mapped[int] = mapped_column(BigInteger)
    lot_size_units: Mapped[int] = mapped_column(BigInteger)
    set_seq: Mapped[int] = mapped_column(BigInteger)
    lease_period: Mapped[str] = mapped_column(String(7), server_default="quarter")


class MarketBook(Base):
    """A book that exists, from its first order on: one per (asset, currency) to trade
    (``term`` empty), and one per (asset, currency, term) to lease (``term`` its key,
    ``YYYY-MM-DD/YYYY-MM-DD``)."""

    __tablename__ = "market_books"

    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(ForeignKey("currencies.code"), primary_key=True)
    term: Mapped[str] = mapped_column(String(21), primary_key=True, server_default="")
    opened_seq: Mapped[int] = mapped_column(BigInteger)


class MarketCommand(Base):
    """The order log: every command a book applied, at the seq of the journal entry that
    recorded it. Replaying a book's commands in seq order rebuilds it exactly."""

    __tablename__ = "market_commands"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    asset_id: Mapped[str] = mapped_column(String(17), primary_key=True)
    currency: Mapped[str] = mapped_column(String(10), primary_key=True)
    term: Mapped[str] = mapped_column(String(21), primary_key=True, server_default="")
    body: Mapped[str] = mapped_column(Text)


class MarketOrder(Base):
    """An order as it stands now (a cache of its commands and trades, kept in the same
    transaction). ``id`` is the seq of the entry that placed it; its hold is ``hold_id``."""

    __tablename__ = "market_orders"
    __table_args__ = (
        Index("ix_market_orders_owner", "owner", "id"),
        Index(
            "ix_market_orders_open_depth",
            "asset_id",
            "currency",
            "term",
            "side",
            "price_minor",
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    asset_id: Mapped[str] = mapped_column(String(17))
    currency: Mapped[str] = mapped_column(String(10))
    owner: Mapped[str] = mapped_column(String(42))
    side: Mapped[str] = mapped_column(String(4))
    type: Mapped[str] = mapped_column(String(6))
    time_in_force: Mapped[str] = mapped_column(String(3))
    price_minor: Mapped[int | None] = mapped_column(BigInteger)
    qty_units: Mapped[int] = mapped_column(BigInteger)
    spend_minor: Mapped[int | None] = mapped_column(Amount)
    remaining_units: Mapped[int] = mapped_column(BigInteger)
    filled_units: Mapped[int] = mapped_column(BigInteger)
    filled_minor: Mapped[int] = mapped_column(Amount)
    status: Mapped[str] = mapped_column(String(9))
    reason: Mapped[str | None] = mapped_column(String(24))
    post_only: Mapped[bool] = mapped_column(Boolean)
    self_trade: Mapped[str] = mapped_column(String(13))
    expires_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    hold_id: Mapped[str] = mapped_column(String(64))
    placed_ms: Mapped[int] = mapped_column(BigInteger)
    updated_seq: Mapped[int] = mapped_column(BigInteger)
    term: Mapped[str] = mapped_column(String(21), server_default="")  # a lease order's


class MarketTrade(Base):
    """A trade, at the seq of the journal entry that settled it (its ``id``)."""

    __tablename__ = "market_trades"
    __table_args__ = (
        Index("ix_market_trades_book", "asset_id", "currency", "id"),
        Index("ix_market_trades_maker_owner", "maker_owner", "id"),
        Index("ix_market_trades_taker_owner", "taker_owner", "id"),
        Index("ix_market_trades_maker_order", "maker_order_id"),
        Index("ix_market_trades_taker_order", "taker_order_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    asset_id: Mapped[str] = mapped_column(String(17))
    currency: Mapped[str] = mapped_column(String(10))
    price_minor: Mapped[int] = mapped_column(BigInteger)
    qty_units: Mapped[int] = mapped_column(BigInteger)
    fee_minor: Mapped[int] = mapped_column(Amount)
    maker_order_id: Mapped[int] = mapped_column(BigInteger)
    taker_order_id: Mapped[int] = mapped_column(BigInteger)
    maker_owner: Mapped[str] = mapped_column(String(42))
    taker_owner: Mapped[str] = mapped_column(String(42))
    taker_side: Mapped[str] = mapped_column(String(4))
    executed_ms: Mapped[int] = mapped_column(BigInteger)


class MarketLease(Base):
    """A lease: a match on a lease book, at the seq of the journal entry that settled it
    (its ``id``). The lessor keeps the units and gives their output and usage rights to
    the lessee over ``[starts_ms, ends_ms)``; the lessee paid ``price_minor`` a unit
    (less ``fee_minor`` to the network) when they matched."""

    __tablename__ = "market_leases"
    __table_args__ = (
        Index("ix_market_leases_asset_ends", "asset_id", "ends_ms"),
        Index("ix_market_leases_book", "asset_id", "currency", "term", "id"),
        Index("ix_market_leases_lessor", "lessor", "id"),
        Index("ix_market_leases_lessee", "lessee", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    asset_id: Mapped[str] = mapped_column(String(17))
    currency: Mapped[str] = mapped_column(String(10))
    term: Mapped[str] = mapped_column(String(21))
    starts_ms: Mapped[int] = mapped_column(BigInteger)
    ends_ms: Mapped[int] = mapped_column(BigInteger)
    price_minor: Mapped[int] = mapped_column(BigInteger)
    qty_units: Mapped[int] = mapped_column(BigInteger)
    fee_minor: Mapped[int] = mapped_column(Amount)
    maker_order_id: Mapped[int] = mapped_column(BigInteger)
    taker_order_id: Mapped[int] = mapped_column(BigInteger)
    lessor: Mapped[str] = mapped_column(String(42))
    lessee: Mapped[str] = mapped_column(String(42))
    taker_side: Mapped[str] = mapped_column(String(4))
    executed_ms: Mapped[int] = mapped_column(BigInteger)


class MarketCandle(Base):
    """OHLCV of one book over one interval (``interval_s``) from ``bucket_ms``; kept in
    the transaction that settles its trades."""

    __tablename__ = "market_candles"

    asset_id: Mapped[str] = mapped_column(String(17), primary_key=True)
    currency: Mapped[str] = mapped_column(String(10), primary_key=True)
    interval_s: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    bucket_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    open_minor: Mapped[int] = mapped_column(BigInteger)
    high_minor: Mapped[int] = mapped_column(BigInteger)
    low_minor: Mapped[int] = mapped_column(BigInteger)
    close_minor: Mapped[int] = mapped_column(BigInteger)
    volume_units: Mapped[int] = mapped_column(BigInteger)
    notional_minor: Mapped[int] = mapped_column(Amount)
    trades: Mapped[int] = mapped_column(Integer)


# -- outputs: what an asset produces, and who is entitled to it ----------------------------


class OutputTerms(Base):
    """Who operates an asset that no project brought in, and the share of its output the
    operator takes first (an asset from a project takes both from the project's terms)."""

    __tablename__ = "output_terms"

    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"), primary_key=True)
    operator: Mapped[str] = mapped_column(String(42))
    operator_share_bp: Mapped[int] = mapped_column(Integer)
    set_seq: Mapped[int] = mapped_column(BigInteger)


class OutputKind(Base):
    """A kind of output an asset produces (``tomato``), counted in whole smallest units
    (``unit``: ``g``, ``Wh``)."""

    __tablename__ = "output_kinds"

    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    unit: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(String(200), server_default="")
    defined_seq: Mapped[int] = mapped_column(BigInteger)


class OutputPeriod(Base):
    """A production period of an asset: requests until ``request_deadline`` from the
    rights holders at ``record_at``, then production once. ``id`` is the seq of the
    ``period.open`` entry."""

    __tablename__ = "output_periods"
    __table_args__ = (UniqueConstraint("asset_id", "name"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"), index=True)
    name: Mapped[str] = mapped_column(String(32))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    record_at: Mapped[datetime] = mapped_column(UTCDateTime)
    request_deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(16))
    opened_seq: Mapped[int] = mapped_column(BigInteger)
    produced_seq: Mapped[int | None] = mapped_column(BigInteger)


class OutputRequest(Base):
    """One rights holder's preferred mix for a period: a weight in basis points per kind
    (the weights of one request sum to 10,000). A new request replaces the last."""

    __tablename__ = "output_requests"

    period_id: Mapped[int] = mapped_column(
        ForeignKey("output_periods.id"), primary_key=True, autoincrement=False
    )
    holder: Mapped[str] = mapped_column(String(42), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    weight_bp: Mapped[int] = mapped_column(Integer)
    rights_units: Mapped[int] = mapped_column(BigInteger)
    requested_seq: Mapped[int] = mapped_column(BigInteger)


class OutputProduction(Base):
    """What a period produced of one kind, what the operator took first, and the price a
    smallest unit at which the operator buys entitlements back (if it offers to)."""

    __tablename__ = "output_production"

    period_id: Mapped[int] = mapped_column(
        ForeignKey("output_periods.id"), primary_key=True, autoincrement=False
    )
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    quantity: Mapped[int] = mapped_column(BigInteger)
    operator_quantity: Mapped[int] = mapped_column(BigInteger)
    buyback_currency: Mapped[str | None] = mapped_column(String(10))
    buyback_price_minor: Mapped[int | None] = mapped_column(Amount)
    recorded_seq: Mapped[int] = mapped_column(BigInteger)


class OutputEntitlement(Base):
    """A holder's entitlement to one kind of a period's output, and what became of it:
    delivered, waived, or sold back to the operator. Outstanding is what is left."""

    __tablename__ = "output_entitlements"

    period_id: Mapped[int] = mapped_column(
        ForeignKey("output_periods.id"), primary_key=True, autoincrement=False
    )
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(42), primary_key=True)
    rights_units: Mapped[int] = mapped_column(BigInteger)
    entitled: Mapped[int] = mapped_column(BigInteger)
    delivered: Mapped[int] = mapped_column(BigInteger)
    waived: Mapped[int] = mapped_column(BigInteger)
    sold_back: Mapped[int] = mapped_column(BigInteger)
    updated_seq: Mapped[int] = mapped_column(BigInteger)


class OutputSettlement(Base):
    """A delivery, waiver or sell-back against an entitlement, at the seq of its entry."""

    __tablename__ = "output_settlements"
    __table_args__ = (Index(None, "period_id", "holder"),)

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    period_id: Mapped[int] = mapped_column(ForeignKey("output_periods.id"))
    kind: Mapped[str] = mapped_column(String(32))
    holder: Mapped[str] = mapped_column(String(42))
    action: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[int] = mapped_column(BigInteger)
    cash_minor: Mapped[int | None] = mapped_column(Amount)
    note: Mapped[str] = mapped_column(String(200), server_default="")


# -- buy-outs: a buyer purchases named sellers' units in installments ---------------------


class BuyoutPlan(Base):
    """A buy-out plan; ``id`` is the seq of its ``buyout.propose`` entry. ``state``:
    proposed (until every seller has accepted), active, completed, cancelled, defaulted."""

    __tablename__ = "buyout_plans"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"), index=True)
    buyer: Mapped[str] = mapped_column(String(42), index=True)
    currency: Mapped[str] = mapped_column(ForeignKey("currencies.code"))
    state: Mapped[str] = mapped_column(String(16))
    created_seq: Mapped[int] = mapped_column(BigInteger)
    state_seq: Mapped[int] = mapped_column(BigInteger)


class BuyoutSeller(Base):
    """A seller named in a plan: its units under the plan, and the hold on them once it
    accepted."""

    __tablename__ = "buyout_sellers"

    plan_id: Mapped[int] = mapped_column(
        ForeignKey("buyout_plans.id"), primary_key=True, autoincrement=False
    )
    seller: Mapped[str] = mapped_column(String(42), primary_key=True, index=True)
    units: Mapped[int] = mapped_column(BigInteger)
    hold_id: Mapped[str | None] = mapped_column(String(64))
    accepted_seq: Mapped[int | None] = mapped_column(BigInteger)


class BuyoutInstallment(Base):
    """One installment: ``units`` of ``seller``'s at ``price_minor`` a unit, due at
    ``due_at``. ``state``: scheduled, paid, missed (to be tried again at
    ``next_attempt_at``), defaulted, cancelled."""

    __tablename__ = "buyout_installments"
    __table_args__ = (Index(None, "state", "next_attempt_at"),)

    plan_id: Mapped[int] = mapped_column(
        ForeignKey("buyout_plans.id"), primary_key=True, autoincrement=False
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seller: Mapped[str] = mapped_column(String(42))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    units: Mapped[int] = mapped_column(BigInteger)
    price_minor: Mapped[int] = mapped_column(Amount)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    settled_seq: Mapped[int | None] = mapped_column(BigInteger)


# -- votes and participation --------------------------------------------------------------


class VoteProposal(Base):
    """A proposal an asset's rights holders vote on, weighted by their rights at
    ``record_at``, until ``deadline``; ``id`` is the seq of its ``vote.propose`` entry.
    ``options`` is a JSON list of the option names."""

    __tablename__ = "vote_proposals"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"), index=True)
    period_id: Mapped[int | None] = mapped_column(ForeignKey("output_periods.id"), index=True)
    proposer: Mapped[str] = mapped_column(String(42))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(2000), server_default="")
    options: Mapped[str] = mapped_column(Text)
    record_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    quorum_bp: Mapped[int] = mapped_column(Integer)
    threshold_bp: Mapped[int] = mapped_column(Integer)
    created_seq: Mapped[int] = mapped_column(BigInteger)


class VoteBallot(Base):
    """A holder's vote on a proposal (the last one it cast), with its weight: its rights
    at the proposal's record time."""

    __tablename__ = "vote_ballots"

    proposal_id: Mapped[int] = mapped_column(
        ForeignKey("vote_proposals.id"), primary_key=True, autoincrement=False
    )
    voter: Mapped[str] = mapped_column(String(42), primary_key=True)
    option: Mapped[str] = mapped_column(String(64))
    weight_units: Mapped[int] = mapped_column(BigInteger)
    cast_seq: Mapped[int] = mapped_column(BigInteger)


class WorkLog(Base):
    """Work a member did for an asset in a period, as its operator recorded it: minutes,
    by kind of task. ``seq`` is that of its ``work.log`` entry."""

    __tablename__ = "work_logs"
    __table_args__ = (Index(None, "period_id", "member"),)

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id"))
    period_id: Mapped[int] = mapped_column(ForeignKey("output_periods.id"))
    member: Mapped[str] = mapped_column(String(42))
    task: Mapped[str] = mapped_column(String(32))
    minutes: Mapped[int] = mapped_column(Integer)
    worked_on: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str] = mapped_column(String(42))
