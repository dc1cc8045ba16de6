"""Jank's plugin API, `/api/v1/plugin/...` (singular; plughost's own API is `/api/v1/plugins`).

Answers use Jank's envelope: `{"data": …, "requestId", "timeStamp"}` on success and
`{"error": {"code", "message"}, "data": …, "requestId", "timeStamp"}` on failure, with Jank's
numeric codes as strings (10002 invalid parameters, 20001 plugin not found, 20002 register failed,
20003 unregister failed, 20004 execute failed, 20005 list failed). Unlike Jank, the HTTP status says
what happened (400, 404, 409, 500) instead of 500 for every service error.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from plughost.core.instance import PluginInstance
from plughost.errors import PlugHostError, PluginNotFoundError
from plughost.manage.context import ManageContext, context
from plughost.manage.errors import ERROR_RESPONSES, field_errors
from plughost.sdk.models import PluginState

PREFIX = "/api/v1/plugin/"
router = APIRouter(prefix=PREFIX.rstrip("/"), tags=["Jank-compatible"], responses=ERROR_RESPONSES)
Ctx = Annotated[ManageContext, Depends(context)]

INVALID_PARAMS = "10002"
NOT_FOUND = "20001"
REGISTER_FAILED = "20002"
UNREGISTER_FAILED = "20003"
EXECUTE_FAILED = "20004"
JANK_STATUS = {PluginState.ENABLED: "running", PluginState.ERROR: "error"}


class RegisterRequest(BaseModel):
    id: str = Field(min_length=1, max_length=100)
    rebuild: bool = Field(default=False, description="Build again even when the binary exists.")


class UnregisterRequest(BaseModel):
    id: str = Field(min_length=1)


class ExecuteRequest(BaseModel):
    id: str = Field(min_length=1)
    method: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)


def envelope(data: Any = None, *, error: tuple[str, str] | None = None, status: int = 200) -> JSONResponse:
    body: dict[str, Any] = {"requestId": uuid.uuid4().hex, "timeStamp": int(time.time())}
    if data is not None:
        body["data"] = data
    if error is not None:
        body["error"] = {"code": error[0], "message": error[1]}
    return JSONResponse(body, status_code=status)


def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse | None:
    """Jank's answer to a request that does not validate: 400, code 10002, the problems as data."""
    if not request.url.path.startswith(PREFIX):
        return None
    problems = field_errors(exc)
    message = "validation failed: " + ", ".join(p["field"] or "body" for p in problems)
    return envelope(problems, error=(INVALID_PARAMS, message), status=400)


def _failure(exc: PlugHostError, code: str) -> JSONResponse:
    if isinstance(exc, PluginNotFoundError):
        return envelope(error=(NOT_FOUND, f"plugin not found: {exc.plugin_id}"), status=404)
    return envelope(str(exc), error=(code, str(exc)), status=409)


def plugin_info(instance: PluginInstance) -> dict[str, Any]:
    """Jank's GetPluginResponse for a loaded (or once loaded) plugin."""
    manifest = instance.manifest
    info: dict[str, Any] = {
        "id": instance.id,
        "name": manifest.name,
        "version": manifest.version,
        "author": manifest.author.name if manifest.author else "",
        "description": manifest.description,
        "repository": manifest.repository or "",
        "binary": str(instance.path / manifest.entry) if manifest.entry else str(instance.path),
        "type": manifest.type,
        "auto_start": manifest.auto_start,
        "status": JANK_STATUS.get(instance.state, "stopped"),
        "runtime": manifest.runtime,
        "isolation": manifest.isolation,
    }
    optional = {
        "start_timeout": manifest.start_timeout,
        "min_port": manifest.min_port,
        "max_port": manifest.max_port,
        "auto_mtls": manifest.auto_mtls or None,
        "started_at": int(instance.loaded_at) if instance.loaded_at else None,
    }
    info.update({k: v for k, v in optional.items() if v})
    return info


@router.post("/register", summary="Jank: load and start a discovered plugin")
async def register(ctx: Ctx, request: RegisterRequest) -> JSONResponse:
    """Builds it first when it has no binary (or `rebuild`), then loads and enables it (saved)."""
    manager = ctx.host.manager
    try:
        instance = manager.get_plugin(request.id)
        if instance is not None and instance.is_loaded:
            if request.rebuild:
                await manager.reload_plugin(request.id)
            await manager.enable_plugin(request.id)
        else:
            report = manager.discover()
            candidate = report.candidates.get(request.id)
            if candidate is None:
                errors = "; ".join(str(e) for c in report.invalid if c.id == request.id for e in c.errors)
                if not errors:
                    raise PluginNotFoundError(request.id)
                message = f"plugin {request.id} is invalid: {errors}"
                return envelope(errors, error=(REGISTER_FAILED, message), status=409)
            loaded = await manager.load_plugin(candidate.path)
            await manager.enable_plugin(loaded.id)  # saved: it stays enabled after a restart
    except PlugHostError as exc:
        return _failure(exc, REGISTER_FAILED)
    return envelope({"message": "Plugin registered successfully"})


@router.post("/unregister", summary="Jank: stop and unload a plugin")
async def unregister(ctx: Ctx, request: UnregisterRequest) -> JSONResponse:
    try:
        if not await ctx.host.manager.unregister(request.id):
            return envelope(error=(UNREGISTER_FAILED, f"plugin {request.id} is not registered"), status=409)
    except PlugHostError as exc:
        return _failure(exc, UNREGISTER_FAILED)
    return envelope({"message": "Plugin unregistered successfully"})


@router.post("/execute", summary="Jank: call a method of a running plugin")
async def execute(ctx: Ctx, request: ExecuteRequest) -> JSONResponse:
    """`data` is the method's answer when it is a JSON object, else `{"result": answer}`."""
    manager = ctx.host.manager
    if manager.get_plugin(request.id) is None:
        return _failure(PluginNotFoundError(request.id), EXECUTE_FAILED)
    result = await manager.execute(request.id, request.method, request.args)
    if not result.success:
        message = f"failed to execute plugin {request.id} method {request.method}: {result.error}"
        return envelope(error=(EXECUTE_FAILED, message), status=500)
    data = result.result if isinstance(result.result, dict) else {"result": result.result}
    return envelope({"method": request.method, "data": data})


@router.get("/get", summary="Jank: one plugin's information")
async def get(ctx: Ctx, id: Annotated[str, Query(min_length=1, description="Plugin id.")]) -> JSONResponse:
    instance = ctx.host.manager.get_plugin(id)
    if instance is None:
        return _failure(PluginNotFoundError(id), NOT_FOUND)
    return envelope(plugin_info(instance))


@router.get("/list", summary="Jank: every plugin, registered or not, a page at a time")
async def list_plugins(
    ctx: Ctx,
    page_no: Annotated[int, Query(ge=1)],
    page_size: Annotated[int, Query(ge=1, le=100)],
    status: Annotated[str | None, Query(description="running, stopped, error, available, source_only, invalid")] = None,
) -> JSONResponse:
    rows = [row for row in _rows(ctx) if status is None or row["status"] == status]
    start = (page_no - 1) * page_size
    page = rows[start : start + page_size]
    return envelope({"total": len(rows), "page_no": page_no, "page_size": page_size, "list": page})


def _rows(ctx: ManageContext) -> list[dict[str, Any]]:
    manager = ctx.host.manager
    rows = [plugin_info(instance) for instance in manager.list_plugins()]
    known = {row["id"] for row in rows}
    for candidate in manager.last_discovery.all():
        if candidate.id in known:
            continue
        manifest = candidate.manifest
        rows.append(
            {
                "id": candidate.id,
                "name": manifest.name if manifest else candidate.id,
                "version": manifest.version if manifest else "",
                "type": manifest.type if manifest else "",
                "binary": str(candidate.path),
                "status": candidate.status.value,
                "runtime": candidate.runtime,
            }
        )
    return rows
