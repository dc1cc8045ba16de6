"""CLIProxyAPI's plugin management routes (`/v0/management/plugins...`), with its bodies and status codes.

Answers and errors use CLIProxyAPI's shapes (`{"error": "<code>", "message": "…"}`), not plughost's.
Every plugin is listed, whatever its runtime. A plugin's `enabled` and `priority` are the keys
CLIProxyAPI keeps in its config: here they live in plugin-state.toml and are merged into the
config object these routes read and write; the other keys are the plugin's configuration,
checked against its `config_schema` (422 naming each field — plughost's addition).
"""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from fastapi.responses import JSONResponse

from plughost.core.config_schema import ConfigValidationError
from plughost.core.instance import PluginInstance
from plughost.errors import PlugHostError
from plughost.manage.context import ManageContext, context
from plughost.manage.routes.market import MarketDep
from plughost.manage.routes.plugins import merged
from plughost.sdk.http import MANAGEMENT_BASE

router = APIRouter(prefix=MANAGEMENT_BASE + "/plugins", tags=["CLIProxyAPI-compatible"])
Ctx = Annotated[ManageContext, Depends(context)]
PLUGIN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
STATE_KEYS = ("enabled", "priority")


def cliproxy_error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status)


def _instance(ctx: ManageContext, plugin_id: str) -> PluginInstance | JSONResponse:
    if not PLUGIN_ID.fullmatch(plugin_id.strip()):
        return cliproxy_error(400, "invalid_plugin_id", "invalid plugin id")
    instance = ctx.host.manager.get_plugin(plugin_id.strip())
    if instance is None:
        return cliproxy_error(404, "plugin_not_found", "plugin not found")
    return instance


@router.get("", summary="CLIProxyAPI: discovered, configured and registered plugins")
async def list_plugins(ctx: Ctx) -> JSONResponse:
    manager = ctx.host.manager
    menus: dict[str, list[dict[str, str]]] = {}
    for served in ctx.plugin_routes.menus(manager.enabled_plugins()):
        if served.spec.kind == "resource" and served.spec.menu:
            entry = {"path": served.spec.path, "menu": served.spec.menu, "description": served.spec.description}
            menus.setdefault(served.plugin_id, []).append(entry)
    plugins = [_entry(ctx, instance, menus.get(instance.id, [])) for instance in manager.list_plugins()]
    plugins.sort(key=lambda entry: entry["id"])
    dirs = manager.plugin_dirs
    return JSONResponse({"plugins_enabled": True, "plugins_dir": str(dirs[0]) if dirs else "", "plugins": plugins})


def _entry(ctx: ManageContext, instance: PluginInstance, menus: list[dict[str, str]]) -> dict[str, Any]:
    descriptor = instance.descriptor
    native = dict((descriptor.metadata.get("plugin") or {}) if descriptor else {})
    manifest = instance.manifest
    fields = _config_fields(native, manifest.config_schema)
    logo = str(native.get("Logo") or "")
    return {
        "id": instance.id,
        "path": str(instance.path),
        "configured": ctx.host.manager.configs.path(instance.id).exists(),
        "registered": instance.is_loaded,
        "enabled": instance.is_enabled,
        "effective_enabled": instance.is_enabled,
        "supports_oauth": "auth_provider" in (descriptor.capabilities if descriptor else ()),
        "oauth_provider": "",
        "logo": logo,
        "config_fields": fields,
        "menus": menus,
        "metadata": {
            "name": str(native.get("Name") or manifest.name),
            "version": manifest.version,
            "author": str(native.get("Author") or (manifest.author.name if manifest.author else "")),
            "github_repository": str(native.get("GitHubRepository") or manifest.repository or ""),
            "logo": logo,
            "config_fields": fields,
        },
    }


def _config_fields(native: dict[str, Any], schema: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A native plugin's declared ConfigFields, else the properties of the manifest's `config_schema`."""
    declared = native.get("ConfigFields")
    if isinstance(declared, list) and declared:
        return [
            {
                "name": str(f.get("Name", "")),
                "type": str(f.get("Type", "")),
                "enum_values": [str(v) for v in f.get("EnumValues") or []],
                "description": str(f.get("Description", "")),
            }
            for f in declared
            if isinstance(f, dict)
        ]
    properties = (schema or {}).get("properties") or {}
    return [
        {
            "name": name,
            "type": str(prop.get("type", "")),
            "enum_values": [str(v) for v in prop.get("enum") or []],
            "description": str(prop.get("description", "")),
        }
        for name, prop in properties.items()
        if isinstance(prop, dict)
    ]


@router.get("/{plugin_id}/config", summary="CLIProxyAPI: the plugin's config object")
async def get_config(ctx: Ctx, plugin_id: str) -> JSONResponse:
    found = _instance(ctx, plugin_id)
    if isinstance(found, JSONResponse):
        return found
    return JSONResponse(_config_object(ctx, found))


def _config_object(ctx: ManageContext, instance: PluginInstance) -> dict[str, Any]:
    return ctx.host.manager.get_config(instance.id) | {"enabled": instance.is_enabled, "priority": instance.priority}


@router.put("/{plugin_id}/config", summary="CLIProxyAPI: replace the plugin's config object")
async def put_config(ctx: Ctx, plugin_id: str, body: Annotated[Any, Body()] = None) -> JSONResponse:
    found = _instance(ctx, plugin_id)
    if isinstance(found, JSONResponse):
        return found
    if not isinstance(body, dict):
        return cliproxy_error(400, "invalid_body", "body must be a JSON object")
    return await _apply(ctx, found, body)


@router.patch("/{plugin_id}/config", summary="CLIProxyAPI: merge keys into the config object (null removes)")
async def patch_config(ctx: Ctx, plugin_id: str, body: Annotated[Any, Body()] = None) -> JSONResponse:
    found = _instance(ctx, plugin_id)
    if isinstance(found, JSONResponse):
        return found
    if not isinstance(body, dict):
        return cliproxy_error(400, "invalid_body", "body must be a JSON object")
    return await _apply(ctx, found, merged(_config_object(ctx, found), body))


async def _apply(ctx: ManageContext, instance: PluginInstance, wanted: dict[str, Any]) -> JSONResponse:
    """Check everything first (nothing changes when anything is wrong), then state, then config."""
    config = {k: v for k, v in wanted.items() if k not in STATE_KEYS}
    enabled, priority = wanted.get("enabled"), wanted.get("priority")
    if enabled is not None and not isinstance(enabled, bool):
        return cliproxy_error(400, "invalid_config", "enabled must be true or false")
    if priority is not None and (
        isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 1000
    ):
        return cliproxy_error(400, "invalid_config", "priority must be an integer from 0 to 1000")
    manager = ctx.host.manager
    try:
        manager.check_config(instance.id, config)
        if priority is not None and priority != instance.priority:
            manager.set_priority(instance.id, priority)
        if enabled is not None and enabled != instance.is_enabled:
            await (manager.enable_plugin(instance.id) if enabled else manager.disable_plugin(instance.id))
        task = manager.update_config(instance.id, config)
        error = await task if task is not None else None
        if error is not None:
            return cliproxy_error(409, "config_not_applied", f"the plugin did not take the configuration: {error}")
    except ConfigValidationError as exc:
        fields = [p.to_json() for p in exc.problems]
        return cliproxy_error(422, "invalid_config", str(exc), fields=fields)
    except PlugHostError as exc:
        return cliproxy_error(409, "config_not_applied", str(exc))
    return JSONResponse({"status": "ok"})


@router.patch("/{plugin_id}/enabled", summary="CLIProxyAPI: enable or disable a plugin")
async def patch_enabled(ctx: Ctx, plugin_id: str, body: Annotated[Any, Body()] = None) -> JSONResponse:
    found = _instance(ctx, plugin_id)
    if isinstance(found, JSONResponse):
        return found
    enabled = body.get("enabled") if isinstance(body, dict) else None
    if not isinstance(enabled, bool):
        return cliproxy_error(400, "invalid_body", "enabled is required")
    manager = ctx.host.manager
    try:
        await (manager.enable_plugin(found.id) if enabled else manager.disable_plugin(found.id))
    except PlugHostError as exc:
        return cliproxy_error(409, "plugin_state_conflict", str(exc))
    return JSONResponse({"status": "ok"})


@router.delete("/{plugin_id}", summary="CLIProxyAPI: unload a plugin and delete its file and config")
async def delete_plugin(ctx: Ctx, market: MarketDep, plugin_id: str) -> JSONResponse:
    """Only files inside the workspace's plugin directories are deleted, and only when no other
    plugin's files are among them (a plugin loaded from a file of another is never deleted)."""
    found = _instance(ctx, plugin_id)
    if isinstance(found, JSONResponse):
        return found
    manager = ctx.host.manager
    path = found.path
    if not any(d.resolve() in path.resolve().parents for d in manager.plugin_dirs):
        return cliproxy_error(
            409, "plugin_outside_plugin_dirs", f"{path} is not inside a plugin directory; not deleted"
        )
    owner = manager.overlapping_plugin(path, found.id)
    if owner is not None:
        return cliproxy_error(
            409, "plugin_path_shared", f"{path} holds files of plugin '{owner.id}' ({owner.path}); not deleted"
        )
    try:
        await manager.unload_plugin(found.id)
    except PlugHostError as exc:
        return cliproxy_error(
            409, "plugin_delete_requires_restart", f"the plugin could not be unloaded: {exc}", restart_required=True
        )
    file_deleted = await asyncio.to_thread(_remove, path)
    config_file = manager.configs.path(found.id)
    configured = config_file.exists()
    config_file.unlink(missing_ok=True)
    manager.forget_plugin(found.id)
    await market.forget(found.id)  # a market-installed plugin is no longer listed as installed
    return JSONResponse(
        {
            "status": "deleted",
            "id": found.id,
            "path": str(path),
            "file_deleted": file_deleted,
            "configured_removed": configured,
            "restart_required": False,
        }
    )


def _remove(path: Path) -> bool:
    if path.is_dir():
        shutil.rmtree(path)
        return True
    if path.exists():
        path.unlink()
        return True
    return False
