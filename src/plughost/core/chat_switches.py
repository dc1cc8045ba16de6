"""Per-chat plugin switches: an enabled plugin can be off in one group or private chat.

Persisted in `plugin-state.toml` (`[chats]`, see `plughost.core.state`). The bot pipeline asks
`off_in(chat)` once per event: a cached frozenset of plugin ids, rebuilt only when a switch
changes, so the check costs one dict lookup and set membership per handler.
"""

from __future__ import annotations

from plughost.core.state import CHAT, PluginStateFile

NOTHING_OFF: frozenset[str] = frozenset()


class ChatSwitches:
    """Which plugins are switched off in which chat (`group:<id>`, `private:<user id>`)."""

    def __init__(self, state_file: PluginStateFile) -> None:
        self.state_file = state_file
        self._off_in: dict[str, frozenset[str]] | None = None

    def off_in(self, chat: str) -> frozenset[str]:
        """The ids of the plugins switched off in `chat` (empty for any other channel)."""
        table = self._off_in
        if table is None:
            table = self._off_in = self._table()
        return table.get(chat, NOTHING_OFF)

    def is_on(self, plugin_id: str, chat: str) -> bool:
        return plugin_id not in self.off_in(chat)

    def chats_off(self, plugin_id: str) -> list[str]:
        """The chats where `plugin_id` is switched off, sorted."""
        return sorted(self.state_file.chats_off.get(plugin_id, ()))

    def set(self, plugin_id: str, chat: str, enabled: bool) -> bool:
        """Switch `plugin_id` on/off in `chat` (persisted first; `StateFileError` and nothing changed when
        it cannot be written; `ValueError` for a malformed chat). False when it already was so."""
        changed = self.state_file.set_chat_enabled(plugin_id, chat, enabled)
        if changed:
            self._off_in = None
        return changed

    def forget(self) -> None:
        """Drop the cache (the state file changed under it)."""
        self._off_in = None

    def _table(self) -> dict[str, frozenset[str]]:
        by_chat: dict[str, set[str]] = {}
        for plugin_id, chats in self.state_file.chats_off.items():
            for chat in chats:
                by_chat.setdefault(chat, set()).add(plugin_id)
        return {chat: frozenset(ids) for chat, ids in by_chat.items()}


def parse_chat(kind: str, chat_id: int | str) -> str:
    """`group`/`private` + id → `group:123`; `ValueError` saying what is wrong otherwise."""
    chat = f"{kind.removeprefix('--')}:{chat_id}"
    if not CHAT.fullmatch(chat):
        raise ValueError(f"a chat is a group or private chat with a positive numeric id, got {chat!r}")
    return chat


__all__ = ["NOTHING_OFF", "ChatSwitches", "parse_chat"]
