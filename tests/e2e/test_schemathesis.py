"""Schemathesis against the in-process app: every operation of ``/openapi.json`` fuzzed
with valid and invalid input, as a signed-in admin, each call with a fresh
Idempotency-Key. No input may cause a 5xx, and every answer must conform to what the
schema documents: status code, content type, headers and body schema.

The schema is read once from an app without a database (``/openapi.json`` needs none);
the calls go to one app over a migrated SQLite file holding a small world (two members,
an asset, issued units, money), shared by the whole module so that reads meet real rows.

Random strings almost never form a checksummed address or an asset ID with its check
character, so on their own the valid (positive) cases would all stop at input
validation. Three in four of them are therefore "grounded": fields that name a member,
an asset, an instrument or a currency are redrawn from real ones, so the fuzzing reaches
the ledger's rules (insufficient funds, unknown members, duplicate assets ...), and
cursors and seqs are drawn at the edges of 32- and 64-bit database integers. Only cases
drawn by the fuzzing phase pass through the hook; the coverage phase's deterministic
boundary cases go as they are.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import strategies as st
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.generation import GenerationMode

from api.app import create_app
from api.settings import Settings
from ledger.core.asset_id import ASSET_ID_ALPHABET, with_check_character
from ledger.db.engine import make_engine
from ledger.db.migrate import upgrade

from .signin import sign_in, wallet

ADMIN, ANN, STRANGER = wallet(31), wallet(32), wallet(33)  # STRANGER never signs in
ASSET = "1M8GDM9AXKP042788"
EXAMPLES_PER_OPERATION = 25
KNOWN_BUG_EXAMPLES = 150  # enough that the known failing case is met nearly every run

F = TypeVar("F", bound=Callable[..., Any])

# Nothing in the schema depends on the database; this engine is never connected.
SCHEMA = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(Settings(database_url="sqlite://"), engine=make_engine("sqlite://"))
)

_BUILTIN = schemathesis.checks
CHECKS: list[CheckFunction] = [
    not_a_server_error,
    _BUILTIN.status_code_conformance,
    _BUILTIN.content_type_conformance,
    _BUILTIN.response_schema_conformance,
    _BUILTIN.response_headers_conformance,
]

# -- grounding: real values for the fields that name things ---------------------------

_members = st.sampled_from([ADMIN.address, ANN.address, STRANGER.address])
_new_asset_ids = st.text(alphabet=sorted(ASSET_ID_ALPHABET), min_size=17, max_size=17).map(
    with_check_character
)
_asset_ids = st.one_of(st.just(ASSET), _new_asset_ids)
_small_amounts = st.sampled_from(["1", "7", "1000", "250000"])
GROUNDED: dict[str, st.SearchStrategy[Any]] = {
    "recipient": _members,
    "member": _members,
    "address": _members,
    "asset_id": _asset_ids,
    "asset": _asset_ids,
    "id": _new_asset_ids,
    "instrument": st.sampled_from([f"units:{ASSET}", "ccy:EUR", "ccy:USD"]),
    "currency": st.sampled_from(["EUR", "USD", "ETH"]),
    "amount": _small_amounts,
    "legal_framework": st.sampled_from(["tenancy_in_common", "joint_tenancy", "cooperative"]),
    "role": st.sampled_from(["admin", "operator", "finance_node", "member"]),
    "allocations": st.lists(st.tuples(_members, _small_amounts).map(list), min_size=1, max_size=3),
    "node_id": st.integers(min_value=1, max_value=5),
    # Cursors and seqs at the edges of 32- and 64-bit database integers.
    "cursor": st.sampled_from([2**31 - 1, 2**31, 2**63 - 1, 2**63]),
    "as_of_seq": st.sampled_from([0, 1, 2**31, 2**62]),
}


def _grounded(values: Mapping[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """``values`` with every entry that names a thing redrawn from real things."""
    return st.fixed_dictionaries(
        {name: GROUNDED.get(name, st.just(value)) for name, value in values.items()}
    )


@SCHEMA.hook
def flatmap_case(
    context: schemathesis.HookContext, case: schemathesis.Case[Any]
) -> st.SearchStrategy[schemathesis.Case[Any]]:
    """Most valid cases, grounded (see the module docstring); the rest as generated."""
    meta = case.meta
    if meta is None or meta.generation.mode is not GenerationMode.POSITIVE:
        return st.just(case)
    body = case.body if isinstance(case.body, dict) else None
    path, query = dict(case.path_parameters), dict(case.query)

    def ground(
        parts: tuple[dict[str, Any], dict[str, Any], dict[str, Any]],
    ) -> schemathesis.Case[Any]:
        new_body, case.path_parameters, case.query = parts
        if body is not None:
            case.body = new_body
        return case

    grounded = st.tuples(_grounded(body or {}), _grounded(path), _grounded(query)).map(ground)
    # Hypothesis starts from, and shrinks towards, the first choice: grounded.
    return st.sampled_from([True, True, True, False]).flatmap(
        lambda yes: grounded if yes else st.just(case)
    )


# -- the world the calls meet ----------------------------------------------------------


class Target:
    """The app the calls go to, and the admin's credential."""

    def __init__(self, app: FastAPI, authorization: str) -> None:
        self.app = app
        self.authorization = authorization


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    path: Path = tmp_path_factory.mktemp("schemathesis") / "dpn.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    app = create_app(Settings(admins=frozenset({ADMIN.address})), engine=engine)
    try:
        with TestClient(app) as client:
            admin = sign_in(client, ADMIN)
            sign_in(client, ANN)
            asset = {
                "id": ASSET,
                "make": "Richel",
                "model": "Greenhouse",
                "serial": "R-1",
                "location": "Wageningen",
                "jurisdiction": "NL",
            }
            issue = {"allocations": [[ADMIN.address, "600000"], [ANN.address, "400000"]]}
            deposit = {"member": ADMIN.address, "currency": "EUR", "amount": "10000000"}
            for n, (route, body) in enumerate(
                (
                    ("/v1/assets", asset),
                    (f"/v1/assets/{ASSET}/issue", issue),
                    ("/v1/deposits", deposit | {"reference": "SEPA 1"}),
                )
            ):
                keyed = admin | {"Idempotency-Key": f"world-{n}"}
                made = client.post(route, headers=keyed, json=body)
                assert made.status_code == 201, made.text
            yield Target(app, admin["Authorization"])
    finally:
        engine.dispose()


# -- the test --------------------------------------------------------------------------

_keys = itertools.count(1)


def _fuzzed(schema: Any) -> Callable[[F], F]:
    decorate: Callable[[F], F] = schema.parametrize()
    return decorate


_SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    database=None,
)


def _call_and_validate(case: schemathesis.Case[Any], target: Target) -> None:
    # Every call is the admin's (the generated Authorization is replaced; a case built to
    # leave out a required header still goes without it), and a fresh key makes every
    # write a new one rather than a replay of an earlier answer.
    case.headers["Authorization"] = target.authorization
    case.headers["Idempotency-Key"] = f"st-{next(_keys)}"
    case.call_and_validate(app=target.app, checks=CHECKS)


# Operations with a bug schemathesis found, each with the failing case; the app is to be
# fixed, then the operation moves back into the main test (an XPASS says it is time).
KNOWN_BUGS: dict[tuple[str, str], str] = {
    ("GET", "/v1/assets/{asset_id}/sightings"): (
        "app bug: ?cursor= has no upper bound; a cursor past the database's integer range"
        " (>= 2**63 on SQLite: OverflowError; >= 2**31 on PostgreSQL, sightings.id being"
        " INTEGER: NumericValueOutOfRange) answers 500 internal_error instead of 422"
    ),
}
_CLEAN: schemathesis.BaseSchema = SCHEMA
for _method, _path in KNOWN_BUGS:
    _CLEAN = _CLEAN.exclude(method=_method, path=_path)


@_fuzzed(_CLEAN)
@_SETTINGS
def test_api_conforms_to_its_schema(case: schemathesis.Case[Any], target: Target) -> None:
    _call_and_validate(case, target)


@_fuzzed(SCHEMA.include(method="GET", path="/v1/assets/{asset_id}/sightings"))
@hypothesis.settings(_SETTINGS, max_examples=KNOWN_BUG_EXAMPLES)
@pytest.mark.xfail(strict=False, reason=KNOWN_BUGS[("GET", "/v1/assets/{asset_id}/sightings")])
def test_sightings_conform_to_their_schema(case: schemathesis.Case[Any], target: Target) -> None:
    _call_and_validate(case, target)
