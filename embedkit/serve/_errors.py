"""Every error of the service as ``{"error": "<one line>"}`` with its status code."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..errors import InputError, MissingKeyError, StoreError
from ._registry import Conflict

log = logging.getLogger("embedkit.serve.app")


def error(status: int, message: str, headers=None) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> tuple[int, str]:
    errors = exc.errors()
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        ctx = first.get("ctx") or {}
        return 400, f"malformed JSON body: {ctx.get('error', first.get('msg', 'cannot parse'))}"
    loc = [str(x) for x in first.get("loc", ())]
    where = ""
    if loc and loc[0] in ("query", "path"):
        where = f"{loc[0]} parameter '{'.'.join(loc[1:])}'"
    elif loc and loc[0] == "body":
        where = f"body field '{'.'.join(loc[1:])}'" if len(loc) > 1 else "body"
    msg = first.get("msg", "invalid request")
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return 422, f"{where}: {msg}{more}" if where else f"{msg}{more}"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def httperror(request, exc: HTTPException):
        if exc.status_code in (404, 405) and exc.detail in ("Not Found", "Method Not Allowed"):
            return error(exc.status_code, f"no such endpoint: {request.method} {request.url.path} "
                                           "(the endpoints are listed at /docs)", getattr(exc, "headers", None))
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":  # FastAPI's words
            return error(400, "the request body could not be read as JSON (nested too deeply, or not JSON); send "
                              "one JSON object as the endpoint's schema at /docs says")
        return error(exc.status_code, exc.detail, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validationerror(request, exc: RequestValidationError):
        return error(*_validation_message(exc))

    @app.exception_handler(MissingKeyError)
    async def missing(request, exc):
        return error(404, str(exc))

    @app.exception_handler(InputError)
    async def bad_input(request, exc):
        return error(422, str(exc))

    @app.exception_handler(Conflict)
    async def conflict(request, exc):
        return error(409, str(exc))

    @app.exception_handler(StoreError)
    async def storeerror(request, exc):
        log.error("store error: %s", exc)
        return error(500, f"store error: {exc}")

    @app.exception_handler(Exception)
    async def internal(request, exc):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error(500, f"internal error: {type(exc).__name__}: {exc}")
