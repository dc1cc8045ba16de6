"""What a plugin sees of the message bus and the shared state: `ctx.bus` and `ctx.state`.

These are protocols: the host fills them in (`plughost.core.bus`, `plughost.core.state_store`,
in-memory today). Every value crossing them is JSON; a value `json.dumps` rejects is refused at
the call with `NotJsonError`. Using a topic or namespace the plugin's manifest does not grant
raises `AccessDenied` (see docs/python-api.md, "Message bus and shared state").
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from plughost.errors import PlugHostError


class AccessDenied(PlugHostError):
    """The plugin used a topic or state namespace its manifest does not grant."""


class NotJsonError(PlugHostError, TypeError):
    """A value given to the bus or the state store is not JSON."""


class BusRequestError(PlugHostError):
    """A bus request got no answer: no replier, a timeout, or the replier failed (`code` says which)."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class BusApi(Protocol):
    """`ctx.bus`: publish, request, unsubscribe (subscriptions are declared with `@plugin.subscribe`)."""

    async def publish(self, topic: str, data: Any = None) -> int: ...

    async def request(self, topic: str, data: Any = None, *, timeout: float = 5.0) -> Any: ...

    async def unsubscribe(self, pattern: str) -> int: ...


class StateApi(Protocol):
    """`ctx.state`: one key/value namespace (the plugin's own; `namespace(name)` for a shared one)."""

    async def get(self, key: str, default: Any = None) -> Any: ...

    async def set(self, key: str, value: Any, *, ttl: float | None = None) -> None: ...

    async def delete(self, key: str) -> bool: ...

    async def get_all(self) -> dict[str, Any]: ...

    async def clear(self) -> int: ...

    async def incr(self, key: str, amount: int = 1) -> int: ...

    async def compare_and_set(self, key: str, expected: Any, value: Any, *, ttl: float | None = None) -> bool: ...

    def namespace(self, name: str) -> StateApi: ...


def json_text(value: Any, what: str) -> str:
    """`value` as compact JSON text; `NotJsonError` naming `what` when it is not JSON."""
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise NotJsonError(f"{what} is not JSON ({type(value).__name__}: {exc}); pass dicts, lists, str, "
                           "int, float, bool or None") from None  # fmt: skip


def json_copy(value: Any, what: str) -> Any:
    """`value` as a fresh JSON value; `NotJsonError` naming `what` when it is not JSON."""
    return json.loads(json_text(value, what))


class _Unavailable:
    """`ctx.bus`/`ctx.state` of a plugin whose host gave it none (a runtime without the feature)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy, pickle and friends probe for these
            raise AttributeError(name)
        raise PlugHostError(f"the message bus and shared state are not available to this plugin ('{name}')")


def unavailable() -> Any:
    return _Unavailable()


__all__ = ["AccessDenied", "BusApi", "BusRequestError", "NotJsonError", "StateApi", "json_copy", "unavailable"]
