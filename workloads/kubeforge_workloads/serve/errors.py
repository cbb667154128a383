"""Serving errors and the one place they become HTTP responses (like kserve/errors.py + its REST server)."""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("kubeforge.serve")


class ServeError(Exception):
    """Base: carries the message the client sees."""

    status = 500

    def __init__(self, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class InvalidInput(ServeError):
    """The request is well-formed JSON but its content breaks a limit or the protocol."""

    status = 400


class InvalidSchema(InvalidInput):
    """Valid JSON whose shape breaks the request schema (FastAPI's own 422 for body models)."""

    status = 422


class NoSuchRoute(ServeError):
    """Starlette's own 404/405 for a path or method no route serves."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message, headers=headers)
        self.status = status


class ModelNotFound(ServeError):
    status = 404

    def __init__(self, name: str):
        super().__init__(f"model {name!r} is not served here")


class QueueFull(ServeError):
    """Back-pressure: the batch queue is full; the client should retry after a moment."""

    status = 429


class ModelNotReady(ServeError):
    status = 503


class InferenceFailed(ServeError):
    """The model raised on this request's input (the rest of its batch was served)."""


class DeadlineExceeded(ServeError):
    """No answer within the request deadline (a hung or overloaded model)."""

    status = 504


class ModelLoadError(ServeError):
    """The model directory or runtime cannot be used; raised at startup, never per request."""


class BackendUnavailable(ModelLoadError):
    """A runtime's library (TensorRT, CUDA, torch) is not installed or has no device."""


def error_body(message: str) -> dict:
    """KServe and the v2 protocol both answer errors as {"error": "..."}."""
    return {"error": message}


def error_json(message: str) -> bytes:
    return json.dumps(error_body(message)).encode()


def http_error(exc: Exception) -> tuple[int, bytes, dict[str, str]]:
    """The one error-to-HTTP map: (status, JSON body, headers) for whatever a request raised."""
    if isinstance(exc, ServeError):
        return exc.status, error_json(exc.message), exc.headers
    log.error("unhandled error", exc_info=exc)
    return 500, error_json(f"internal error: {type(exc).__name__}"), {}


def _field_path(loc) -> str:
    return ".".join(str(p) for p in loc if p != "body") or "body"


def field_problems(errors: list[dict]) -> str:
    """pydantic validation errors as one message naming each field: "texts.3: Input should be a valid string"."""
    return "; ".join(f"{_field_path(e['loc'])}: {e['msg']}" for e in errors)


def validation_error(errors: list[dict]) -> InvalidInput:
    """400 for malformed JSON, 422 naming the fields for a wrong shape (FastAPI's own split)."""
    malformed = any(e["type"] == "json_invalid" for e in errors)
    return (InvalidInput if malformed else InvalidSchema)(field_problems(errors))


def install_error_handlers(app: FastAPI) -> None:
    """FastAPI's routes answer errors through http_error, as the hot path does."""

    def respond(exc: Exception) -> Response:
        status, body, headers = http_error(exc)
        return Response(body, status_code=status, headers=headers, media_type="application/json")

    @app.exception_handler(ServeError)
    async def _serve_error(_: Request, exc: ServeError):
        return respond(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _no_route(request: Request, exc: StarletteHTTPException):
        return respond(NoSuchRoute(exc.status_code, f"{exc.detail}: {request.method} {request.url.path}",
                                   headers=exc.headers))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError):
        return respond(validation_error(exc.errors()))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception):
        return respond(exc)
