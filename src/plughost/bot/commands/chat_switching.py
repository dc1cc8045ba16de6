"""Per-chat plugin switches from chat: `/plugins disable dice --group 123` (and `--private 456`).

Owners, the console and whoever holds `console:command.plugins` switch any chat. A group admin
granted `console:plugins.group` switches plugins for the group they are an admin of, and no
other; `/plugins` lists what is on and off in the chat it is sent from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from plughost.bot.channels import chat_of_sender
from plughost.core.chat_switches import parse_chat
from plughost.errors import PluginNotFoundError
from plughost.sdk.commands import UserError
from plughost.sdk.permissions import PermissionId
from plughost.sdk.senders import CommandSender

if TYPE_CHECKING:
    from plughost.bot.commands.engine import CommandEngine
    from plughost.core.manager import PluginManager

ChatKind = Literal["--group", "--private"]
PLUGINS_COMMAND = PermissionId("console", "command.plugins")
GROUP_SWITCH = PermissionId("console", "plugins.group")
"""Lets a group admin switch plugins on and off in their own group."""
GROUP_SWITCH_PATHS = (("plugins",), ("plugins", "list"), ("plugins", "enable"), ("plugins", "disable"))


def allow_group_admins(engine: CommandEngine) -> None:
    """Register `console:plugins.group` and let it reach `/plugins [list|enable|disable]`."""
    engine.permissions.register(GROUP_SWITCH, "switch plugins on/off in your own group (group admins)")
    for path in GROUP_SWITCH_PATHS:
        engine.also_allowed[path] = GROUP_SWITCH


def checked_chat(engine: CommandEngine, sender: CommandSender, kind: ChatKind | None, chat_id: int | None) -> str:
    """The chat `sender` may switch (`""` = the plugin itself, everywhere); `UserError` when not allowed."""
    full = sender.is_console or engine.holds(sender, PLUGINS_COMMAND)
    if kind is None or chat_id is None:
        if full:
            return ""
        raise UserError(
            f"you may switch plugins only in your own group: add --group {sender.group_id or '<your group>'}"
        )
    try:
        chat = parse_chat(kind, chat_id)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if full:
        return chat
    own = sender.in_group and sender.group_role in ("owner", "admin") and chat == chat_of_sender(sender)
    if not own:
        raise UserError(
            f"permission denied: {GROUP_SWITCH} lets a group admin switch plugins in their own group only "
            f"(you are in {chat_of_sender(sender)}, not {chat})"
        )
    return chat


def switch_in_chat(manager: PluginManager, plugin_id: str, chat: str, enabled: bool) -> str:
    """Switch `plugin_id` on/off in `chat`; the reply."""
    instance = manager.get_plugin(plugin_id)
    if instance is None:
        raise PluginNotFoundError(plugin_id)
    changed = manager.chat_switches.set(plugin_id, chat, enabled)
    state = "on" if enabled else "off"
    if not changed:
        return f"plugin '{plugin_id}' already is {state} in {chat}"
    note = "" if instance.is_enabled or not enabled else f" (it is disabled everywhere: /plugins enable {plugin_id})"
    return f"plugin '{plugin_id}' switched {state} in {chat}{note}"


def where_marker(manager: PluginManager, plugin_id: str, chat: str) -> str:
    """`, on here` / `, off here` for the plugin list in a chat."""
    if chat == "console":
        off = manager.chat_switches.chats_off(plugin_id)
        return f", off in {', '.join(off)}" if off else ""
    return ", off here" if not manager.chat_switches.is_on(plugin_id, chat) else ", on here"


__all__ = ["GROUP_SWITCH", "ChatKind", "allow_group_admins", "checked_chat", "switch_in_chat", "where_marker"]
