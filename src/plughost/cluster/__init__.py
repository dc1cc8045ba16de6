"""plughost.cluster: the bus and the shared state of several hosts through Redis.

`backend_for(config)` is the backend `[cluster]` in `plughost.toml` (or `plughost run --cluster`)
asks for: None without a `redis_url` (the manager then keeps everything in memory), else a
`plughost.cluster.redis_backend.RedisBackend`. redis-py is the `cluster` extra
(`pip install 'plughost[cluster]'`); this module imports it only when a Redis URL is configured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from plughost.cluster.settings import ClusterSettings, redacted
from plughost.errors import ConfigError

if TYPE_CHECKING:
    from plughost.cluster.control import ClusterControl, GrantStore
    from plughost.cluster.redis_backend import RedisBackend
    from plughost.core.config import HostConfig
    from plughost.core.manager import PluginManager
    from plughost.sdk.tasks import TaskOwner


def backend_for(config: HostConfig, *, redis_url: str | None = None) -> RedisBackend | None:
    """The Redis backend `[cluster]` (or `redis_url`, overriding it) configures; None for memory.

    `ConfigError` naming the setting for a bad table, and saying what to install when the
    `cluster` extra is missing."""
    settings = ClusterSettings.from_host_config(config, redis_url=redis_url)
    if settings.redis_url is None:
        return None
    try:
        from plughost.cluster.redis_backend import RedisBackend
    except ImportError as exc:
        raise ConfigError(
            f"the Redis backend for {redacted(settings.redis_url)} needs redis-py, which is not installed "
            f"({exc.name or exc}): pip install 'plughost[cluster]', or remove [cluster] redis_url / --cluster"
        ) from None
    return RedisBackend.from_settings(settings)


def control_for(manager: PluginManager, *, grants: GrantStore | None, tasks: TaskOwner) -> ClusterControl | None:
    """What shares `manager`'s plugin settings, breakers and `grants` with the other hosts on its
    Redis backend (`plughost.cluster.control`); None when the manager's backend is not Redis."""
    if manager.backend.name != "redis":
        return None
    from plughost.cluster.control import ClusterControl
    from plughost.cluster.redis_backend import RedisBackend

    if not isinstance(manager.backend, RedisBackend):
        return None
    return ClusterControl(manager.backend, manager, grants=grants, tasks=tasks)


__all__ = ["ClusterSettings", "backend_for", "control_for"]
