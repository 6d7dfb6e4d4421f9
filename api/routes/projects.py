"""Projects and pledges: listing, opening and cancelling a project, manual pledges, who
put what in, the escrow to pledge to, and the ledger reconciled with the escrows.

Reading a project needs no sign-in. Every POST takes an ``Idempotency-Key`` and keeps its
answer (``api.idempotency.once``, scoped to the caller): a project is a record that moves
on, so a retry must get the answer the first request got, not the project as it stands
by then; and opening a project over a chain deploys its escrow before the ledger writes,
so a retry must not run again. The ledger's own entries are keyed too (``ledger_key``).
Who may act is the ledger's rule for every write (the listing finance node; see
``ledger.funding``) and ``api.policy``'s for the reads that are not public.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from api.deps import Caller, IdempotencyKey, LedgerDep
from api.idempotency import ledger_key, once
from api.policy import require_reconciler, sees_all_pledges
from api.problems import PROBLEM_RESPONSES
from api.schemas.common import PAGE_SIZE_DEFAULT, Page, amount_text
from api.schemas.funding import (
    ContributionOut,
    EscrowOut,
    FinalizeOut,
    ManualPledgeIn,
    ManualPledgeOut,
    ManualPledgeRecordOut,
    MyPledgeOut,
    PledgeCheckOut,
    PledgerDifferenceOut,
    ProjectIn,
    ProjectOut,
    ProjectPledgesOut,
    ReconciliationLineOut,
    ReconciliationOut,
)
from api.schemas.ledger import DocumentIn
from contracts import load_artifact
from ledger.chain.follower import ChainFollower
from ledger.chain.gateway import FundingChain
from ledger.core import check_amount, limits
from ledger.core.errors import Forbidden, InvalidInput, NotFound, Refused
from ledger.db.engine import read_connection
from ledger.funding import (
    ManualPledgeRecord,
    ProjectRecord,
    ProjectState,
    ProjectTerms,
    ReconciliationLine,
    cancel_project,
    contributions,
    create_project,
    get_project,
    list_manual_pledges,
    list_projects,
    open_project,
    record_manual_pledge,
)
from ledger.funding.reads import contributions_of, pledger_counts
from ledger.journal.write import Ledger
from ledger.registry.address import validate_address
from ledger.registry.assets import DocumentRef

router = APIRouter(prefix="/v1", tags=["projects"], responses=PROBLEM_RESPONSES)
ProjectPath = Annotated[int, Path(ge=1, le=2**62, description="the project's id")]
CursorQuery = Annotated[
    int | None, Query(ge=0, le=2**62, description="the last id of the page before")
]
LimitQuery = Annotated[int, Query(ge=1, le=limits.PROJECT_PAGE_MAX)]
# Escrows hold the project's currency: ether in the ETH escrow, a token in the other.
_ESCROW_CONTRACTS = {"ETH": "EthPledgeEscrow"}
_TOKEN_ESCROW = "TokenPledgeEscrow"


async def _funding_chain(request: Request) -> FundingChain | None:
    chain: FundingChain | None = request.app.state.funding_chain
    return chain


FundingChainDep = Annotated[FundingChain | None, Depends(_funding_chain)]


def _scope(caller_address: str) -> str:
    return f"projects:{caller_address}"


def _require_chain(chain: FundingChain | None) -> FundingChain:
    if chain is None:
        raise Refused("chain_off", "this service follows no chain (DPN_CHAIN_RPC_URL is not set)")
    return chain


def _project_out(project: ProjectRecord, pledgers: int, onchain: int | None) -> ProjectOut:
    terms, escrow = project.terms, project.escrow
    return ProjectOut(
        id=project.id,
        state=project.state,
        title=terms.title,
        description=terms.description,
        organizer=terms.organizer,
        lister=project.lister,
        asset_id=terms.asset_id,
        legal_framework=str(terms.legal_framework),
        jurisdiction=terms.jurisdiction,
        documents=[DocumentIn(title=d.title, sha256=d.sha256) for d in terms.documents],
        currency=terms.currency,
        goal_minor=amount_text(terms.goal_minor),
        min_pledge_minor=amount_text(terms.min_pledge_minor),
        organizer_contribution_minor=amount_text(terms.organizer_contribution_minor),
        total_units=terms.total_units,
        retained_min_units=terms.retained_min_units,
        operator_share_bp=terms.operator_share_bp,
        manual_pledges_allowed=terms.manual_pledges_allowed,
        deadline=terms.deadline,
        chain_key=project.chain_key,
        escrow_address=None if escrow is None else escrow.address,
        chain_id=None if escrow is None else escrow.chain_id,
        escrow_goal_minor=None if escrow is None else amount_text(escrow.goal_minor),
        pledged_total_minor=amount_text(project.chain_total_minor),
        manual_total_minor=amount_text(project.manual_total_minor),
        ledger_total_minor=amount_text(project.ledger_total_minor),
        onchain_total_minor=None if onchain is None else amount_text(onchain),
        pledgers=pledgers,
        registered_seq=project.registered_seq,
        state_seq=project.state_seq,
    )


def _project_view(ledger: Ledger, project_id: int) -> ProjectOut:
    """The project as it stands, without its on-chain total (what the writes answer)."""
    with read_connection(ledger.engine) as conn:
        project = get_project(conn, project_id)
        pledgers = pledger_counts(conn, [project_id])[project_id]
    return _project_out(project, pledgers, None)


def _onchain_total(request: Request, project: ProjectRecord) -> int | None:
    chain: FundingChain | None = request.app.state.funding_chain
    if chain is None or project.escrow is None:
        return None
    # A node known to be silent would make every read wait for its timeout.
    follower: ChainFollower | None = request.app.state.chain_follower
    if follower is not None and follower.status().state == "waiting":
        return None
    return chain.onchain_total(project.escrow)


# -- reads anyone may make ----------------------------------------------------------------


@router.get("/projects", response_model=Page[ProjectOut])
def projects(
    ledger: LedgerDep,
    state: Annotated[ProjectState | None, Query()] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = PAGE_SIZE_DEFAULT,
) -> Page[ProjectOut]:
    """Projects in listing (id) order, in ``state`` if given. No sign-in. The chain is
    not asked here (a page would cost one call to the node per escrow):
    ``onchain_total_minor`` is null in lists; read one project for it."""
    with read_connection(ledger.engine) as conn:
        found = list_projects(
            conn, state=None if state is None else state.value, after_id=cursor, limit=limit
        )
        counts = pledger_counts(conn, [p.id for p in found])
    items = [_project_out(p, counts[p.id], None) for p in found]
    return Page.of(items, found, limit, lambda p: p.id)


@router.get("/projects/{project_id}", response_model=ProjectOut)
def project(project_id: ProjectPath, request: Request, ledger: LedgerDep) -> ProjectOut:
    """One project, with its escrow's ``totalPledged()`` read from the chain just now
    (``onchain_total_minor``; null without an escrow or when no node answers). No
    sign-in."""
    with read_connection(ledger.engine) as conn:
        found = get_project(conn, project_id)
        pledgers = pledger_counts(conn, [project_id])[project_id]
    return _project_out(found, pledgers, _onchain_total(request, found))


@cache
def _escrow_abi(contract: str) -> list[dict[str, Any]]:
    return [dict(element) for element in load_artifact(contract).abi]


@router.get("/projects/{project_id}/escrow", response_model=EscrowOut)
def escrow(project_id: ProjectPath, ledger: LedgerDep) -> EscrowOut:
    """Where to pledge to the project: its escrow's address, chain and ABI (a wallet
    may check the goal, the deadline and every pledge there). No sign-in; 404
    ``no_escrow`` while the project has none (a draft, or a project without a chain)."""
    with read_connection(ledger.engine) as conn:
        found = get_project(conn, project_id)
    if found.escrow is None:
        raise NotFound("no_escrow", f"project {project_id} has no escrow")
    contract = _ESCROW_CONTRACTS.get(found.terms.currency, _TOKEN_ESCROW)
    return EscrowOut(
        project_id=found.id,
        address=found.escrow.address,
        chain_id=found.escrow.chain_id,
        contract=contract,
        goal_minor=amount_text(found.escrow.goal_minor),
        abi=_escrow_abi(contract),
    )


# -- a listing node's writes --------------------------------------------------------------


@router.post("/projects", response_model=ProjectOut, status_code=201)
def new_project(
    body: ProjectIn, caller: Caller, ledger: LedgerDep, key: IdempotencyKey
) -> ProjectOut:
    """List a project, in ``draft``, with the caller as its lister: a member of kind
    finance node (others: 403 ``not_finance_node``). The asset is registered and its
    units issued only when the project is funded."""
    terms = ProjectTerms(
        title=body.title,
        description=body.description,
        organizer=body.organizer,
        asset_id=body.asset_id,
        jurisdiction=body.jurisdiction,
        currency=body.currency,
        goal_minor=body.goal_minor,
        deadline=body.deadline,
        min_pledge_minor=body.min_pledge_minor,
        organizer_contribution_minor=body.organizer_contribution_minor,
        retained_min_units=body.retained_min_units,
        operator_share_bp=body.operator_share_bp,
        total_units=body.total_units,
        manual_pledges_allowed=body.manual_pledges_allowed,
        legal_framework=body.legal_framework,
        documents=tuple(DocumentRef(d.title, d.sha256) for d in body.documents),
    )

    def run() -> tuple[int, dict[str, Any]]:
        made = create_project(
            ledger,
            caller.address,
            terms,
            key=ledger_key(caller.address, key),
            actor=caller.address,
        )
        return 201, _project_out(made, 0, None).model_dump(mode="json")

    request = {"create": body.model_dump(mode="json")}
    _, answer = once(ledger, scope=_scope(caller.address), key=key, request=request, run=run)
    return ProjectOut.model_validate(answer)


@router.post("/projects/{project_id}/open", response_model=ProjectOut)
def open_a_project(
    project_id: ProjectPath,
    caller: Caller,
    ledger: LedgerDep,
    chain: FundingChainDep,
    key: IdempotencyKey,
) -> ProjectOut:
    """Open a draft project to pledges (its listing node only: 403 ``not_listing_node``).
    With a chain, its escrow is deployed first (ETH projects only: 422
    ``currency_not_on_chain``; a service without a deployer key: 422
    ``chain_read_only``; a node that does not answer: 503 ``chain_unavailable``);
    without one, pledges are manual only."""

    def run() -> tuple[int, dict[str, Any]]:
        scoped = ledger_key(caller.address, key)
        if chain is None:
            open_project(ledger, project_id, by=caller.address, key=scoped, actor=caller.address)
        else:
            chain.open_project(project_id, by=caller.address, key=scoped, actor=caller.address)
        return 200, _project_view(ledger, project_id).model_dump(mode="json")

    request = {"open": project_id}
    _, answer = once(ledger, scope=_scope(caller.address), key=key, request=request, run=run)
    return ProjectOut.model_validate(answer)


@router.post("/projects/{project_id}/cancel", response_model=ProjectOut)
def cancel(
    project_id: ProjectPath, caller: Caller, ledger: LedgerDep, key: IdempotencyKey
) -> ProjectOut:
    """Cancel a draft or open project (its listing node only; any other state: 422
    ``project_state``). Nothing here touches an escrow already on-chain: what the ledger
    does about one is ``ledger.funding.cancel_project``'s to say."""

    def run() -> tuple[int, dict[str, Any]]:
        scoped = ledger_key(caller.address, key)
        cancel_project(ledger, project_id, by=caller.address, key=scoped, actor=caller.address)
        return 200, _project_view(ledger, project_id).model_dump(mode="json")

    request = {"cancel": project_id}
    _, answer = once(ledger, scope=_scope(caller.address), key=key, request=request, run=run)
    return ProjectOut.model_validate(answer)


def _pledge_out(record: ManualPledgeRecord) -> ManualPledgeRecordOut:
    return ManualPledgeRecordOut(
        seq=record.seq,
        project_id=record.project_id,
        contributor=record.contributor,
        amount_minor=amount_text(record.amount_minor),
        evidence_sha256=record.evidence_sha256,
        recorded_by=record.recorded_by,
    )


@router.post(
    "/projects/{project_id}/manual-pledges", response_model=ManualPledgeOut, status_code=201
)
def new_manual_pledge(
    project_id: ProjectPath,
    body: ManualPledgeIn,
    caller: Caller,
    ledger: LedgerDep,
    key: IdempotencyKey,
) -> ManualPledgeOut:
    """Record a pledge paid outside the chain (a bank transfer, cash) with the SHA-256
    of its evidence: the project's listing node only, where the project takes them
    (422 ``manual_pledges_not_allowed``), at least its minimum (422
    ``pledge_below_minimum``), before its escrow exists (422
    ``manual_pledge_after_escrow``), each evidence once (409 ``evidence_repeated``).
    A pledge that meets the goal of an open project without an escrow funds it: the
    answer's project is then ``forwarded`` and the asset's units are issued."""

    def run() -> tuple[int, dict[str, Any]]:
        record = record_manual_pledge(
            ledger,
            project_id,
            body.contributor,
            body.amount_minor,
            body.evidence_sha256,
            by=caller.address,
            key=ledger_key(caller.address, key),
            actor=caller.address,
        )
        out = ManualPledgeOut(pledge=_pledge_out(record), project=_project_view(ledger, project_id))
        return 201, out.model_dump(mode="json")

    request = {"manual_pledge": project_id, "body": body.model_dump(mode="json")}
    _, answer = once(ledger, scope=_scope(caller.address), key=key, request=request, run=run)
    return ManualPledgeOut.model_validate(answer)


# -- signed-in reads ----------------------------------------------------------------------


@router.get("/projects/{project_id}/pledges", response_model=ProjectPledgesOut)
def pledges(project_id: ProjectPath, caller: Caller, ledger: LedgerDep) -> ProjectPledgesOut:
    """Who put what into the project, per contributor (on-chain, manual, total, by first
    contribution), and its manual pledge records. All of it to the listing node, the
    organizer and admins; anyone else signed in sees only their own (``complete``
    false). The organizer's own contribution is a term of the project, not a line here."""
    with read_connection(ledger.engine) as conn:
        found = get_project(conn, project_id)
        lines = contributions(conn, project_id)
        records = list_manual_pledges(conn, project_id)
    complete = sees_all_pledges(caller, lister=found.lister, organizer=found.terms.organizer)
    if not complete:
        lines = [c for c in lines if c.contributor == caller.address]
        records = [r for r in records if r.contributor == caller.address]
    return ProjectPledgesOut(
        project_id=project_id,
        currency=found.terms.currency,
        complete=complete,
        contributions=[
            ContributionOut(
                contributor=c.contributor,
                chain_minor=amount_text(c.chain_minor),
                manual_minor=amount_text(c.manual_minor),
                total_minor=amount_text(c.total_minor),
                first_seq=c.first_seq,
            )
            for c in lines
        ],
        manual_pledges=[_pledge_out(r) for r in records],
    )


@router.get("/me/pledges", response_model=Page[MyPledgeOut])
def my_pledges(
    caller: Caller,
    ledger: LedgerDep,
    cursor: CursorQuery = None,
    limit: LimitQuery = PAGE_SIZE_DEFAULT,
) -> Page[MyPledgeOut]:
    """What you have in each project (on-chain pledges from your signed-in wallet as the
    mirror has seen them, and manual pledges recorded for you), in project id order."""
    with read_connection(ledger.engine) as conn:
        found = contributions_of(conn, caller.address, after_project_id=cursor, limit=limit)
    items = [
        MyPledgeOut(
            project_id=c.project_id,
            title=c.title,
            state=c.state,
            currency=c.currency,
            chain_minor=amount_text(c.chain_minor),
            manual_minor=amount_text(c.manual_minor),
            total_minor=amount_text(c.total_minor),
            first_seq=c.first_seq,
        )
        for c in found
    ]
    return Page.of(items, found, limit, lambda c: c.project_id)


def _reconciliation_out(chain_id: int, lines: list[ReconciliationLine]) -> ReconciliationOut:
    return ReconciliationOut(
        chain_id=chain_id,
        lines=[
            ReconciliationLineOut(
                project_id=line.project_id,
                escrow=line.escrow,
                ledger_total_minor=amount_text(line.ledger_total_minor),
                contract_total_minor=None
                if line.contract_total_minor is None
                else amount_text(line.contract_total_minor),
                difference_minor=None
                if line.difference_minor is None
                else str(line.difference_minor),
                pledger_differences=[
                    PledgerDifferenceOut(
                        pledger=who, ledger_minor=amount_text(mine), contract_minor=str(theirs)
                    )
                    for who, mine, theirs in line.pledger_differences
                ],
            )
            for line in lines
        ],
    )


@router.get("/reconciliation", response_model=ReconciliationOut)
def reconciliation(caller: Caller, chain: FundingChainDep) -> ReconciliationOut:
    """Every escrowed project's mirrored total against its contract's ``totalPledged()``
    (and each pledger's against ``pledgeOf``), read from the node now: admins and
    finance nodes. 422 ``chain_off`` without a chain; 503 ``chain_unavailable`` when
    the node does not answer at all (a single escrow that does not answer is a line
    without a contract total)."""
    require_reconciler(caller)
    found = _require_chain(chain)
    return _reconciliation_out(found.chain_id(), found.reconcile())


@router.get("/projects/{project_id}/reconciliation", response_model=ReconciliationOut)
def project_reconciliation(
    project_id: ProjectPath, caller: Caller, ledger: LedgerDep, chain: FundingChainDep
) -> ReconciliationOut:
    """``/v1/reconciliation`` for one project: one line, or none while it has no escrow
    on this chain."""
    require_reconciler(caller)
    found = _require_chain(chain)
    with read_connection(ledger.engine) as conn:
        get_project(conn, project_id)  # 404 unknown_project
    return _reconciliation_out(found.chain_id(), found.reconcile([project_id]))


# -- the escrow's own answers -------------------------------------------------------------


@router.post("/projects/{project_id}/finalize", response_model=FinalizeOut)
def finalize_escrow(
    project_id: ProjectPath,
    caller: Caller,
    ledger: LedgerDep,
    chain: FundingChainDep,
    key: IdempotencyKey,
) -> FinalizeOut:
    """Send ``finalize()`` to the project's escrow from the platform's account, for its
    listing node, its organizer or an admin (403 ``not_project_party``); anyone may also
    call the contract from their own wallet. The escrow's refusal comes back as a problem
    with the contract's error: 422 ``goal_not_reached`` (with ``total`` and ``goal``),
    ``already_finalized``. 404 ``no_escrow``; 422 ``chain_off`` without a chain. The
    chain mirror funds the project once the finalize has its confirmations."""

    def run() -> tuple[int, dict[str, Any]]:
        with read_connection(ledger.engine) as conn:
            project = get_project(conn, project_id)
        if not sees_all_pledges(caller, lister=project.lister, organizer=project.terms.organizer):
            raise Forbidden(
                "not_project_party",
                f"only project {project_id}'s listing node, organizer or an admin may",
            )
        funding = _require_chain(chain)
        tx_hash = funding.finalize(project)
        out = FinalizeOut(
            project_id=project_id,
            escrow=project.escrow.address if project.escrow else "",
            tx_hash=tx_hash,
            project=_project_view(ledger, project_id),
        )
        return 200, out.model_dump(mode="json")

    request = {"finalize": project_id}
    _, answer = once(ledger, scope=_scope(caller.address), key=key, request=request, run=run)
    return FinalizeOut.model_validate(answer)


@router.get("/projects/{project_id}/pledge-check", response_model=PledgeCheckOut)
def check_a_pledge(
    project_id: ProjectPath,
    ledger: LedgerDep,
    chain: FundingChainDep,
    pledger: Annotated[str, Query(min_length=1, max_length=42, description="the wallet")],
    amount_minor: Annotated[
        str, Query(min_length=1, max_length=40, description="wei, as decimal digits")
    ],
) -> PledgeCheckOut:
    """Would the escrow take this pledge now? Asked of the contract itself (a call,
    nothing sent), so a wallet learns before it pays gas: 200 when it would; otherwise
    the contract's error as a problem, 422 ``pledge_below_minimum`` (with ``amount`` and
    ``minimum``), ``pledge_after_deadline``, ``already_finalized``; the ledger's own first:
    422 ``project_state`` for a project not open (cancelled, failed, funded), 404
    ``no_escrow``. Public."""
    validate_address(pledger)
    if not (amount_minor.isascii() and amount_minor.isdigit()):
        raise InvalidInput("amount_malformed", "amount_minor is a whole number of wei, in digits")
    amount = int(amount_minor)
    check_amount(amount, "amount_minor")
    funding = _require_chain(chain)
    with read_connection(ledger.engine) as conn:
        project = get_project(conn, project_id)
    escrow = funding.check_pledge(project, pledger, amount)
    return PledgeCheckOut(
        project_id=project_id,
        escrow=escrow.address,
        chain_id=escrow.chain_id,
        pledger=pledger,
        amount_minor=amount_text(amount),
        accepted=True,
    )
