"""`/api/v1/schedules` and per-chat plugin switches (`/api/v1/plugins/{id}/chats`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from plughost.core.state import CHAT
from plughost.manage.context import ManageContext, context
from plughost.manage.errors import ERROR_RESPONSES
from plughost.manage.models import ChatSwitches, ChatSwitchRequest, ChatSwitchResult, ScheduleInfo, ScheduleList
from plughost.manage.routes.plugins import require

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)
Ctx = Annotated[ManageContext, Depends(context)]
Chat = Annotated[str, Path(pattern=f"^{CHAT.pattern}$", description="group:<id> or private:<user id>")]


@router.get("/schedules", response_model=ScheduleList, summary="Plugin schedules", tags=["host"])
async def schedules(ctx: Ctx) -> ScheduleList:
    """Every schedule of every plugin seen since the host started: next run, last run and outcome,
    runs, failures, skipped ticks."""
    return ScheduleList(schedules=[ScheduleInfo.model_validate(s.to_json()) for s in ctx.host.scheduler.schedules()])


@router.get(
    "/plugins/{plugin_id}/chats", response_model=ChatSwitches, summary="Chats where the plugin is off", tags=["plugins"]
)
async def chats(ctx: Ctx, plugin_id: str) -> ChatSwitches:
    require(ctx, plugin_id)
    return ChatSwitches(id=plugin_id, off=ctx.host.manager.chat_switches.chats_off(plugin_id))


@router.put(
    "/plugins/{plugin_id}/chats/{chat}",
    response_model=ChatSwitchResult,
    summary="Switch the plugin on or off in one chat (saved in plugin-state.toml)",
    tags=["plugins"],
)
async def switch(ctx: Ctx, plugin_id: str, chat: Chat, request: ChatSwitchRequest) -> ChatSwitchResult:
    """Commands, routes, interceptors and schedules of a plugin switched off in a chat do not run there."""
    require(ctx, plugin_id)
    switches = ctx.host.manager.chat_switches
    changed = switches.set(plugin_id, chat, request.enabled)
    return ChatSwitchResult(
        id=plugin_id, chat=chat, enabled=request.enabled, changed=changed, off=switches.chats_off(plugin_id)
    )
