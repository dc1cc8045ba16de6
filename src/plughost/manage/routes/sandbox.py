"""`/api/v1/sandbox/events`: talk to the bot as a chosen user, as the console's `/as` does.

The event runs through the real dispatcher on a simulated bot (`sandbox`); the answer lists what
the bot did (replies with their message segments, approvals, other actions).
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, model_validator

from plughost.adapters.chat_sim import (
    Chat,
    ConsoleBot,
    dispatch_simulated,
    friend_request_event,
    group_request_event,
    message_event,
    poke_event,
    simulated_lane,
)
from plughost.manage.context import ManageContext, context
from plughost.manage.errors import ERROR_RESPONSES, ApiError
from plughost.sdk.message import CQCodeError, Message

router = APIRouter(prefix="/api/v1/sandbox", tags=["chat sandbox"], responses=ERROR_RESPONSES)
Ctx = Annotated[ManageContext, Depends(context)]
SANDBOX_BOT_ID = "sandbox"
SENDS = frozenset({"send_group_msg", "send_private_msg", "send_msg"})


class SandboxEvent(BaseModel):
    """Something a user does: a message (CQ codes allowed), a poke, a friend or group request."""

    chat: Literal["group", "private"]
    user_id: int = Field(ge=1, le=2**63 - 1)
    group_id: int | None = Field(default=None, ge=1, le=2**63 - 1, description="Required for group chats.")
    role: Literal["owner", "admin", "member"] = "member"
    kind: Literal["message", "poke", "friend_request", "group_request"] = "message"
    text: str = Field(default="", max_length=10_000, description="The message, or the request's comment.")
    request_type: Literal["add", "invite"] = "add"

    @model_validator(mode="after")
    def _check(self) -> SandboxEvent:
        if self.chat == "group" and self.group_id is None:
            raise ValueError("group_id is required for a group chat")
        if self.kind == "group_request" and self.chat != "group":
            raise ValueError("a group request needs a group chat")
        if self.kind == "message" and not self.text.strip():
            raise ValueError("a message needs text")
        return self


class BotAction(BaseModel):
    action: str
    params: dict[str, Any]
    message: list[dict[str, Any]] | None = Field(default=None, description="A send's message as segments.")


class SandboxResult(BaseModel):
    status: str = Field(description="handled, unhandled, blocked, …")
    answered_by: str | None
    errors: list[str]
    actions: list[BotAction]


@router.post("/events", response_model=SandboxResult, summary="Send an event as a simulated user")
async def send_event(ctx: Ctx, request: SandboxEvent) -> SandboxResult:
    chat = Chat(request.chat, request.user_id, request.group_id, request.role)
    stamp = time.time_ns() // 1000 % 2**31  # a message id / request flag no other request has
    if request.kind == "message":
        try:
            Message.from_cq(request.text, strict=True)
        except CQCodeError as exc:
            raise ApiError(422, "invalid_message", str(exc), {"field": "text"}) from None
        wire = message_event(chat, request.text, stamp)
    elif request.kind == "poke":
        wire = poke_event(chat)
    elif request.kind == "friend_request":
        wire = friend_request_event(chat, request.text, f"sandbox-friend-{stamp}")
    else:
        wire = group_request_event(chat, request.request_type, request.text, f"sandbox-group-{stamp}")
    lane = simulated_lane(ctx.host, ConsoleBot(lambda _: None, bot_id=SANDBOX_BOT_ID))
    _, result = await dispatch_simulated(ctx.host, lane, wire)
    return SandboxResult(
        status=result.status,
        answered_by=result.answered_by,
        errors=list(result.errors),
        actions=[_action(a.action, dict(a.params)) for a in result.sent],
    )


def _action(action: str, params: dict[str, Any]) -> BotAction:
    message = Message.parse(params["message"]).to_json() if action in SENDS and "message" in params else None
    return BotAction(action=action, params=params, message=message)
