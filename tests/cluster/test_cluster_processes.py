"""Several hosts as one bot, as real `plughost run --cluster` processes: enabling and disabling a
plugin through one node's management API is seen by the other (waited for on the other node's
live event stream; the latency is reported, not asserted)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from tests.cluster.test_cluster_control import make_workspace
from tests.redis_server import RedisServer

KEY = "cluster-test-key-0123456789abcdef"
START_TIMEOUT_S = 60.0
WAIT_S = 10.0


class NodeProcess:
    """One `plughost run --cluster` process and a client for its management API."""

    def __init__(self, process: asyncio.subprocess.Process, url: str) -> None:
        self.process = process
        self.api = httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30)

    async def events_after(self, after: int) -> AsyncIterator[dict[str, Any]]:
        """This node's plugin events after id `after`, as they come (its SSE tail)."""
        async with self.api.stream("GET", "/api/v1/events/stream", params={"after": after}) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    yield json.loads(line[6:])

    async def last_event_id(self) -> int:
        return int((await self.api.get("/api/v1/events", params={"limit": 1})).json()["last_id"])


@contextlib.asynccontextmanager
async def node_process(workspace: Path, redis_url: str) -> AsyncIterator[NodeProcess]:
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "plughost", "run", "--no-console", "-w", str(workspace)),
        *("--cluster", redis_url, "--manage-bind", "127.0.0.1:0"),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "300", "NO_COLOR": "1", "PLUGHOST_MANAGE_KEY": KEY},
    )
    assert process.stdout is not None
    output, url = "", None
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            while "running;" not in output:
                line = (await process.stdout.readline()).decode()
                assert line, f"the node exited:\n{output}"
                output += line
                if found := re.search(r"management API on (http://\S+)", line):
                    url = found.group(1)
        assert url is not None, output
        node = NodeProcess(process, url)
        drain = asyncio.ensure_future(process.stdout.read())  # keeps the pipe from filling up
        try:
            yield node
        finally:
            await node.api.aclose()
            process.terminate()
            assert await asyncio.wait_for(process.wait(), 30) == 0, (await drain).decode()[-3000:]
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def first_event(node: NodeProcess, after: int, action: str, *, remote: bool) -> dict[str, Any]:
    """The first `action` event of plugin "flaky" after id `after` on `node`: one that happened on
    another node (`remote`, with `metadata.node`) or on this one."""
    async with asyncio.timeout(WAIT_S):
        async for event in node.events_after(after):
            if event["type"] == action and event["plugin_id"] == "flaky" and ("node" in event["metadata"]) is remote:
                return event
    raise AssertionError(f"the event stream ended before a {action} event")  # pragma: no cover


async def test_enable_and_disable_through_one_node_are_seen_by_the_other_process(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    one_ws, two_ws = make_workspace(tmp_path / "one"), make_workspace(tmp_path / "two")
    async with node_process(one_ws, redis_server.url) as one, node_process(two_ws, redis_server.url) as two:
        for source, target, action in ((one, two, "disable"), (two, one, "enable")):
            after = await target.last_event_id()
            applied = asyncio.ensure_future(first_event(target, after, action, remote=False))
            sent_at = time.time()  # the processes share this machine's clock
            response = await source.api.post(f"/api/v1/plugins/flaky/{action}")
            assert response.status_code == 200 and response.json()["changed"] is True, response.text
            event = await applied
            print(f"{action} through one node's API applied by the other process "
                  f"{(event['timestamp'] - sent_at) * 1000:.1f} ms after the request was sent")  # fmt: skip
            assert event["success"] is True
            plugin = (await target.api.get("/api/v1/plugins/flaky")).json()
            assert plugin["state"] == ("disabled" if action == "disable" else "enabled")
            # the source's own event reaches the target's history too, naming the node it happened on
            await first_event(target, after, action, remote=True)

        state = (two_ws / "plugin-state.toml").read_text()
        assert "flaky = true" in state
