"""The message bus and shared state for plugins outside the host's Python code.

A worker plugin and a native (C ABI) plugin reach the host's `ctx.bus` and `ctx.state` through
one table of operations, `HOST_OPERATIONS`:

| operation               | params                                   | answer                 |
|-------------------------|------------------------------------------|------------------------|
| `bus.publish`           | `topic`, `data`                          | subscriptions reached  |
| `bus.request`           | `topic`, `data`, `timeout` (s, default 5)| the replier's answer   |
| `bus.unsubscribe`       | `pattern`                                | subscriptions dropped  |
| `state.get`             | `key`, `default`, `namespace`?           | the value or `default` |
| `state.set`             | `key`, `value`, `ttl`?, `namespace`?     | null                   |
| `state.delete`          | `key`, `namespace`?                      | whether it existed     |
| `state.get_all`         | `namespace`?                             | object of all keys     |
| `state.clear`           | `namespace`?                             | keys removed           |
| `state.incr`            | `key`, `amount` (default 1), `namespace`?| the new value          |
| `state.compare_and_set` | `key`, `expected`, `value`, `ttl`?, `namespace`? | whether it was set |

`namespace` names a shared state namespace (`[permissions] state`); without it the plugin's own.
`HostServices` runs an operation on the plugin's own views (so every permission check stays in
the host); a failure travels back as `{"code", "message"}` and `raise_remote` turns it into the
same exception the in-process API raises. A worker sends operations over its invoke lane
(`plughost.<operation>` actions, see `plughost.runtime.invoke_lane`); `RemoteBus` and
`RemoteState` are its `ctx.bus` and `ctx.state`. A native plugin calls `host.<operation>`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from plughost.errors import PlugHostError
from plughost.sdk.shared import AccessDenied, BusApi, BusRequestError, NotJsonError, StateApi

HOST_OPERATIONS = (
    "bus.publish", "bus.request", "bus.unsubscribe",
    "state.get", "state.set", "state.delete", "state.get_all", "state.clear", "state.incr",
    "state.compare_and_set",
)  # fmt: skip
HostLink = Callable[[str, Mapping[str, Any]], Awaitable[Any]]
"""`link(operation, params)`: runs one operation in the host and returns its answer."""


class HostServiceError(PlugHostError):
    """An operation the host refused or could not run (`code` says why)."""

    def __init__(self, message: str, *, code: str = "host_error") -> None:
        super().__init__(message)
        self.code = code


def error_fields(exc: BaseException) -> dict[str, str]:
    """The `{"kind", "code", "message"}` of an operation's failure, for the way back to the plugin."""
    kind, code = "host", "host_error"
    if isinstance(exc, AccessDenied):
        kind = code = "access_denied"
    elif isinstance(exc, NotJsonError):
        kind = code = "not_json"
    elif isinstance(exc, BusRequestError):
        kind, code = "bus_request", exc.code
    elif isinstance(exc, HostServiceError):
        code = exc.code
    return {"kind": kind, "code": code, "message": str(exc) or type(exc).__name__}


def raise_remote(error: Mapping[str, Any]) -> None:
    """Raise what the in-process API raises for a failure the host reported (`error_fields`)."""
    kind, code, message = error.get("kind"), str(error.get("code") or "host_error"), str(error.get("message"))
    if kind == "access_denied":
        raise AccessDenied(message)
    if kind == "not_json":
        raise NotJsonError(message)
    if kind == "bus_request":
        raise BusRequestError(message, code=code)
    raise HostServiceError(message, code=code)


class HostServices:
    """Runs `HOST_OPERATIONS` on one plugin's `ctx.bus` and `ctx.state` views."""

    def __init__(self, bus: BusApi | None, state: StateApi | None) -> None:
        self.bus = bus
        self.state = state

    async def run(self, operation: str, params: Mapping[str, Any]) -> Any:
        """The answer of `operation`; raises what the views raise, `HostServiceError` for a bad request."""
        group, _, name = operation.partition(".")
        if operation not in HOST_OPERATIONS:
            raise HostServiceError(
                f"unknown host operation {operation!r}; expected one of {', '.join(HOST_OPERATIONS)}",
                code="unknown_operation",
            )
        if group == "bus":
            return await self._bus(name, params)
        return await self._state(name, params)

    async def _bus(self, name: str, params: Mapping[str, Any]) -> Any:
        if self.bus is None:
            raise HostServiceError("the message bus is not available to this plugin", code="unavailable")
        if name == "unsubscribe":
            return await self.bus.unsubscribe(_text(params, "pattern"))
        topic = _text(params, "topic")
        if name == "publish":
            return await self.bus.publish(topic, params.get("data"))
        timeout = params.get("timeout", 5.0)
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
            raise HostServiceError(f"bus.request: timeout must be a positive number of seconds, not {timeout!r}",
                                   code="invalid_request")  # fmt: skip
        return await self.bus.request(topic, params.get("data"), timeout=float(timeout))

    async def _state(self, name: str, params: Mapping[str, Any]) -> Any:
        state = self.state
        if state is None:
            raise HostServiceError("shared state is not available to this plugin", code="unavailable")
        namespace = params.get("namespace")
        if namespace is not None:
            state = state.namespace(_text(params, "namespace"))
        if name == "get_all":
            return await state.get_all()
        if name == "clear":
            return await state.clear()
        key = _text(params, "key")
        ttl = _ttl(params)
        if name == "get":
            return await state.get(key, params.get("default"))
        if name == "set":
            await state.set(key, params.get("value"), ttl=ttl)
            return None
        if name == "delete":
            return await state.delete(key)
        if name == "incr":
            amount = params.get("amount", 1)
            if not isinstance(amount, int) or isinstance(amount, bool):
                raise HostServiceError(f"state.incr: amount must be an integer, not {amount!r}", code="invalid_request")
            return await state.incr(key, amount)
        return await state.compare_and_set(key, params.get("expected"), params.get("value"), ttl=ttl)


def _text(params: Mapping[str, Any], name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value:
        raise HostServiceError(f"'{name}' must be a non-empty string, not {value!r}", code="invalid_request")
    return value


def _ttl(params: Mapping[str, Any]) -> float | None:
    ttl = params.get("ttl")
    if ttl is None:
        return None
    if not isinstance(ttl, int | float) or isinstance(ttl, bool) or ttl <= 0:
        raise HostServiceError(f"ttl must be a positive number of seconds, not {ttl!r}", code="invalid_request")
    return float(ttl)


class RemoteBus:
    """`ctx.bus` of a plugin in a worker: every operation runs in the host over `link`."""

    def __init__(self, link: HostLink) -> None:
        self._link = link

    async def publish(self, topic: str, data: Any = None) -> int:
        return int(await self._link("bus.publish", {"topic": topic, "data": data}))

    async def request(self, topic: str, data: Any = None, *, timeout: float = 5.0) -> Any:
        return await self._link("bus.request", {"topic": topic, "data": data, "timeout": timeout})

    async def unsubscribe(self, pattern: str) -> int:
        return int(await self._link("bus.unsubscribe", {"pattern": pattern}))


class RemoteState:
    """`ctx.state` of a plugin in a worker (its own namespace, or the shared one `namespace` names)."""

    def __init__(self, link: HostLink, namespace: str | None = None) -> None:
        self._link = link
        self._namespace = namespace

    def namespace(self, name: str) -> RemoteState:
        """A shared namespace; `AccessDenied` at its first use unless `[permissions] state` lists it."""
        return RemoteState(self._link, name)

    async def _run(self, operation: str, **params: Any) -> Any:
        if self._namespace is not None:
            params["namespace"] = self._namespace
        return await self._link(operation, params)

    async def get(self, key: str, default: Any = None) -> Any:
        return await self._run("state.get", key=key, default=default)

    async def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
        await self._run("state.set", key=key, value=value, ttl=ttl)

    async def delete(self, key: str) -> bool:
        return bool(await self._run("state.delete", key=key))

    async def get_all(self) -> dict[str, Any]:
        return dict(await self._run("state.get_all"))

    async def clear(self) -> int:
        return int(await self._run("state.clear"))

    async def incr(self, key: str, amount: int = 1) -> int:
        return int(await self._run("state.incr", key=key, amount=amount))

    async def compare_and_set(self, key: str, expected: Any, value: Any, *, ttl: float | None = None) -> bool:
        return bool(await self._run("state.compare_and_set", key=key, expected=expected, value=value, ttl=ttl))


__all__ = [
    "HOST_OPERATIONS", "HostLink", "HostServiceError", "HostServices", "RemoteBus", "RemoteState",
    "error_fields", "raise_remote",
]  # fmt: skip
