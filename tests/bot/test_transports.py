"""All four OneBot v11 transports against the in-test implementation over loopback sockets."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import pytest
from websockets.exceptions import InvalidStatus

from plughost.adapters.onebot import OneBotAdapter, WsActionClient
from plughost.adapters.onebot.transports import COALESCED_BYTES, CoalescedServerConnection
from plughost.bot.config import BotConfig
from plughost.bot.dispatch import Dispatcher
from plughost.bot.errors import ActionFailed, ActionTimeout, BotDisconnected
from plughost.errors import ConfigError

from .conftest import LoadPlugin
from .directory import GuardedPlugins
from .onebot_impl import OneBotImpl, group_message, lifecycle, notice, private_message, request

PING_PONG = """
@plugin.route("message")
async def pong(ev: MessageEvent, bot: BotApi) -> Reply | None:
    if ev.plain_text() == "ping":
        await bot.send_private_msg(99, "queued")
        return Reply.of("pong")
    return None

@plugin.route("request", "Friend")
async def friend(ev: RequestEvent) -> Approve:
    return Approve("welcome")
"""


@pytest.fixture
async def impl() -> AsyncIterator[OneBotImpl]:
    implementation = OneBotImpl(token="s3cret")
    yield implementation
    await implementation.close()


# forward WebSocket -------------------------------------------------------------------------------
async def test_forward_ws_round_trip_and_reconnect(
    impl: OneBotImpl, plugins: tuple[GuardedPlugins, LoadPlugin]
) -> None:
    directory, load = plugins
    await load("pp", PING_PONG)
    port = await impl.serve_forward()
    config = BotConfig(
        id="fw", transport="ws-forward", endpoint=f"ws://127.0.0.1:{port}/", access_token="s3cret",
        reconnect_initial_s=0.05, reconnect_max_s=0.2,
    )  # fmt: skip
    async with Dispatcher(directory) as dispatcher, OneBotAdapter([config], dispatcher) as adapter:
        bot = adapter.forward["fw"]
        async with asyncio.timeout(5):
            await bot.connected.wait()
        await impl.wait_for(lambda: bool(impl.connections))
        await impl.push(group_message("ping", message_id=1))
        actions = await impl.wait_actions(2)
        assert [a["action"] for a in actions] == ["send_group_msg", "send_private_msg"]
        assert bot.client.self_id == impl.self_id  # learned from the lifecycle event

        # the implementation restarts on the same port: plughost reconnects by itself
        await impl.stop_forward()
        async with asyncio.timeout(5):
            await bot.disconnected.wait()
        with pytest.raises(BotDisconnected):
            await bot.client.get_status()
        await impl.serve_forward(port)
        await impl.wait_for(lambda: bool(impl.connections))
        async with asyncio.timeout(5):
            await bot.connected.wait()
        assert bot.connections == 2
        await impl.push(private_message("ping", message_id=2))
        actions = await impl.wait_actions(4)
        assert actions[2]["action"] == "send_private_msg" and actions[2]["params"]["user_id"] == 456


async def test_forward_ws_wrong_token_is_reported_and_retried(
    impl: OneBotImpl, plugins: tuple[GuardedPlugins, LoadPlugin], caplog: pytest.LogCaptureFixture
) -> None:
    port = await impl.serve_forward()
    config = BotConfig(
        id="fw", transport="ws-forward", endpoint=f"ws://127.0.0.1:{port}/", access_token="wrong",
        reconnect_initial_s=0.05, reconnect_max_s=0.1,
    )  # fmt: skip
    caplog.set_level(logging.WARNING, "plughost.adapters.onebot")
    async with Dispatcher(plugins[0]) as dispatcher, OneBotAdapter([config], dispatcher) as adapter:
        await impl.wait_for(lambda: impl.rejected_tokens >= 2)
        bot = adapter.forward["fw"]
        assert not bot.connected.is_set()
        assert bot.last_error == "HTTP 401 (check access_token)"
        assert "check access_token" in caplog.text


# reverse WebSocket -------------------------------------------------------------------------------
@pytest.fixture
async def reverse(plugins: tuple[GuardedPlugins, LoadPlugin]) -> AsyncIterator[tuple[OneBotAdapter, str]]:
    directory, load = plugins
    await load("pp", PING_PONG)
    config = BotConfig(id="rv", transport="ws-reverse", bind="127.0.0.1:0", access_token="s3cret", action_timeout_s=2)
    async with Dispatcher(directory) as dispatcher, OneBotAdapter([config], dispatcher) as adapter:
        yield adapter, f"ws://127.0.0.1:{adapter.ports['rv']}/onebot/v11/ws"


async def test_reverse_ws_rejects_wrong_token_and_duplicate_self_id(
    impl: OneBotImpl, reverse: tuple[OneBotAdapter, str]
) -> None:
    adapter, url = reverse
    with pytest.raises(InvalidStatus) as wrong:
        await impl.connect_reverse(url, token="nope")
    assert wrong.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as missing:
        await impl.connect_reverse(url)
    assert missing.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as bad_path:
        await impl.connect_reverse(url.replace("/onebot/v11/ws", "/elsewhere"), token="s3cret")
    assert bad_path.value.response.status_code == 404

    first = await impl.connect_reverse(url, token="s3cret")
    with pytest.raises(InvalidStatus) as duplicate:
        await impl.connect_reverse(url, token="s3cret")
    assert duplicate.value.response.status_code == 409
    assert b"already connected" in duplicate.value.response.body
    # a different account may connect to the same bot endpoint
    await impl.connect_reverse(url, token="s3cret", self_id=20002)
    async with asyncio.timeout(5):
        await adapter.dispatcher.wait_for_bot("rv:20002")
    assert set(adapter.dispatcher.lanes) == {"rv", "rv:20002"}

    await first.send(json.dumps(group_message("ping", message_id=7)))
    assert [a["action"] for a in await impl.wait_actions(2)] == ["send_group_msg", "send_private_msg"]
    assert adapter.dispatcher.lanes["rv:20002"].stats.answered == 0


async def test_reverse_ws_split_api_and_event_roles(impl: OneBotImpl, reverse: tuple[OneBotAdapter, str]) -> None:
    adapter, url = reverse
    api = await impl.connect_reverse(url, token="s3cret", role="API")
    events = await impl.connect_reverse(url, token="s3cret", role="Event")
    with pytest.raises(InvalidStatus) as duplicate:
        await impl.connect_reverse(url, token="s3cret", role="Universal")
    assert duplicate.value.response.status_code == 409
    await events.send(json.dumps(request("friend", user_id=5, flag="fl", comment="")))
    actions = await impl.wait_actions(1)
    assert actions[0] == {
        "action": "set_friend_add_request",
        "params": {"flag": "fl", "approve": True, "remark": "welcome"},
        "echo": actions[0]["echo"],
    }
    assert api in impl.connections
    assert adapter.reverse[0].connected("rv") == {"API", "Event"}


async def test_reverse_ws_bot_leaves_the_dispatcher_when_its_connection_ends(
    impl: OneBotImpl, reverse: tuple[OneBotAdapter, str]
) -> None:
    adapter, url = reverse
    dispatcher = adapter.dispatcher
    ws = await impl.connect_reverse(url, token="s3cret")
    async with asyncio.timeout(5):
        lane = await dispatcher.wait_for_bot("rv")
        await lane.wait_finished(1)  # the lifecycle event
    await ws.send(json.dumps(group_message("ping", message_id=1)))
    async with asyncio.timeout(5):
        await lane.wait_finished(2)
    workers = [t for t in asyncio.all_tasks() if t.get_name().startswith("bot:rv:worker")]
    assert workers
    await ws.close()
    _, running = await asyncio.wait(workers, timeout=5)  # the lane's workers end with its connection
    assert not running
    assert "rv" not in dispatcher.lanes and adapter.reverse[0].accounts == {}
    (row,) = dispatcher.status()  # its counters stay visible in /status
    assert (row["bot"], row["attached"], row["processed"], row["answered"]) == ("rv", False, 2, 1)
    assert any(line.startswith("bot rv (disconnected): 2 events") for line in dispatcher.status_lines())

    await impl.connect_reverse(url, token="s3cret")  # the bot comes back: a new lane, the same counters
    async with asyncio.timeout(5):
        again = await dispatcher.wait_for_bot("rv")
        await again.wait_finished(3)
    assert again is not lane
    assert [(r["bot"], r["attached"], r["processed"]) for r in dispatcher.status()] == [("rv", True, 3)]


async def test_bots_leave_the_dispatcher_when_the_adapter_stops(
    impl: OneBotImpl, plugins: tuple[GuardedPlugins, LoadPlugin]
) -> None:
    port = await impl.serve_forward()
    configs = [
        BotConfig(id="fw", transport="ws-forward", endpoint=f"ws://127.0.0.1:{port}/", access_token="s3cret"),
        BotConfig(id="web", transport="http", bind="127.0.0.1:0", endpoint="http://127.0.0.1:9"),
    ]
    async with Dispatcher(plugins[0]) as dispatcher:
        async with OneBotAdapter(configs, dispatcher) as adapter:
            async with asyncio.timeout(5):
                await adapter.forward["fw"].connected.wait()
            assert set(dispatcher.lanes) == {"fw", "web"}
        assert dispatcher.lanes == {}
        assert {(row["bot"], row["attached"]) for row in dispatcher.status()} == {("fw", False), ("web", False)}
        assert not [t for t in asyncio.all_tasks() if t.get_name().startswith(("bot:", "onebot:"))]


async def test_hundred_concurrent_actions_match_their_echo(
    impl: OneBotImpl, reverse: tuple[OneBotAdapter, str]
) -> None:
    adapter, url = reverse
    impl.custom["get_stranger_info"] = lambda p: {"status": "ok", "retcode": 0, "data": {"user_id": p["user_id"]}}
    await impl.connect_reverse(url, token="s3cret")
    async with asyncio.timeout(5):
        client = (await adapter.dispatcher.wait_for_bot("rv")).bot
    assert isinstance(client, WsActionClient)
    results = await asyncio.gather(*(client.get_stranger_info(n) for n in range(100)))
    assert [r["user_id"] for r in results] == list(range(100))
    assert client.pending == 0


async def test_failed_timeout_and_dropped_connection_are_typed_errors(
    impl: OneBotImpl, reverse: tuple[OneBotAdapter, str]
) -> None:
    adapter, url = reverse
    impl.custom["slow_thing"] = lambda p: None  # never answers
    impl.custom["crash_thing"] = lambda p: "drop"  # closes the connection mid-call
    await impl.connect_reverse(url, token="s3cret")
    async with asyncio.timeout(5):
        client = (await adapter.dispatcher.wait_for_bot("rv")).bot
    with pytest.raises(ActionFailed) as failed:
        await client.custom_action("no_such_action", x=1)
    assert failed.value.retcode == 1404 and "unknown action" in str(failed.value)
    pending = asyncio.ensure_future(client.call_action("slow_thing", {}, timeout=30))
    await impl.wait_actions(1, "slow_thing")
    short = asyncio.ensure_future(client.call_action("slow_thing", {}, timeout=0.2))
    await asyncio.wait({short}, timeout=20)  # one timer serves both: it moves to the earlier deadline
    assert short.done() and isinstance(short.exception(), ActionTimeout) and "within 0.2 s" in str(short.exception())
    assert not pending.done()
    with pytest.raises(BotDisconnected, match="dropped while the call was in flight"):
        async with asyncio.timeout(5):
            await asyncio.gather(client.call_action("crash_thing", {}, timeout=30), pending)
    assert pending.done() and isinstance(pending.exception(), BotDisconnected)
    with pytest.raises(BotDisconnected, match="not connected"):
        await client.get_login_info()


# HTTP POST in, HTTP API out ----------------------------------------------------------------------
@pytest.fixture
async def http_bot(
    impl: OneBotImpl, plugins: tuple[GuardedPlugins, LoadPlugin]
) -> AsyncIterator[tuple[OneBotAdapter, str]]:
    directory, load = plugins
    await load("pp", PING_PONG)
    api_port = await impl.serve_http_api()
    config = BotConfig(
        id="web", transport="http", bind="127.0.0.1:0", endpoint=f"http://127.0.0.1:{api_port}",
        access_token="s3cret", secret="hmac-key",
    )  # fmt: skip
    async with Dispatcher(directory) as dispatcher, OneBotAdapter([config], dispatcher) as adapter:
        yield adapter, f"http://127.0.0.1:{adapter.ports['web']}/onebot/v11/http"


async def test_http_post_quick_operation_and_api_actions(impl: OneBotImpl, http_bot: tuple[OneBotAdapter, str]) -> None:
    adapter, url = http_bot
    reply = await impl.post_event(url, group_message("ping", message_id=1), secret="hmac-key")
    assert reply.status_code == 200
    pong = [{"type": "text", "data": {"text": "pong"}}]
    assert reply.json() == {"reply": pong, "auto_escape": False, "at_sender": False}
    # the proactive send went out over the HTTP API with the Bearer token
    actions = await impl.wait_actions(1)
    assert actions[0] == {"action": "send_private_msg", "params": {"user_id": 99, "message": [
        {"type": "text", "data": {"text": "queued"}}], "auto_escape": False}}  # fmt: skip
    friend = await impl.post_event(url, request("friend", user_id=3, flag="x"), secret="hmac-key")
    assert friend.json() == {"approve": True, "remark": "welcome"}
    nothing = await impl.post_event(url, lifecycle(10001), secret="hmac-key")
    assert nothing.status_code == 204
    client = adapter.dispatcher.lanes["web"].bot
    assert (await client.get_login_info())["user_id"] == impl.self_id
    with pytest.raises(ActionFailed) as unknown:
        await client.custom_action("nope")
    assert unknown.value.retcode == 1404


async def test_http_post_signature_is_verified(impl: OneBotImpl, http_bot: tuple[OneBotAdapter, str]) -> None:
    adapter, url = http_bot
    lane = adapter.dispatcher.lanes["web"]
    missing = await impl.post_event(url, group_message("ping", message_id=1))
    assert missing.status_code == 401 and "X-Signature header missing" in missing.text
    wrong = await impl.post_event(url, group_message("ping", message_id=2), secret="other-key")
    assert wrong.status_code == 403 and "does not match" in wrong.text
    forged = await impl.post_event(url, group_message("ping", message_id=3), signature="sha1=00")
    assert forged.status_code == 403
    assert lane.stats.received == 0 and impl.actions == []
    garbage = await impl.post_event(url, {"post_type": "message", "user_id": "abc"}, secret="hmac-key")
    assert garbage.status_code == 400 and "user_id" in garbage.text


async def test_http_api_wrong_token_is_a_typed_error(
    impl: OneBotImpl, plugins: tuple[GuardedPlugins, LoadPlugin]
) -> None:
    api_port = await impl.serve_http_api()
    config = BotConfig(id="web", transport="http", bind="127.0.0.1:0", endpoint=f"http://127.0.0.1:{api_port}",
                       access_token="wrong")  # fmt: skip
    async with Dispatcher(plugins[0]) as dispatcher, OneBotAdapter([config], dispatcher):
        with pytest.raises(ActionFailed, match="access token was rejected"):
            await dispatcher.lanes["web"].bot.get_status()


async def test_several_bots_at_once_and_config_errors(
    impl: OneBotImpl, plugins: tuple[GuardedPlugins, LoadPlugin]
) -> None:
    directory, load = plugins
    await load("pp", PING_PONG)
    port = await impl.serve_forward()
    other = OneBotImpl(self_id=30003)
    configs = [
        BotConfig(id="a", transport="ws-forward", endpoint=f"ws://127.0.0.1:{port}/", access_token="s3cret"),
        BotConfig(id="b", transport="ws-reverse", bind="127.0.0.1:0", access_token="t-b"),
        BotConfig(id="c", transport="ws-reverse", bind="127.0.0.1:0", path="/c", access_token="t-c"),
        BotConfig(id="off", transport="ws-reverse", bind="127.0.0.1:0", enabled=False),
    ]
    async with Dispatcher(directory) as dispatcher, OneBotAdapter(configs, dispatcher) as adapter:
        await other.connect_reverse(f"ws://127.0.0.1:{adapter.ports['b']}/onebot/v11/ws", token="t-b")
        with pytest.raises(InvalidStatus):  # c's token does not open b
            await other.connect_reverse(f"ws://127.0.0.1:{adapter.ports['c']}/c", token="t-b", self_id=1)
        async with asyncio.timeout(5):
            await dispatcher.wait_for_bot("b")
            await adapter.forward["a"].connected.wait()
        await other.push(private_message("ping", message_id=1, self_id=30003))
        assert (await other.wait_actions(2))[0]["action"] == "send_private_msg"
        assert "off" not in adapter.ports
        assert {row["bot"] for row in adapter.status()} == {"a", "b", "c"}
    await other.close()
    with pytest.raises(ConfigError, match="ids must be unique"):
        OneBotAdapter([configs[1], configs[1]], Dispatcher(directory))
    with pytest.raises(ValueError, match="needs bind"):
        BotConfig(id="x", transport="ws-reverse")
    with pytest.raises(ValueError, match="bind must be"):
        BotConfig(id="x", transport="http", bind="nowhere", endpoint="http://x")


async def test_overload_on_the_wire_sheds_before_parsing_and_counts_everything(
    impl: OneBotImpl, plugins: tuple[GuardedPlugins, LoadPlugin]
) -> None:
    import sys

    directory, load = plugins
    handle = await load("slow", """
        import asyncio
        gate = asyncio.Event()

        @plugin.route("notice", "GroupUpload")
        async def slow(ev: NoticeEvent) -> Reply:
            await gate.wait()
            return Reply.of(f"done {ev.user_id}")
    """)  # fmt: skip
    config = BotConfig(id="rv", transport="ws-reverse", bind="127.0.0.1:0", max_in_flight=1, queue_size=2)
    async with Dispatcher(directory) as dispatcher, OneBotAdapter([config], dispatcher) as adapter:
        ws = await impl.connect_reverse(f"ws://127.0.0.1:{adapter.ports['rv']}/onebot/v11/ws")
        async with asyncio.timeout(5):
            lane = await dispatcher.wait_for_bot("rv")
            await lane.wait_finished(1)  # the lifecycle event
        for n in range(12):
            await ws.send(json.dumps(notice("group_upload", group_id=1, user_id=n)))
        async with asyncio.timeout(5):
            await lane.wait_finished(1 + 9)  # at most 3 are held (1 in flight, 2 queued): the rest is shed
        shed = lane.stats.shed
        assert shed in (9, 10)  # 10 when the worker had not yet taken the first event off the queue
        assert lane.status()["shed"] == shed
        sys.modules[handle.package].gate.set()
        async with asyncio.timeout(5):
            await lane.wait_finished(13)
        assert lane.stats.received == 13 == lane.stats.processed + lane.stats.shed
        assert len(await impl.wait_actions(12 - shed)) == 12 - shed
        assert any(line.startswith("bot rv:") and f"{shed} shed" in line for line in dispatcher.status_lines())


async def test_frames_of_a_long_iteration_leave_in_coalesced_writes_while_it_goes_on() -> None:
    """Frames sent within one loop iteration are written whenever `COALESCED_BYTES` of them have
    gathered: neither one write per frame nor all of them held back until the iteration ends."""
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    frame = b'{"pad": "' + b"x" * 1000 + b'"}'
    count = 3 * COALESCED_BYTES // len(frame) + 1
    written_within_the_iteration: list[int] = []

    async def handler(ws: CoalescedServerConnection) -> None:
        write, sizes = ws.transport.write, []
        ws.transport.write = lambda data: (sizes.append(len(data)), write(data))[-1]
        for _ in range(count):
            await ws.send_text_frame(frame)  # does not suspend on an open connection
        written_within_the_iteration.extend(sizes)
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, create_connection=CoalescedServerConnection) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", compression=None) as client:
            received = [await asyncio.wait_for(client.recv(decode=False), 5) for _ in range(count)]
    assert received == [frame] * count  # all of them, in order
    assert len(written_within_the_iteration) >= 2
    assert all(size >= COALESCED_BYTES for size in written_within_the_iteration)
