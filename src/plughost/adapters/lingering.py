"""uvicorn's HTTP/1.1 protocol with a bounded lingering close, for answers given before the body is read.

The HTTP event server refuses some requests from their headers alone (no signature, a body over
`max_body_bytes`) and closes the connection instead of reading the rest of the body. Closing a
socket that still has unread input makes the kernel reset the connection, which can destroy the
answer before the client reads it (a client still uploading reads nothing until its upload fails).
So, like nginx's `lingering_close`, the server first sends the answer and a FIN (`write_eof`), then
reads and drops whatever still arrives — at most `LINGER_BYTES`, for at most `LINGER_S` — and only
then closes. The client gets the answer; the server never reads the whole body.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

LINGER_BYTES = 2**20
LINGER_S = 2.0


class LingeringH11Protocol(H11Protocol):
    """`H11Protocol` whose server-side close lingers (bounded) instead of resetting the connection
    while the client is still sending a request body; other closes are immediate."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(cast(asyncio.Transport, _LingeringTransport(transport, self)))


class _LingeringTransport:
    """The connection's transport as uvicorn sees it: `close()` may linger; everything else is the transport's."""

    def __init__(self, transport: asyncio.Transport, protocol: H11Protocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._lingering = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self._lingering or self._transport.is_closing()

    def close(self) -> None:
        transport = self._transport
        uploading = self._protocol.conn.their_state is h11.SEND_BODY  # an answer came before the body was read
        if not uploading or self._lingering or transport.is_closing() or not transport.can_write_eof():
            transport.close()
            return
        self._lingering = True
        transport.write_eof()  # the answer goes out, then FIN; reading goes on
        transport.set_protocol(_Discard(transport, self._protocol))
        if not transport.is_reading():  # uvicorn pauses reading while a request body waits
            transport.resume_reading()


class _Discard(asyncio.Protocol):
    """Drops what the client still sends; closes after `LINGER_BYTES`, `LINGER_S` or the client's EOF.

    The protocol it replaced hears about the end of the connection (uvicorn tracks connections).
    """

    def __init__(self, transport: asyncio.Transport, replaced: H11Protocol) -> None:
        self._transport = transport
        self._replaced = replaced
        self._left = LINGER_BYTES
        self._timer = asyncio.get_running_loop().call_later(LINGER_S, transport.close)

    def data_received(self, data: bytes) -> None:
        self._left -= len(data)
        if self._left <= 0:
            self._transport.close()

    def eof_received(self) -> bool:
        return False  # the client is done: close

    def connection_lost(self, exc: Exception | None) -> None:
        self._timer.cancel()
        self._replaced.connection_lost(exc)
