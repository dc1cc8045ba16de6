"""One error shape for every answer that is not a success: `{"error": {"code", "message", "detail"}}`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from plughost.core.config_schema import ConfigValidationError
from plughost.errors import (
    ConfigError,
    DependencyError,
    NotAPluginError,
    PlugHostError,
    PluginLoadError,
    PluginNotFoundError,
    PluginStateError,
    StateFileError,
)

log = logging.getLogger("plughost.manage")

_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}


class ErrorBody(BaseModel):
    code: str = Field(description="Machine-readable reason, e.g. plugin_not_found, invalid_config.")
    message: str = Field(description="What went wrong, for people.")
    detail: Any = Field(default=None, description="Structured detail (field errors, retry hints, …).")


class ErrorResponse(BaseModel):
    """Every error the management API answers."""

    error: ErrorBody


class ApiError(Exception):
    """Raise in a route to answer `status` with the one error shape."""

    def __init__(
        self, status: int, code: str, message: str, detail: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.headers = headers


def error_response(
    status: int, code: str, message: str, detail: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "detail": detail}}
    return JSONResponse(body, status_code=status, headers=headers)


def check_choice(name: str, value: str | None, allowed: Iterable[str]) -> None:
    """400 `bad_parameter` naming the query parameter and its allowed values unless `value` is one
    of them (None: not given)."""
    choices = sorted(allowed)
    if value is not None and value not in choices:
        message = f"{name} must be one of {', '.join(choices)} (got {value!r})"
        raise ApiError(400, "bad_parameter", message, {"field": name, "allowed": choices})


def from_plughost_error(exc: PlugHostError) -> ApiError:
    """The API error for one of plughost's own exceptions."""
    if isinstance(exc, PluginNotFoundError):
        return ApiError(404, "plugin_not_found", str(exc), {"plugin_id": exc.plugin_id})
    if isinstance(exc, ConfigValidationError):
        return ApiError(422, "invalid_config", str(exc), {"fields": [p.to_json() for p in exc.problems]})
    if isinstance(exc, PluginStateError | DependencyError):
        return ApiError(409, "conflict", str(exc))
    if isinstance(exc, NotAPluginError):
        return ApiError(422, "not_a_plugin", exc.reason, {"path": str(exc.path)})
    if isinstance(exc, PluginLoadError):
        return ApiError(409, "load_failed", str(exc), {"plugin_id": exc.plugin_id, "reason": exc.reason})
    if isinstance(exc, StateFileError):
        return ApiError(503, "state_file_unavailable", str(exc))
    if isinstance(exc, ConfigError):
        return ApiError(400, "invalid_config", str(exc))
    return ApiError(400, "rejected", str(exc))


InvalidRequestAnswer = Callable[[Request, RequestValidationError], JSONResponse | None]


def install_error_handlers(app: FastAPI, *, invalid_request_styles: Sequence[InvalidRequestAnswer] = ()) -> None:
    """Make every failure answer the one error shape (compatible APIs answer invalid requests
    in their own: the first of `invalid_request_styles` that answers wins)."""

    async def api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.message, exc.detail, exc.headers)

    async def plughost_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, PlugHostError)
        return await api_error(request, from_plughost_error(exc))

    async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        for style in invalid_request_styles:
            answer = style(request, exc)
            if answer is not None:
                return answer
        errors = field_errors(exc)
        if any(e["type"] == "json_invalid" for e in errors):
            return error_response(400, "malformed_json", "the request body is not valid JSON", errors)
        fields = ", ".join(e["field"] or "body" for e in errors)
        if any(e.get("loc", ("body",))[0] in ("query", "header") for e in exc.errors()):
            return error_response(400, "bad_parameter", f"bad parameter: {fields}", errors)
        return error_response(422, "invalid_request", f"invalid request: {fields}", errors)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _STATUS_CODES.get(exc.status_code, f"http_{exc.status_code}")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, message, headers=dict(exc.headers or {}))

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("management request %s %s failed", request.method, request.url.path)
        return error_response(500, "internal_error", f"internal error: {type(exc).__name__}: {exc}")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(PlugHostError, plughost_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


def field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Each problem of an invalid request: the field's dotted path, the message and pydantic's type."""
    return [_field_error(e) for e in exc.errors()]


def _field_error(error: Any) -> dict[str, Any]:
    loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")]
    return {"field": ".".join(loc), "message": str(error.get("msg", "")), "type": str(error.get("type", ""))}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "Malformed request (bad JSON, bad parameter)",
        401: "Missing or wrong management key",
        404: "Unknown plugin or route",
        409: "Not possible in the plugin's current state",
        413: "Request body too large",
        422: "Validation failed (the detail names each field)",
        429: "Too many failed keys from this address",
        503: "Busy (reloading, shutting down); retry after the Retry-After header",
    }.items()
}
"""The error answers every route documents in OpenAPI."""
