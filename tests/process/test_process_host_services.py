"""The host's bus and state for go-plugin process plugins: the real Go kv example (examples/go/kv,
using sdk/go's plughost/hostapi over go-plugin's broker) under a real plugin manager."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from plughost import PluginManager
from plughost.runtime import default_runtimes
from plughost.runtime.proto.plughost_host_v1 import host_services_pb2 as host_pb
from plughost.runtime.proto.plughost_host_v1 import host_services_pb2_grpc as host_grpc

LISTENER = """
import asyncio
from typing import Any
from plughost.sdk import Plugin, PluginContext

plugin = Plugin()
received: asyncio.Queue = asyncio.Queue()


@plugin.subscribe("kv.*")
async def on_kv(data: Any, topic: str, sender: str) -> None:
    await received.put([topic, data, sender])


@plugin.method("next")
async def next_message() -> list:
    return await asyncio.wait_for(received.get(), 10)


@plugin.method("publish")
async def publish(ctx: PluginContext, topic: str, data: Any) -> int:
    return await ctx.bus.publish(topic, data)


@plugin.method("request")
async def request(ctx: PluginContext, topic: str, data: Any) -> Any:
    try:
        return await ctx.bus.request(topic, data, timeout=10)
    except Exception as exc:
        return {"error": type(exc).__name__, "message": str(exc)}
"""
ManagerFactory = Callable[..., Any]


@pytest.fixture
async def kv_manager(workspace: Path, write_plugin: Any, go_plugins: dict[str, Path]) -> AsyncIterator[ManagerFactory]:
    """`await kv_manager(grant_state=...)`: a manager with the built kv plugin and a Python listener."""
    managers: list[PluginManager] = []

    async def start(*, grant_state: bool = False) -> PluginManager:
        target = workspace / "plugins" / "kv"
        shutil.copytree(go_plugins["kv"], target)
        if grant_state:
            with (target / "plugin.toml").open("a") as manifest:
                manifest.write('\n[permissions]\nstate = ["shared.kv"]\n')
        write_plugin("listener", LISTENER, manifest_extra='[permissions]\ntopics = ["kv.*"]\n')
        manager = PluginManager(workspace, runtimes=default_runtimes())
        managers.append(manager)
        await manager.__aenter__()
        await manager.discover_and_load_all()
        for plugin_id in ("kv", "listener"):
            instance = manager.get_plugin(plugin_id)
            assert instance is not None and instance.handle is not None, manager.list()
        return manager

    yield start
    for manager in managers:
        await manager.__aexit__(None, None, None)


async def execute(manager: PluginManager, method: str, args: dict[str, Any] | None = None) -> Any:
    outcome = await manager.execute("kv", method, args or {})
    assert outcome.success, outcome.error
    return outcome.result


def kv_handle(manager: PluginManager) -> Any:
    instance = manager.get_plugin("kv")
    assert instance is not None
    return instance.handle


async def test_go_plugin_counts_in_state_and_publishes_to_a_python_subscriber(kv_manager: ManagerFactory) -> None:
    manager = await kv_manager()

    async def next_message() -> Any:
        outcome = await manager.execute("listener", "next", {})
        assert outcome.success, outcome.error
        return outcome.result

    assert await execute(manager, "put", {"key": "a", "value": "1"}) == {"stored": "a", "puts": 1.0}
    assert await execute(manager, "put", {"key": "b", "value": "2"}) == {"stored": "b", "puts": 2.0}
    assert await next_message() == ["kv.stored", {"key": "a", "value": "1"}, "kv"]
    assert await next_message() == ["kv.stored", {"key": "b", "value": "2"}, "kv"]

    view = manager.state_store.view("kv")  # the Go plugin's own namespace, in the host
    assert await view.get_all() == {"puts": 2}
    await view.set("puts", 40)  # and the other way: the in-process API → the Go plugin
    assert await execute(manager, "stats") == {"puts": 40.0}
    assert await execute(manager, "put", {"key": "c", "value": "3"}) == {"stored": "c", "puts": 41.0}


async def test_bus_handlers_declared_in_the_manifest_serve_a_jank_plugin(kv_manager: ManagerFactory) -> None:
    """kv speaks Jank's protocol, which cannot declare subscriptions: its plugin.toml does."""
    manager = await kv_manager()

    async def listener(method: str, **args: Any) -> Any:
        outcome = await manager.execute("listener", method, args)
        assert outcome.success, outcome.error
        return outcome.result

    assert ("kv", "kv.put", "on_put") in manager.bus.subscriptions("kv")
    assert await listener("publish", topic="kv.put", data={"key": "a", "value": "1"}) == 2  # kv and the listener
    assert await listener("next") == ["kv.put", {"key": "a", "value": "1"}, "listener"]
    assert await listener("next") == ["kv.stored", {"key": "a", "value": "1"}, "kv"]  # kv's on_put ran
    assert await listener("request", topic="kv.lookup", data={"key": "a"}) == {"value": "1", "found": True}
    assert await listener("request", topic="kv.lookup", data={"key": "zz"}) == {"value": "", "found": False}

    refused = await listener("request", topic="kv.lookup", data=["not", "an", "object"])
    assert refused["error"] == "BusRequestError", refused
    assert "request on 'kv.lookup' failed in plugin 'kv'" in refused["message"]
    assert 'lookup: the message\'s data needs a "key" string' in refused["message"], refused
    assert await execute(manager, "get", {"key": "a"}) == {"value": "1"}, "the store is as it was"
    assert await manager.state_store.view("kv").get_all() == {"puts": 1}


@pytest.mark.parametrize(
    ("manifest", "error"),
    [
        ('[[subscriptions]]\ntopic = "weather.today"\nhandler = "on_put"\n', "weather.today"),
        ('[[subscriptions]]\ntopic = "kv..put"\nhandler = "on_put"\n', "kv..put"),
        ('[[subscriptions]]\ntopic = "kv.put"\nhandler = "on_put"\nmode = "always"\n', "mode"),
        ('[[subscriptions]]\ntopic = "kv.put"\n', "handler"),
    ],
    ids=["topic not granted", "malformed topic", "unknown mode", "no handler"],
)
async def test_bad_declared_subscriptions_refuse_the_plugin_and_name_the_problem(
    workspace: Path, go_plugins: dict[str, Path], manifest: str, error: str
) -> None:
    target = workspace / "plugins" / "kv"
    shutil.copytree(go_plugins["kv"], target)
    toml = target / "plugin.toml"
    toml.write_text(toml.read_text().split("# Jank's protocol cannot")[0] + manifest)
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        [row] = [row for row in manager.list() if row["id"] == "kv"]
        problem = row.get("error") or " ".join(row.get("errors", ()))  # a load error / an invalid manifest
        assert (row["state"] == "error" or row["status"] == "invalid") and error in problem, row
        assert manager.bus.subscriptions("kv") == [], "nothing of the refused plugin stays subscribed"


@pytest.mark.parametrize("granted", [False, True])
async def test_shared_namespace_needs_the_state_permission(kv_manager: ManagerFactory, granted: bool) -> None:
    manager = await kv_manager(grant_state=granted)
    outcome = await manager.execute("kv", "share", {"namespace": "shared.kv", "key": "k", "value": "v"})
    if granted:
        assert outcome.success, outcome.error
        assert await manager.state_store.aget_all(("shared", "shared.kv")) == {"k": "v"}
        return
    assert not outcome.success
    message = str(outcome.error)
    assert "shared.kv" in message and "kv" in message and "\n" not in message, message
    assert "may not use shared state namespace 'shared.kv'" in message and "[permissions] state" in message
    assert await manager.state_store.aget_all(("shared", "shared.kv")) == {}, "nothing was written"


async def test_bad_operations_get_one_line_errors_and_change_nothing(kv_manager: ManagerFactory) -> None:
    manager = await kv_manager()
    await execute(manager, "put", {"key": "a", "value": "1"})
    address = kv_handle(manager).info()["host_services"]
    before = await manager.state_store.view("kv").get_all()
    async with grpc.aio.insecure_channel(f"unix:{address}") as channel:
        stub = host_grpc.HostServicesStub(channel)

        async def call(operation: str, params: bytes) -> Any:
            return await stub.Call(host_pb.CallRequest(operation=operation, params_json=params), timeout=10)

        cases = {
            ("state.nope", b"{}"): ("unknown_operation", "unknown host operation 'state.nope'"),
            ("state.set", b"{not json"): ("invalid_request", "state.set: params_json is not JSON"),
            ("state.set", b"[1, 2]"): ("invalid_request", "must be a JSON object, not list"),
            ("state.incr", b'{"key": "puts", "amount": "lots"}'): ("invalid_request", "amount must be an integer"),
            ("state.set", b'{"value": 1}'): ("invalid_request", "'key' must be a non-empty string"),
            ("bus.publish", b'{"topic": "secret.plans"}'): ("access_denied", "secret.plans"),
        }
        for (operation, params), (code, text) in cases.items():
            answer = await call(operation, params)
            assert answer.HasField("error") and not answer.result_json, operation
            assert answer.error.code == code and text in answer.error.message, answer.error
            assert "\n" not in answer.error.message
        assert (await call("state.get", b'{"key": "puts"}')).result_json == b"1"
    assert await manager.state_store.view("kv").get_all() == before


async def test_restarted_plugin_gets_a_new_listener_and_the_old_socket_goes(kv_manager: ManagerFactory) -> None:
    from conftest import Events

    manager = await kv_manager()
    handle = kv_handle(manager)
    events = Events()
    handle.add_listener(events)
    assert await execute(manager, "put", {"key": "a", "value": "1"}) == {"stored": "a", "puts": 1.0}
    old = handle.info()
    assert Path(old["host_services"]).exists()
    os.kill(old["pid"], signal.SIGKILL)
    await events.wait_for("restarted")
    new = handle.info()
    assert new["pid"] != old["pid"] and new["host_services"] != old["host_services"]
    assert not Path(old["host_services"]).exists(), "the dead process's host socket was removed"
    assert await execute(manager, "put", {"key": "b", "value": "2"}) == {"stored": "b", "puts": 2.0}
    sockets = [p.name for p in Path(new["host_services"]).parent.iterdir() if p.name.startswith("host")]
    assert sockets == [Path(new["host_services"]).name], "one host socket per running plugin process"


async def test_unload_stops_the_server_and_removes_its_socket(kv_manager: ManagerFactory) -> None:
    manager = await kv_manager()
    address = kv_handle(manager).info()["host_services"]
    assert await execute(manager, "put", {"key": "a", "value": "1"}) == {"stored": "a", "puts": 1.0}
    await manager.unload_plugin("kv")
    assert not Path(address).exists()
    async with grpc.aio.insecure_channel(f"unix:{address}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await host_grpc.HostServicesStub(channel).Call(host_pb.CallRequest(operation="state.get_all"), timeout=2)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_not_offered_without_bus_and_state_or_with_auto_mtls(
    go_plugins: dict[str, Path], start_process: Any, workspace: Path, write_plugin: Any
) -> None:
    from process_support import call_value

    plain = await start_process(go_plugins["kv"])  # a runtime without bus and state
    assert "host_services" not in plain.info()
    assert await call_value(plain, "put", {"key": "a", "value": "1"}) == {"stored": "a"}, "hostapi.Offered() is false"
    target = workspace / "plugins" / "kv"
    shutil.copytree(go_plugins["kv"], target)
    manifest = target / "plugin.toml"
    manifest.write_text("auto_mtls = true\n" + manifest.read_text())  # before its [handshake] table
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        await manager.discover_and_load_all()
        handle = kv_handle(manager)
        assert handle.info()["tls"] is True and "host_services" not in handle.info()
        outcome = await manager.execute("kv", "stats", {})
        assert not outcome.success
        assert "the host offers no host services to this plugin" in str(outcome.error)
        assert "PLUGHOST_HOST_SERVICE_ID is not set" in str(outcome.error)
