"""Host callbacks: host.log, host.http.do (real loopback HTTP server), host.bot.send from threads."""

from __future__ import annotations

import base64
import json
import logging
import os
import select
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.native.conftest import Builds, Loader


class Recorder(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]]

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body})
        payload = json.dumps({"echo": body.decode(), "path": self.path}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Multi", "a")
        self.send_header("X-Multi", "b")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    handler = type("H", (Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()
    thread.join(5)


def _raw(method: str, request: dict[str, Any]) -> dict[str, Any]:
    return {"method": method, "request": json.dumps(request)}


async def test_host_log_reaches_the_plugin_logger_with_level_and_fields(
    c_builds: Builds, load_native: Loader, caplog: pytest.LogCaptureFixture
):
    handle = await load_native(c_builds["probe"], "logger")
    with caplog.at_level(logging.DEBUG, logger="plughost.plugin.logger"):
        assert await handle.call_abi("host_log", None) == {"ok": True, "result": {}}
    record = next(r for r in caplog.records if "hello from C" in r.getMessage())
    assert record.levelno == logging.WARNING
    assert record.getMessage() == "[logger] hello from C n=1"
    assert record.plugin_fields == {"n": 1}  # type: ignore[attr-defined]


async def test_host_http_do_performs_the_request(c_builds: Builds, load_native: Loader, http_server):
    url, seen = http_server
    handle = await load_native(c_builds["probe"], "fetcher")
    request = {"method": "post", "url": f"{url}/hook?q=1", "headers": {"X-A": ["1"]}, "body": "aGk="}
    reply = await handle.call_abi("host_raw", _raw("host.http.do", request))
    assert reply["ok"] is True
    result = reply["result"]
    assert result["StatusCode"] == 201
    assert result["Headers"]["X-Multi"] == ["a", "b"]
    assert json.loads(base64.b64decode(result["Body"])) == {"echo": "hi", "path": "/hook?q=1"}
    assert seen[0]["method"] == "POST" and seen[0]["headers"]["X-A"] == "1" and seen[0]["body"] == b"hi"


async def test_host_http_do_accepts_the_wrapped_request_shape(c_builds: Builds, load_native: Loader, http_server):
    url, seen = http_server
    handle = await load_native(c_builds["probe"], "fetcher")
    reply = await handle.call_abi("host_raw", _raw("host.http.do", {"request": {"url": f"{url}/wrapped"}}))
    assert reply["result"]["StatusCode"] == 201 and seen[0]["method"] == "GET" and seen[0]["path"] == "/wrapped"


async def test_host_http_do_is_refused_without_network_permission(c_builds: Builds, load_native: Loader, http_server):
    url, seen = http_server
    handle = await load_native(c_builds["probe"], "offline", network=False)
    reply = await handle.call_abi("host_raw", _raw("host.http.do", {"url": f"{url}/x"}))
    assert reply["ok"] is False and reply["error"]["code"] == "host_call_failed"
    assert "lacks the network permission" in reply["error"]["message"]
    assert seen == []


async def test_host_http_do_reports_connection_errors(c_builds: Builds, load_native: Loader):
    handle = await load_native(c_builds["probe"], "fetcher")
    reply = await handle.call_abi("host_raw", _raw("host.http.do", {"url": "http://127.0.0.1:9/closed"}))
    assert reply["ok"] is False and "ConnectError" in reply["error"]["message"]
    bad = await handle.call_abi("host_raw", _raw("host.http.do", {"url": "file:///etc/passwd"}))
    assert bad["ok"] is False and "must be http:// or https://" in bad["error"]["message"]


class CountingBot:
    """A bot connection that records sends and says when `expected` have arrived."""

    def __init__(self, expected: int) -> None:
        import asyncio

        from plughost.sdk import BotApi

        class _Bot(BotApi):
            bot_id, self_id = "main", 10001

            async def call_action(inner, action: str, params: Any = None, *, timeout: float | None = None) -> Any:
                self.actions.append((action, dict(params or {})))
                if len(self.actions) >= expected:
                    self.arrived.set()
                return {"message_id": len(self.actions)}

        self.actions: list[tuple[str, dict[str, Any]]] = []
        self.arrived = asyncio.Event()
        self.bot = _Bot()


async def test_bot_sends_from_plugin_threads_reach_the_connected_bot_in_order(c_builds: Builds, tmp_path: Any):
    """`host.bot.send` from the plugin's own thread, outside any call: the host sends it, in order."""
    import asyncio
    import shutil

    from plughost.bot.config import BotConfig
    from plughost.host import Host

    (tmp_path / "plugins").mkdir()
    shutil.copy(c_builds["probe"], tmp_path / "plugins" / "probe.so")
    (tmp_path / "config" / "plugins").mkdir(parents=True)
    (tmp_path / "config" / "plugins" / "probe.toml").write_text("enabled = true\n")
    counting = CountingBot(expected=5)
    read_fd, write_fd = os.pipe()
    try:
        async with Host(tmp_path) as host:
            host.dispatcher.attach(
                "main", BotConfig(id="main", transport="ws-reverse", bind="127.0.0.1:0"), counting.bot
            )
            started = await host.manager.execute("probe", "send_from_thread", {"fd": write_fd, "sends": 5})
            assert started.success, started.error
            await asyncio.wait_for(counting.arrived.wait(), 10)
            handle = host.manager.get_plugin("probe").handle  # type: ignore[union-attr]
            assert handle.take_pending_sends() == []  # nothing waits on the handle any more
    finally:
        os.close(read_fd)
    assert counting.actions == [
        ("send_group_msg", {"group_id": 5, "message": [{"type": "text", "data": {"text": f"thread {i}"}}]})
        for i in range(5)
    ]


async def test_bot_sends_nobody_delivers_wait_bounded(c_builds: Builds, load_native: Loader, caplog: Any):
    """Without a host to deliver them, sends from plugin threads wait on the handle, at most 256."""
    handle = await load_native(c_builds["probe"], "sender")
    read_fd, write_fd = os.pipe()
    try:
        with caplog.at_level(logging.WARNING):
            await handle.call_abi("send_from_thread", {"fd": write_fd, "sends": 300})
            ready, _, _ = select.select([read_fd], [], [], 10)
            assert ready and os.read(read_fd, 16) == b"done"
    finally:
        os.close(read_fd)
    sends = handle.take_pending_sends()
    assert len(sends) == 256 and sends[-1]["message"][0]["data"]["text"] == "thread 299"  # the newest kept
    assert handle.callbacks.dropped_sends == 44 and "were dropped" in caplog.text


async def test_bot_sends_from_plugin_threads_wait_on_the_handle_in_order(c_builds: Builds, load_native: Loader):
    handle = await load_native(c_builds["probe"], "sender")
    read_fd, write_fd = os.pipe()
    try:
        await handle.call_abi("send_from_thread", {"fd": write_fd, "sends": 5})
        ready, _, _ = select.select([read_fd], [], [], 10)
        assert ready and os.read(read_fd, 16) == b"done"
    finally:
        os.close(read_fd)
    sends = handle.take_pending_sends()
    assert [s["message"][0]["data"]["text"] for s in sends] == [f"thread {i}" for i in range(5)]
    assert all(s["target"] == "group" and s["group_id"] == 5 for s in sends)
    assert handle.take_pending_sends() == []


async def test_bot_sends_are_kept_in_order_even_when_the_callback_fails(c_builds: Builds, load_native: Loader):
    from plughost.sdk.call import Call

    def texts(outcome: Any) -> list[str]:
        return [s.params["message"][0]["data"]["text"] for s in outcome.sends]

    handle = await load_native(c_builds["probe"], "botty")
    ok = await handle.call(Call("fine", {"sender_id": "7"}, "command"))
    assert ok.error is None and ok.value == [[{"type": "text", "data": {"text": "seg"}}]]
    assert texts(ok) == ["send 1", "send 2"]
    failed = await handle.call(Call("fail", {}, "command"))
    assert failed.error is not None and "handler failed" in failed.error.message
    assert texts(failed) == ["send 1", "send 2"]  # sends queued before the failure still go out
    weird = await handle.call(Call("weird", {}, "command"))
    assert weird.error is not None and weird.error.code == "invalid_answer"
    assert "unknown bot action 'explode'" in weird.error.message and len(weird.sends) == 2
    assert handle.take_pending_sends() == []


async def test_concurrent_bot_calls_keep_their_sends_apart(c_builds: Builds, load_native: Loader):
    import asyncio

    from plughost.sdk.call import Call

    handle = await load_native(c_builds["probe"], "botty")
    results = await asyncio.gather(*(handle.call(Call("fine", {}, "command")) for _ in range(16)))
    assert all(len(r.sends) == 2 for r in results)


@pytest.mark.parametrize(
    ("request_json", "expected"),
    [
        ({"target": "channel", "group_id": 1, "message": "x"}, "target must be 'group' or 'private'"),
        ({"target": "group", "message": "x"}, "a group send needs group_id"),
        ({"target": "private", "message": "x"}, "a private send needs user_id"),
        ({"group_id": 1, "message": []}, "message must be non-empty"),
        ({"group_id": 1, "message": [1]}, "segment 1 is not"),
    ],
)
async def test_invalid_bot_sends_are_refused(c_builds: Builds, load_native: Loader, request_json, expected: str):
    handle = await load_native(c_builds["probe"], "sender")
    reply = await handle.call_abi("host_raw", _raw("host.bot.send", request_json))
    assert reply["ok"] is False and reply["error"]["code"] == "host_call_failed"
    assert expected in reply["error"]["message"]
    assert handle.take_pending_sends() == []
