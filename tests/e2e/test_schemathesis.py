"""Schemathesis against the in-process app: every operation of ``/openapi.json`` fuzzed
with valid and invalid input, as a signed-in admin, each call with a fresh
Idempotency-Key. No input may cause a 5xx, and every answer must conform to what the
schema documents: status code, content type, headers and body schema.

The schema is read once from an app without a database (``/openapi.json`` needs none);
the calls go to an app over a migrated database holding a small world (two members, an
asset, issued units, money, a photo), one per backend (SQLite; PostgreSQL when
reachable), shared by every operation so that reads meet real rows. Operations with a
known app bug are fuzzed apart under ``xfail`` (see ``KNOWN_BUGS``).

Random strings almost never form a checksummed address or an asset ID with its check
character, so on their own the valid (positive) cases would all stop at input
validation. Three in four of them are therefore "grounded": fields that name a member,
an asset, a photo, an instrument or a currency are redrawn from real ones, so the
fuzzing reaches the ledger's rules (insufficient funds, unknown members, duplicate
assets ...); cursors and seqs are drawn at the edges of 32- and 64-bit database
integers; and in half of these cases one text ends in a NUL. Only cases drawn by the
fuzzing phase pass through the hook; the coverage phase's boundary cases go as they are.
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
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
from sqlalchemy import Engine, create_engine, text

from api.app import create_app
from api.settings import Settings
from ledger.core.asset_id import ASSET_ID_ALPHABET, with_check_character
from ledger.db.engine import make_engine
from ledger.db.migrate import upgrade
from tests.conftest import _PG_SKIP, postgres_url

from .signin import greenhouse, sign_in, wallet

ADMIN, ANN, STRANGER = wallet(31), wallet(32), wallet(33)  # STRANGER never signs in
ASSET = "1M8GDM9AXKP042788"
PHOTO = b"\x89PNG\r\n\x1a\n a photo of the greenhouse"
PHOTO_SHA256 = hashlib.sha256(PHOTO).hexdigest()
EXAMPLES_PER_OPERATION = 25
KNOWN_BUG_EXAMPLES = 100  # so that the known failing case is met in most runs

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
    "photo_sha256": st.just(PHOTO_SHA256),
    "sha256": st.just(PHOTO_SHA256),
}
# Query parameters sent whenever an operation declares them: cursors and seqs at the edges
# of 32- and 64-bit database integers, and a journal kind (a text a NUL may land in).
EDGE_QUERY: dict[str, st.SearchStrategy[Any]] = {
    "cursor": st.sampled_from([2**63, 2**31, 2**63 - 1, 2**31 - 1, "A"]),
    "as_of_seq": st.sampled_from([2**31, 2**62, 0, 1]),
    "kind": st.sampled_from(["transfer", "cash.deposit"]),
}
GROUNDED |= EDGE_QUERY
Parts = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]  # body, path, query


def _grounded(values: Mapping[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """``values`` with every entry that names a thing redrawn from real things."""
    return st.fixed_dictionaries(
        {name: GROUNDED.get(name, st.just(value)) for name, value in values.items()}
    )


def _maybe_a_nul(parts: Parts) -> st.SearchStrategy[Parts]:
    """``parts`` as they are, or with one of their texts ending in a NUL (in place of its
    last character, so that length limits still hold): a character the two databases
    disagree about (PostgreSQL refuses it in text columns)."""
    texts = [(i, k) for i, part in enumerate(parts) for k, v in part.items() if isinstance(v, str)]

    def put(where: tuple[int, str] | None) -> Parts:
        if where is None:
            return parts
        copied = (dict(parts[0]), dict(parts[1]), dict(parts[2]))
        copied[where[0]][where[1]] = copied[where[0]][where[1]][:-1] + "\x00"
        return copied

    if not texts:
        return st.just(parts)
    return st.one_of(st.none(), st.sampled_from(texts)).map(put)


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
    for name in EDGE_QUERY:  # present whenever declared, so that their edges get tried
        if any(p.name == name for p in case.operation.query):
            query.setdefault(name, None)

    def ground(parts: Parts) -> schemathesis.Case[Any]:
        new_body, case.path_parameters, case.query = parts
        if body is not None:
            case.body = new_body
        return case

    grounded = (
        st.tuples(_grounded(body or {}), _grounded(path), _grounded(query))
        .flatmap(_maybe_a_nul)
        .map(ground)
    )
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


def _world(engine: Engine) -> Iterator[Target]:
    """The app over ``engine`` (migrated here) with two members, an asset, units, money
    and a photo."""
    upgrade(engine)
    app = create_app(Settings(admins=frozenset({ADMIN.address})), engine=engine)
    with TestClient(app) as client:
        admin = sign_in(client, ADMIN)
        sign_in(client, ANN)
        asset = greenhouse(ASSET)
        issue = {"allocations": [[ADMIN.address, "600000"], [ANN.address, "400000"]]}
        deposit = {"member": ADMIN.address, "currency": "EUR", "amount": "10000000"}
        for n, (route, body) in enumerate(
            (
                ("/v1/assets", asset),
                (f"/v1/assets/{ASSET}/issue", issue),
                ("/v1/deposits", deposit | {"reference": "SEPA 1"}),
            )
        ):
            made = client.post(route, headers=admin | {"Idempotency-Key": f"world-{n}"}, json=body)
            assert made.status_code == 201, made.text
        photo = admin | {"Idempotency-Key": "world-photo", "Content-Type": "image/png"}
        assert client.post("/v1/photos", content=PHOTO, headers=photo).status_code == 201
        yield Target(app, admin["Authorization"])


@pytest.fixture(scope="module")
def on_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    path: Path = tmp_path_factory.mktemp("schemathesis") / "dpn.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    try:
        yield from _world(engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def on_postgresql() -> Iterator[Target]:
    # Module-scoped, so not the per-test ``postgres_engine``: one schema for every operation.
    url = postgres_url()
    if url is None:
        pytest.skip(_PG_SKIP)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield from _world(engine)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


# -- the tests -------------------------------------------------------------------------

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
# The failing case is already written down: no time spent shrinking it.
_KNOWN_BUG_SETTINGS = hypothesis.settings(
    _SETTINGS,
    max_examples=KNOWN_BUG_EXAMPLES,
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
)
# Operations with a bug schemathesis found, per database, with the failing case. They
# are fuzzed apart, under xfail, with more examples so the case is met nearly every run;
# once the app is fixed they pass (XPASS): then move them back into the main tests.
Operation = tuple[str, str]
KNOWN_BUGS: dict[str, dict[Operation, str]] = {
    "sqlite": {},
    "postgresql": {},
}


def _operations(bugs: dict[Operation, str]) -> Callable[[Any], bool]:
    def matches(ctx: Any) -> bool:
        return (ctx.operation.method.upper(), ctx.operation.path) in bugs

    return matches


def _reasons(bugs: dict[Operation, str]) -> str:
    return "known app bugs (KNOWN_BUGS): " + ", ".join(f"{m} {p}" for m, p in bugs)


def _call_and_validate(case: schemathesis.Case[Any], target: Target) -> None:
    # Every call is the admin's (the generated Authorization is replaced; a case built to
    # leave out a required header still goes without it), and a fresh key makes every
    # write a new one rather than a replay of an earlier answer.
    case.headers["Authorization"] = target.authorization
    case.headers["Idempotency-Key"] = f"st-{next(_keys)}"
    case.call_and_validate(app=target.app, checks=CHECKS)


@_fuzzed(SCHEMA.exclude(_operations(KNOWN_BUGS["sqlite"])))
@_SETTINGS
def test_api_conforms_on_sqlite(case: schemathesis.Case[Any], on_sqlite: Target) -> None:
    _call_and_validate(case, on_sqlite)


@_fuzzed(SCHEMA.exclude(_operations(KNOWN_BUGS["postgresql"])))
@_SETTINGS
@pytest.mark.postgres
def test_api_conforms_on_postgresql(case: schemathesis.Case[Any], on_postgresql: Target) -> None:
    _call_and_validate(case, on_postgresql)


# Known bugs: none left on either database (a sightings cursor past the id column's range
# and NUL characters in text answered 500 until they were refused as 422). To pin a new
# one, add it to KNOWN_BUGS and fuzz it apart under xfail with _KNOWN_BUG_SETTINGS.
