"""`StateStore`: key/value state shared by plugins (memory backend).

Each plugin has its own namespace (`ctx.state`); shared namespaces (`ctx.state.namespace("x")`)
must be listed in the manifest's `[permissions] state`, checked here in the host. Private and
shared namespaces are separate key spaces, so a shared namespace named like a plugin id never
reaches that plugin's private state. Values are JSON and stored as copies; `ttl` is seconds on
the store's clock (injectable: `StateStore(clock=...)`), and an expired key reads as absent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from plughost.errors import PlugHostError
from plughost.sdk.shared import AccessDenied, json_copy

GrantLookup = Callable[[str], Sequence[str]]
"""The shared namespaces a plugin's manifest grants it (`[permissions] state`)."""
_Key = tuple[str, str]  # ("plugin", id) or ("shared", name)


class StateStore:
    """Namespaced JSON key/value store with TTL, atomic `incr` and `compare_and_set`."""

    def __init__(self, *, grants: GrantLookup, clock: Callable[[], float] = time.monotonic) -> None:
        self._grants = grants
        self.clock = clock
        self._data: dict[_Key, dict[str, tuple[Any, float | None]]] = {}
        self._lock = threading.Lock()  # sync plugin code may reach the store from its threads

    def check_access(self, plugin_id: str, namespace: str) -> None:
        granted = self._grants(plugin_id)
        if namespace not in granted:
            raise AccessDenied(
                f"plugin '{plugin_id}' may not use shared state namespace '{namespace}': list it in "
                f"`[permissions] state` in its plugin.toml (granted: {', '.join(granted) or 'none'})"
            )

    def view(self, plugin_id: str) -> StateView:
        """What `plugin_id` sees as `ctx.state` (its own namespace)."""
        return StateView(self, plugin_id, ("plugin", plugin_id))

    def drop_plugin(self, plugin_id: str) -> None:
        """Forget a plugin's private namespace (shared ones stay)."""
        with self._lock:
            self._data.pop(("plugin", plugin_id), None)

    # operations on one namespace ----------------------------------------------------------------
    def _live(self, ns: _Key) -> dict[str, tuple[Any, float | None]]:
        """The namespace's entries, expired ones removed (call with the lock held)."""
        entries = self._data.setdefault(ns, {})
        now = self.clock()
        for key in [k for k, (_, exp) in entries.items() if exp is not None and exp <= now]:
            del entries[key]
        return entries

    def _expiry(self, ttl: float | None) -> float | None:
        if ttl is None:
            return None
        if ttl <= 0:
            raise PlugHostError(f"ttl must be positive seconds, not {ttl!r}")
        return self.clock() + ttl

    def get(self, ns: _Key, key: str, default: Any = None) -> Any:
        with self._lock:
            entry = self._live(ns).get(key)
        return json_copy(entry[0], "") if entry is not None else default

    def set(self, ns: _Key, key: str, value: Any, ttl: float | None) -> None:
        value = json_copy(value, f"the value for state key '{key}'")
        expires = self._expiry(ttl)
        with self._lock:
            self._live(ns)[_checked_key(key)] = (value, expires)

    def delete(self, ns: _Key, key: str) -> bool:
        with self._lock:
            return self._live(ns).pop(key, None) is not None

    def get_all(self, ns: _Key) -> dict[str, Any]:
        with self._lock:
            return {k: json_copy(v, "") for k, (v, _) in self._live(ns).items()}

    def clear(self, ns: _Key) -> int:
        with self._lock:
            entries = self._live(ns)
            count = len(entries)
            entries.clear()
            return count

    def incr(self, ns: _Key, key: str, amount: int) -> int:
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise PlugHostError(f"incr of state key '{key}': amount must be an int, not {amount!r}")
        with self._lock:
            entries = self._live(ns)
            value, expires = entries.get(_checked_key(key), (0, None))
            if not isinstance(value, int) or isinstance(value, bool):
                raise PlugHostError(f"incr of state key '{key}': it holds {type(value).__name__}, not an int")
            entries[key] = (value + amount, expires)
            return value + amount

    def compare_and_set(self, ns: _Key, key: str, expected: Any, value: Any, ttl: float | None) -> bool:
        """Set `key` to `value` if it now holds `expected` (None: if it is absent)."""
        value = json_copy(value, f"the value for state key '{key}'")
        expected = json_copy(expected, f"the expected value for state key '{key}'")
        expires = self._expiry(ttl)
        with self._lock:
            entries = self._live(ns)
            entry = entries.get(_checked_key(key))
            current = entry[0] if entry is not None else None
            if current != expected or (expected is None and entry is not None):
                return False
            entries[key] = (value, expires)
            return True


def _checked_key(key: str) -> str:
    if not isinstance(key, str) or not key:
        raise PlugHostError(f"state keys are non-empty strings, not {key!r}")
    return key


class StateView:
    """One namespace as a plugin sees it (implements `StateApi`)."""

    def __init__(self, store: StateStore, plugin_id: str, ns: _Key) -> None:
        self._store = store
        self.plugin_id = plugin_id
        self._ns = ns

    @property
    def name(self) -> str:
        return self._ns[1]

    def namespace(self, name: str) -> StateView:
        """A shared namespace; `AccessDenied` unless the manifest lists it in `[permissions] state`."""
        self._store.check_access(self.plugin_id, name)
        return StateView(self._store, self.plugin_id, ("shared", name))

    async def get(self, key: str, default: Any = None) -> Any:
        return self._store.get(self._ns, key, default)

    async def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
        self._store.set(self._ns, key, value, ttl)

    async def delete(self, key: str) -> bool:
        return self._store.delete(self._ns, key)

    async def get_all(self) -> dict[str, Any]:
        return self._store.get_all(self._ns)

    async def clear(self) -> int:
        return self._store.clear(self._ns)

    async def incr(self, key: str, amount: int = 1) -> int:
        return self._store.incr(self._ns, key, amount)

    async def compare_and_set(self, key: str, expected: Any, value: Any, *, ttl: float | None = None) -> bool:
        return self._store.compare_and_set(self._ns, key, expected, value, ttl)


__all__ = ["StateStore", "StateView"]
