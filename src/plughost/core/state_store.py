"""`StateStore`: key/value state shared by plugins.

Each plugin has its own namespace (`ctx.state`); shared namespaces (`ctx.state.namespace("x")`)
must be listed in the manifest's `[permissions] state`, checked here in the host. Private and
shared namespaces are separate key spaces, so a shared namespace named like a plugin id never
reaches that plugin's private state. Values are JSON and stored as copies; an expired key reads
as absent. Where the data lives is the backend's business (`plughost.core.backend.StateStorage`):
`MemoryState` here (TTLs on an injectable clock: `StateStore(clock=...)`), or Redis
(`plughost.cluster`, TTLs on the Redis server's clock). Every check happens here, before the
storage sees a call, so both behave the same.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from plughost.core.backend import StateStorage
from plughost.errors import PlugHostError
from plughost.sdk.shared import AccessDenied, json_copy

GrantLookup = Callable[[str], Sequence[str]]
"""The shared namespaces a plugin's manifest grants it (`[permissions] state`)."""
Namespace = tuple[str, str]
"""("plugin", id) or ("shared", name)."""
_Key = Namespace  # the name this alias had before storages existed


def same_json(a: Any, b: Any) -> bool:
    """True when two JSON values are equal as JSON (`1 != True`, object key order does not matter)."""
    return canonical_json(a) == canonical_json(b)


def canonical_json(value: Any) -> str:
    """The JSON text every backend stores and compares: keys sorted, no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


class MemoryState:
    """The in-process `StateStorage`: dicts under a lock (sync plugin code may reach it from threads)."""

    name = "memory"

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._data: dict[Namespace, dict[str, tuple[Any, float | None]]] = {}
        self._lock = threading.Lock()

    def _live(self, ns: Namespace) -> dict[str, tuple[Any, float | None]]:
        """The namespace's entries, expired ones removed (call with the lock held)."""
        entries = self._data.setdefault(ns, {})
        now = self.clock()
        for key in [k for k, (_, exp) in entries.items() if exp is not None and exp <= now]:
            del entries[key]
        return entries

    def _expiry(self, ttl: float | None) -> float | None:
        return None if ttl is None else self.clock() + ttl

    # the synchronous operations (`StateStore.get` & co. call these directly) -------------------
    def get_now(self, ns: Namespace, key: str, default: Any) -> Any:
        with self._lock:
            entry = self._live(ns).get(key)
        return json_copy(entry[0], "") if entry is not None else default

    def set_now(self, ns: Namespace, key: str, value: Any, ttl: float | None) -> None:
        with self._lock:
            self._live(ns)[key] = (value, self._expiry(ttl))

    def delete_now(self, ns: Namespace, key: str) -> bool:
        with self._lock:
            return self._live(ns).pop(key, None) is not None

    def get_all_now(self, ns: Namespace) -> dict[str, Any]:
        with self._lock:
            return {k: json_copy(v, "") for k, (v, _) in self._live(ns).items()}

    def clear_now(self, ns: Namespace) -> int:
        with self._lock:
            entries = self._live(ns)
            count = len(entries)
            entries.clear()
            return count

    def incr_now(self, ns: Namespace, key: str, amount: int) -> int:
        with self._lock:
            entries = self._live(ns)
            value, expires = entries.get(key, (0, None))
            if not isinstance(value, int) or isinstance(value, bool):
                raise PlugHostError(f"incr of state key '{key}': it holds {type(value).__name__}, not an int")
            entries[key] = (value + amount, expires)
            return value + amount

    def compare_and_set_now(self, ns: Namespace, key: str, expected: Any, value: Any, ttl: float | None) -> bool:
        with self._lock:
            entries = self._live(ns)
            entry = entries.get(key)
            holds = entry is None if expected is None else entry is not None and same_json(entry[0], expected)
            if holds:
                entries[key] = (value, self._expiry(ttl))
            return holds

    # StateStorage -------------------------------------------------------------------------------
    async def open(self) -> None:
        return None

    async def get(self, ns: Namespace, key: str, default: Any) -> Any:
        return self.get_now(ns, key, default)

    async def set(self, ns: Namespace, key: str, value: Any, ttl: float | None) -> None:
        self.set_now(ns, key, value, ttl)

    async def delete(self, ns: Namespace, key: str) -> bool:
        return self.delete_now(ns, key)

    async def get_all(self, ns: Namespace) -> dict[str, Any]:
        return self.get_all_now(ns)

    async def clear(self, ns: Namespace) -> int:
        return self.clear_now(ns)

    async def incr(self, ns: Namespace, key: str, amount: int) -> int:
        return self.incr_now(ns, key, amount)

    async def compare_and_set(self, ns: Namespace, key: str, expected: Any, value: Any, ttl: float | None) -> bool:
        return self.compare_and_set_now(ns, key, expected, value, ttl)

    async def drop(self, ns: Namespace) -> None:
        with self._lock:
            self._data.pop(ns, None)

    async def aclose(self) -> None:
        return None


class StateStore:
    """Namespaced JSON key/value store with TTL, atomic `incr` and `compare_and_set`.

    `storage` keeps the data (default `MemoryState`). Plugins use it through `view(plugin_id)`;
    the store's own `aget`/`aset`/… are that view's operations on a namespace, checked here. The
    synchronous `get`/`set`/… work on the memory storage only.
    """

    def __init__(self, *, grants: GrantLookup, clock: Callable[[], float] = time.monotonic,
                 storage: StateStorage | None = None) -> None:  # fmt: skip
        self._grants = grants
        self.storage: StateStorage = storage if storage is not None else MemoryState(clock)

    @property
    def clock(self) -> Callable[[], float]:
        """The clock TTLs count on (memory storage; Redis uses its server's clock)."""
        return self._memory().clock if isinstance(self.storage, MemoryState) else time.monotonic

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        self._memory().clock = clock

    def _memory(self) -> MemoryState:
        if not isinstance(self.storage, MemoryState):
            raise PlugHostError(f"this state store keeps its data in {self.storage.name}: use the async "
                                "operations (`await store.view(plugin_id).get(…)`)")  # fmt: skip
        return self.storage

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

    async def open(self) -> None:
        """Connect the storage (nothing to do in memory); idempotent."""
        await self.storage.open()

    async def adrop_plugin(self, plugin_id: str) -> None:
        """Forget a plugin's private namespace (shared ones stay)."""
        await self.storage.drop(("plugin", plugin_id))

    def drop_plugin(self, plugin_id: str) -> None:
        """Forget a plugin's private namespace (memory storage)."""
        with self._memory()._lock:
            self._memory()._data.pop(("plugin", plugin_id), None)

    # checked operations on one namespace (async: every storage) --------------------------------
    async def aget(self, ns: Namespace, key: str, default: Any = None) -> Any:
        return await self.storage.get(ns, _checked_key(key), default)

    async def aset(self, ns: Namespace, key: str, value: Any, ttl: float | None) -> None:
        value = json_copy(value, f"the value for state key '{key}'")
        await self.storage.set(ns, _checked_key(key), value, _checked_ttl(ttl))

    async def adelete(self, ns: Namespace, key: str) -> bool:
        return await self.storage.delete(ns, _checked_key(key))

    async def aget_all(self, ns: Namespace) -> dict[str, Any]:
        return await self.storage.get_all(ns)

    async def aclear(self, ns: Namespace) -> int:
        return await self.storage.clear(ns)

    async def aincr(self, ns: Namespace, key: str, amount: int) -> int:
        return await self.storage.incr(ns, _checked_key(key), _checked_amount(key, amount))

    async def acompare_and_set(self, ns: Namespace, key: str, expected: Any, value: Any, ttl: float | None) -> bool:
        """Set `key` to `value` if it now holds `expected` (None: if it is absent)."""
        value = json_copy(value, f"the value for state key '{key}'")
        expected = json_copy(expected, f"the expected value for state key '{key}'")
        return await self.storage.compare_and_set(ns, _checked_key(key), expected, value, _checked_ttl(ttl))

    async def aclose(self) -> None:
        await self.storage.aclose()

    # the same, synchronous (memory storage only) -------------------------------------------------
    def get(self, ns: Namespace, key: str, default: Any = None) -> Any:
        return self._memory().get_now(ns, _checked_key(key), default)

    def set(self, ns: Namespace, key: str, value: Any, ttl: float | None) -> None:
        value = json_copy(value, f"the value for state key '{key}'")
        self._memory().set_now(ns, _checked_key(key), value, _checked_ttl(ttl))

    def delete(self, ns: Namespace, key: str) -> bool:
        return self._memory().delete_now(ns, _checked_key(key))

    def get_all(self, ns: Namespace) -> dict[str, Any]:
        return self._memory().get_all_now(ns)

    def clear(self, ns: Namespace) -> int:
        return self._memory().clear_now(ns)

    def incr(self, ns: Namespace, key: str, amount: int) -> int:
        return self._memory().incr_now(ns, _checked_key(key), _checked_amount(key, amount))

    def compare_and_set(self, ns: Namespace, key: str, expected: Any, value: Any, ttl: float | None) -> bool:
        """Set `key` to `value` if it now holds `expected` (None: if it is absent)."""
        value = json_copy(value, f"the value for state key '{key}'")
        expected = json_copy(expected, f"the expected value for state key '{key}'")
        return self._memory().compare_and_set_now(ns, _checked_key(key), expected, value, _checked_ttl(ttl))


def _checked_key(key: str) -> str:
    if not isinstance(key, str) or not key:
        raise PlugHostError(f"state keys are non-empty strings, not {key!r}")
    return key


def _checked_ttl(ttl: float | None) -> float | None:
    if ttl is not None and (not isinstance(ttl, int | float) or isinstance(ttl, bool) or not ttl > 0):
        raise PlugHostError(f"ttl must be positive seconds, not {ttl!r}")
    return ttl


def _checked_amount(key: str, amount: int) -> int:
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise PlugHostError(f"incr of state key '{key}': amount must be an int, not {amount!r}")
    return amount


class StateView:
    """One namespace as a plugin sees it (implements `StateApi`)."""

    def __init__(self, store: StateStore, plugin_id: str, ns: Namespace) -> None:
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
        return await self._store.aget(self._ns, key, default)

    async def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
        await self._store.aset(self._ns, key, value, ttl)

    async def delete(self, key: str) -> bool:
        return await self._store.adelete(self._ns, key)

    async def get_all(self) -> dict[str, Any]:
        return await self._store.aget_all(self._ns)

    async def clear(self) -> int:
        return await self._store.aclear(self._ns)

    async def incr(self, key: str, amount: int = 1) -> int:
        return await self._store.aincr(self._ns, key, amount)

    async def compare_and_set(self, key: str, expected: Any, value: Any, *, ttl: float | None = None) -> bool:
        return await self._store.acompare_and_set(self._ns, key, expected, value, ttl)


__all__ = ["MemoryState", "Namespace", "StateStore", "StateView", "canonical_json", "same_json"]
