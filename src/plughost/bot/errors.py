"""Errors of bot actions: failed statuses, timeouts, dropped connections."""

from __future__ import annotations

from typing import Any

from plughost.errors import PlugHostError


class ActionError(PlugHostError):
    """A OneBot action did not succeed."""

    def __init__(self, bot_id: str, action: str, message: str) -> None:
        self.bot_id = bot_id
        self.action = action
        super().__init__(f"bot '{bot_id}': action '{action}' {message}")


class ActionFailed(ActionError):
    """The implementation answered `status: failed` (retcode 1400 bad request, 1401/1403 auth, 1404 unknown)."""

    def __init__(self, bot_id: str, action: str, retcode: int, message: str = "", data: Any = None) -> None:
        self.retcode = retcode
        self.data = data
        detail = f": {message}" if message else ""
        super().__init__(bot_id, action, f"failed with retcode {retcode}{detail}")


class ActionTimeout(ActionError):
    """No response arrived within the per-call timeout."""

    def __init__(self, bot_id: str, action: str, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(bot_id, action, f"got no response within {timeout:g} s; is the implementation busy or stuck?")


class BotDisconnected(ActionError):
    """The connection is down (or dropped while the call was in flight)."""

    def __init__(self, bot_id: str, action: str, reason: str = "the connection is closed") -> None:
        super().__init__(bot_id, action, f"could not complete: {reason}; it is retried only if you call again")
