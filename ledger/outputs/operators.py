"""Who operates an asset, the share of its output taken first, and the kinds it produces.

An asset a project brought in takes its operator (the project's organizer) and share
(``operator_share_bp``) from the project's terms, and nothing of it pays out before the
project is funded (DESIGN invariant 4: ``project_not_funded``). An asset registered
without a project takes both from its ``output_terms`` row, set by an admin
(``output.terms`` entry); setting them does not grant the operator role, which an admin
grants as for any asset (``ledger.access.roles``). An asset with neither has no
operator: ``NotFound(no_operator_terms)``.

Output kinds (``tomato`` in ``g``) are counted in whole smallest units; an asset has at
most ``OUTPUT_KINDS_PER_ASSET_MAX``. Each is defined once (``output.kind`` entry).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from sqlalchemy import Connection, func, insert, select, update

from ledger.core import EntryDraft, EntryKind, check_display_text, validate_asset_id
from ledger.core.entitlements import BP_WHOLE
from ledger.core.errors import Conflict, InvalidInput, NotFound, Refused
from ledger.db.schema import OutputKind, OutputTerms, Project, table
from ledger.funding.standing import funded_project_of
from ledger.funding.states import ProjectState
from ledger.journal.write import Ledger
from ledger.registry.address import validate_address
from ledger.registry.assets import get_asset
from ledger.registry.members import find_member

__all__ = [
    "KIND_NAME_PATTERN",
    "OUTPUT_KINDS_PER_ASSET_MAX",
    "OperatorSource",
    "OperatorTerms",
    "OutputKindRecord",
    "count_output_kinds",
    "define_output_kind",
    "list_output_kinds",
    "operator_of",
    "set_output_terms",
]

OUTPUT_KINDS_PER_ASSET_MAX: Final = 20
KIND_NAME_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,31}$"
KIND_UNIT_LEN_MAX: Final = 16
KIND_DESCRIPTION_LEN_MAX: Final = 200
_KIND_NAME = re.compile(KIND_NAME_PATTERN)
_UNIT = re.compile(r"[\x21-\x7e]{1,16}")  # printable ASCII, no space: "g", "Wh", "kWh"

_terms = table(OutputTerms)
_kinds = table(OutputKind)
_projects = table(Project)
_FUNDED = (ProjectState.FUNDED.value, ProjectState.FORWARDED.value)
_LIVE = (ProjectState.DRAFT.value, ProjectState.OPEN.value)


class OperatorSource(StrEnum):
    """Where an asset's operator terms come from."""

    PROJECT = "project"
    TERMS = "output_terms"


@dataclass(frozen=True, slots=True)
class OperatorTerms:
    """An asset's operator (an address), the share of each output it takes first (basis
    points), and where both come from (``project`` or ``output_terms``)."""

    operator: str
    operator_share_bp: int
    source: OperatorSource


@dataclass(frozen=True, slots=True)
class OutputKindRecord:
    """An output kind of an asset, counted in whole ``unit`` (its smallest unit)."""

    asset_id: str
    name: str
    unit: str
    description: str
    defined_seq: int


def _project_terms(conn: Connection, asset_id: str) -> OperatorTerms | None:
    """The funded project's terms for ``asset_id``; ``Refused(project_not_funded)`` if a
    project for it is still on its way (draft or open); None if no project bought it
    (``funded_project_of``)."""
    project = funded_project_of(
        conn, asset_id, refusal="nothing of it pays out before the project is funded"
    )
    if project is None:
        return None
    return OperatorTerms(project.organizer, project.operator_share_bp, OperatorSource.PROJECT)


def operator_of(conn: Connection, asset_id: str) -> OperatorTerms:
    """The operator of ``asset_id`` and its share: from the funded project that brought
    it in, else from its ``output_terms``. Refuses ``NotFound(unknown_asset)``,
    ``Refused(project_not_funded)`` while its project is draft or open, and
    ``NotFound(no_operator_terms)`` when neither names an operator."""
    validate_asset_id(asset_id)
    found = _project_terms(conn, asset_id)  # first: a live project's asset is not registered
    if found is not None:
        return found
    get_asset(conn, asset_id)
    row = conn.execute(
        select(_terms.c.operator, _terms.c.operator_share_bp).where(_terms.c.asset_id == asset_id)
    ).first()
    if row is None:
        raise NotFound(
            "no_operator_terms",
            f"no operator is set for {asset_id}: an admin sets its output terms",
        )
    return OperatorTerms(row.operator, int(row.operator_share_bp), OperatorSource.TERMS)


def set_output_terms(
    ledger: Ledger, asset_id: str, operator: str, operator_share_bp: int, *, key: str, actor: str
) -> OperatorTerms:
    """Set (or replace) the operator and share of an asset no project brought in;
    journaled as ``output.terms``. Periods already produced keep the terms they were
    produced under (their ``output.produce`` entry names them).

    Refuses, writing nothing: a share outside 0..10,000 or a malformed address
    (``InvalidInput``); an unknown asset (``NotFound(unknown_asset)``); an operator who is
    not a member (``NotFound(unknown_member)``); an asset from a project
    (``Conflict(terms_from_project)``: its project's terms rule). A replay of the same
    key returns the terms as they stand."""
    operator = validate_address(operator)
    if isinstance(operator_share_bp, bool) or not 0 <= operator_share_bp <= BP_WHOLE:
        raise InvalidInput(
            "operator_share_bp", f"the operator's share must be 0..{BP_WHOLE} basis points"
        )
    draft = EntryDraft(
        kind=EntryKind.OUTPUT_TERMS,
        idempotency_key=key,
        actor=actor,
        payload={
            "asset_id": asset_id,
            "operator": operator,
            "operator_share_bp": operator_share_bp,
        },
    )
    with ledger.write() as tx:

        def write(seq: int) -> None:
            get_asset(tx.conn, asset_id)
            if _has_project(tx.conn, asset_id):
                raise Conflict(
                    "terms_from_project",
                    f"{asset_id} came from a project: its operator terms are the project's",
                )
            if find_member(tx.conn, operator) is None:
                raise NotFound("unknown_member", f"no member {operator}")
            values = {"operator": operator, "operator_share_bp": operator_share_bp, "set_seq": seq}
            changed = tx.conn.execute(
                update(_terms).where(_terms.c.asset_id == asset_id).values(**values)
            ).rowcount
            if not changed:
                tx.conn.execute(insert(_terms).values(asset_id=asset_id, **values))

        tx.append_once(draft, write)
        return operator_of(tx.conn, asset_id)


def _has_project(conn: Connection, asset_id: str) -> bool:
    """True if a live or funded project names the asset (its terms rule)."""
    found = conn.execute(
        select(_projects.c.id).where(
            _projects.c.asset_id == asset_id, _projects.c.state.in_(_FUNDED + _LIVE)
        )
    ).first()
    return found is not None


def define_output_kind(
    ledger: Ledger,
    asset_id: str,
    name: str,
    unit: str,
    description: str = "",
    *,
    key: str,
    actor: str,
) -> OutputKindRecord:
    """Define an output kind of ``asset_id``; journaled as ``output.kind``.

    Refuses, writing nothing: a name not matching ``KIND_NAME_PATTERN``
    (``kind_name_malformed``), a unit not 1..16 printable characters without spaces
    (``kind_unit_malformed``), a description over 200 characters or not showable
    (``InvalidInput``); an asset without an operator (as ``operator_of``); a name the
    asset has already (``Conflict(output_kind_exists)``); a 21st kind
    (``Refused(too_many_output_kinds)``). A replay returns the same kind."""
    if not isinstance(name, str) or not _KIND_NAME.match(name):
        raise InvalidInput(
            "kind_name_malformed", "a kind's name is 1..32 of a-z, 0-9, _ and -, from a-z or 0-9"
        )
    if not isinstance(unit, str) or not _UNIT.fullmatch(unit):
        raise InvalidInput(
            "kind_unit_malformed",
            f"a unit is 1..{KIND_UNIT_LEN_MAX} printable characters without spaces ('g', 'Wh')",
        )
    if description:
        check_display_text("description", description, KIND_DESCRIPTION_LEN_MAX)
    draft = EntryDraft(
        kind=EntryKind.OUTPUT_KIND,
        idempotency_key=key,
        actor=actor,
        payload={"asset_id": asset_id, "name": name, "unit": unit, "description": description},
    )
    with ledger.write() as tx:

        def write(seq: int) -> None:
            operator_of(tx.conn, asset_id)
            names = list_output_kinds(tx.conn, asset_id)
            if any(k.name == name for k in names):
                raise Conflict("output_kind_exists", f"{asset_id} has a kind {name!r} already")
            if len(names) >= OUTPUT_KINDS_PER_ASSET_MAX:
                raise Refused(
                    "too_many_output_kinds",
                    f"an asset has at most {OUTPUT_KINDS_PER_ASSET_MAX} output kinds",
                )
            tx.conn.execute(
                insert(_kinds).values(
                    asset_id=asset_id,
                    name=name,
                    unit=unit,
                    description=description,
                    defined_seq=seq,
                )
            )

        tx.append_once(draft, write)
        (found,) = [k for k in list_output_kinds(tx.conn, asset_id) if k.name == name]
        return found


def list_output_kinds(conn: Connection, asset_id: str) -> list[OutputKindRecord]:
    """The output kinds of ``asset_id``, by name (at most ``OUTPUT_KINDS_PER_ASSET_MAX``);
    ``NotFound(unknown_asset)`` for an asset not registered."""
    get_asset(conn, asset_id)
    rows = conn.execute(
        select(_kinds).where(_kinds.c.asset_id == asset_id).order_by(_kinds.c.name)
    ).all()
    return [
        OutputKindRecord(r.asset_id, r.name, r.unit, r.description, r.defined_seq) for r in rows
    ]


def count_output_kinds(conn: Connection, asset_id: str) -> int:
    """How many output kinds ``asset_id`` has."""
    return int(
        conn.execute(
            select(func.count()).select_from(_kinds).where(_kinds.c.asset_id == asset_id)
        ).scalar_one()
    )
