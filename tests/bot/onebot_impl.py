"""An in-test OneBot v11 implementation speaking the real wire format over loopback sockets.

It plays the part of NapCat/Lagrange: a forward-WS server plughost connects to, a reverse-WS client
that connects to plughost, an HTTP API server for actions and an HTTP client that POSTs events.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import socket
from collections.abc import Callable
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

Responder = Callable[[dict[str, Any]], dict[str, Any] | str | None]


class OneBotImpl:
    """Records every action it receives and answers like a real implementation."""

    def __init__(self, self_id: int = 10001, token: str | None = None) -> None:
        self.self_id = self_id
        self.token = token
        self.actions: list[dict[str, Any]] = []
        self._tick = asyncio.Event()
        self.message_ids = itertools.count(1000)
        self.custom: dict[str, Responder] = {}
        self.connections: list[ClientConnection | ServerConnection] = []
        self.rejected_tokens = 0
        self._server: Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._http_server: uvicorn.Server | None = None
        self._http_task: asyncio.Task[Any] | None = None

    # action handling ----------------------------------------------------------------------------
    def answer(self, request: dict[str, Any]) -> dict[str, Any] | str | None:
        action = request.get("action", "")
        params = request.get("params") or {}
        if action in self.custom:
            return self.custom[action](params)
        if action in ("send_private_msg", "send_group_msg", "send_msg"):
            return ok({"message_id": next(self.message_ids)})
        if action == "get_login_info":
            return ok({"user_id": self.self_id, "nickname": "impl"})
        if action in ("get_group_list", "get_friend_list", "get_group_member_list"):
            return ok([])
        if action.startswith(("set_", "delete_", "send_like")):
            return ok(None)
        if action.startswith("get_"):
            return ok({"action": action, **params})
        return {"status": "failed", "retcode": 1404, "data": None, "wording": f"unknown action {action}"}

    def changed(self) -> None:
        self._tick.set()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait (event-driven) until the predicate over this implementation's state holds."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self._tick.clear()
                await self._tick.wait()

    async def record(self, request: dict[str, Any]) -> None:
        self.actions.append(request)
        self.changed()

    async def wait_actions(self, count: int, action: str | None = None, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait until `count` actions (of that name) were received; returns them in arrival order."""

        def matching() -> list[dict[str, Any]]:
            return [a for a in self.actions if action is None or a["action"] == action]

        await self.wait_for(lambda: len(matching()) >= count, timeout)
        return matching()

    async def _serve_actions(self, ws: ClientConnection | ServerConnection) -> None:
        if ws not in self.connections:
            self.connections.append(ws)
            self.changed()
        try:
            async for frame in ws:
                request = json.loads(frame)
                if "action" not in request:
                    continue
                await self.record(request)
                response = self.answer(request)
                if response == "drop":
                    await ws.close()
                    return
                if response is None or isinstance(response, str):
                    continue  # never answers: the caller must time out
                await ws.send(json.dumps({**response, "echo": request.get("echo")}))
        except ConnectionClosed:
            pass
        finally:
            self.connections.remove(ws)
            self.changed()

    async def push(self, event: dict[str, Any]) -> None:
        """Send an event on every open connection."""
        frame = json.dumps(event)
        for ws in list(self.connections):
            await ws.send(frame)

    # forward WebSocket: plughost connects here ----------------------------------------------------
    async def serve_forward(self, port: int = 0) -> int:
        def check(conn: ServerConnection, request: Any) -> Any:
            if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
                self.rejected_tokens += 1
                self.changed()
                return conn.respond(401, "bad token\n")
            return None

        async def handler(ws: ServerConnection) -> None:
            await ws.send(json.dumps(lifecycle(self.self_id)))
            await self._serve_actions(ws)

        self._server = await serve(handler, "127.0.0.1", port, process_request=check, compression=None)
        return int(self._server.sockets[0].getsockname()[1])  # type: ignore[index]

    async def stop_forward(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    # reverse WebSocket: this implementation connects to plughost -----------------------------------
    async def connect_reverse(self, url: str, *, role: str = "Universal", token: str | None = None,
                              self_id: int | None = None) -> ClientConnection:  # fmt: skip
        headers = {"X-Self-ID": str(self_id or self.self_id), "X-Client-Role": role}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        ws = await connect(url, additional_headers=headers, proxy=None, compression=None)
        if role != "API":
            await ws.send(json.dumps(lifecycle(self_id or self.self_id)))
        self.connections.append(ws)
        task = asyncio.get_running_loop().create_task(self._serve_actions(ws))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return ws

    # HTTP: actions in over the HTTP API, events out by POST -----------------------------------------
    async def serve_http_api(self) -> int:
        async def action(request: Request) -> Response:
            if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
                self.rejected_tokens += 1
                return Response(status_code=401)
            body = await request.json()
            payload = {"action": request.path_params["action"], "params": body}
            await self.record(payload)
            answer = self.answer(payload)
            if not isinstance(answer, dict):
                await asyncio.sleep(3600)
                return Response(status_code=500)
            if answer.get("retcode") == 1404:
                return Response(status_code=404)
            return JSONResponse(answer)

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        app = Starlette(routes=[Route("/{action}", action, methods=["POST"])])
        self._http_server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="off", ws="none"))
        self._http_task = asyncio.get_running_loop().create_task(self._http_server.serve(sockets=[sock]))
        # the socket already listens: requests wait in its backlog until the server accepts them
        return int(sock.getsockname()[1])

    async def post_event(self, url: str, event: dict[str, Any], *, secret: str | None = None,
                         signature: str | None = None) -> httpx.Response:  # fmt: skip
        body = json.dumps(event).encode()
        headers = {"Content-Type": "application/json", "X-Self-ID": str(self.self_id)}
        if secret is not None:
            headers["X-Signature"] = "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
        if signature is not None:
            headers["X-Signature"] = signature
        async with httpx.AsyncClient(trust_env=False) as http:
            return await http.post(url, content=body, headers=headers, timeout=10)

    async def close(self) -> None:
        for ws in list(self.connections):
            await ws.close()
        await self.stop_forward()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        if self._http_server is not None:
            self._http_server.should_exit = True
            if self._http_task is not None:
                await asyncio.wait([self._http_task], timeout=5)


def ok(data: Any) -> dict[str, Any]:
    return {"status": "ok", "retcode": 0, "data": data}


def lifecycle(self_id: int) -> dict[str, Any]:
    return {
        "time": 1, "self_id": self_id, "post_type": "meta_event", "meta_event_type": "lifecycle", "sub_type": "connect"
    }  # fmt: skip


def group_message(text: str | list[dict[str, Any]], *, message_id: int, group_id: int = 123, user_id: int = 456,
                  self_id: int = 10001, role: str = "member") -> dict[str, Any]:  # fmt: skip
    return {
        "time": 1700000000, "self_id": self_id, "post_type": "message", "message_type": "group", "sub_type": "normal",
        "message_id": message_id, "group_id": group_id, "user_id": user_id, "message": text,
        "raw_message": text if isinstance(text, str) else "", "font": 0,
        "sender": {"user_id": user_id, "nickname": f"user{user_id}", "role": role},
    }  # fmt: skip


def private_message(text: str | list[dict[str, Any]], *, message_id: int, user_id: int = 456,
                    self_id: int = 10001) -> dict[str, Any]:  # fmt: skip
    return {
        "time": 1700000000, "self_id": self_id, "post_type": "message", "message_type": "private", "sub_type": "friend",
        "message_id": message_id, "user_id": user_id, "message": text, "raw_message": "", "font": 0,
        "sender": {"user_id": user_id, "nickname": f"user{user_id}"},
    }  # fmt: skip


def notice(notice_type: str, sub_type: str | None = None, **fields: Any) -> dict[str, Any]:
    event = {"time": 1, "self_id": 10001, "post_type": "notice", "notice_type": notice_type, **fields}
    if sub_type is not None:
        event["sub_type"] = sub_type
    return event


def request(request_type: str, sub_type: str | None = None, **fields: Any) -> dict[str, Any]:
    event = {"time": 1, "self_id": 10001, "post_type": "request", "request_type": request_type, **fields}
    if sub_type is not None:
        event["sub_type"] = sub_type
    return event
