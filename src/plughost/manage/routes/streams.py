"""`/api/v1/events` and `/api/v1/logs`: bounded histories and live Server-Sent Events tails.

A tail resumes after `Last-Event-ID` (or `?after=`); events that aged out meanwhile are announced
by a `missed` event with their count, so a client knows it has a gap.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from plughost.manage.context import ManageContext, context
from plughost.manage.errors import ERROR_RESPONSES, ApiError, check_choice
from plughost.manage.feeds import LEVELS, Feed
from plughost.manage.models import EventPage, LogPage
from plughost.sdk.models import EventType

router = APIRouter(prefix="/api/v1", tags=["events and logs"], responses=ERROR_RESPONSES)
Ctx = Annotated[ManageContext, Depends(context)]
KEEPALIVE_S = 15.0
COALESCE_S = 0.01
BATCH = 500
Filter = Callable[[dict[str, Any]], bool]


def event_filter(plugin_id: str | None, types: str | None) -> Filter:
    wanted = {t.strip() for t in types.split(",") if t.strip()} if types else None
    for wanted_type in sorted(wanted or ()):
        check_choice("types", wanted_type, EventType)
    return lambda item: (
        (plugin_id is None or item["plugin_id"] == plugin_id) and (wanted is None or item["type"] in wanted)
    )


def log_filter(plugin_id: str | None, level: str | None) -> Filter:
    minimum = 0
    if level is not None:
        if level.lower() not in LEVELS:
            raise ApiError(400, "bad_parameter", f"level must be one of {', '.join(LEVELS)}", {"field": "level"})
        minimum = LEVELS[level.lower()]
    return lambda item: (
        (plugin_id is None or item["plugin_id"] == plugin_id) and LEVELS.get(item["level"], 0) >= minimum
    )


def resume_point(last_event_id: str | None, after: int | None) -> int:
    """`Last-Event-ID` (a reconnect: what the client last got), else `?after=` (where it starts), else now.
    A `Last-Event-ID` that is not an event id is 400 `bad_parameter`."""
    if last_event_id is not None and last_event_id.strip():
        if not last_event_id.strip().isdigit():
            message = f"Last-Event-ID must be an event id (a whole number), got {last_event_id[:40]!r}"
            raise ApiError(400, "bad_parameter", message, {"field": "Last-Event-ID"})
        return int(last_event_id.strip())
    if after is not None:
        return after
    return -1  # only what arrives from now on


async def tail(feed: Feed, request: Request, start: int, keep: Filter) -> AsyncIterator[bytes]:
    """Items after `start` (from now when -1), then every new one, until the client goes away.

    What arrived together goes out as one chunk, and after a wake-up the stream waits
    `COALESCE_S` for more: at high event rates each client costs one send per batch, not per event.
    """
    last = feed.last_id if start < 0 else start
    if last > feed.last_id:  # the client saw ids this server never gave: the host restarted; replay
        last = 0
    while True:
        backlog = feed.after(last, BATCH)
        chunk = [missed_event(backlog.missed)] if backlog.missed else []
        chunk.extend(entry.wire for entry in backlog.items if keep(entry.item))
        if backlog.items:
            last = backlog.items[-1].id
        if chunk:
            yield b"".join(chunk)
        if len(backlog.items) == BATCH:
            continue
        if feed.closed or await request.is_disconnected():
            return
        if await feed.wait(last, KEEPALIVE_S):
            await asyncio.sleep(COALESCE_S)
        else:
            yield b": keep-alive\n\n"


def event_stream_response(events: AsyncIterator[bytes]) -> StreamingResponse:
    """`text/event-stream`, never cached or buffered by a proxy."""
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)


def missed_event(count: int) -> bytes:
    return f"event: missed\ndata: {json.dumps({'missed': count})}\n\n".encode()


@router.get("/events", response_model=EventPage, summary="Recent plugin events")
async def events(
    ctx: Ctx,
    plugin_id: str | None = None,
    types: Annotated[str | None, Query(description="Comma-separated event types (load, enable, error…).")] = None,
    after: Annotated[int, Query(ge=0, description="Only events with a larger id.")] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> EventPage:
    keep = event_filter(plugin_id, types)
    backlog = ctx.events.after(after)
    chosen = [entry.as_json() for entry in backlog.items if keep(entry.item)][-limit:]
    return EventPage.model_validate({"events": chosen, "last_id": ctx.events.last_id, "missed": backlog.missed})


@router.get("/events/stream", summary="Live plugin events (Server-Sent Events)", response_class=StreamingResponse)
async def event_stream(
    ctx: Ctx,
    request: Request,
    plugin_id: str | None = None,
    types: str | None = None,
    after: Annotated[int | None, Query(ge=0)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Each event's SSE id is its event id: reconnecting with `Last-Event-ID` resumes without loss."""
    keep = event_filter(plugin_id, types)
    return event_stream_response(tail(ctx.events, request, resume_point(last_event_id, after), keep))


@router.get("/logs", response_model=LogPage, summary="Recent log records")
async def logs(
    ctx: Ctx,
    plugin_id: str | None = None,
    level: Annotated[str | None, Query(description="Minimum level: debug, info, warning, error.")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> LogPage:
    keep = log_filter(plugin_id, level)
    records = [entry.as_json() for entry in ctx.logs.recent(limit, keep)]
    return LogPage.model_validate({"records": records, "last_id": ctx.logs.last_id})


@router.get("/logs/stream", summary="Live log records (Server-Sent Events)", response_class=StreamingResponse)
async def log_stream(
    ctx: Ctx,
    request: Request,
    plugin_id: str | None = None,
    level: str | None = None,
    after: Annotated[int | None, Query(ge=0)] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    keep = log_filter(plugin_id, level)
    return event_stream_response(tail(ctx.logs, request, resume_point(last_event_id, after), keep))
