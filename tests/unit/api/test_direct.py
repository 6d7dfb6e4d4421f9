"""``api.direct``: a direct route of a shape it cannot answer fails when it is declared
or included, not at its first request; and which bodies the JSON guard (``api.app``)
parses, and so which a direct route may take."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from pydantic import BaseModel

from api.app import is_json_media
from api.deps import Caller, IdempotencyKey
from api.direct import DirectRoute


class Thing(BaseModel):
    name: str


async def _direct(body: Thing, request: Request, caller: Caller, key: IdempotencyKey) -> Thing:
    return body  # pragma: no cover - never served


async def _with_path(n: int, body: Thing, request: Request) -> Thing:
    return body  # pragma: no cover - never served


async def _with_query(body: Thing, request: Request, page: int = 1) -> Thing:
    return body  # pragma: no cover - never served


def _sync(body: Thing, request: Request) -> Thing:
    return body  # pragma: no cover - never served


async def _without_request(body: Thing) -> Thing:
    return body  # pragma: no cover - never served


async def _two_bodies(body: Thing, other: Thing, request: Request) -> Thing:
    return body  # pragma: no cover - never served


async def _unknown() -> int:
    return 1  # pragma: no cover - never served


async def _with_unknown(
    body: Thing, request: Request, n: Annotated[int, Depends(_unknown)]
) -> Thing:
    return body  # pragma: no cover - never served


def _route(path: str, endpoint: object, response_model: object = Thing) -> APIRouter:
    router = APIRouter()
    router.add_api_route(
        path,
        endpoint,  # type: ignore[arg-type]
        methods=["POST"],
        response_model=response_model,
        route_class_override=DirectRoute,
    )
    return router


def test_a_route_of_the_shape_it_answers_is_made() -> None:
    app = FastAPI()
    app.include_router(_route("/things", _direct))
    assert list(app.openapi()["paths"]) == ["/things"]


@pytest.mark.parametrize(
    ("path", "endpoint", "why"),
    [
        ("/things/{n}", _with_path, "one body and no other parameter"),
        ("/things", _with_query, "one body and no other parameter"),
        ("/things", _two_bodies, "one body and no other parameter"),
        ("/things", _sync, "async and takes the request"),
        ("/things", _without_request, "async and takes the request"),
        ("/things", _with_unknown, "cannot resolve"),
    ],
)
def test_a_route_of_another_shape_is_refused_when_declared(
    path: str, endpoint: object, why: str
) -> None:
    with pytest.raises(TypeError, match=why):
        _route(path, endpoint)


def test_a_route_without_a_model_to_answer_is_refused() -> None:
    with pytest.raises(TypeError, match="answers one pydantic model"):
        _route("/things", _direct, response_model=dict)


def test_what_an_including_router_adds_is_seen() -> None:
    # Declared alone the route is fine; an including router adding a dependency it
    # cannot resolve makes it a route of another shape, refused as it is included.
    router = _route("/things", _direct)
    outer = APIRouter(dependencies=[Depends(_unknown)])
    with pytest.raises(TypeError, match="cannot resolve"):
        outer.include_router(router)
        FastAPI().include_router(outer)


@pytest.mark.parametrize(
    ("content_type", "json"),
    [
        (b"application/json", True),
        (b"Application/JSON; charset=utf-8", True),
        (b"application/problem+json", True),
        (b"application/json\xa0", True),  # stripped as text, as FastAPI reads it
        (b"\tapplication/json ;", True),
        (b"application/json/x", False),
        (b"application/jsonx", False),
        (b"application/x-www-form-urlencoded", False),
        (b"text/json", False),
        (b"text/plain", False),
        (b"", False),
        (None, False),
    ],
)
def test_which_bodies_are_json(content_type: bytes | None, json: bool) -> None:
    assert is_json_media(content_type) is json
