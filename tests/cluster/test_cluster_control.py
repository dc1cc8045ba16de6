"""Several hosts as one bot (`plughost.cluster.control`): two (or three) real hosts, each with its
own workspace and management server, share one real redis-server. What one changes through its
management API — enabled, priority, configuration, grants, breaker isolation — the others apply;
a host started later adopts the cluster's state; a Redis outage leaves each host working alone
and the changes made meanwhile are shared when Redis is back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import tomllib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as redis

from plughost.cluster.control import ClusterControl
from plughost.host import Host
from plughost.manage.server import ManageServer
from plughost.manage.settings import ManageSettings
from plughost.sdk.models import EventType, PluginEvent
from plughost.sdk.permissions import PermissionId, PermitteeId
from tests.redis_server import RedisServer, free_port

WAIT_S = 10.0
PLUGIN = """
from plughost import Plugin, PluginContext

plugin = Plugin()

@plugin.on_enable
def on_enable(ctx: PluginContext) -> None:
    if (ctx.plugin_dir / "broken").exists():
        raise RuntimeError("broken on this host")

@plugin.method()
def ok() -> str:
    return "ok"

@plugin.method()
def boom() -> None:
    raise RuntimeError("kaboom")
"""
MANIFEST = """
id = "flaky"
version = "1.0.0"

[config_schema]
type = "object"
additionalProperties = false
[config_schema.properties.greeting]
type = "string"
minLength = 1
"""


def make_workspace(root: Path) -> Path:
    plugin = root / "plugins" / "flaky"
    plugin.mkdir(parents=True)
    (plugin / "plugin.toml").write_text(MANIFEST)
    (plugin / "plugin.py").write_text(PLUGIN)
    return root


class Node:
    """One host of the cluster with its management API client."""

    def __init__(self, host: Host, client: httpx.AsyncClient) -> None:
        self.host = host
        self.api = client

    @property
    def manager(self) -> Any:
        return self.host.manager

    def next_event(self, event_type: EventType, plugin_id: str = "flaky") -> asyncio.Future[PluginEvent]:
        """A future resolved by this host's next `event_type` event of `plugin_id`."""
        future: asyncio.Future[PluginEvent] = asyncio.get_running_loop().create_future()

        def handler(event: PluginEvent) -> None:
            if event.plugin_id == plugin_id and not future.done():
                future.set_result(event)
                self.manager.events.remove_handler(handler)

        self.manager.add_event_handler(handler, [event_type])
        return future

    def next_grant_change(self) -> asyncio.Future[tuple[bool, str, str]]:
        future: asyncio.Future[tuple[bool, str, str]] = asyncio.get_running_loop().create_future()
        permissions = self.host.commands.engine.permissions

        def listener(granted: bool, who: PermitteeId, what: PermissionId) -> None:
            if not future.done():
                future.set_result((granted, str(who), str(what)))
                permissions.grant_listeners.remove(listener)

        permissions.grant_listeners.append(listener)
        return future

    def state_file(self) -> dict[str, Any]:
        return tomllib.loads((self.host.workspace / "plugin-state.toml").read_text())


@contextlib.asynccontextmanager
async def node(root: Path, redis_url: str) -> AsyncIterator[Node]:
    host = Host(make_workspace(root) if not (root / "plugins").exists() else root, cluster_url=redis_url)
    server = host.add_adapter(ManageServer(host, ManageSettings.model_validate({"bind": "127.0.0.1:0"})))
    async with host:
        assert server.key is not None
        headers = {"Authorization": f"Bearer {server.key.value}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
            yield Node(host, client)


@contextlib.asynccontextmanager
async def cluster(tmp_path: Path, redis_url: str, size: int = 2) -> AsyncIterator[list[Node]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(node(tmp_path / f"node{n}", redis_url)) for n in range(size)]


async def seen(future: asyncio.Future[Any]) -> Any:
    return await asyncio.wait_for(future, WAIT_S)


async def until(host: Node, predicate: Callable[[ClusterControl], bool]) -> None:
    """Wait until `predicate(host's cluster control)` holds (checked after each of its changes)."""
    control = host.host.cluster
    assert control is not None
    await asyncio.wait_for(control.wait_until(lambda: predicate(control)), WAIT_S)


async def test_enable_and_disable_through_one_api_are_seen_by_the_other_host(
    tmp_path: Path, redis_server: RedisServer, record_property: Callable[[str, object], None]
) -> None:
    async with cluster(tmp_path, redis_server.url) as (a, b):
        assert b.manager.get_plugin("flaky").is_enabled
        disabled = b.next_event(EventType.DISABLE)
        started = time.perf_counter()
        response = await a.api.post("/api/v1/plugins/flaky/disable")
        assert response.status_code == 200 and response.json()["changed"] is True
        event = await seen(disabled)
        latency_ms = (time.perf_counter() - started) * 1000
        record_property("disable_seen_by_other_host_ms", round(latency_ms, 2))
        print(f"disable through node 0's API seen by node 1 after {latency_ms:.1f} ms")
        assert event.success and not b.manager.get_plugin("flaky").is_enabled
        assert b.state_file()["modules"] == {"flaky": False}  # each host keeps its plugin-state.toml

        enabled = a.next_event(EventType.ENABLE)
        started = time.perf_counter()
        assert (await b.api.post("/api/v1/plugins/flaky/enable")).json()["changed"] is True
        await seen(enabled)
        print(f"enable through node 1's API seen by node 0 after {(time.perf_counter() - started) * 1000:.1f} ms")
        assert a.manager.get_plugin("flaky").is_enabled and a.state_file()["modules"] == {"flaky": True}
        # no echo: each change was applied once on each host
        kinds = [
            e.event_type for e in a.manager.get_events("flaky") if e.event_type in (EventType.ENABLE, EventType.DISABLE)
        ]
        assert kinds == [EventType.ENABLE, EventType.DISABLE, EventType.ENABLE]


async def test_config_changes_propagate_and_an_invalid_one_is_refused_everywhere(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with cluster(tmp_path, redis_server.url) as (a, b):
        reconfigured = b.next_event(EventType.RECONFIGURE)
        response = await a.api.put("/api/v1/plugins/flaky/config", json={"greeting": "hej"})
        assert response.status_code == 200, response.text
        await seen(reconfigured)
        assert b.manager.get_config("flaky") == {"greeting": "hej"}
        assert tomllib.loads((b.host.workspace / "config" / "plugins" / "flaky.toml").read_text()) == {
            "greeting": "hej"
        }

        bad = await a.api.put("/api/v1/plugins/flaky/config", json={"greeting": ""})
        assert bad.status_code == 422 and "greeting" in bad.text
        assert a.host.cluster is not None and a.host.cluster.unshared == 0  # nothing to share
        async with redis.Redis.from_url(redis_server.url) as client:
            assert await client.hget("plughost:control", "config:flaky") == b'{"greeting":"hej"}'
        # refused before anything was shared: a later valid change is the next one the other host sees
        reconfigured = b.next_event(EventType.RECONFIGURE)
        assert (await a.api.patch("/api/v1/plugins/flaky/config", json={"greeting": "hallo"})).status_code == 200
        await seen(reconfigured)
        assert b.manager.get_config("flaky") == a.manager.get_config("flaky") == {"greeting": "hallo"}


async def test_a_plugin_isolated_on_one_host_is_isolated_on_all_and_a_clear_closes_both(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with cluster(tmp_path, redis_server.url) as (a, b):
        isolated = b.next_event(EventType.ISOLATE)
        for _ in range(3):
            result = (await a.api.post("/api/v1/plugins/flaky/execute", json={"method": "boom"})).json()
            assert result["success"] is False
        await seen(isolated)
        refused = await b.manager.execute("flaky", "ok")
        assert not refused.success and "isolated" in str(refused.error)
        assert b.manager.guard.snapshot("flaky")["breaker"]["state"] == "open"
        assert b.manager.get_plugin("flaky").state == "isolated"

        recovered = a.next_event(EventType.RECOVER)
        cleared = (await b.api.post("/api/v1/console", json={"command": "/dynamic-errors clear"})).json()
        assert cleared["ok"] and "flaky" in cleared["text"]
        await seen(recovered)
        for host in (a, b):
            assert host.manager.guard.snapshot("flaky")["breaker"]["state"] == "closed"
            assert (await host.manager.execute("flaky", "ok")).success


async def test_a_permission_granted_on_one_host_applies_on_the_other(tmp_path: Path, redis_server: RedisServer) -> None:
    who, what = PermitteeId.parse("u4242"), PermissionId.parse("flaky:command.ok")
    async with cluster(tmp_path, redis_server.url) as (a, b):
        granted = b.next_grant_change()
        response = await a.api.post("/api/v1/permissions/permit", json={"permittee": "u4242", "permission": str(what)})
        assert response.json()["changed"] == 1
        assert await seen(granted) == (True, "u4242", str(what))
        assert b.host.commands.engine.permissions.has(who, what)
        assert "u4242" in tomllib.loads((b.host.workspace / "permissions.toml").read_text())["grants"]

        revoked = a.next_grant_change()
        response = await b.api.post("/api/v1/permissions/cancel", json={"permittee": "u4242", "permission": str(what)})
        assert response.json()["changed"] == 1
        assert await seen(revoked) == (False, "u4242", str(what))
        assert not a.host.commands.engine.permissions.has(who, what)


async def test_a_host_started_later_adopts_the_cluster_state(tmp_path: Path, redis_server: RedisServer) -> None:
    who, what = PermitteeId.parse("u7"), PermissionId.parse("flaky:command.ok")
    async with cluster(tmp_path, redis_server.url, size=1) as (a,):
        await a.api.post("/api/v1/plugins/flaky/disable")
        a.manager.set_priority("flaky", 777)
        await a.api.put("/api/v1/plugins/flaky/config", json={"greeting": "moin"})
        await a.api.post("/api/v1/permissions/permit", json={"permittee": "u7", "permission": str(what)})
        await until(a, lambda control: control.unshared == 0)
        async with node(tmp_path / "late", redis_server.url) as late:
            plugin = late.manager.get_plugin("flaky")
            assert not plugin.is_enabled and plugin.priority == 777
            # it loaded disabled: never enabled, not even for a moment
            assert EventType.ENABLE not in [e.event_type for e in late.manager.get_events("flaky")]
            assert late.state_file()["modules"] == {"flaky": False}
            assert late.manager.get_config("flaky") == {"greeting": "moin"}
            assert late.host.commands.engine.permissions.has(who, what)


async def test_a_plugin_that_fails_to_enable_on_one_host_stays_enabled_on_the_others(
    tmp_path: Path, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with cluster(tmp_path, redis_server.url, size=1) as (a,):
        broken = make_workspace(tmp_path / "broken")
        (broken / "plugins" / "flaky" / "broken").touch()
        async with node(broken, redis_server.url) as b:
            assert not b.manager.get_plugin("flaky").is_enabled
            assert "broken on this host" in caplog.text
            reprioritised: asyncio.Future[str] = asyncio.get_running_loop().create_future()

            def on_change(what: str, plugin_id: str) -> None:
                if not reprioritised.done():
                    reprioritised.set_result(what)

            a.manager.change_listeners.append(on_change)
            b.manager.set_priority("flaky", 5)  # announced after anything b shared while loading
            assert await seen(reprioritised) == "priority"
            assert a.manager.get_plugin("flaky").priority == 5
            assert a.manager.get_plugin("flaky").is_enabled  # b's failure stayed b's


async def test_a_plugin_isolated_before_a_host_starts_is_isolated_there_too(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    async with cluster(tmp_path, redis_server.url, size=1) as (a,):
        for _ in range(3):
            await a.manager.execute("flaky", "boom")
        await until(a, lambda control: control.unshared == 0)
        async with node(tmp_path / "late", redis_server.url) as late:
            snapshot = late.manager.guard.snapshot("flaky")["breaker"]
            assert snapshot["state"] == "open" and snapshot["isolated_for_s"] > 0
            assert not (await late.manager.execute("flaky", "ok")).success


async def test_during_a_redis_outage_hosts_work_alone_and_resync_when_it_is_back(
    tmp_path: Path, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with cluster(tmp_path, redis_server.url) as (a, b):
        redis_server.stop()
        await until(a, lambda control: not control.connected)
        await until(b, lambda control: not control.connected)
        response = await a.api.post("/api/v1/plugins/flaky/disable")
        assert response.status_code == 200  # works on this host alone
        assert not a.manager.get_plugin("flaky").is_enabled and a.state_file()["modules"] == {"flaky": False}
        await until(a, lambda control: control.unshared == 1)
        status = (await a.api.post("/api/v1/console", json={"command": "/status"})).json()["text"]
        assert "Redis unreachable, working alone, 1 change(s) made here wait for Redis" in status
        assert b.manager.get_plugin("flaky").is_enabled
        await until(a, lambda control: "are shared when it is back" in caplog.text)
        assert "cluster: Redis at redis://127.0.0.1" in caplog.text

        disabled = b.next_event(EventType.DISABLE)
        redis_server.start()
        await seen(disabled)  # a shares what waited, b adopts it on reconnecting
        await until(a, lambda control: control.connected and control.unshared == 0)
        assert not b.manager.get_plugin("flaky").is_enabled and b.state_file()["modules"] == {"flaky": False}
        enabled = a.next_event(EventType.ENABLE)
        await b.api.post("/api/v1/plugins/flaky/enable")
        await seen(enabled)  # and announcements flow again


async def test_a_host_cannot_join_a_cluster_whose_redis_is_down(tmp_path: Path) -> None:
    host = Host(make_workspace(tmp_path), cluster_url=f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(Exception, match=r"cannot reach Redis at redis://127\.0\.0\.1"):
        await host.start()
    assert host.manager.list_plugins() == []  # nothing loaded on its own


async def test_every_host_serves_the_plugin_events_of_the_others(tmp_path: Path, redis_server: RedisServer) -> None:
    async with cluster(tmp_path, redis_server.url) as (a, b):
        assert a.host.cluster is not None and b.host.cluster is not None
        arrived: asyncio.Future[PluginEvent] = asyncio.get_running_loop().create_future()

        def on_remote(event: PluginEvent) -> None:
            if event.event_type is EventType.RELOAD and not arrived.done():
                arrived.set_result(event)

        b.host.cluster.history.remote_event_handlers.append(on_remote)
        assert (await a.api.post("/api/v1/plugins/flaky/reload")).status_code == 200
        event = await seen(arrived)
        assert event.plugin_id == "flaky" and event.metadata["node"] == a.host.cluster.node_id
        page = (await b.api.get("/api/v1/events", params={"plugin_id": "flaky", "types": "reload"})).json()
        assert [(e["type"], e["metadata"].get("node")) for e in page["events"]] == [("reload", a.host.cluster.node_id)]

        async with node(tmp_path / "late", redis_server.url) as late:  # takes the stream's backlog
            page = (await late.api.get("/api/v1/events", params={"plugin_id": "flaky", "types": "reload"})).json()
            assert [e["metadata"].get("node") for e in page["events"]] == [a.host.cluster.node_id]


async def test_malformed_announcements_and_fields_are_ignored_with_a_warning(
    tmp_path: Path, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with redis.Redis.from_url(redis_server.url) as client:
        await client.hset("plughost:control", mapping={"nonsense": "1", "enabled:flaky": "{not json"})
        async with cluster(tmp_path, redis_server.url) as (a, b):
            assert "ignored field b'nonsense' of plughost:control" in caplog.text
            assert "ignored field b'enabled:flaky' of plughost:control" in caplog.text
            assert b.manager.get_plugin("flaky").is_enabled  # started as its own files say
            await client.publish("plughost:control", "not json")
            await client.publish("plughost:control", json.dumps({"node": "elsewhere"}))
            disabled = b.next_event(EventType.DISABLE)
            await a.api.post("/api/v1/plugins/flaky/disable")
            await seen(disabled)  # b still follows the cluster
            assert (
                caplog.text.count("cluster: ignored a malformed announcement on plughost:control") == 2 * 2
            )  # each node
