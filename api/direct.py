"""Routes answered without FastAPI's per-request dependency solving: the hot writes.

A ``DirectRoute`` is declared like any other route, and its endpoint's signature is what
the OpenAPI document shows. What differs is how a request reaches the endpoint. FastAPI
solves the endpoint's dependencies anew for every request, walking each one's own
parameters (the bearer scheme, the API key header, the ``Idempotency-Key`` header),
then validates the body, then validates the answer again before it serializes it. For
``POST /v1/orders`` that was a fifth of a worker's CPU per order: in process, with the
engine stubbed, 630 us an order before and 520 after (medians of four alternating runs);
under ``dpn bench http`` a worker's CPU per order fell from 1.4-1.9 ms to 1.1-1.3 ms.

A direct route resolves the same dependencies by plain calls (``DIRECT_DEPENDENCIES``
names how, next to each dependency), validates the body with the same model and
serializes the endpoint's answer with FastAPI's own serializer for the route. It takes
that path only for the request it is built for: a JSON body, which the JSON guard
(``api.app``) has parsed already, that validates, and no dependency overridden. Anything
else (a body that does not validate, another content type, an override in a test) is
handed to FastAPI's own handler for the route, so every refusal is exactly the one
FastAPI gives; a refusal from a dependency (no credential, no key) is the same
exception either way, raised in the same order (the dependencies before the body).

Only endpoints of one shape are accepted: a request, dependencies from
``DIRECT_DEPENDENCIES``, one JSON body model, a response model, and nothing else (no
path, query or header parameter of their own). Declaring a route of another shape
direct fails when the app is built, not at its first request.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from typing import Any, get_type_hints

import fastapi.routing
from fastapi import Request, Response
from fastapi.datastructures import DefaultPlaceholder
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from api.deps import DIRECT_DEPENDENCIES

__all__ = ["PARSED_BODY", "DirectRoute"]

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
_JSON = "application/json"  # the media type of every answer
PARSED_BODY = "parsed_body"
"""The request state's key of a JSON body as ``api.app``'s guard parsed it (the value
``json.loads`` gives, which the guard refuses more than): a direct route takes it from
there. A request without it (no JSON content type, an empty body) goes FastAPI's way."""
_UNPARSED = object()


class DirectRoute(APIRoute):
    """An ``APIRoute`` whose usual requests skip FastAPI's dependency solving (see the
    module's docstring). The route decorators take no route class, so a direct route is
    added with ``router.add_api_route(..., route_class_override=DirectRoute)``."""

    def get_route_handler(self) -> Handler:
        # Called once the route knows its dependant (at the end of ``__init__``, and
        # again for each router that includes it): a route of another shape fails here.
        general = super().get_route_handler()
        return _DirectShape.of(_as_served(self)).handler(general)


def _as_served(route: APIRoute) -> Any:
    """``route`` as FastAPI serves it, with what the routers including it add (their
    dependencies above all). Recent FastAPI hands ``get_route_handler`` that view in a
    context variable, as its own ``APIRoute.get_route_handler`` reads it; earlier
    versions copy the route into each including router, so the route is the view."""
    view = getattr(fastapi.routing, "_effective_route_context_var", None)
    context = None if view is None else view.get()
    return context if getattr(context, "original_route", None) is route else route


@dataclass(frozen=True, slots=True)
class _DirectShape:
    """What a direct route's requests need: the names its endpoint takes them under."""

    endpoint: Callable[..., Awaitable[BaseModel]]
    status_code: int
    request_name: str
    dependencies: list[tuple[str, Callable[[Request], Awaitable[Any]]]]
    body_name: str
    body_model: type[BaseModel]
    answer_model: type[BaseModel]
    serialize: Callable[[BaseModel], bytes]

    @classmethod
    def of(cls, route: Any) -> _DirectShape:
        """The shape of ``route``'s endpoint, or ``TypeError`` saying why it has none."""
        dependant, where = route.dependant, f"{sorted(route.methods or ())} {route.path}"
        dependencies: list[tuple[str, Callable[[Request], Awaitable[Any]]]] = []
        for needed in dependant.dependencies:
            resolve = None if needed.call is None else DIRECT_DEPENDENCIES.get(needed.call)
            if resolve is None or needed.name is None:
                raise TypeError(f"{where}: a direct route cannot resolve {needed.call!r}")
            dependencies.append((needed.name, resolve))
        others = (
            dependant.path_params, dependant.query_params, dependant.header_params,
            dependant.cookie_params,
        )  # fmt: skip
        extras = (
            dependant.websocket_param_name, dependant.http_connection_param_name,
            dependant.response_param_name, dependant.background_tasks_param_name,
            dependant.security_scopes_param_name,
        )  # fmt: skip
        if any(others) or any(extras) or len(dependant.body_params) != 1:
            raise TypeError(f"{where}: a direct route takes one body and no other parameter")
        if dependant.request_param_name is None or not inspect.iscoroutinefunction(route.endpoint):
            raise TypeError(f"{where}: a direct route's endpoint is async and takes the request")
        body_name = dependant.body_params[0].name
        body_model = get_type_hints(route.endpoint).get(body_name)
        answer_model = route.response_model
        if not (isinstance(body_model, type) and issubclass(body_model, BaseModel)):
            raise TypeError(f"{where}: a direct route's body is one pydantic model")
        if not (isinstance(answer_model, type) and issubclass(answer_model, BaseModel)):
            raise TypeError(f"{where}: a direct route answers one pydantic model")
        answer_field = route.response_field
        if answer_field is None or not isinstance(route.response_class, DefaultPlaceholder):
            raise TypeError(f"{where}: a direct route answers JSON, as FastAPI's default")
        return cls(
            route.endpoint,
            route.status_code or 200,
            dependant.request_param_name,
            dependencies,
            body_name,
            body_model,
            answer_model,
            partial(  # as FastAPI serializes the route's answers
                answer_field.serialize_json,
                include=route.response_model_include,
                exclude=route.response_model_exclude,
                by_alias=route.response_model_by_alias,
                exclude_unset=route.response_model_exclude_unset,
                exclude_defaults=route.response_model_exclude_defaults,
                exclude_none=route.response_model_exclude_none,
            ),
        )

    def handler(self, general: Handler) -> Handler:
        """The route's handler: the direct path for the usual request, ``general``
        (FastAPI's own) for the rest."""
        endpoint, status_code, serialize = self.endpoint, self.status_code, self.serialize

        async def handle(request: Request) -> Response:
            parsed = request.scope.get("state", {}).get(PARSED_BODY, _UNPARSED)
            if parsed is _UNPARSED or request.app.dependency_overrides:
                return await general(request)
            try:
                body = self.body_model.model_validate(parsed)
            except ValidationError:  # FastAPI says what is wrong, its way
                return await general(request)
            values: dict[str, Any] = {self.request_name: request}
            for name, resolve in self.dependencies:
                values[name] = await resolve(request)
            values[self.body_name] = body
            answer = await endpoint(**values)
            if not isinstance(answer, self.answer_model):
                raise TypeError(f"{endpoint.__name__} answered {type(answer).__name__}")
            return Response(serialize(answer), status_code=status_code, media_type=_JSON)

        return handle
