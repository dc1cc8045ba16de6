"""Host-wide routes: status, bots, circuit breakers, commands, permissions, and the console."""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from plughost.bot.commands import CommandSender
from plughost.bot.commands.permissions import PermissionService
from plughost.manage.context import ManageContext, context
from plughost.manage.errors import ERROR_RESPONSES, ApiError
from plughost.manage.models import (
    BotConnectionInfo,
    BotList,
    BreakerInfo,
    BreakerList,
    BusStats,
    ClearResult,
    CommandInfo,
    CommandRegistryModel,
    ConsoleRequest,
    ConsoleResult,
    Grant,
    GrantResult,
    HostStatus,
    PermissionList,
    ScheduleInfo,
)
from plughost.manage.routes.plugins import require
from plughost.sdk.permissions import PermissionId, PermissionSyntaxError, PermitteeId

router = APIRouter(prefix="/api/v1", tags=["host"], responses=ERROR_RESPONSES)
Ctx = Annotated[ManageContext, Depends(context)]


@router.get("/status", response_model=HostStatus, summary="Uptime, memory and counts")
async def status(ctx: Ctx) -> HostStatus:
    from plughost import __version__

    host = ctx.host
    instances = host.manager.list_plugins()
    guard = host.manager.guard
    return HostStatus(
        version=__version__,
        workspace=str(host.workspace),
        pid=os.getpid(),
        uptime_s=round(time.time() - host.started_at, 3),
        memory_rss_bytes=rss_bytes(),
        plugins=dict(Counter(str(i.state) for i in instances)),
        runtimes=dict(Counter(i.manifest.runtime for i in instances if i.is_loaded)),
        open_breakers=[i.id for i in instances if str(guard.breaker(i.id).state) != "closed"],
        bots=len(host.dispatcher.status()),
        bot_connections=[BotConnectionInfo.model_validate(c.to_json()) for c in host.dispatcher.connections.values()],
        events_last_id=ctx.events.last_id,
        bus=bus_stats(host.manager.bus.stats(), subscriptions=False),
        schedules=[ScheduleInfo.model_validate(s.to_json()) for s in host.scheduler.schedules()],
    )


@router.get("/bus", response_model=BusStats, summary="Message bus counters and subscriptions")
async def bus(ctx: Ctx) -> BusStats:
    """Published, requests, delivered, failed and overflowed messages, and each subscription's queue."""
    return bus_stats(ctx.host.manager.bus.stats(), subscriptions=True)


def bus_stats(stats: dict[str, Any], *, subscriptions: bool) -> BusStats:
    return BusStats.model_validate(stats if subscriptions else {**stats, "subscriptions": []})


def rss_bytes() -> int | None:
    """Resident memory of this process (Linux /proc; None elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


@router.get("/bots", response_model=BotList, summary="Bot connections, lanes and shed counts")
async def bots(ctx: Ctx) -> BotList:
    dispatcher = ctx.host.dispatcher
    connections = [c.to_json() for c in dispatcher.connections.values()]
    return BotList.model_validate({"bots": dispatcher.status(), "connections": connections})


@router.get("/dynamic-errors", response_model=BreakerList, summary="Circuit breakers and recent errors")
async def dynamic_errors(ctx: Ctx) -> BreakerList:
    manager = ctx.host.manager
    breakers = []
    for instance in manager.list_plugins():
        snapshot = manager.guard.snapshot(instance.id)
        recent = sorted(
            (e for h in snapshot["handlers"].values() for e in h["recent_errors"]), key=lambda e: e["timestamp"]
        )
        breakers.append(BreakerInfo(plugin_id=instance.id, recent_errors=recent[-10:], **snapshot["breaker"]))
    return BreakerList(breakers=breakers)


@router.post("/dynamic-errors/clear", response_model=ClearResult, summary="Close every circuit breaker")
async def clear_all(ctx: Ctx) -> ClearResult:
    ids = [i.id for i in ctx.host.manager.list_plugins()]
    for plugin_id in ids:
        ctx.host.manager.guard.clear(plugin_id)
    return ClearResult(cleared=ids)


@router.post("/dynamic-errors/{plugin_id}/clear", response_model=ClearResult, summary="Close one circuit breaker")
async def clear_one(ctx: Ctx, plugin_id: str) -> ClearResult:
    require(ctx, plugin_id)
    ctx.host.manager.guard.clear(plugin_id)
    return ClearResult(cleared=[plugin_id])


@router.get("/commands", response_model=CommandRegistryModel, summary="The effective command registry")
async def commands(ctx: Ctx) -> CommandRegistryModel:
    engine = ctx.host.commands.refresh()
    registry = engine.registry
    return CommandRegistryModel(
        commands=[
            CommandInfo(
                name=node.name,
                names=registry.names_of(node),
                plugin_id=node.plugin_id,
                priority=node.priority,
                description=node.spec.description,
                usage=node.usage_lines(engine.prefix),
            )
            for node in registry.commands
        ],
        conflicts=[
            {"name": c.name, "winner": c.winner, "loser": c.loser, "reason": c.reason} for c in registry.conflicts
        ],
        problems=list(registry.problems),
    )


def _permissions(ctx: ManageContext) -> PermissionService:
    return ctx.host.commands.refresh().permissions


@router.get("/permissions", response_model=PermissionList, summary="Registered permissions and grants")
async def permissions(ctx: Ctx) -> PermissionList:
    service = _permissions(ctx)
    return PermissionList(
        permissions={str(p): d for p, d in service.registered().items()},
        grants={str(who): [str(p) for p in what] for who, what in service.grants().items()},
    )


def _parse_grant(grant: Grant) -> tuple[PermitteeId, PermissionId]:
    try:
        return PermitteeId.parse(grant.permittee), PermissionId.parse(grant.permission)
    except PermissionSyntaxError as exc:
        raise ApiError(422, "invalid_permission", str(exc)) from None


@router.post("/permissions/permit", response_model=GrantResult, summary="Grant a permission (saved)")
async def permit(ctx: Ctx, grant: Grant) -> GrantResult:
    who, what = _parse_grant(grant)
    return GrantResult(changed=int(_permissions(ctx).permit(who, what)))


@router.post("/permissions/cancel", response_model=GrantResult, summary="Revoke a permission (saved)")
async def cancel(ctx: Ctx, grant: Grant, recursive: bool = False) -> GrantResult:
    who, what = _parse_grant(grant)
    return GrantResult(changed=_permissions(ctx).cancel(who, what, recursive=recursive))


@router.post("/console", response_model=ConsoleResult, summary="Run one console command as the console")
async def console(ctx: Ctx, request: ConsoleRequest) -> ConsoleResult:
    """The same as typing the command into `plughost run`'s console (it has every permission)."""
    result = await ctx.host.commands.execute_command(CommandSender.console(), request.command)
    return ConsoleResult(
        ok=result.ok, kind=str(result.kind.value), text=result.text, error=result.error, usage=result.usage
    )
