"""`ClusterControl`: the hosts of a cluster share plugin settings, grants, breaker isolation and
their plugin events (`plughost.cluster.history`).

What one host changes — enabling or disabling a plugin, its priority, its configuration, a
permission grant or revocation, its circuit breaker opening (isolation) or closing — is written
to one Redis hash, `<prefix>:control`, and announced on the channel `<prefix>:control`; every other
host applies it through its own manager, guard and permission service, so each keeps its
`plugin-state.toml`, `config/plugins/<id>.toml` and `permissions.toml` equal to the cluster's.

Hash fields are `<kind>:<key>` with a JSON value: `enabled:<plugin>` (bool), `priority:<plugin>`
(int), `config:<plugin>` (object), `isolated:<plugin>` (Unix time the isolation ends, or null once
closed), `grant:<permittee> <permission>` (true granted, false revoked). A write and its
announcement are one MULTI transaction, so the announcements a host receives come in the order
the hash changed. The hash is the source of truth: a starting host adopts it before it loads its
plugins (and adds what the cluster does not know yet), and a host that lost Redis adopts it again
when Redis is back.

No echo: a host ignores its own announcements, and a change is shared only when it differs from
what the cluster last said — applying a remote change records the cluster's value first, so the
events that applying it causes are not shared again.

While Redis is unreachable the host works on alone: its changes apply locally, are kept (the
latest value of each setting) and logged once, and are written when Redis is back (they win over
the cluster's values for the same settings); then it adopts everything else of the cluster's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from redis.exceptions import RedisError

from plughost.cluster.history import SharedEventHistory, raise_if_cancelled
from plughost.cluster.redis_backend import CONNECTION_ERRORS
from plughost.errors import PlugHostError
from plughost.sdk.models import EventType, PluginEvent
from plughost.sdk.permissions import PermissionId, PermitteeId
from plughost.sdk.tasks import TaskOwner

if TYPE_CHECKING:
    from plughost.cluster.redis_backend import RedisBackend
    from plughost.core.manager import PluginManager

log = logging.getLogger(__name__)
Setting = tuple[str, str]
"""`(kind, key)`: ("enabled", plugin id), ("priority", …), ("config", …), ("isolated", …),
("grant", "<permittee> <permission>")."""
RECONNECT_DELAYS_S = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
_SHARED_EVENTS = (EventType.ENABLE, EventType.DISABLE, EventType.ISOLATE, EventType.RECOVER)


class GrantStore(Protocol):
    """The permission service as the cluster sees it (`plughost.bot.commands.permissions`)."""

    grant_listeners: list[Callable[[bool, PermitteeId, PermissionId], None]]

    def permit(self, permittee: PermitteeId, permission: PermissionId) -> bool: ...

    def cancel(self, permittee: PermitteeId, permission: PermissionId, *, recursive: bool = False) -> int: ...


class ClusterControl:
    """Shares `manager`'s plugin settings and breakers and `grants` with the other hosts on
    `backend`'s Redis (see the module's docstring). Constructs without I/O; `start` connects."""

    def __init__(
        self, backend: RedisBackend, manager: PluginManager, *, grants: GrantStore | None = None, tasks: TaskOwner
    ) -> None:
        self.backend = backend
        self.manager = manager
        self.grants = grants
        self.node_id = backend.host_id
        self.hash_key = self.channel = backend.key("control")
        self.tasks = tasks
        self.connected = False
        self._known: dict[Setting, Any] = {}  # the cluster's value of each setting, as last seen
        self._unshared: dict[Setting, Any] = {}  # changes made here, not written to Redis yet
        self._share_wanted = asyncio.Event()
        self._synced = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._outage_logged = False
        self.history = SharedEventHistory(
            backend, manager.events, limit=manager.config.host.event_history, tasks=tasks.child("events")
        )
        """The plugin events of every host (`plughost.cluster.history`)."""
        self.changed = asyncio.Event()
        """Set whenever the connection, the unshared changes or an applied setting changed."""

    # lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect, adopt the cluster's state and follow it; call before the plugins load.

        `PlugHostError` when Redis does not answer (saying what to do)."""
        await self.manager.open_backend()  # the clear "cannot reach Redis" error
        self.manager.add_event_handler(self._on_event, _SHARED_EVENTS)
        self.manager.change_listeners.append(self._on_setting_change)
        if self.grants is not None:
            self.grants.grant_listeners.append(self._on_grant_change)
        self.tasks.spawn(self._follow(), name="cluster control: follow")
        self.tasks.spawn(self._share(), name="cluster control: share")
        timeout = self.backend.connect_timeout_s
        try:
            await asyncio.wait_for(self._synced.wait(), timeout)
        except TimeoutError:
            await self.tasks.aclose()
            raise PlugHostError(
                f"Redis at {self.backend.where} did not give the cluster's plugin state within {timeout} s; "
                "check the server's load and logs"
            ) from None
        await self.history.start()

    async def aclose(self) -> None:
        """Stop following the cluster (the host's task group does it as well)."""
        with contextlib.suppress(ValueError):  # not added when `start` failed early
            self.manager.events.remove_handler(self._on_event)
        await self.history.aclose()
        if self._on_setting_change in self.manager.change_listeners:
            self.manager.change_listeners.remove(self._on_setting_change)
        if self.grants is not None and self._on_grant_change in self.grants.grant_listeners:
            self.grants.grant_listeners.remove(self._on_grant_change)
        await self.tasks.aclose()

    @property
    def unshared(self) -> int:
        """How many changes made here wait for Redis to be shared."""
        return len(self._unshared)

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once `predicate()` holds (checked after every change; wrap in a timeout)."""
        while not predicate():
            self.changed.clear()
            await self.changed.wait()

    def status_lines(self) -> list[str]:
        """The `/status` section."""
        state = "following the cluster" if self.connected else "Redis unreachable, working alone"
        waiting = f", {self.unshared} change(s) made here wait for Redis" if self._unshared else ""
        return [f"cluster: node {self.node_id} on {self.backend.where}, {state}{waiting}"]

    # changes made here ---------------------------------------------------------------------------
    def _on_event(self, event: PluginEvent) -> None:
        plugin_id = event.plugin_id
        if event.event_type in (EventType.ENABLE, EventType.DISABLE):
            # what plugin-state.toml says when it says anything: an enable that failed while loading
            # (its hook raised) disables the plugin here, not in the cluster
            enabled = self.manager.state_file.modules.get(plugin_id, event.event_type is EventType.ENABLE)
            self._changed(("enabled", plugin_id), enabled)
            if event.event_type is EventType.ENABLE:
                self._isolate_as_cluster_says(plugin_id)
        elif event.event_type is EventType.ISOLATE:
            until = time.time() + self.manager.guard.breaker(plugin_id).seconds_left()
            known = self._known.get(("isolated", plugin_id))
            if known is None or known < time.time():  # not an isolation the cluster already holds
                self._changed(("isolated", plugin_id), round(until, 3))
        elif event.event_type is EventType.RECOVER:
            self._changed(("isolated", plugin_id), None)

    def _on_setting_change(self, what: str, plugin_id: str) -> None:
        if what == "priority":
            instance = self.manager.get_plugin(plugin_id)
            if instance is not None:
                self._changed(("priority", plugin_id), instance.priority)
        elif what == "config":
            try:
                self._changed(("config", plugin_id), self.manager.get_config(plugin_id))
            except PlugHostError as exc:
                log.warning("cluster: the configuration of '%s' is not shared: %s", plugin_id, exc)

    def _on_grant_change(self, granted: bool, permittee: PermitteeId, permission: PermissionId) -> None:
        self._changed(("grant", f"{permittee} {permission}"), granted)

    def _changed(self, setting: Setting, value: Any) -> None:
        """A change made on this host: share it unless the cluster already says so."""
        if setting in self._known and self._known[setting] == value:
            return
        self._known[setting] = value
        self._unshared.pop(setting, None)
        self._unshared[setting] = value  # newest last: written in the order they were made
        self._share_wanted.set()
        self.changed.set()

    async def _share(self) -> None:
        """Write the changes made here and announce them; during an outage, keep them for later."""
        while True:
            await self._share_wanted.wait()
            self._share_wanted.clear()
            await self._write_unshared()  # during an outage: fails at once, logged once, kept

    async def _write_unshared(self) -> bool:
        """Write and announce every unshared change, oldest first; False when Redis is unreachable."""
        async with self._write_lock:
            while self._unshared:
                setting, value = next(iter(self._unshared.items()))
                field, text = _field(setting), json.dumps(value, separators=(",", ":"))
                announcement = json.dumps({"node": self.node_id, "field": field, "value": value})
                try:
                    async with self.backend.client.pipeline(transaction=True) as pipe:
                        pipe.hset(self.hash_key, field, text)
                        pipe.publish(self.channel, announcement)
                        await pipe.execute()
                except (*CONNECTION_ERRORS, RedisError) as exc:
                    raise_if_cancelled()
                    if not self._outage_logged:
                        self._outage_logged = True
                        log.warning(
                            "cluster: Redis at %s is unreachable (%s): changes made here apply on this host only "
                            "and are shared when it is back",
                            self.backend.where,
                            exc,
                        )
                    return False
                if self._unshared.get(setting, _MISSING) is value:
                    del self._unshared[setting]
                    self.changed.set()
            self._outage_logged = False
            return True

    # changes from the cluster --------------------------------------------------------------------
    async def _follow(self) -> None:
        """Hold the subscription; after each (re)connection share what waited and adopt the cluster's state."""
        failures = 0
        while True:
            pubsub = self.backend.client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                while (message := await pubsub.get_message(timeout=None)) is None or message["type"] != "subscribe":
                    pass
                if not await self._write_unshared():
                    raise ConnectionError("Redis went away while sharing this host's changes")
                await self._adopt(await self.backend.client.hgetall(self.hash_key))
                self.connected = True
                self.changed.set()
                if failures:
                    log.warning("cluster: Redis at %s is back; this host follows the cluster again", self.backend.where)
                failures = 0
                self._synced.set()
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is not None and message["type"] == "message":
                        await self._on_announcement(message["data"])
            except (*CONNECTION_ERRORS, RedisError) as exc:
                raise_if_cancelled()  # redis-py may turn a cancelled read into a connection error
                if not failures:
                    log.warning("cluster: lost Redis at %s (%s); reconnecting", self.backend.where, exc)
                failures += 1
            finally:
                self.connected = False
                self.changed.set()
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            await asyncio.sleep(RECONNECT_DELAYS_S[min(failures, len(RECONNECT_DELAYS_S)) - 1])

    async def _on_announcement(self, data: bytes) -> None:
        try:
            announcement = json.loads(data)
            node, setting, value = announcement["node"], _setting(announcement["field"]), announcement["value"]
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("cluster: ignored a malformed announcement on %s: %s", self.channel, exc)
            return
        if node != self.node_id:
            await self._apply(setting, value)

    async def _adopt(self, fields: Mapping[bytes | str, bytes | str]) -> None:
        """Take every setting the cluster holds (a start, or Redis back after an outage)."""
        for field, text in fields.items():
            try:
                setting = _setting(field.decode() if isinstance(field, bytes) else field)
                value = json.loads(text)
            except ValueError as exc:
                log.warning("cluster: ignored field %r of %s: %s", field, self.hash_key, exc)
                continue
            if self._known.get(setting, _MISSING) != value:
                await self._apply(setting, value)

    async def _apply(self, setting: Setting, value: Any) -> None:
        """Make this host hold the cluster's `value` of `setting` (recorded first: no echo)."""
        self._known[setting] = value
        kind, key = setting
        try:
            if kind == "enabled":
                await self._apply_enabled(key, bool(value))
            elif kind == "priority":
                self._apply_priority(key, int(value))
            elif kind == "config":
                await self._apply_config(key, dict(value))
            elif kind == "isolated":
                self._apply_isolated(key, value)
            elif kind == "grant" and self.grants is not None:
                self._apply_grant(key, bool(value))
        except (PlugHostError, ValueError, TypeError) as exc:
            log.error("cluster: could not apply %s of '%s' here: %s", kind, key, exc)
        self.changed.set()

    async def _apply_enabled(self, plugin_id: str, enabled: bool) -> None:
        instance = self.manager.get_plugin(plugin_id)
        if instance is not None and instance.is_loaded:
            await (self.manager.enable_plugin(plugin_id) if enabled else self.manager.disable_plugin(plugin_id))
        elif self.manager.state_file.modules.get(plugin_id) != enabled:
            self.manager.state_file.set_enabled(plugin_id, enabled)  # it loads (or not) as the cluster says

    def _apply_priority(self, plugin_id: str, priority: int) -> None:
        instance = self.manager.get_plugin(plugin_id)
        if instance is not None:
            if instance.priority != priority:
                self.manager.set_priority(plugin_id, priority)
        elif self.manager.state_file.priorities.get(plugin_id) != priority:
            self.manager.state_file.set_priority(plugin_id, priority)

    async def _apply_config(self, plugin_id: str, config: dict[str, Any]) -> None:
        if self.manager.get_config(plugin_id) != config:
            task = self.manager.update_config(plugin_id, config)
            if task is not None:
                await task

    def _apply_isolated(self, plugin_id: str, until: float | None) -> None:
        if until is None:
            self.manager.guard.clear(plugin_id)
        else:
            self._isolate_as_cluster_says(plugin_id)

    def _isolate_as_cluster_says(self, plugin_id: str) -> None:
        """Open the plugin's circuit for what is left of the cluster's isolation (if any)."""
        until = self._known.get(("isolated", plugin_id))
        left = until - time.time() if until is not None else 0.0
        instance = self.manager.get_plugin(plugin_id)
        if left > 0 and instance is not None and instance.is_loaded:
            self.manager.guard.isolate(plugin_id, left, f"isolated on another host of the cluster for {left:.1f} s")

    def _apply_grant(self, key: str, granted: bool) -> None:
        assert self.grants is not None
        who, _, what = key.partition(" ")
        permittee, permission = PermitteeId.parse(who), PermissionId.parse(what)
        if granted:
            self.grants.permit(permittee, permission)
        else:
            self.grants.cancel(permittee, permission)


_MISSING = object()


def _field(setting: Setting) -> str:
    return f"{setting[0]}:{setting[1]}"


def _setting(field: str) -> Setting:
    kind, colon, key = field.partition(":")
    if not colon or not key:
        raise ValueError(f"{field!r} is not <kind>:<key>")
    return kind, key


__all__ = ["ClusterControl", "GrantStore"]
