"""The console's own commands: `/as`, `/poke`, `/friend-request`, `/group-request`.

They drive the chat simulation (`plughost.adapters.chat_sim`) and are declared with the SDK like
any command, as console-only commands (`CommandService.set_console_commands`): the console's
`/help`, `/help as` and Tab completion show them, chat users never see them, and a plugin
command of the same name stays reachable in chat (`/registry` lists the conflict).
"""

from __future__ import annotations

from typing import Literal

from plughost.adapters.chat_sim import SIM_SELF_ID, Chat, ChatSimulator
from plughost.bot.commands.builtins import BUILTIN_ID
from plughost.sdk.plugin import Plugin

GroupRole = Literal["owner", "admin", "member"]
RequestKind = Literal["add", "invite"]


def console_commands(sim: ChatSimulator) -> Plugin:
    """The console-only commands acting on `sim`."""
    plugin = Plugin(id=BUILTIN_ID, version="1")
    chat_as = plugin.command_group("as", description="chat as a simulated user (console only)")

    @chat_as.sub("group", description="type as a member of a group")
    def as_group(group_id: int, user_id: int, role: GroupRole = "member") -> str:
        return sim.join(Chat("group", user_id, group_id, role))

    @chat_as.sub("private", description="type as a user in a private chat")
    def as_private(user_id: int) -> str:
        return sim.join(Chat("private", user_id))

    @chat_as.sub("console", description="back to console commands")
    def as_console() -> str:
        return sim.join(None)

    @plugin.command("poke", description="the current user pokes the bot (or target)")
    async def poke(target: int = SIM_SELF_ID) -> None:
        await sim.poke(target)

    @plugin.command("friend-request", description="the current user asks to be the bot's friend")
    async def friend_request(*comment: str) -> None:
        await sim.friend_request(" ".join(comment))

    @plugin.command(
        "group-request",
        description="the current user asks to join the group",
        usage="/group-request [add|invite] [comment...]  # the current user asks to join the group",
    )
    async def group_request(*words: str) -> None:
        kind: RequestKind = "invite" if words[:1] == ("invite",) else "add"
        await sim.group_request(kind, " ".join(words[1:] if words[:1] in (("add",), ("invite",)) else words))

    return plugin


def names(plugin: Plugin) -> frozenset[str]:
    """The lower-cased names of `plugin`'s commands."""
    return frozenset(n.lower() for spec in plugin.describe().commands for n in spec.names)
