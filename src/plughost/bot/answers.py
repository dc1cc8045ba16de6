"""What an answer becomes on the wire: the reply's send action, the request decision, a quick operation."""

from __future__ import annotations

from typing import Any

from plughost.sdk.bot import Answer, Approve, Reject, Reply
from plughost.sdk.call import BAD_ARGUMENT, ISOLATED, UNAVAILABLE, USER_ERROR, Action, PluginError
from plughost.sdk.events import Event, MessageEvent, MessageSentEvent, RequestEvent
from plughost.sdk.message import Message, Segment


def reply_action(event: Event, reply: Reply) -> Action | None:
    """The send action of a reply: group chat → send_group_msg, otherwise send_private_msg."""
    group_id = getattr(event, "group_id", None)
    user_id = getattr(event, "user_id", None)
    message = reply.message
    if group_id:
        if reply.at_sender and user_id:
            message = Message([Segment.at(user_id), Segment.text(" "), *message])
        return Action("send_group_msg", {"group_id": group_id, "message": message.to_json()})
    if user_id:
        return Action("send_private_msg", {"user_id": user_id, "message": message.to_json()})
    return None


def request_action(event: RequestEvent, answer: Approve | Reject) -> Action:
    """`set_friend_add_request` / `set_group_add_request` with the event's flag (and sub_type)."""
    approve = isinstance(answer, Approve)
    if event.request_type == "group":
        reason = "" if approve else answer.reason  # type: ignore[union-attr]
        return Action(
            "set_group_add_request",
            {"flag": event.flag, "sub_type": event.sub_type, "approve": approve, "reason": reason},
        )
    remark = answer.remark if isinstance(answer, Approve) else ""
    return Action("set_friend_add_request", {"flag": event.flag, "approve": approve, "remark": remark})


def quick_operation(event: Event, answer: Answer | None) -> dict[str, Any] | None:
    """The HTTP quick-operation body for an answer, when OneBot can express it that way."""
    if isinstance(answer, Reply) and isinstance(event, MessageEvent) and not isinstance(event, MessageSentEvent):
        op: dict[str, Any] = {"reply": answer.message.to_json(), "auto_escape": False}
        if event.is_group:
            op["at_sender"] = answer.at_sender
        return op
    if isinstance(answer, Approve) and isinstance(event, RequestEvent):
        return {"approve": True, "remark": answer.remark} if event.request_type == "friend" else {"approve": True}
    if isinstance(answer, Reject) and isinstance(event, RequestEvent):
        return {"approve": False} if event.request_type == "friend" else {"approve": False, "reason": answer.reason}
    return None


def failure_reply(error: PluginError) -> Reply | None:
    """What a chat user is told when the handler their message matched failed: a `UserError`'s (or
    a conversation's) own message, else a short note with the error id (the detail is logged and in
    /dynamic-errors). None for a plugin that was not called (isolated, unavailable)."""
    if error.code in (ISOLATED, UNAVAILABLE):
        return None
    if error.code in (USER_ERROR, BAD_ARGUMENT):
        return Reply(Message(error.message))
    error_id = error.detail.get("error_id", "")
    return Reply(Message(f"Sorry, that failed (error {error_id})." if error_id else "Sorry, that failed."))
