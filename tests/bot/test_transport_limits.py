"""Bad input on the wire: every transport drops what it cannot read, answers the sender clearly,
counts it in `/status`, and keeps serving everything else on the same link."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.protocol import State

from plughost.adapters.onebot import OneBotAdapter
from plughost.bot.config import BotConfig
from plughost.bot.dispatch import Dispatcher

from .conftest import LoadPlugin
from .directory import GuardedPlugins
from .onebot_impl import OneBotImpl, group_message

PING_PONG = """
@plugin.route("message")
async def pong(ev: MessageEvent) -> Reply | None:
    return Reply.of(f"pong {ev.message_id}") if ev.plain_text() == "ping" else None
"""

BAD_MESSAGES: list[Any] = [{}, [{}], [1, 2], 12345, True, [{"type": "text", "data": [1]}], ["text"], [[{"type": "x"}]]]


def event_frame(message_json: str, message_id: int) -> str:
    """A group message event whose `message` is the given raw JSON text (which may be anything)."""
    head = json.dumps(group_message("placeholder", message_id=message_id))
    return head.replace('"message": "placeholder"', f'"message": {message_json}', 1)


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def bad_frames() -> list[str]:
    """Malformed input as it may arrive on a link; each is dropped and counted as one malformed frame."""
    frames = [event_frame(json.dumps(message), 100 + n) for n, message in enumerate(BAD_MESSAGES)]
    frames.append(event_frame(deep(100_000), 200))  # past the JSON parser's recursion limit
    frames.append(event_frame(deep(500), 201))  # parses, but nested past the bot's max_nesting
    frames.append('{"post_type": "message", "message_type": "group", "message":')  # not JSON
    frames.append("[1, 2, 3]")  # JSON, not an object
    frames.append(event_frame('"ping"', 202).replace('"user_id": 456', '"user_id": ' + "1" * 5000))  # int() refuses
    frames.append(event_frame('"ping"', 203).replace('"user_id": 456', '"user_id": "' + "1" * 5000 + '"'))
    # a group message without its group: answered, the reply would go to the sender in private
    frames.append(event_frame('"ping"', 204).replace('"group_id": 123', '"group_id": null'))
    frames.append(event_frame('"ping"', 205).replace('"group_id": 123', '"group_id": 0'))
    return frames


def pong_texts(actions: list[dict[str, Any]]) -> set[str]:
    return {a["params"]["message"][0]["data"]["text"] for a in actions if a["action"] == "send_group_msg"}


@pytest.fixture
async def impl() -> AsyncIterator[OneBotImpl]:
    implementation = OneBotImpl(token="s3cret")
    yield implementation
    await implementation.close()


# WebSockets ---------------------------------------------------------------------------------------
async def test_reverse_ws_drops_malformed_events_and_keeps_the_link(
    impl: OneBotImpl, plugins: tuple[GuardedPlugins, LoadPlugin]
) -> None:
    directory, load = plugins
    await load("pp", PING_PONG)
    config = BotConfig(id="rv", transport="ws-reverse", bind="127.0.0.1:0", access_token="s3cret")
    async with Dispatcher(directory) as dispatcher, OneBotAdapter([config], dispatcher) as adapter:
        ws = await impl.connect_reverse(f"ws://127.0.0.1:{adapter.ports['rv']}/onebot/v11/ws", token="s3cret")
        async with asyncio.timeout(5):
            lane = await dispatcher.wait_for_bot("rv")
        frames = bad_frames()
        for n, frame in enumerate(frames):
            await ws.send(frame)
            await ws.send(json.dumps(group_message("ping", message_id=n + 1)))  # the event after it is answered
        actions = await impl.wait_actions(len(frames))
        assert pong_texts(actions) == {f"pong {n + 1}" for n in range(len(frames))}
        assert ws.state is State.OPEN and ws.close_code is None
        assert lane.stats.malformed == len(frames)
        assert lane.status()["malformed"] == len(frames)
        assert any(f"{len(frames)} malformed" in line for line in dispatcher.status_lines())
        assert adapter.reverse[0].connected("rv") == {"Universal"}


async def test_forward_ws_drops_malformed_events_and_keeps_the_link(
    impl: OneBotImpl, plugins: tuple[GuardedPlugins, LoadPlugin]
) -> None:
    directory, load = plugins
    await load("pp", PING_PONG)
    port = await impl.serve_forward()
    config = BotConfig(id="fw", transport="ws-forward", endpoint=f"ws://127.0.0.1:{port}/", access_token="s3cret")
    async with Dispatcher(directory) as dispatcher, OneBotAdapter([config], dispatcher) as adapter:
        bot = adapter.forward["fw"]
        async with asyncio.timeout(5):
            await bot.connected.wait()
        await impl.wait_for(lambda: bool(impl.connections))
        (link,) = impl.connections
        frames = bad_frames()
        for n, frame in enumerate(frames):
            await link.send(frame)
            await link.send(json.dumps(group_message("ping", message_id=n + 1)))
        actions = await impl.wait_actions(len(frames))
        assert pong_texts(actions) == {f"pong {n + 1}" for n in range(len(frames))}
        assert bot.connections == 1 and bot.connected.is_set() and impl.connections == [link]
        assert dispatcher.lanes["fw"].status()["malformed"] == len(frames)


async def test_reverse_ws_account_sending_garbage_then_leaving_leaves_no_lane(
    impl: OneBotImpl, plugins: tuple[GuardedPlugins, LoadPlugin]
) -> None:
    directory, load = plugins
    await load("pp", PING_PONG)
    config = BotConfig(id="rv", transport="ws-reverse", bind="127.0.0.1:0", access_token="s3cret")
    async with Dispatcher(directory) as dispatcher, OneBotAdapter([config], dispatcher) as adapter:
        url = f"ws://127.0.0.1:{adapter.ports['rv']}/onebot/v11/ws"
        await impl.connect_reverse(url, token="s3cret")
        garbage = await impl.connect_reverse(url, token="s3cret", self_id=20002)
        async with asyncio.timeout(5):
            lane = await dispatcher.wait_for_bot("rv:20002")
        for frame in bad_frames():
            await garbage.send(frame)
        await garbage.send(json.dumps(group_message("ping", message_id=1, self_id=20002)))
        await impl.wait_actions(1)  # every frame before it was read
        workers = [t for t in asyncio.all_tasks() if t.get_name().startswith("bot:rv:20002:worker")]
        assert workers
        await garbage.close()
        _, running = await asyncio.wait(workers, timeout=5)  # the lane's workers end with its connection
        assert not running
        assert set(dispatcher.lanes) == {"rv"} and set(adapter.reverse[0].accounts) == {("rv", 10001)}
        assert lane.attached is False and lane.stats.malformed == len(bad_frames())


@pytest.mark.parametrize(
    ("self_id", "expected"),
    [
        ("²", "ASCII digits"),  # str.isdigit() accepts it; int() does not
        ("1²3", "ASCII digits"),
        ("1" * 5000, "at most 20"),  # past int()'s digit limit
        ("1" * 21, "at most 20"),
        ("", "missing"),
        ("-5", "ASCII digits"),
    ],
)
async def test_reverse_ws_rejects_a_bad_self_id_with_400(
    impl: OneBotImpl, plugins: tuple[GuardedPlugins, LoadPlugin], self_id: str, expected: str
) -> None:
    directory, load = plugins
    await load("pp", PING_PONG)
    config = BotConfig(id="rv", transport="ws-reverse", bind="127.0.0.1:0", access_token="s3cret")
    async with Dispatcher(directory) as dispatcher, OneBotAdapter([config], dispatcher) as adapter:
        url = f"ws://127.0.0.1:{adapter.ports['rv']}/onebot/v11/ws"
        headers = {"Authorization": "Bearer s3cret", "X-Self-ID": self_id}
        with pytest.raises(InvalidStatus) as refused:
            await connect(url, additional_headers=headers, proxy=None, compression=None)
        response = refused.value.response
        assert response.status_code == 400
        assert b"X-Self-ID" in response.body and expected.encode() in response.body
        assert len(response.body) < 300  # the value is not echoed back in full
        assert adapter.reverse[0].rejected == {400: 1} and dispatcher.lanes == {}
        # the endpoint still serves a well-formed connection
        ws = await impl.connect_reverse(url, token="s3cret")
        await ws.send(json.dumps(group_message("ping", message_id=1)))
        assert pong_texts(await impl.wait_actions(1)) == {"pong 1"}


# HTTP POST ------------------------------------------------------------------------------------------
SECRET = "hmac-key"
LIMIT = 256 * 1024


def sign(body: bytes) -> str:
    return "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()


@pytest.fixture
async def http_url(impl: OneBotImpl, plugins: tuple[GuardedPlugins, LoadPlugin]) -> AsyncIterator[tuple[str, Any]]:
    directory, load = plugins
    await load("pp", PING_PONG)
    api_port = await impl.serve_http_api()
    config = BotConfig(
        id="web", transport="http", bind="127.0.0.1:0", endpoint=f"http://127.0.0.1:{api_port}",
        access_token="s3cret", secret=SECRET, max_body_bytes=LIMIT,
    )  # fmt: skip
    async with Dispatcher(directory) as dispatcher, OneBotAdapter([config], dispatcher) as adapter:
        yield f"http://127.0.0.1:{adapter.ports['web']}/onebot/v11/http", dispatcher.lanes["web"]


async def post(url: str, body: bytes, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(trust_env=False) as http:
        return await http.post(url, content=body, headers={"Content-Type": "application/json", **headers}, timeout=30)


async def test_http_malformed_events_are_400_and_counted(http_url: tuple[str, Any]) -> None:
    url, lane = http_url
    frames = bad_frames()
    assert all(len(frame) <= LIMIT for frame in frames)
    for n, frame in enumerate(frames):
        body = frame.encode()
        refused = await post(url, body, **{"X-Signature": sign(body)})
        assert refused.status_code == 400, frame[:80]
        assert refused.json()["error"]
        ping = json.dumps(group_message("ping", message_id=n + 1)).encode()
        answered = await post(url, ping, **{"X-Signature": sign(ping)})
        assert answered.status_code == 200
        assert answered.json()["reply"] == [{"type": "text", "data": {"text": f"pong {n + 1}"}}]
    assert lane.status()["malformed"] == len(frames)
    assert lane.stats.processed == len(frames)


class Streamed:
    """A large request body sent in chunks; counts how much of it the server made the client send."""

    def __init__(self, total: int, chunk: int = 64 * 1024) -> None:
        self.total = total
        self.chunk = b"x" * chunk
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        while self.sent < self.total:
            self.sent += len(self.chunk)
            yield self.chunk


async def stream(url: str, body: Streamed, **headers: str) -> httpx.Response:
    """POST a streamed body with httpx's blocking client (in a thread, the server runs on this loop).

    A server that answers before reading the body closes the connection, so the client's upload
    fails; clients that read the answer anyway (curl, Go's net/http, Node, blocking httpx) get it.
    httpx's asyncio transport closes the socket on the failed write, discarding the answer.
    """

    def post() -> httpx.Response:
        with httpx.Client(trust_env=False) as http:
            return http.post(url, content=body, headers=headers, timeout=30)

    return await asyncio.to_thread(post)


HUNDRED_MB = 100 * 2**20


async def test_http_unsigned_huge_body_is_refused_before_it_is_read(http_url: tuple[str, Any]) -> None:
    url, lane = http_url
    body = Streamed(HUNDRED_MB)
    refused = await stream(url, body, **{"Content-Length": str(HUNDRED_MB)})
    assert refused.status_code == 401 and "X-Signature" in refused.json()["error"]
    assert body.sent < HUNDRED_MB // 2  # the server answered without reading the body
    chunked = Streamed(HUNDRED_MB)  # no Content-Length: chunked transfer encoding
    assert (await stream(url, chunked)).status_code == 401
    assert chunked.sent < HUNDRED_MB // 2
    malformed_signature = Streamed(HUNDRED_MB)
    assert (await stream(url, malformed_signature, **{"X-Signature": "md5=abc"})).status_code == 403
    assert malformed_signature.sent < HUNDRED_MB // 2
    assert lane.stats.received == 0


async def test_http_body_over_max_body_bytes_is_413(http_url: tuple[str, Any]) -> None:
    url, lane = http_url
    signature = {"X-Signature": "sha1=" + "0" * 40}  # well-formed: only the body could tell it is wrong
    declared = Streamed(HUNDRED_MB)
    refused = await stream(url, declared, **signature, **{"Content-Length": str(HUNDRED_MB)})
    assert refused.status_code == 413 and "max_body_bytes" in refused.json()["error"]
    assert declared.sent < HUNDRED_MB // 2
    chunked = Streamed(HUNDRED_MB)  # the size is only known while reading: reading stops at the limit
    refused = await stream(url, chunked, **signature)
    assert refused.status_code == 413 and f"{LIMIT} bytes" in refused.json()["error"]
    assert chunked.sent < HUNDRED_MB // 2
    # a body just under the limit is read and verified as usual
    ping = json.dumps(group_message("ping", message_id=1)).encode()
    padded = ping[:-1] + b', "padding": "' + b"p" * (LIMIT - len(ping) - 20) + b'"}'
    assert len(padded) <= LIMIT
    answered = await post(url, padded, **{"X-Signature": sign(padded)})
    assert answered.status_code == 200 and answered.json()["reply"][0]["data"]["text"] == "pong 1"
    assert lane.status()["malformed"] == 2


async def test_http_without_secret_still_limits_the_body(
    impl: OneBotImpl, plugins: tuple[GuardedPlugins, LoadPlugin]
) -> None:
    directory, load = plugins
    await load("pp", PING_PONG)
    config = BotConfig(id="open", transport="http", bind="127.0.0.1:0", endpoint="http://127.0.0.1:9")
    assert config.max_body_bytes == 2**20  # the default
    async with Dispatcher(directory) as dispatcher, OneBotAdapter([config], dispatcher) as adapter:
        url = f"http://127.0.0.1:{adapter.ports['open']}/onebot/v11/http"
        body = Streamed(HUNDRED_MB)
        refused = await stream(url, body)
        assert refused.status_code == 413 and "1048576 bytes" in refused.json()["error"]
        assert body.sent < HUNDRED_MB // 2
        answered = await post(url, json.dumps(group_message("ping", message_id=1)).encode())
        assert answered.status_code == 200 and answered.json()["reply"][0]["data"]["text"] == "pong 1"
