"""`/api/v1/plugins`: list, inspect, enable, disable, reload, load, unload, configure and call plugins."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query

from plughost.core.instance import PluginInstance
from plughost.errors import PluginNotFoundError
from plughost.manage.context import ManageContext, context
from plughost.manage.errors import ERROR_RESPONSES, ApiError, check_choice
from plughost.manage.models import (
    ActionResult,
    ConfigResult,
    ExecuteRequest,
    ExecuteResult,
    LoadRequest,
    PluginDetail,
    PluginList,
    PluginSummary,
)
from plughost.sdk.models import DiscoveryStatus, PluginState

router = APIRouter(prefix="/api/v1/plugins", tags=["plugins"], responses=ERROR_RESPONSES)
Ctx = Annotated[ManageContext, Depends(context)]
ConfigBody = Annotated[dict[str, Any], Body(description="The plugin's configuration (a JSON object).")]


@router.get("", response_model=PluginList, summary="List plugins")
async def list_plugins(
    ctx: Ctx,
    state: Annotated[str | None, Query(description="Only plugins in this state (enabled, disabled, error…).")] = None,
    runtime: Annotated[str | None, Query(description="Only plugins of this runtime (python, native, process).")] = None,
    status: Annotated[
        str | None, Query(description="Only this discovery status (available, source_only, invalid).")
    ] = None,
    q: Annotated[str | None, Query(description="Search id, name, description, tags.")] = None,
) -> PluginList:
    """Loaded plugins (priority order) with their guard figures, then discovered ones that are not loaded.
    An unknown state, runtime or status is 400 `bad_parameter` with the allowed values."""
    manager = ctx.host.manager
    check_choice("state", state, PluginState)
    check_choice("status", status, DiscoveryStatus)
    check_choice(
        "runtime", runtime, {*manager.runtimes, *(str(r["runtime"]) for r in manager.catalog() if r.get("runtime"))}
    )
    rows = plugin_rows(ctx, state, runtime, status, q)
    return PluginList(plugins=rows, total=len(rows))


def plugin_rows(
    ctx: ManageContext,
    state: str | None = None,
    runtime: str | None = None,
    status: str | None = None,
    q: str | None = None,
) -> list[PluginSummary]:
    manager = ctx.host.manager
    rows: list[PluginSummary] = []
    word = q.casefold() if q else None
    for row in manager.catalog():
        if state is not None and row.get("state") != state:
            continue
        if runtime is not None and row.get("runtime") != runtime:
            continue
        if status is not None and row.get("status") != status:
            continue
        if (
            word is not None
            and not any(word in str(row.get(k) or "").casefold() for k in ("id", "name", "description", "path"))
            and not any(word in t.casefold() for t in row.get("tags", ()))
        ):
            continue
        if row.get("state") is not None:
            row.update(_guard_figures(ctx, row["id"]))
        rows.append(PluginSummary.model_validate(row))
    return rows


def _guard_figures(ctx: ManageContext, plugin_id: str) -> dict[str, Any]:
    guard = ctx.host.manager.guard
    metrics = guard.metrics(plugin_id)
    worst = max((m.percentile(99) or 0.0 for m in metrics.values()), default=None)
    return {
        "breaker": str(guard.breaker(plugin_id).state),
        "calls": sum(m.calls for m in metrics.values()),
        "failures": sum(m.failures for m in metrics.values()),
        "p99_ms": None if not worst else round(worst * 1000, 3),
    }


def require(ctx: ManageContext, plugin_id: str) -> PluginInstance:
    instance = ctx.host.manager.get_plugin(plugin_id)
    if instance is None:
        raise PluginNotFoundError(plugin_id)
    return instance


@router.post("/discover", response_model=PluginList, summary="Scan the plugin directories again")
async def rediscover(ctx: Ctx) -> PluginList:
    """New, changed and removed plugins show in the list (loading them is `load`)."""
    ctx.host.manager.discover()
    rows = plugin_rows(ctx)
    return PluginList(plugins=rows, total=len(rows))


@router.get("/{plugin_id}", response_model=PluginDetail, summary="One plugin in detail")
async def get_plugin(ctx: Ctx, plugin_id: str) -> PluginDetail:
    """A plugin that was discovered but is not loaded answers with its discovery status and errors."""
    manager = ctx.host.manager
    instance = manager.get_plugin(plugin_id)
    if instance is None:
        return _discovered_detail(ctx, plugin_id)
    descriptor = instance.descriptor
    return PluginDetail(
        id=instance.id,
        state=str(instance.state),
        summary=instance.summary() | _guard_figures(ctx, plugin_id),
        manifest=instance.manifest.model_dump(mode="json", exclude_defaults=True),
        descriptor=descriptor.to_json() if descriptor else None,
        config=manager.get_config(plugin_id),
        config_schema=instance.manifest.config_schema,
        guard=manager.guard.snapshot(plugin_id),
        chats_off=manager.chat_switches.chats_off(plugin_id),
    )


def _discovered_detail(ctx: ManageContext, plugin_id: str) -> PluginDetail:
    manager = ctx.host.manager
    candidate = manager.discovered(plugin_id)
    if candidate is None:
        raise PluginNotFoundError(plugin_id)
    manifest = candidate.manifest
    summary = candidate.row()
    return PluginDetail(
        id=plugin_id,
        state=None,
        status=summary["status"],
        errors=summary["errors"],
        summary=summary,
        manifest=manifest.model_dump(mode="json", exclude_defaults=True) if manifest is not None else {},
        descriptor=None,
        config=manager.get_config(plugin_id),
        config_schema=manifest.config_schema if manifest is not None else None,
        guard={},
        chats_off=[],
    )


def _result(instance: PluginInstance, action: str, changed: bool) -> ActionResult:
    return ActionResult(
        id=instance.id, action=action, changed=changed, state=str(instance.state), version=instance.manifest.version
    )


@router.post("/{plugin_id}/enable", response_model=ActionResult, summary="Enable (saved in plugin-state.toml)")
async def enable(ctx: Ctx, plugin_id: str) -> ActionResult:
    instance = require(ctx, plugin_id)
    return _result(instance, "enable", await ctx.host.manager.enable_plugin(plugin_id))


@router.post("/{plugin_id}/disable", response_model=ActionResult, summary="Disable (saved in plugin-state.toml)")
async def disable(ctx: Ctx, plugin_id: str) -> ActionResult:
    instance = require(ctx, plugin_id)
    return _result(instance, "disable", await ctx.host.manager.disable_plugin(plugin_id))


@router.post(
    "/{plugin_id}/reload", response_model=ActionResult, summary="Load the current code beside the old and switch"
)
async def reload(ctx: Ctx, plugin_id: str) -> ActionResult:
    """If the new version fails, the old one keeps serving and the answer is 409 with the reason."""
    require(ctx, plugin_id)
    instance = await ctx.host.manager.reload_plugin(plugin_id)
    return _result(instance, "reload", True)


@router.post("/{plugin_id}/unload", response_model=ActionResult, summary="Stop the plugin and release what it holds")
async def unload(ctx: Ctx, plugin_id: str) -> ActionResult:
    instance = require(ctx, plugin_id)
    return _result(instance, "unload", await ctx.host.manager.unload_plugin(plugin_id))


@router.post("/load", response_model=ActionResult, summary="Load a plugin from a directory or file")
async def load(ctx: Ctx, request: LoadRequest) -> ActionResult:
    path = Path(request.path)
    if not path.is_absolute():
        path = ctx.host.workspace / path
    if not path.exists():
        raise ApiError(404, "path_not_found", f"{path} does not exist", {"path": str(path)})
    instance = await ctx.host.manager.load_plugin(path)
    return _result(instance, "load", True)


@router.get("/{plugin_id}/config", response_model=ConfigResult, summary="The plugin's configuration")
async def get_config(ctx: Ctx, plugin_id: str) -> ConfigResult:
    require(ctx, plugin_id)
    manager = ctx.host.manager
    return ConfigResult(id=plugin_id, config=manager.get_config(plugin_id), applied=manager.config_applied(plugin_id))


async def save_config(ctx: ManageContext, plugin_id: str, config: dict[str, Any]) -> ConfigResult:
    """Validate against the plugin's `config_schema` (422 naming each field; nothing saved), save,
    then wait for the reconfigure hook of a loaded plugin: when it fails, 409 with its error and
    the previous configuration is saved again (it stays in force)."""
    task = ctx.host.manager.update_config(plugin_id, config)
    error = await task if task is not None else None
    if error is not None:
        message = f"plugin '{plugin_id}' did not take the configuration: {error}; the previous one stays in force"
        raise ApiError(409, "reconfigure_failed", message, {"plugin_id": plugin_id, "reason": error})
    return ConfigResult(id=plugin_id, config=config, applied=task is not None)


@router.put("/{plugin_id}/config", response_model=ConfigResult, summary="Replace the configuration")
async def put_config(ctx: Ctx, plugin_id: str, config: ConfigBody) -> ConfigResult:
    require(ctx, plugin_id)
    return await save_config(ctx, plugin_id, config)


@router.patch("/{plugin_id}/config", response_model=ConfigResult, summary="Merge keys into the configuration")
async def patch_config(ctx: Ctx, plugin_id: str, changes: ConfigBody) -> ConfigResult:
    """Top-level keys are replaced; a key set to null is removed."""
    require(ctx, plugin_id)
    return await save_config(ctx, plugin_id, merged(ctx.host.manager.get_config(plugin_id), changes))


def merged(config: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    result = dict(config)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


@router.post("/{plugin_id}/execute", response_model=ExecuteResult, summary="Call a method (or execute())")
async def execute(ctx: Ctx, plugin_id: str, request: ExecuteRequest) -> ExecuteResult:
    """A failing call answers 200 with `success: false` and the error: the call was made."""
    require(ctx, plugin_id)
    manager = ctx.host.manager
    if request.method is None:
        input_data = {"input_data": request.args} if request.args is not None else {}
        result = await manager.execute_plugin(plugin_id, input_data)
    else:
        if request.args is not None and not isinstance(request.args, dict):
            raise ApiError(422, "invalid_request", "args must be a JSON object of named arguments", {"field": "args"})
        result = await manager.execute(plugin_id, request.method, request.args, timeout=request.timeout_s)
    return ExecuteResult.model_validate(result.model_dump(mode="json"))
