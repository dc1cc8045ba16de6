"""Test support: a chat-completions server on 127.0.0.1 that answers from a script, completion
builders, plugin sources, and a header-adding HTTP proxy for MCP clients that cannot send headers."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from plughost.adapters.listening import EmbeddedServer, bind_socket

DATA = Path(__file__).parent / "data"


def recorded(name: str) -> dict[str, Any]:
    """A chat completion recorded from OpenAI's API reference (see data/openai_chat_completions.json)."""
    data: dict[str, Any] = json.loads((DATA / "openai_chat_completions.json").read_text(encoding="utf-8"))[name]
    return data


@dataclass(frozen=True)
class Raw:
    """An answer the script gives as it is: status, body bytes, content type."""

    status: int
    body: bytes
    content_type: str = "application/json"


Reply = Mapping[str, Any] | Raw
Script = Callable[[dict[str, Any], int], Reply]
"""(request body, index of the request from 0) → what the server answers."""

_ids = itertools.count(1)


def answer(text: str) -> dict[str, Any]:
    """A final answer, in the shape of OpenAI's recorded example."""
    data = recorded("answer")
    data["choices"][0]["message"]["content"] = text
    return data


def tool_calls(*calls: tuple[str, Any]) -> dict[str, Any]:
    """A completion asking for tool calls `(name, arguments)` (arguments: an object, or JSON text as it is)."""
    data = recorded("tool_calls")
    data["choices"][0]["message"]["tool_calls"] = [
        {
            "id": f"call_{next(_ids)}",
            "type": "function",
            "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)},
        }
        for name, args in calls
    ]
    return data


def scripted(*replies: Reply) -> Script:
    """Answer the requests in order with `replies` (the last one again when they run out)."""

    def script(_body: dict[str, Any], index: int) -> Reply:
        return replies[min(index, len(replies) - 1)]

    return script


@dataclass
class ModelServer:
    """A real HTTP server speaking the chat-completions protocol; it records every request."""

    script: Script
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] != "/v1/chat/completions" or scope["method"] != "POST":
            await _send(send, 404, b'{"error": {"message": "not found"}}', "application/json")
            return
        request = json.loads(body)
        index = len(self.requests)
        self.requests.append(request)
        self.headers.append({k.decode().lower(): v.decode() for k, v in scope["headers"]})
        reply = self.script(request, index)
        if isinstance(reply, Raw):
            await _send(send, reply.status, reply.body, reply.content_type)
        else:
            await _send(send, 200, json.dumps(reply).encode(), "application/json")


async def _send(send: Any, status: int, body: bytes, content_type: str) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve the ASGI `app` on a free 127.0.0.1 port; yields `http://127.0.0.1:<port>`.

    The socket listens before the server task starts, so a client may connect at once.
    """
    sock = bind_socket(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", ws="none")
    server = EmbeddedServer(config)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(task, 10)
        except TimeoutError:
            task.cancel()
        sock.close()


@contextlib.asynccontextmanager
async def model_server(script: Script) -> AsyncIterator[ModelServer]:
    server = ModelServer(script)
    async with serving(server) as base:
        server.url = f"{base}/v1"
        yield server


class HeaderProxy:
    """Forwards every request to `target` with extra headers (streaming the answer back): lets an MCP
    client that cannot send an Authorization header reach the key-protected `/mcp`."""

    def __init__(self, target: str, headers: Mapping[str, str]) -> None:
        self.target = target.rstrip("/")
        self.extra = dict(headers)
        self.client = httpx.AsyncClient(timeout=None)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [
            (k.decode(), v.decode()) for k, v in scope["headers"] if k.lower() not in (b"host", b"content-length")
        ]
        headers += list(self.extra.items())
        url = self.target + scope["path"] + (f"?{scope['query_string'].decode()}" if scope["query_string"] else "")
        request = self.client.build_request(scope["method"], url, headers=headers, content=body)
        response = await self.client.send(request, stream=True)

        async def pump() -> None:
            out = [(k.encode(), v.encode()) for k, v in response.headers.items() if k.lower() not in _HOP_BY_HOP]
            await send({"type": "http.response.start", "status": response.status_code, "headers": out})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})

        async def client_gone() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        tasks = [asyncio.ensure_future(pump()), asyncio.ensure_future(client_gone())]
        try:  # a stream (SSE) ends when either side does
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await response.aclose()


_HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive"}


def tool_names(request: Mapping[str, Any]) -> list[str]:
    """The tool names a chat-completions request offered."""
    return [t["function"]["name"] for t in request.get("tools", [])]


def messages_of(request: Mapping[str, Any], role: str) -> Sequence[Mapping[str, Any]]:
    return [m for m in request["messages"] if m["role"] == role]


CALCULATOR = '''
from plughost.sdk import Plugin

plugin = Plugin()


@plugin.method("add")
def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


@plugin.method("boom")
def boom() -> None:
    """Always fails."""
    raise RuntimeError("boom on purpose")
'''

MEET = '''
import asyncio

from plughost.sdk import Plugin

plugin = Plugin()
_arrived = asyncio.Barrier(2)


@plugin.method("meet")
async def meet(name: str) -> str:
    """Returns once a second call of meet has arrived too (so two calls only succeed concurrently)."""
    await asyncio.wait_for(_arrived.wait(), 20)
    return f"met {name}"
'''

HANG = '''
import asyncio

from plughost.sdk import Plugin

plugin = Plugin()


@plugin.method("hang")
async def hang() -> None:
    """Never returns: the guard times it out."""
    await asyncio.Event().wait()
'''
HANG_MANIFEST = "[limits]\ntimeout_s = 0.5\n"
