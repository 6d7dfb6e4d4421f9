"""Errors as ``application/problem+json`` (RFC 9457): the one place a ledger or request
error becomes an HTTP status. Routes never choose a status for an error themselves."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.core.errors import (
    Conflict,
    Forbidden,
    IntegrityFailure,
    InvalidInput,
    LedgerError,
    NotFound,
    Refused,
    Unauthenticated,
    Unavailable,
)

__all__ = [
    "PROBLEM_JSON",
    "PROBLEM_RESPONSES",
    "ApiProblem",
    "install_problem_handlers",
    "problem_response",
]

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("dpn.api")

_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "stable machine-readable error code"},
        "request_id": {"type": ["string", "null"]},
    },
}
_PROBLEM_STATUSES = {
    400: "malformed request (e.g. a missing Idempotency-Key)",
    401: "not signed in, or the credential is not valid",
    403: "signed in, but not allowed to do this",
    404: "no such resource",
    409: "conflicts with recorded state (e.g. a reused Idempotency-Key)",
    413: "request body too large",
    422: "invalid input, or refused by a ledger rule",
    503: "the database is not available",
}
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "content": {PROBLEM_JSON: {"schema": _PROBLEM_SCHEMA}}}
    for status, text in _PROBLEM_STATUSES.items()
}

_STATUS: tuple[tuple[type[LedgerError], int], ...] = (
    (InvalidInput, 422),
    (Refused, 422),
    (NotFound, 404),
    (Conflict, 409),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (Unavailable, 503),
    (IntegrityFailure, 500),
)


class ApiProblem(LedgerError):
    """An error of the HTTP layer itself (a missing header, a body too large), with its
    status."""

    def __init__(self, status: int, code: str, message: str, **detail: Any) -> None:
        super().__init__(code, message, **detail)
        self.status = status


def _status_of(exc: LedgerError) -> int:
    if isinstance(exc, ApiProblem):
        return exc.status
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 400


def problem_response(
    status: int, code: str, detail: str, request: Request, **extra: Any
) -> JSONResponse:
    """A problem+json response: ``type``, ``title`` (the code), ``status``, ``detail``,
    ``code``, the request id, and any extra members."""
    body: dict[str, Any] = {
        "type": f"https://dpn.example/problems/{code}",
        "title": code.replace("_", " "),
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": getattr(request.state, "request_id", None),
    }
    body.update(extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error the app can raise through ``problem_response``."""

    @app.exception_handler(LedgerError)
    async def _ledger_error(request: Request, exc: LedgerError) -> JSONResponse:
        status = _status_of(exc)
        if status >= 500:
            log.error("ledger error %s: %s", exc.code, exc.message)
        extra = {k: v for k, v in exc.detail.items() if isinstance(v, str | int | bool)}
        return problem_response(status, exc.code, exc.message, request, **extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))[:200]}
            for e in exc.errors()[:20]
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        detail = f"{'.'.join(first['loc'])}: {first['msg']}"
        return problem_response(422, "request_invalid", detail, request, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "route_not_found", 405: "method_not_allowed"}
        code = codes.get(exc.status_code, "http_error")
        return problem_response(exc.status_code, code, str(exc.detail), request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The last resort: Starlette runs this outside every middleware, so an error of
        # the app itself is answered (and logged with its request id) by
        # ``api.app.RequestIdAndLimits`` before it gets here.
        log.exception("unexpected error")
        return problem_response(500, "internal_error", "an unexpected error occurred", request)
