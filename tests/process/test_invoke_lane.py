"""The invoke lane over real unix sockets: multiplexing, errors, cancellation, malformed frames."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest

from plughost.runtime.invoke_lane import (
    HEADER,
    FrameWriter,
    InvokeLaneCallFailed,
    InvokeLaneClient,
    InvokeLaneClosed,
    InvokeLaneServer,
    Kind,
    call_body,
    frame,
)
from plughost.runtime.worker import error_fields
from plughost.sdk.bot import BotApi
from plughost.sdk.deadlines import CallDeadlines


class Handlers:
    """The worker side's handler: echo, fail, and a call that waits until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.calls: list[str] = []

    async def __call__(self, name: str, request: bytes, bot: BotApi) -> bytes:
        self.calls.append(name)
        if name == "fail":
            raise KeyError("missing")
        if name == "act":  # a bot action made during the call: run by the host, answered back
            try:
                data = await bot.call_action("get_group_info", json.loads(request), timeout=5)
            except Exception as exc:
                return json.dumps({"failed": str(exc)}).encode()
            return json.dumps({"data": data}).encode()
        if name == "deadline":  # plugin code with a deadline of its own that passes
            try:
                async with asyncio.timeout(0.01):
                    await asyncio.Event().wait()
            except TimeoutError:
                return b"gave up"
        if name == "context":  # what an earlier call left in the context, then leave something there
            seen = CALLER.get()
            CALLER.set(request)
            await asyncio.sleep(0) if request.startswith(b"w") else None  # a call that waits keeps its own
            return seen + b" " + CALLER.get()
        if name == "wait":
            self.started.set()
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        return request


SECRET = "0123456789abcdef" * 4
CALLER: contextvars.ContextVar[bytes] = contextvars.ContextVar("caller", default=b"unset")


@pytest.fixture
def handlers() -> Handlers:
    return Handlers()


@pytest.fixture
async def server(tmp_path: Path, handlers: Handlers) -> AsyncIterator[InvokeLaneServer]:
    lane = InvokeLaneServer(handlers, error_fields, secret=SECRET)
    await lane.start(tmp_path / "lane")
    yield lane
    await lane.close()


@pytest.fixture
async def client(server: InvokeLaneServer) -> AsyncIterator[InvokeLaneClient]:
    lane = await InvokeLaneClient.connect(str(server.path), "test", secret=SECRET)
    yield lane
    await lane.close()


async def test_calls_are_multiplexed(client: InvokeLaneClient, handlers: Handlers) -> None:
    slow = asyncio.create_task(client.call("wait", b'{"n": 1}', timeout=5))
    await asyncio.wait_for(handlers.started.wait(), 5)
    assert await client.call("echo", b'{"n": 2}', timeout=5) == b'{"n": 2}'  # overtakes the waiting call
    assert not slow.done()
    handlers.release.set()
    assert await asyncio.wait_for(slow, 5) == b'{"n": 1}'
    results = await asyncio.gather(*(client.call("echo", str(i).encode(), timeout=5) for i in range(200)))
    assert results == [str(i).encode() for i in range(200)]


class _RecordingStream:
    """The part of a `StreamWriter` a `FrameWriter` uses, recording each write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


async def test_a_call_that_waits_holds_up_none_of_the_calls_sent_with_it(
    client: InvokeLaneClient, handlers: Handlers
) -> None:
    # made in one loop iteration, they reach the worker in one frame batch: most calls end without
    # waiting and share a task there; the one that waits gets a task of its own
    slow = asyncio.ensure_future(client.call("wait", b"slow", timeout=5))
    fast = [asyncio.ensure_future(client.call("echo", str(i).encode(), timeout=5)) for i in range(20)]
    assert await asyncio.wait_for(asyncio.gather(*fast), 5) == [str(i).encode() for i in range(20)]
    assert handlers.started.is_set() and not slow.done()
    handlers.release.set()
    assert await asyncio.wait_for(slow, 5) == b"slow"


async def test_calls_sent_together_do_not_see_each_others_context(client: InvokeLaneClient) -> None:
    requests = [b"a%d" % i if i % 3 else b"w%d" % i for i in range(12)]  # some of them wait half way
    answers = await asyncio.gather(*(client.call("context", r, timeout=5) for r in requests))
    assert answers == [b"unset " + r for r in requests]


async def test_a_call_cancelled_before_it_started_never_runs(server: InvokeLaneServer, handlers: Handlers) -> None:
    reader, writer = await asyncio.open_unix_connection(str(server.path))
    writer.write(  # one write: the worker reads the cancel before the call could start
        frame(Kind.AUTH, 0, SECRET.encode())
        + frame(Kind.CALL, 5, call_body("record", b"cancelled"))
        + frame(Kind.CANCEL, 5)
        + frame(Kind.CALL, 6, call_body("echo", b"served"))
    )
    length, call_id, kind = HEADER.unpack(await asyncio.wait_for(reader.readexactly(HEADER.size), 5))
    assert (call_id, kind, await reader.readexactly(length)) == (6, Kind.RESULT, b"served")
    assert handlers.calls == ["echo"]
    writer.close()


async def test_a_deadline_inside_a_handler_ends_only_that_handler(client: InvokeLaneClient) -> None:
    # asyncio.timeout binds to the task that enters it: were a call's first step run in the
    # connection's reader, its expiry would cancel the reader and end the connection
    assert await asyncio.gather(*(client.call("deadline", b"", 5.0) for _ in range(3))) == [b"gave up"] * 3
    assert await client.call("echo", b"still here", 5.0) == b"still here"


async def test_frames_made_in_one_loop_iteration_leave_in_one_write() -> None:
    stream = _RecordingStream()
    writer = FrameWriter(cast(asyncio.StreamWriter, stream))
    for part in (b"one", b"two", b"three"):
        writer.write(part)
    assert stream.writes == []  # not yet: at the end of this iteration
    await asyncio.sleep(0)  # one loop iteration
    assert stream.writes == [b"onetwothree"]  # in order, one write
    writer.write(b"last")
    writer.close()  # what is queued is written before the connection closes
    assert stream.writes == [b"onetwothree", b"last"] and stream.closed
    writer.write(b"after close")
    await asyncio.sleep(0)
    assert stream.writes == [b"onetwothree", b"last"]  # a closed connection is not written to


async def test_a_connection_whose_peer_stops_reading_is_backed_up_until_it_reads_again() -> None:
    left, right = socket.socketpair()
    _, stream = await asyncio.open_connection(sock=left)
    peer_reader, peer = await asyncio.open_connection(sock=right)
    writer = FrameWriter(stream)
    assert not writer.backed_up()
    while not writer.backed_up():  # the peer reads nothing: the buffer fills past its high-water mark
        writer.write(b"x" * 65536)
        await asyncio.sleep(0)
    drained = asyncio.ensure_future(writer.drain())
    await asyncio.sleep(0)
    assert not drained.done()  # a writer waits here instead of buffering without end
    while not drained.done():
        await asyncio.wait_for(peer_reader.read(1 << 20), 10)
    await drained
    assert not writer.backed_up()
    writer.close()
    assert writer.backed_up()  # a closing connection: drain reports it
    peer.close()


async def test_handler_error_arrives_as_error_object(client: InvokeLaneClient) -> None:
    with pytest.raises(InvokeLaneCallFailed) as failed:
        await client.call("fail", b"{}", timeout=5)
    assert failed.value.error == {"code": "plugin_error", "message": "'missing'", "type": "KeyError"}
    assert await client.call("echo", b"[1]", timeout=5) == b"[1]"


async def test_timeout_cancels_the_handler_in_the_worker(client: InvokeLaneClient, handlers: Handlers) -> None:
    with pytest.raises(TimeoutError):
        await client.call("wait", b"{}", timeout=0.2)
    await asyncio.wait_for(handlers.cancelled.wait(), 5)
    assert await client.call("echo", b'"after"', timeout=5) == b'"after"'


async def test_a_shorter_deadline_after_a_longer_one_still_ends_on_time(
    client: InvokeLaneClient, handlers: Handlers
) -> None:
    """One timer serves a lane's deadlines: a later call with a shorter timeout re-arms it."""
    long = asyncio.create_task(client.call("wait", b"{}", timeout=60))
    await asyncio.wait_for(handlers.started.wait(), 5)
    # without the re-arm this would wait for the 60 s deadline
    assert await _timed_out(asyncio.create_task(client.call("wait", b"{}", timeout=0.1)))
    assert not long.done()
    handlers.release.set()
    assert await asyncio.wait_for(long, 5) == b"{}"


async def test_calls_that_end_leave_no_deadline_behind(client: InvokeLaneClient) -> None:
    for n in range(200):
        assert await client.call("echo", b"%d" % n, timeout=0.5) == b"%d" % n
    # the timer, armed for the first call, still ends a late one
    assert await _timed_out(asyncio.create_task(client.call("wait", b"{}", timeout=0.2)))
    assert not client._clock._items  # type: ignore[union-attr]


async def test_a_paused_deadline_waits_for_its_resume(client: InvokeLaneClient, handlers: Handlers) -> None:
    """A prompt to the user stops a call's clock (`CallDeadlines.paused`); it runs on after."""

    class PromptingBot(HostBot):
        def __init__(self) -> None:
            super().__init__()
            self.deadlines = CallDeadlines()

    bot = PromptingBot()
    paused = bot.deadlines.paused()
    paused.__enter__()  # the call is waiting for a person from the start
    call = asyncio.create_task(client.call("wait", b"{}", timeout=0.1, actions=bot))
    await asyncio.wait_for(handlers.started.wait(), 5)
    other = asyncio.create_task(client.call("wait", b"{}", timeout=0.3))  # fires the lane's timer meanwhile
    assert await _timed_out(other)
    assert not call.done()  # paused: not expired with the other one
    paused.__exit__(None, None, None)  # the person answered: its 0.1 s run again
    assert await _timed_out(call)


async def _timed_out(call: asyncio.Task[bytes]) -> bool:
    """True when `call` ended with the lane's TimeoutError (waiting at most 30 s for it to end)."""
    done, _ = await asyncio.wait({call}, timeout=30)
    return call in done and isinstance(call.exception(), TimeoutError)


async def test_caller_cancellation_cancels_the_handler(client: InvokeLaneClient, handlers: Handlers) -> None:
    call = asyncio.create_task(client.call("wait", b"{}", timeout=30))
    await asyncio.wait_for(handlers.started.wait(), 5)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await asyncio.wait_for(handlers.cancelled.wait(), 5)
    assert await client.call("echo", b"2", timeout=5) == b"2"


class HostBot(BotApi):
    """The host's side of a call's bot: records what the worker asked for."""

    def __init__(self) -> None:
        self.actions: list[tuple[str, dict[str, object]]] = []

    async def call_action(self, action: str, params: object = None, *, timeout: float | None = None) -> object:
        self.actions.append((action, dict(params or {})))  # type: ignore[call-overload]
        if params and dict(params).get("group_id") == 0:  # type: ignore[call-overload]
            raise ValueError("no such group")
        return {"group_name": "plughost fans"}


async def test_bot_actions_travel_back_to_the_host_during_a_call(client: InvokeLaneClient) -> None:
    bot = HostBot()
    results = await asyncio.gather(
        *(client.call("act", json.dumps({"group_id": i}).encode(), timeout=5, actions=bot) for i in (1, 2, 0))
    )
    assert [json.loads(r) for r in results] == [
        {"data": {"group_name": "plughost fans"}},
        {"data": {"group_name": "plughost fans"}},
        {"failed": "no such group"},  # the host's failure reaches the handler as an exception
    ]
    assert sorted(bot.actions, key=str) == [("get_group_info", {"group_id": i}) for i in (0, 1, 2)]
    without = await client.call("act", b'{"group_id": 5}', timeout=5)  # a call that came without a bot
    assert "needs a bot connection" in json.loads(without)["failed"]


async def test_socket_is_private(server: InvokeLaneServer) -> None:
    assert stat.S_IMODE(server.path.stat().st_mode) == 0o600


async def test_closing_the_server_fails_pending_calls_and_removes_the_socket(
    server: InvokeLaneServer, client: InvokeLaneClient, handlers: Handlers
) -> None:
    call = asyncio.create_task(client.call("wait", b"{}", timeout=30))
    await asyncio.wait_for(handlers.started.wait(), 5)
    await server.close()
    with pytest.raises(InvokeLaneClosed):
        await asyncio.wait_for(call, 5)
    assert handlers.cancelled.is_set()
    assert not server.path.exists()
    assert client.closed
    with pytest.raises(InvokeLaneClosed):
        await client.call("echo", b"{}", timeout=5)


UNAUTHENTICATED = {
    "no AUTH frame": frame(Kind.CALL, 1, call_body("echo", b'"reached"')),
    "wrong secret": frame(Kind.AUTH, 0, b"guess") + frame(Kind.CALL, 1, call_body("echo", b'"reached"')),
    "secret as a prefix": frame(Kind.AUTH, 0, SECRET[:10].encode()) + frame(Kind.CALL, 1, call_body("echo", b"1")),
    "AUTH too long to read": HEADER.pack(2**20, 0, Kind.AUTH) + b"x" * 64,
}


@pytest.mark.parametrize("opening", UNAUTHENTICATED.values(), ids=UNAUTHENTICATED.keys())
async def test_connection_without_the_secret_is_closed_unserved(
    server: InvokeLaneServer, handlers: Handlers, opening: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    reader, writer = await asyncio.open_unix_connection(str(server.path))
    with caplog.at_level(logging.WARNING, logger="plughost.runtime.invoke_lane"):
        writer.write(opening)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, no RESULT
    writer.close()
    assert handlers.calls == []
    assert "did not authenticate" in caplog.text
    authenticated = await InvokeLaneClient.connect(str(server.path), "test", secret=SECRET)
    try:
        assert await authenticated.call("echo", b'"reached"', timeout=5) == b'"reached"'  # the host gets through
    finally:
        await authenticated.close()
    assert handlers.calls == ["echo"]


BAD_FRAMES = {
    "unknown kind": HEADER.pack(0, 1, 99),
    "result sent to a worker": frame(Kind.RESULT, 1, b"{}"),
    "call without a name length": frame(Kind.CALL, 1, b"\x00"),
    "call shorter than its name": frame(Kind.CALL, 1, b"\x00\x09ab"),
    "name not UTF-8": frame(Kind.CALL, 1, b"\x00\x02\xff\xfe{}"),
    "length over the limit": HEADER.pack(0xFFFFFFFF, 1, Kind.CALL),
    "action sent to a worker": frame(Kind.ACTION, 7, b'{"id": 1, "action": "x", "params": {}}'),
    "action result not JSON": frame(Kind.ACTION_RESULT, 7, b"{"),
    "action result without an id": frame(Kind.ACTION_RESULT, 7, b'{"data": 1}'),
}


@pytest.mark.parametrize("bad", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
async def test_malformed_frame_closes_only_its_connection(
    server: InvokeLaneServer, client: InvokeLaneClient, handlers: Handlers, bad: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    reader, writer = await asyncio.open_unix_connection(str(server.path))
    writer.write(frame(Kind.AUTH, 0, SECRET.encode()) + frame(Kind.CALL, 7, call_body("wait", b"{}")))
    await asyncio.wait_for(handlers.started.wait(), 5)
    with caplog.at_level(logging.WARNING, logger="plughost.runtime.invoke_lane"):
        writer.write(bad)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # the worker hung up
    writer.close()
    assert "malformed frame" in caplog.text
    await asyncio.wait_for(handlers.cancelled.wait(), 5)  # its call was cancelled, not left running
    assert await client.call("echo", b'"unharmed"', timeout=5) == b'"unharmed"'  # other connections go on


async def test_client_closes_on_a_malformed_reply(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def misbehave(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(HEADER.size)
        writer.write(frame(Kind.CALL, 1, call_body("x", b"")))  # hosts never accept CALL
        await writer.drain()

    path = tmp_path / "bad-lane"
    fake = await asyncio.start_unix_server(misbehave, str(path))
    try:
        client = await InvokeLaneClient.connect(str(path), "test", secret=SECRET)
        with (
            caplog.at_level(logging.WARNING, logger="plughost.runtime.invoke_lane"),
            pytest.raises(InvokeLaneClosed, match="malformed frame"),
        ):
            await client.call("echo", json.dumps({"a": 1}).encode(), timeout=5)
        assert client.closed
        with pytest.raises(InvokeLaneClosed):
            await client.call("echo", b"{}", timeout=5)
        await client.close()
    finally:
        fake.close()
        await fake.wait_closed()
