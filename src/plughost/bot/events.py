"""Typed OneBot v11 events and route names (defined in `plughost.sdk.events` so plugins can import them)."""

from plughost.sdk.events import (
    META_ROUTES,
    NOTICE_ROUTES,
    REQUEST_ROUTES,
    ROUTES_BY_KIND,
    Event,
    EventParseError,
    MessageEvent,
    MessageSentEvent,
    MetaEvent,
    NoticeEvent,
    RequestEvent,
    Sender,
    UnknownEvent,
    parse_event,
    route_of,
)

__all__ = [
    "META_ROUTES",
    "NOTICE_ROUTES",
    "REQUEST_ROUTES",
    "ROUTES_BY_KIND",
    "Event",
    "EventParseError",
    "MessageEvent",
    "MessageSentEvent",
    "MetaEvent",
    "NoticeEvent",
    "RequestEvent",
    "Sender",
    "UnknownEvent",
    "parse_event",
    "route_of",
]
