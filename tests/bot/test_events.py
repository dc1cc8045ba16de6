"""Event models and the route table."""

from __future__ import annotations

import pytest

from plughost.sdk.events import (
    EventParseError,
    MessageEvent,
    MessageSentEvent,
    MetaEvent,
    NoticeEvent,
    RequestEvent,
    UnknownEvent,
    parse_event,
    route_of,
)
from plughost.sdk.message import Segment

NOTICES = [
    ({"notice_type": "group_upload"}, "GroupUpload"),
    ({"notice_type": "group_admin", "sub_type": "set"}, "GroupAdminSet"),
    ({"notice_type": "group_admin", "sub_type": "unset"}, "GroupAdminUnset"),
    ({"notice_type": "group_decrease", "sub_type": "leave"}, "GroupDecreaseLeave"),
    ({"notice_type": "group_decrease", "sub_type": "kick"}, "GroupDecreaseKick"),
    ({"notice_type": "group_decrease", "sub_type": "kick_me"}, "GroupDecreaseKickMe"),
    ({"notice_type": "group_increase", "sub_type": "approve"}, "GroupIncreaseApprove"),
    ({"notice_type": "group_increase", "sub_type": "invite"}, "GroupIncreaseInvite"),
    ({"notice_type": "group_ban", "sub_type": "ban"}, "GroupBanBan"),
    ({"notice_type": "group_ban", "sub_type": "lift_ban"}, "GroupBanLiftBan"),
    ({"notice_type": "friend_add"}, "FriendAdd"),
    ({"notice_type": "group_recall"}, "GroupRecall"),
    ({"notice_type": "friend_recall"}, "FriendRecall"),
    ({"notice_type": "notify", "sub_type": "poke", "group_id": 5}, "GroupPoke"),
    ({"notice_type": "notify", "sub_type": "poke", "group_id": 0}, "PrivatePoke"),
    ({"notice_type": "notify", "sub_type": "poke"}, "PrivatePoke"),
    ({"notice_type": "notify", "sub_type": "lucky_king"}, "NotifyLuckyKing"),
    ({"notice_type": "notify", "sub_type": "honor"}, "NotifyHonor"),
    ({"notice_type": "notify", "sub_type": "msg_emoji_like"}, "MessageEmojiLike"),
    ({"notice_type": "group_msg_emoji_like"}, "GroupReaction"),
    ({"notice_type": "group_card"}, "GroupCard"),
    ({"notice_type": "offline_file"}, "OfflineFile"),
    ({"notice_type": "client_status"}, "ClientStatus"),
    ({"notice_type": "essence", "sub_type": "add"}, "EssenceAdd"),
    ({"notice_type": "essence", "sub_type": "delete"}, "EssenceDelete"),
    ({"notice_type": "group_admin", "sub_type": "transfer"}, "Unknown:group_admin.transfer"),
    ({"notice_type": "notify", "sub_type": "title"}, "Unknown:notify.title"),
    ({"notice_type": "bot_offline"}, "Unknown:bot_offline"),
]


@pytest.mark.parametrize(("fields", "route"), NOTICES)
def test_notice_routes(fields: dict[str, object], route: str) -> None:
    event = parse_event({"post_type": "notice", "time": 1, "self_id": 2, **fields})
    assert isinstance(event, NoticeEvent)
    assert (event.route_kind, event.route) == ("notice", route)


@pytest.mark.parametrize(
    ("fields", "route"),
    [
        ({"request_type": "friend"}, "Friend"),
        ({"request_type": "group", "sub_type": "add"}, "GroupAdd"),
        ({"request_type": "group", "sub_type": "invite"}, "GroupInvite"),
        ({"request_type": "group", "sub_type": "other"}, "Unknown:group.other"),
    ],
)
def test_request_routes(fields: dict[str, object], route: str) -> None:
    event = parse_event({"post_type": "request", "flag": "f", **fields})
    assert isinstance(event, RequestEvent)
    assert (event.route_kind, event.route) == ("request", route)


@pytest.mark.parametrize(
    ("fields", "route"),
    [
        ({"meta_event_type": "lifecycle", "sub_type": "enable"}, "LifecycleEnable"),
        ({"meta_event_type": "lifecycle", "sub_type": "disable"}, "LifecycleDisable"),
        ({"meta_event_type": "lifecycle", "sub_type": "connect"}, "LifecycleConnect"),
        ({"meta_event_type": "heartbeat", "interval": 5000, "status": {"online": True}}, "Heartbeat"),
    ],
)
def test_meta_routes(fields: dict[str, object], route: str) -> None:
    event = parse_event({"post_type": "meta_event", **fields})
    assert isinstance(event, MetaEvent)
    assert (event.route_kind, event.route) == ("meta", route)


def test_message_accepts_cq_strings_and_arrays() -> None:
    base = {"post_type": "message", "message_type": "group", "group_id": 7, "user_id": 8, "message_id": 9}
    from_cq = parse_event({**base, "message": "hi [CQ:at,qq=1]"})
    from_array = parse_event(
        {**base, "message": [{"type": "text", "data": {"text": "hi "}}, {"type": "at", "data": {"qq": "1"}}]}
    )
    assert isinstance(from_cq, MessageEvent)
    assert from_cq.message == from_array.message == [Segment.text("hi "), Segment.at(1)]  # type: ignore[attr-defined]
    assert from_cq.route == "Group" and from_cq.is_group
    sent = parse_event({**base, "post_type": "message_sent", "message": "x"})
    assert isinstance(sent, MessageSentEvent) and sent.route_kind == "message_sent"


def test_unknown_post_type_and_extra_fields_are_kept() -> None:
    event = parse_event({"post_type": "custom_thing", "foo": 1})
    assert isinstance(event, UnknownEvent)
    assert event.route == "Unknown:custom_thing"
    assert event.raw["foo"] == 1
    notice = parse_event({"post_type": "notice", "notice_type": "group_card", "card_new": "x"})
    assert notice.model_extra == {"card_new": "x"}


def test_bad_events_raise_clear_errors() -> None:
    with pytest.raises(EventParseError, match="user_id"):
        parse_event({"post_type": "message", "user_id": "not-a-number"})
    with pytest.raises(EventParseError, match="JSON object"):
        parse_event([1, 2])  # type: ignore[arg-type]
    for group_id in (None, 0):
        for post_type in ("message", "message_sent"):
            with pytest.raises(EventParseError, match="a group message needs a non-zero group_id"):
                parse_event({"post_type": post_type, "message_type": "group", "user_id": 1, "group_id": group_id})
    assert parse_event({"post_type": "message", "message_type": "private", "user_id": 1}).route == "Private"


def test_route_of_without_model() -> None:
    assert route_of({"post_type": "message", "message_type": "guild"}) == ("message", "Unknown:guild")
