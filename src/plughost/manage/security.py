"""Request checks that apply before routing: the management key, and the request body limit."""

from __future__ import annotations

import contextlib
import math
from typing import Annotated

from fastapi import Depends, Header, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from plughost.manage.context import ManageContext, context
from plughost.manage.errors import ApiError, error_response


async def require_key(
    request: Request,
    ctx: Annotated[ManageContext, Depends(context)],
    authorization: Annotated[str | None, Header(description="Bearer <management key>")] = None,
) -> None:
    """FastAPI dependency: a missing or wrong key answers 401; too many failures from one address 429."""
    address = request.client.host if request.client else "?"
    wait = ctx.keys.retry_after(address)
    if wait > 0:
        raise ApiError(
            429,
            "too_many_failures",
            "too many requests with a wrong key from this address; try again later",
            {"retry_after_s": math.ceil(wait)},
            headers={"Retry-After": str(math.ceil(wait))},
        )
    if not ctx.keys.check(address, authorization):
        message = "missing management key" if not authorization else "wrong management key"
        raise ApiError(
            401,
            "unauthorized",
            f"{message}: send 'Authorization: Bearer <key>' (see .plughost/manage.key)",
            headers={"WWW-Authenticate": "Bearer"},
        )


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes answers 413 without being read to the end."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._too_large(scope, receive, send)
            return
        seen = 0
        started = exceeded = False

        async def counting_receive() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    exceeded = True
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:  # the app's answer to the cut-off body is replaced by the 413
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        with contextlib.suppress(_TooLarge):
            await self.app(scope, counting_receive, tracking_send)
        if exceeded and not started:
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "body_too_large", f"the request body is larger than {self.limit} bytes", {"limit": self.limit}
        )
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass
