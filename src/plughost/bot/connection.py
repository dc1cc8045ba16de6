"""`BotConnection`: how a configured bot's link to its OneBot implementation is doing.

A transport (`plughost.adapters.onebot`) reports to it — connected, lost, refused — and `/status`,
`GET /api/v1/bots`, `GET /api/v1/status` and `plughost status` show it (the API with a one-line
`summary`, so a remote client prints it without importing the bot layer).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any, Literal

LinkState = Literal["connecting", "connected", "disconnected", "listening"]


@dataclass
class BotConnection:
    """One configured bot's connection: state, since when, reconnect attempts, last error.

    `where` says whom the bot connects to (forward WebSocket) or where it listens (reverse
    WebSocket, HTTP). `reconnect_attempts` counts the connections tried or accepted after the
    first one; `last_error` stays after a reconnect, with its time, so a flapping link shows.
    """

    bot: str
    transport: str
    where: str
    state: LinkState = "connecting"
    since: float | None = None
    """When `state` began (seconds since the epoch; None until the first change)."""
    connections: int = 0
    reconnect_attempts: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    _attempts: int = 0
    _changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False, compare=False)

    async def changed(self) -> None:
        """Wait for the next change of state, counters or error."""
        await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()  # wakes whoever waits now; later waiters wait for the next change
        self._changed = asyncio.Event()

    def attempt(self) -> None:
        """A connection is being tried (forward) or accepted (reverse)."""
        if self._attempts:
            self.reconnect_attempts += 1
        self._attempts += 1
        self._notify()

    def up(self) -> None:
        """The link is established."""
        self.connections += 1
        self._enter("connected")

    def down(self, error: str | None = None) -> None:
        """The link ended (`error`: why, when it did not end cleanly) or could not be made."""
        if error:
            self.last_error, self.last_error_at = error, time.time()
        self._enter("disconnected")
        self._notify()

    def refused(self, error: str) -> None:
        """A connection was refused (wrong token, self id …); the state does not change."""
        self.last_error, self.last_error_at = error, time.time()
        self._notify()

    def listening(self) -> None:
        """The bot waits for its implementation to connect or post (reverse WebSocket, HTTP)."""
        self._enter("listening")

    def _enter(self, state: LinkState) -> None:
        if state != self.state or self.since is None:
            self.state, self.since = state, time.time()
        self._notify()

    def summary(self) -> str:
        """One line, as `/status` and `plughost status` show it."""
        return describe_connection(self._fields())

    def to_json(self) -> dict[str, Any]:
        return {**self._fields(), "summary": self.summary()}

    def _fields(self) -> dict[str, Any]:
        return {
            "bot": self.bot,
            "transport": self.transport,
            "where": self.where,
            "state": self.state,
            "since": self.since,
            "connections": self.connections,
            "reconnect_attempts": self.reconnect_attempts,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
        }


def describe_connection(row: dict[str, Any]) -> str:
    """One line for a `BotConnection`'s fields."""
    state = row["state"]
    if state == "disconnected":
        toward = "from"
    else:
        toward = "to" if row["transport"] == "ws-forward" else "at" if state == "connected" else "on"
    since = f" since {_iso(row['since'])}" if row.get("since") else ""
    text = f"bot {row['bot']}: {state} {toward} {row['where']}{since}"
    attempts = int(row.get("reconnect_attempts") or 0)
    details = [f"{attempts} reconnect attempt{'s' if attempts != 1 else ''}"] if attempts else []
    if row.get("last_error"):
        at = f" at {_iso(row['last_error_at'])}" if row.get("last_error_at") else ""
        details.append(f"last error{at}: {row['last_error']}")
    return text + (f" ({'; '.join(details)})" if details else "")


def _iso(timestamp: float) -> str:
    """Local time, ISO 8601 to the second."""
    return dt.datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="seconds")
