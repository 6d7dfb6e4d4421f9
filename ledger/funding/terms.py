"""What a finance node lists: a project's terms, checked and written as an entry payload.

Everything here is pure (no database, no clock): the checks that need the ledger's
state or time (the lister is a finance node, the currency exists, the asset is not yet
registered, the deadline is ahead) are made by ``ledger.funding.projects`` inside the
write transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ledger.core import JsonValue, check_amount, check_display_text, check_text, limits
from ledger.core.asset_id import validate_asset_id
from ledger.core.errors import InvalidInput
from ledger.core.timestamps import format_time, to_utc
from ledger.registry.address import validate_address
from ledger.registry.assets import DocumentRef, LegalFramework, check_sha256

__all__ = ["ProjectTerms", "terms_payload"]

_CURRENCY_CODE_LEN_MAX = 10  # as the currencies table keeps it


@dataclass(frozen=True, slots=True)
class ProjectTerms:
    """A project as a finance node lists it. Money is in the currency's minor units and
    units are the asset's fractions; all integers, never floats."""

    title: str
    description: str
    organizer: str  # checksummed address of a member
    asset_id: str  # VIN-like, not registered yet: it is registered when the units are issued
    jurisdiction: str
    currency: str
    goal_minor: int
    deadline: datetime  # aware; kept in UTC
    min_pledge_minor: int  # 1..goal
    organizer_contribution_minor: int = 0  # 0..goal
    retained_min_units: int = 0  # 0..total_units, kept by the operator
    operator_share_bp: int = 0  # 0..10000 basis points of the asset's output
    total_units: int = limits.TOTAL_UNITS_DEFAULT
    manual_pledges_allowed: bool = False
    legal_framework: str = LegalFramework.TENANCY_IN_COMMON
    documents: tuple[DocumentRef, ...] = ()


def _whole(name: str, value: int, low: int, high: int, code: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("amount_type", f"{name} must be an integer")
    if not low <= value <= high:
        raise InvalidInput(code, f"{name} must be within {low}..{high}, got {value}")
    return value


def terms_payload(lister: str, terms: ProjectTerms) -> dict[str, JsonValue]:
    """Check ``terms`` listed by ``lister`` and return them as the ``project.create``
    payload (amounts as integers, the deadline as UTC text). Raises ``InvalidInput``
    with a stable code for the first thing out of bounds."""
    validate_address(lister)
    validate_address(terms.organizer)
    validate_asset_id(terms.asset_id)
    check_display_text("title", terms.title, 128)
    check_display_text("description", terms.description, limits.PROJECT_DESCRIPTION_LEN_MAX)
    check_display_text("jurisdiction", terms.jurisdiction, 64)
    check_text("currency", terms.currency, _CURRENCY_CODE_LEN_MAX)
    try:
        framework = LegalFramework(terms.legal_framework)
    except ValueError:
        raise InvalidInput(
            "legal_framework", f"legal framework must be one of {', '.join(LegalFramework)}"
        ) from None
    check_amount(terms.goal_minor, "goal_minor")
    goal = terms.goal_minor
    _whole("min_pledge_minor", terms.min_pledge_minor, 1, goal, "min_pledge_range")
    _whole(
        "organizer_contribution_minor",
        terms.organizer_contribution_minor,
        0,
        goal,
        "contribution_range",
    )
    _whole("total_units", terms.total_units, 1, limits.TOTAL_UNITS_MAX, "total_units_range")
    _whole(
        "retained_min_units",
        terms.retained_min_units,
        0,
        terms.total_units,
        "retained_units_range",
    )
    _whole(
        "operator_share_bp",
        terms.operator_share_bp,
        0,
        limits.OPERATOR_SHARE_BP_MAX,
        "operator_share_range",
    )
    if not isinstance(terms.manual_pledges_allowed, bool):
        raise InvalidInput("field_type", "manual_pledges_allowed must be true or false")
    if not isinstance(terms.deadline, datetime):
        raise InvalidInput("field_type", "deadline must be a time")
    deadline = to_utc(terms.deadline)
    if len(terms.documents) > limits.PROJECT_DOCUMENTS_MAX:
        raise InvalidInput(
            "too_many_documents", f"at most {limits.PROJECT_DOCUMENTS_MAX} documents per project"
        )
    documents: list[JsonValue] = [
        {
            "title": check_display_text("document title", d.title, 128),
            "sha256": check_sha256("document sha256", d.sha256),
        }
        for d in terms.documents
    ]
    if len({d.sha256 for d in terms.documents}) < len(documents):
        raise InvalidInput("document_repeated", "a document (by its SHA-256) is listed twice")
    return {
        "lister": lister,
        "organizer": terms.organizer,
        "title": terms.title,
        "description": terms.description,
        "asset_id": terms.asset_id,
        "legal_framework": framework.value,
        "jurisdiction": terms.jurisdiction,
        "documents": documents,
        "currency": terms.currency,
        "goal_minor": goal,
        "deadline": format_time(deadline),
        "min_pledge_minor": terms.min_pledge_minor,
        "organizer_contribution_minor": terms.organizer_contribution_minor,
        "total_units": terms.total_units,
        "retained_min_units": terms.retained_min_units,
        "operator_share_bp": terms.operator_share_bp,
        "manual_pledges_allowed": terms.manual_pledges_allowed,
    }
