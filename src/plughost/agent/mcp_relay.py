"""`plughost mcp` beside a running host: MCP over stdio, relayed to the host's `/mcp` endpoint.

An agent (a desktop app, an IDE) starts `plughost mcp` and speaks MCP on its stdin and stdout.
When a host runs for the workspace, every message goes as it is to the host's streamable-HTTP
endpoint, and every answer, notification and server request comes back: the agent uses the
running host's plugins, with their state, instead of a second copy of the workspace.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio

log = logging.getLogger("plughost.agent.relay")

HTTP_TIMEOUT_S = 30.0
HTTP_READ_TIMEOUT_S = 300.0  # the host holds a response stream open while a tool runs
END_GRACE_S = 30.0  # after the agent closes stdin, how long its open requests may still take


class RelayError(Exception):
    """The host's endpoint refused the relay (no MCP there, a wrong key) or went away."""


async def relay_stdio(url: str, key: str | None) -> None:
    """Relay MCP between this process's stdin/stdout and the endpoint at `url` until either side ends.

    `RelayError` when the host answers with an HTTP error (its message names the status) or stops
    answering; the agent then sees the end of the stream, as when a server exits.
    """
    import httpx2
    import mcp_types as types
    from mcp.client.streamable_http import streamable_http_client
    from mcp.server.stdio import stdio_server

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    timeout = httpx2.Timeout(HTTP_TIMEOUT_S, read=HTTP_READ_TIMEOUT_S)
    failure: list[str] = []
    unanswered: set[Any] = set()  # ids of the agent's requests the host has not answered yet
    answered = anyio.Event()  # set when the last of them is answered
    async with (
        stdio_server() as (agent_in, agent_out),
        httpx2.AsyncClient(headers=headers, timeout=timeout) as client,
        streamable_http_client(url, http_client=client) as (host_in, host_out),
        agent_out,
        host_out,
        anyio.create_task_group() as group,
    ):

        async def from_agent() -> None:
            async for item in agent_in:
                if isinstance(item, Exception):
                    log.warning("MCP relay: ignored a message from the agent that is not JSON-RPC: %s", item)
                    continue
                if isinstance(item.message, types.JSONRPCRequest):
                    unanswered.add(item.message.id)
                await host_out.send(item)
            # the agent closed stdin: its open requests still get their answers (within a grace period)
            with anyio.move_on_after(END_GRACE_S):
                if unanswered:
                    await answered.wait()
            group.cancel_scope.cancel()

        async def from_host() -> None:
            async for item in host_in:
                if isinstance(item, Exception):
                    failure.append(_reason(item))
                    break
                await agent_out.send(item)
                if isinstance(item.message, types.JSONRPCResponse | types.JSONRPCError):
                    unanswered.discard(item.message.id)
                    if not unanswered:
                        answered.set()
            group.cancel_scope.cancel()  # the host ended the session (or failed): so does the relay

        group.start_soon(from_agent)
        group.start_soon(from_host)
    if failure:
        raise RelayError(f"the host's MCP endpoint at {url} failed: {failure[0]}")


def _reason(exc: Exception) -> str:
    """One line on what the HTTP side raised (a status error names the status; the key and a missing
    endpoint were checked before relaying)."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return f"{type(exc).__name__}: {exc}" if status is None else f"HTTP {status}: {exc}"
