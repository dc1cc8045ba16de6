"""OneBot v11 action clients: over a WebSocket (echo matching) and over HTTP (`POST <base>/<action>`)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from plughost.bot.errors import ActionFailed, ActionTimeout, BotDisconnected
from plughost.sdk import jsonio
from plughost.sdk.bot import ActionReport, BotApi
from plughost.sdk.deadlines import DeadlineClock, FutureDeadline

SendFrame = Callable[[bytes], Awaitable[None]]
"""Sends one frame's UTF-8 JSON as a text frame."""


def result_of(bot_id: str, action: str, response: Mapping[str, Any]) -> Any:
    """The `data` of an action response; `failed` (or a non-zero retcode) becomes `ActionFailed`."""
    status = response.get("status")
    retcode = response.get("retcode", 0)
    if status in ("ok", "async") and retcode in (0, 1, None):
        return response.get("data")
    message = str(response.get("wording") or response.get("message") or response.get("msg") or "")
    code = retcode if isinstance(retcode, int) else -1
    raise ActionFailed(bot_id, action, code, message, response.get("data"))


class WsActionClient(BotApi):
    """Actions over a WebSocket: `{"action","params","echo"}` out, responses matched by `echo`.

    Every pending call fails with `BotDisconnected` when the connection drops, and with
    `ActionTimeout` after its timeout, so no call can hang.
    """

    def __init__(self, bot_id: str, *, self_id: int = 0, timeout: float = 30.0) -> None:
        self.bot_id = bot_id
        self.self_id = self_id
        self.timeout = timeout
        self._send: SendFrame | None = None
        self._pending: dict[str, asyncio.Future[Mapping[str, Any]]] = {}
        self._echo = itertools.count(1)
        self._deadlines: DeadlineClock | None = None  # made with the connection, in its loop

    @property
    def connected(self) -> bool:
        return self._send is not None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def connection_made(self, send: SendFrame) -> None:
        """A connection is up (in the running loop): actions go out through `send`."""
        self._send = send
        self._deadlines = DeadlineClock.of(self._deadlines)  # one timer for all the calls' deadlines

    def connection_lost(self, reason: str = "the connection was closed") -> None:
        """Fail every call in flight; later calls fail at once until a new connection is made."""
        self._send = None
        pending, self._pending = self._pending, {}
        for echo, future in pending.items():
            if not future.done():
                future.set_exception(BotDisconnected(self.bot_id, f"echo {echo}", reason))

    def feed_response(self, response: Mapping[str, Any]) -> bool:
        """Resolve the call waiting for this response's echo; False when nobody waits for it."""
        echo = response.get("echo")
        future = self._pending.pop(str(echo), None) if echo is not None else None
        if future is None or future.done():
            return False
        future.set_result(response)
        return True

    async def call_action(
        self, action: str, params: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        limit = self.timeout if timeout is None else timeout
        echo, future, deadline = self._expect(action, limit)
        try:
            await self._write(action, params, echo)
            response = await future
        except Exception as exc:
            raise self._failure(action, limit, exc) from (None if isinstance(exc, TimeoutError) else exc)
        finally:
            self._forget(echo, deadline)
            if future.done() and not future.cancelled():
                future.exception()  # retrieved: it was raised above or superseded by the send error
        return result_of(self.bot_id, action, response)

    async def post_action(self, action: str, params: Mapping[str, Any], report: ActionReport) -> None:
        """Write the action's frame and return: the response (or its timeout, or the connection
        dropping) reaches `report` when it comes."""
        limit = self.timeout
        try:
            echo, future, deadline = self._expect(action, limit)
        except BotDisconnected as exc:
            report(None, exc)
            return

        def settled(future: asyncio.Future[Mapping[str, Any]]) -> None:
            self._forget(echo, deadline)
            if future.cancelled():
                report(None, BotDisconnected(self.bot_id, action, "the call was cancelled"))
            elif (error := future.exception()) is not None:
                report(None, self._failure(action, limit, error))
            else:
                try:
                    data = result_of(self.bot_id, action, future.result())
                except ActionFailed as exc:
                    report(None, exc)
                else:
                    report(data, None)

        future.add_done_callback(settled)
        try:
            await self._write(action, params, echo)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)

    def _expect(self, action: str, limit: float) -> tuple[str, asyncio.Future[Mapping[str, Any]], FutureDeadline]:
        """A new echo and the future its response resolves (failed with `TimeoutError` after `limit`)."""
        clock = self._deadlines
        if self._send is None or clock is None:
            raise BotDisconnected(self.bot_id, action, "the bot is not connected")
        echo = str(next(self._echo))
        future: asyncio.Future[Mapping[str, Any]] = clock.loop.create_future()
        self._pending[echo] = future
        return echo, future, clock.expire_after(future, limit)

    def _forget(self, echo: str, deadline: FutureDeadline) -> None:
        """A call ended: its echo and deadline are no longer watched."""
        self._pending.pop(echo, None)
        if self._deadlines is not None:
            self._deadlines.discard(deadline)

    async def _write(self, action: str, params: Mapping[str, Any] | None, echo: str) -> None:
        send = self._send
        if send is None:
            raise BotDisconnected(self.bot_id, action, "the bot is not connected")
        await send(jsonio.dumps({"action": action, "params": dict(params or {}), "echo": echo}))

    def _failure(self, action: str, limit: float, exc: BaseException) -> Exception:
        """The typed error of a call that got no response."""
        if isinstance(exc, TimeoutError):
            return ActionTimeout(self.bot_id, action, limit)
        if isinstance(exc, BotDisconnected):
            return BotDisconnected(self.bot_id, action, "the connection dropped while the call was in flight")
        return BotDisconnected(self.bot_id, action, f"sending failed ({exc})")  # the frame could not be written


class HttpActionClient(BotApi):
    """Actions over the HTTP API: `POST <base>/<action>` with JSON params and a Bearer token."""

    def __init__(self, bot_id: str, base_url: str, *, access_token: str | None = None, timeout: float = 30.0) -> None:
        self.bot_id = bot_id
        self.self_id = 0
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        headers = {"Authorization": f"Bearer {access_token}"} if access_token else {}
        self._http = httpx.AsyncClient(headers=headers, trust_env=False, timeout=timeout)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call_action(
        self, action: str, params: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        limit = self.timeout if timeout is None else timeout
        try:
            reply = await self._http.post(f"{self.base_url}/{action}", json=dict(params or {}), timeout=limit)
        except httpx.TimeoutException:
            raise ActionTimeout(self.bot_id, action, limit) from None
        except httpx.HTTPError as exc:
            raise BotDisconnected(self.bot_id, action, f"HTTP request to {self.base_url} failed ({exc})") from exc
        if reply.status_code in (401, 403):
            raise ActionFailed(self.bot_id, action, 1400 + reply.status_code % 100, "the access token was rejected")
        if reply.status_code == 404:
            raise ActionFailed(self.bot_id, action, 1404, "the implementation does not know this action")
        if reply.status_code >= 400:
            raise ActionFailed(self.bot_id, action, 1400, f"HTTP {reply.status_code}")
        try:
            body = reply.json()
        except ValueError as exc:
            raise ActionFailed(self.bot_id, action, 1400, f"the response is not JSON: {reply.text[:80]!r}") from exc
        return result_of(self.bot_id, action, body)
