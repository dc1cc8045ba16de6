"""Chat commands written with the SDK: typed parameters, overloads, groups, raw commands — and two routes
(a poke and a friend request), which the console can try: /as private 42, then /poke or /friend-request hi."""

from __future__ import annotations

import datetime as dt
import random
from enum import Enum

from plughost.sdk import (
    Approve,
    CommandArgumentError,
    CommandContext,
    Message,
    NoticeEvent,
    Plugin,
    Reject,
    Reply,
    ReplyBuilder,
    RequestEvent,
    Segment,
)

plugin = Plugin()
todos: dict[int, list[str]] = {}


class Mood(Enum):
    HAPPY = "happy"
    GRUMPY = "grumpy"


@plugin.command("greet", aliases=["hi"], description="greet someone", category="fun")
async def greet(ctx: CommandContext, name: str, times: int = 1, mood: Mood = Mood.HAPPY) -> str:
    word = "hello" if mood is Mood.HAPPY else "hmpf"
    return " ".join([f"{word} {name}"] * times)


@plugin.command("roll", description="roll a die", category="fun")
def roll(sides: int = 6) -> str:
    if sides < 2:
        raise CommandArgumentError("a die needs at least 2 sides")  # the user's mistake: a reply, not a failure
    return f"rolled {random.randint(1, sides)} (d{sides})"


@plugin.command("remind", description="echo a reminder with its time", category="tools")
def remind(when: dt.datetime, *words: str) -> str:
    return f"at {when:%Y-%m-%d %H:%M}: {' '.join(words) or '(nothing)'}"


@plugin.command("echo", raw=True, description="repeat the arguments as they are")
def echo(args: Message) -> Message:
    return Message([Segment.text("echo:"), *args])


@plugin.command("fail", description="fail on purpose (watch /dynamic-errors)")
def fail() -> None:
    raise RuntimeError("chat-tools failed on purpose")


todo = plugin.command_group("todo", description="a tiny per-user todo list", category="tools")


@todo.sub("add", "+", description="add an item")
def todo_add(ctx: CommandContext, *words: str) -> str:
    items = todos.setdefault(ctx.sender.user_id or 0, [])
    items.append(" ".join(words))
    return f"added #{len(items)}"


@todo.sub("list", "ls", description="show the items")
def todo_list(ctx: CommandContext) -> str:
    items = todos.get(ctx.sender.user_id or 0, [])
    return "\n".join(f"{i}. {t}" for i, t in enumerate(items, 1)) or "nothing to do"


@plugin.route("notice", "GroupPoke", "PrivatePoke")
def on_poke(event: NoticeEvent) -> Reply:
    """A poke gets a reply (in a group, with an @ of whoever poked)."""
    builder = ReplyBuilder().text("ouch!")
    if event.group_id:
        builder.text(" ").at(event.user_id)
    return builder.text(" try /greet or /help").build()


@plugin.route("request", "Friend")
def on_friend_request(event: RequestEvent) -> Approve | Reject:
    """Friend requests: approved with a remark, unless the comment says spam."""
    if "spam" in event.comment.lower():
        return Reject("no spam, thanks")
    return Approve(remark="met through plughost")
