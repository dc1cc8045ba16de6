"""The four OneBot v11 transports: forward WS, reverse WS, HTTP POST (events in), HTTP API (actions out)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import re
import socket
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.http11 import Request as WsRequest
from websockets.http11 import Response as WsResponse
from websockets.protocol import State

from plughost.adapters.lingering import LingeringH11Protocol
from plughost.adapters.listening import EmbeddedServer
from plughost.adapters.onebot.client import HttpActionClient, WsActionClient
from plughost.adapters.onebot.wire import MalformedInput, load_json, read_event, self_id_problem
from plughost.bot.config import BotConfig
from plughost.bot.dispatch import Dispatcher
from plughost.bot.lane import BotLane

log = logging.getLogger("plughost.adapters.onebot")
ROLES = ("Universal", "API", "Event")
COALESCED_BYTES = 8 * 1024
"""Frames of one loop iteration are held back for one write up to this size (about 60 replies)."""
WS_OPTIONS: dict[str, Any] = {"compression": None, "max_size": 16 * 2**20, "ping_interval": 20, "ping_timeout": 20}


@dataclass
class FrameStats:
    bad_frames: int = 0
    unmatched_responses: int = 0


class _CoalescedWrites:
    """Frames produced during one event-loop iteration leave in one `transport.write`.

    Under load many workers reply in the same iteration; one write instead of one per frame
    saves a system call and a loopback/TCP segment per reply. Only data frames of an open
    connection are deferred (to the end of the iteration), and only up to `COALESCED_BYTES`: then
    they are written at once. So a long iteration (hundreds of events that arrived together)
    streams its replies while it goes on, and the implementation on another core works on them
    meanwhile instead of waiting for the last one; and the transport's flow control sees them (a
    sender that never yields cannot pile up frames unseen). Handshakes and closing write at once.
    """

    loop: asyncio.AbstractEventLoop
    protocol: Any
    transport: Any
    paused: bool
    send_in_progress: Any
    _flush_scheduled = False
    _deferred = 0  # bytes of the frames queued since the last flush (those of `send_text_frame`)

    async def send_text_frame(self, data: bytes) -> None:
        """Send UTF-8 `data` as one text frame (what every OneBot frame is).

        On an open connection that is not paused and not in the middle of a fragmented send this
        is what websockets' `send` does — the frame is queued and written with the iteration's
        other frames — without its generator-based send context; otherwise it is `send` itself.
        """
        if self.send_in_progress is None and not self.paused and self.protocol.state is State.OPEN:
            self.protocol.send_text(data)
            self._deferred += len(data)
            if self._deferred >= COALESCED_BYTES:
                self._flush()
            else:
                self.send_data()
            return
        await self.send(data, text=True)  # type: ignore[attr-defined]

    def send_data(self) -> None:
        if self.protocol.state is State.OPEN:
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self.loop.call_soon(self._flush)
            return
        self._flush()

    def _flush(self) -> None:
        self._flush_scheduled = False
        self._deferred = 0
        pending: list[bytes] = []
        try:
            for data in self.protocol.data_to_send():
                if data:
                    pending.append(data)
                    continue
                if pending:  # end of stream: write what precedes it, then half-close
                    self.transport.write(b"".join(pending))
                    pending = []
                if self.transport.can_write_eof():
                    with contextlib.suppress(Exception):  # mirrors websockets' own handling
                        self.transport.write_eof()
                else:  # pragma: no cover
                    self.transport.close()
            if pending and not self.transport.is_closing():
                self.transport.write(b"".join(pending))
        except Exception as exc:
            self.set_connection_exc(exc)  # type: ignore[attr-defined]


class CoalescedServerConnection(_CoalescedWrites, ServerConnection):
    """A server-side WebSocket connection with coalesced writes."""


class CoalescedClientConnection(_CoalescedWrites, ClientConnection):
    """A client-side WebSocket connection with coalesced writes."""


def bearer_token(headers: Any, query: str = "") -> str | None:
    """The access token of a request: `Authorization: Bearer|Token <t>` or `?access_token=<t>`."""
    value = str(headers.get("Authorization") or headers.get("authorization") or "")
    if value:
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() in ("bearer", "token") else value.strip()
    tokens = parse_qs(query).get("access_token")
    return tokens[0] if tokens else None


class WsSession:
    """Reads frames from one WebSocket: events go to the lane, responses to the action client.

    A frame that cannot be read (not JSON, not an object, not a valid event, nested deeper than
    the bot's `max_nesting`) is dropped and counted on the bot's lane; the link stays open.
    """

    def __init__(
        self, client: WsActionClient, lane: Callable[[], BotLane | None], stats: FrameStats, *, max_nesting: int = 64
    ) -> None:
        self.client = client
        self.lane = lane
        self.stats = stats
        self.max_nesting = max_nesting

    async def run(
        self, ws: CoalescedClientConnection | CoalescedServerConnection, *, events: bool = True, api: bool = True
    ) -> None:
        if api:
            self.client.connection_made(ws.send_text_frame)
        try:
            while True:  # bytes: JSON parses them directly, and a shed frame is never decoded
                self.handle(await ws.recv(decode=False), events=events)
        except ConnectionClosed:
            pass
        finally:
            if api:
                self.client.connection_lost("the WebSocket connection was closed")

    def handle(self, frame: str | bytes, *, events: bool = True) -> None:
        lane = self.lane()
        if lane is not None and lane.full and _is_event_frame(frame):
            lane.shed_unparsed()  # overloaded: shed before paying for parsing and validation
            return
        try:
            data = load_json(frame)
            if not isinstance(data, dict):
                raise MalformedInput("a frame must be a JSON object (an event or an action response)")
            if "post_type" not in data:
                if not self.client.feed_response(data):
                    self.stats.unmatched_responses += 1
                return
            if not events:
                return
            event = read_event(frame, data, self.max_nesting)
        except MalformedInput as exc:
            self._malformed(lane, str(exc))
            return
        except Exception as exc:  # a bug in reading; the link must survive it
            log.exception("bot '%s': reading a frame failed", self.client.bot_id)
            self._malformed(lane, f"{type(exc).__name__} while reading the frame")
            return
        if event.self_id and not self.client.self_id:
            self.client.self_id = event.self_id
        if lane is not None:
            lane.submit(event)

    def _malformed(self, lane: BotLane | None, reason: str) -> None:
        self.stats.bad_frames += 1
        if lane is not None:
            lane.count_malformed(reason)
        else:
            log.warning("bot '%s': dropped a malformed frame: %s", self.client.bot_id, reason)


def _is_event_frame(frame: str | bytes) -> bool:
    """Cheap test (no parsing): an event carries `post_type`, an action response carries `echo`."""
    if isinstance(frame, bytes):
        return b'"post_type"' in frame and b'"echo"' not in frame
    return '"post_type"' in frame and '"echo"' not in frame


class ForwardWsBot:
    """plughost connects to the implementation (`ws://host:port/`) and reconnects with backoff."""

    def __init__(self, config: BotConfig, dispatcher: Dispatcher) -> None:
        self.config = config
        self.dispatcher = dispatcher
        self.client = WsActionClient(config.id, self_id=config.self_id or 0, timeout=config.action_timeout_s)
        self.lane = dispatcher.attach(config.id, config, self.client)
        self.stats = FrameStats()
        self.connected = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.disconnected.set()
        self.connections = 0
        self.refused = 0
        self.last_error: str | None = None
        self.link = dispatcher.track_connection(config.id, config.transport, config.endpoint or "")

    async def run(self) -> None:
        delay = self.config.reconnect_initial_s
        headers = {"Authorization": f"Bearer {self.config.access_token}"} if self.config.access_token else {}
        if self.config.self_id:
            headers["X-Self-ID"] = str(self.config.self_id)
        while True:
            self.link.attempt()
            try:
                async with connect(
                    self.config.endpoint or "",
                    additional_headers=headers,
                    proxy=None,
                    open_timeout=10,
                    create_connection=CoalescedClientConnection,
                    **WS_OPTIONS,
                ) as ws:
                    self.connections += 1
                    self.last_error = None
                    delay = self.config.reconnect_initial_s
                    self.disconnected.clear()
                    self.link.up()
                    self.connected.set()
                    log.info("bot '%s': connected to %s", self.config.id, self.config.endpoint)
                    try:
                        session = WsSession(
                            self.client, lambda: self.lane, self.stats, max_nesting=self.config.max_nesting
                        )
                        assert isinstance(ws, CoalescedClientConnection)  # what `create_connection` makes
                        await session.run(ws)
                        self.link.down(close_reason(ws))
                    finally:
                        self.connected.clear()
                        self.disconnected.set()
            except InvalidStatus as exc:
                status = exc.response.status_code
                hint = " (check access_token)" if status in (401, 403) else ""
                self.last_error = f"HTTP {status}{hint}"
                self.refused += 1
                self.link.down(f"refused: {self.last_error}")
            except (OSError, TimeoutError, WebSocketException) as exc:
                self.last_error = str(exc) or type(exc).__name__
                self.link.down(self.last_error)
            log.warning(
                "bot '%s': connection to %s lost or refused (%s); retrying in %.1f s",
                self.config.id, self.config.endpoint, self.last_error or "closed", delay,
            )  # fmt: skip
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.config.reconnect_max_s)


def close_reason(ws: ClientConnection | ServerConnection) -> str:
    """Why a WebSocket ended (for a bot's `last_error`)."""
    received = ws.protocol.close_rcvd
    if received is None:
        return "the connection was lost (no close frame)"
    reason = f", {received.reason}" if received.reason else ""
    return f"the implementation closed the connection (code {received.code}{reason})"


def _address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass
class _Account:
    """One self id connected to a reverse-WS bot: its action client, lane and connected roles."""

    client: WsActionClient
    lane: BotLane
    roles: set[str] = field(default_factory=set)


class ReverseWsServer:
    """The implementation connects to plughost (`X-Self-ID`, `X-Client-Role`, Bearer token)."""

    def __init__(self, configs: list[BotConfig], dispatcher: Dispatcher, sock: socket.socket) -> None:
        self.by_path = {c.path: c for c in configs}
        self.dispatcher = dispatcher
        self.sock = sock
        self.accounts: dict[tuple[str, int], _Account] = {}
        self.stats = FrameStats()
        self.rejected: dict[int, int] = {}
        self._server: Server | None = None
        self.links = {
            c.id: dispatcher.track_connection(c.id, c.transport, f"ws://{_address(sock)}{c.path or ''}")
            for c in configs
        }
        for link in self.links.values():
            link.listening()
        # who a connection is, from its handshake (weak: a failed handshake leaves nothing behind)
        self._identities: weakref.WeakKeyDictionary[ServerConnection, tuple[BotConfig, int, str]] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    async def run(self) -> None:
        async with serve(
            self._handle,
            sock=self.sock,
            process_request=self._check,
            create_connection=CoalescedServerConnection,
            **WS_OPTIONS,
        ) as server:
            self._server = server
            await server.serve_forever()

    def _reject(
        self, conn: ServerConnection, status: HTTPStatus, message: str, config: BotConfig | None = None
    ) -> WsResponse:
        self.rejected[status.value] = self.rejected.get(status.value, 0) + 1
        if config is not None:
            self.links[config.id].refused(f"refused a connection: {message}")
        log.warning("reverse WebSocket from %s rejected: %s", conn.remote_address, message)
        return conn.respond(status, message + "\n")

    def _check(self, conn: ServerConnection, request: WsRequest) -> WsResponse | None:
        url = urlsplit(request.path)
        config = self.by_path.get(url.path)
        if config is None:
            return self._reject(conn, HTTPStatus.NOT_FOUND, f"no bot is configured at {url.path}")
        if config.access_token and bearer_token(request.headers, url.query) != config.access_token:
            return self._reject(
                conn, HTTPStatus.UNAUTHORIZED, f"bot '{config.id}': wrong or missing access token", config
            )
        raw_self_id = request.headers.get("X-Self-ID", "")
        problem = self_id_problem(raw_self_id)
        if problem is not None:
            return self._reject(conn, HTTPStatus.BAD_REQUEST, problem)
        role = request.headers.get("X-Client-Role", "Universal")
        if role not in ROLES:
            return self._reject(conn, HTTPStatus.BAD_REQUEST, f"X-Client-Role must be one of {', '.join(ROLES)}")
        self_id = int(raw_self_id)
        if config.self_id and self_id != config.self_id:
            return self._reject(
                conn, HTTPStatus.FORBIDDEN, f"bot '{config.id}' accepts self id {config.self_id} only", config
            )
        if _conflicts(role, self._roles(config, self_id)):
            return self._reject(
                conn, HTTPStatus.CONFLICT, f"self id {self_id} is already connected to bot '{config.id}' ({role})"
            )
        self._identities[conn] = (config, self_id, role)
        return None

    def _roles(self, config: BotConfig, self_id: int) -> set[str]:
        account = self.accounts.get((config.id, self_id))
        return account.roles if account else set()

    async def _handle(self, conn: ServerConnection) -> None:
        identity = self._identities.pop(conn, None)
        if identity is None:
            return
        config, self_id, role = identity
        if _conflicts(role, self._roles(config, self_id)):  # lost a race with a simultaneous connection
            self.rejected[HTTPStatus.CONFLICT.value] = self.rejected.get(HTTPStatus.CONFLICT.value, 0) + 1
            await conn.close(1008, f"self id {self_id} is already connected")
            return
        account = self._account(config, self_id)
        link = self.links[config.id]
        link.attempt()
        if not self.connected(config.id):
            link.up()
        account.roles.add(role)
        try:
            session = WsSession(account.client, lambda: account.lane, self.stats, max_nesting=config.max_nesting)
            assert isinstance(conn, CoalescedServerConnection)  # the server makes only these
            await session.run(conn, events=role != "API", api=role != "Event")
        finally:
            account.roles.discard(role)
            # not when plughost closed it (it is stopping)
            if not self.connected(config.id) and conn.protocol.close_rcvd_then_sent is not False:
                link.down(close_reason(conn))
            if not account.roles:  # its last connection ended: the bot leaves the dispatcher
                await self._retire((config.id, self_id), account)

    async def _retire(self, key: tuple[str, int], account: _Account) -> None:
        if self.accounts.get(key) is account:
            del self.accounts[key]
            await self.dispatcher.detach(account.lane.key)

    async def aclose(self) -> None:
        """Detach every bot still connected (their connections were closed with the server)."""
        for key, account in list(self.accounts.items()):
            await self._retire(key, account)

    def _account(self, config: BotConfig, self_id: int) -> _Account:
        account = self.accounts.get((config.id, self_id))
        if account is None:
            client = WsActionClient(config.id, self_id=self_id, timeout=config.action_timeout_s)
            others = [s for (cid, s) in self.accounts if cid == config.id]
            key = config.id if not others else f"{config.id}:{self_id}"
            account = _Account(client, self.dispatcher.attach(key, config, client))
            self.accounts[(config.id, self_id)] = account
        return account

    def connected(self, bot_id: str) -> set[str]:
        """Roles currently connected for a bot (any self id)."""
        return {r for (cid, _), a in self.accounts.items() if cid == bot_id for r in a.roles}


def _conflicts(role: str, taken: set[str]) -> bool:
    if not taken:
        return False
    return role == "Universal" or "Universal" in taken or role in taken


class HttpEventServer:
    """The implementation POSTs events to plughost; actions go out over the HTTP API.

    `X-Signature: sha1=<HMAC-SHA1(secret, body)>` is verified when a secret is set (missing → 401,
    malformed or wrong → 403); a missing or malformed signature is refused before the body is read.
    Bodies over `max_body_bytes` are refused with 413 — at once when Content-Length says so, else as
    soon as reading passes the limit — and the connection is closed instead of reading the rest.
    A body that is not a valid event is 400 (counted as malformed). A final answer is returned as a
    quick operation in the response body.
    """

    def __init__(self, configs: list[BotConfig], dispatcher: Dispatcher, sock: socket.socket) -> None:
        self.dispatcher = dispatcher
        self.sock = sock
        self.clients: dict[str, HttpActionClient] = {}
        self.lanes: dict[str, BotLane] = {}
        self.rejected: dict[int, int] = {}
        routes = []
        for config in configs:
            client = HttpActionClient(
                config.id, config.endpoint or "", access_token=config.access_token, timeout=config.action_timeout_s
            )
            client.self_id = config.self_id or 0
            self.clients[config.id] = client
            self.lanes[config.id] = dispatcher.attach(config.id, config, client)
            dispatcher.track_connection(
                config.id, config.transport, f"http://{_address(sock)}{config.path or '/'}"
            ).listening()
            routes.append(Route(config.path or "/", self._endpoint(config), methods=["POST"]))
        app = Starlette(routes=routes)
        self._server = EmbeddedServer(
            uvicorn.Config(
                app, log_config=None, access_log=False, lifespan="off", ws="none", http=LingeringH11Protocol,
                proxy_headers=False,  # the peer's address is the peer's: no X-Forwarded-For from anyone
            )
        )  # fmt: skip

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    async def run(self) -> None:
        try:
            await self._server.serve(sockets=[self.sock])
        finally:
            for client in self.clients.values():
                await client.aclose()

    def stop(self) -> None:
        self._server.should_exit = True

    def _refuse(self, status: int, message: str, *, unread: bool = False) -> Response:
        """An error answer; `unread`: the body was not (fully) read, so the connection is closed
        after the answer instead of reading the rest of the body to reuse it."""
        self.rejected[status] = self.rejected.get(status, 0) + 1
        headers = {"Connection": "close"} if unread else None
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    def _endpoint(self, config: BotConfig) -> Callable[[Request], Any]:
        limit = config.max_body_bytes

        async def receive(request: Request) -> Response:
            lane = self.lanes[config.id]
            signature = request.headers.get("X-Signature")
            if config.secret:  # what the headers alone tell is checked before a byte of the body is read
                if not signature:
                    return self._refuse(401, f"bot '{config.id}': X-Signature header missing", unread=True)
                if not _SIGNATURE.fullmatch(signature):
                    return self._refuse(
                        403, f"bot '{config.id}': X-Signature must be sha1=<40 hex digits>", unread=True
                    )
            too_large = f"bot '{config.id}': the body is larger than {limit} bytes (max_body_bytes)"
            declared = request.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                lane.count_malformed(f"HTTP body of {declared} bytes refused (413)")
                return self._refuse(413, too_large, unread=True)
            body = await _read_body(request, limit)
            if body is None:
                lane.count_malformed(f"HTTP body over {limit} bytes refused (413)")
                return self._refuse(413, too_large, unread=True)
            if config.secret and signature is not None:
                expected = "sha1=" + hmac.new(config.secret.encode(), body, hashlib.sha1).hexdigest()
                if not hmac.compare_digest(signature.lower(), expected):
                    return self._refuse(403, f"bot '{config.id}': X-Signature does not match the body")
            try:
                event = read_event(body, load_json(body), config.max_nesting)
            except MalformedInput as exc:
                lane.count_malformed(f"HTTP body refused (400): {exc}")
                return self._refuse(400, f"not a OneBot v11 event: {exc}")
            client = self.clients[config.id]
            if event.self_id and not client.self_id:
                client.self_id = event.self_id
            outcome = await lane.run_now(event, quick=True)
            if outcome is None:
                return self._refuse(503, f"bot '{config.id}' is overloaded; the event was shed")
            if outcome.quick_operation is None:
                return Response(status_code=204)
            return JSONResponse(outcome.quick_operation)

        return receive


_SIGNATURE = re.compile(r"sha1=[0-9a-fA-F]{40}")


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it exceeds `limit` bytes (the rest is never read)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
