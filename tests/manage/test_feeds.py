"""Numbered feeds: resuming, aged-out items announced as missed, and the SSE wire form."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from plughost.manage.feeds import Feed
from plughost.sdk.models import EventType
from tests.manage.support import serve
from tests.manage.test_api import read_sse


def test_after_returns_what_follows_and_counts_what_aged_out() -> None:
    feed = Feed(limit=3)
    for n in range(5):
        feed.publish({"n": n})
    assert feed.last_id == 5
    backlog = feed.after(1)
    assert [e.id for e in backlog.items] == [3, 4, 5] and backlog.missed == 1
    assert feed.after(3).missed == 0 and [e.item["n"] for e in feed.after(3).items] == [3, 4]
    assert feed.after(5).items == [] and feed.after(99).items == []
    assert [e.id for e in feed.after(0, limit=2).items] == [3, 4]
    assert feed.after(4).items[0].wire == b'id: 5\ndata: {"n":4,"id":5}\n\n'


async def test_wait_wakes_on_publish_and_times_out_without() -> None:
    feed = Feed(limit=10)
    assert await feed.wait(0, timeout=0.01) is False
    waiter = asyncio.create_task(feed.wait(0, timeout=30))
    await asyncio.sleep(0)
    feed.publish({"x": 1})
    assert await asyncio.wait_for(waiter, 30) is True


async def test_a_client_too_far_behind_is_told_how_many_it_missed(workspace: Path) -> None:
    async with serve(workspace, event_records=10) as running:
        bus = running.host.manager.events
        for n in range(25):
            bus.emit("p", EventType.RECONFIGURE, True, f"change {n}")
        events = running.server.context.events  # type: ignore[union-attr]
        assert events.last_id == 25
        async with running.client.stream("GET", "/api/v1/events/stream", params={"after": 5}) as stream:
            received = await asyncio.wait_for(read_sse(stream, 11), 30)
    assert received[0]["event"] == "missed" and json.loads(received[0]["data"]) == {"missed": 10}
    assert [int(e["id"]) for e in received[1:]] == list(range(16, 26))
    assert json.loads(received[-1]["data"])["message"] == "change 24"
