"""The JSON shapes shared by in-process, native and process plugins; the rate limiter."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from plughost.bot.config import BotConfig
from plughost.bot.dispatch import Dispatcher
from plughost.bot.ratelimit import TokenBucket
from plughost.sdk.bot import (
    Approve,
    Block,
    BotAnswerError,
    BotApi,
    Reject,
    Reply,
    decode_allow,
    decode_answer,
    encode_answer,
)
from plughost.sdk.call import Action, Call, Outcome, PluginError, actions_from_json
from plughost.sdk.descriptor import Descriptor, InterceptorSpec, RouteSpec
from plughost.sdk.events import parse_event
from plughost.sdk.handle import Health
from plughost.sdk.message import Message, Segment

from .conftest import LoadPlugin
from .directory import GuardedPlugins
from .onebot_impl import group_message, notice, request


class RecordingBot(BotApi):
    """The receiving end of actions for pipeline tests that do not need a socket."""

    def __init__(self) -> None:
        self.bot_id = "json"
        self.self_id = 10001
        self.actions: list[tuple[str, dict[str, Any]]] = []

    async def call_action(self, action: str, params: Any = None, *, timeout: float | None = None) -> Any:
        self.actions.append((action, dict(params or {})))
        return {"message_id": len(self.actions)}


class JsonHandle:
    """A handle that answers like a native or process plugin: JSON in, JSON out (through json.dumps)."""

    def __init__(self, plugin_id: str, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.requests: list[dict[str, Any]] = []
        self.descriptor = Descriptor(
            id=plugin_id,
            routes=(RouteSpec("notice", ("GroupPoke",), "poke"), RouteSpec("request", ("Friend", "GroupAdd"), "req")),
            interceptors=(InterceptorSpec("pre_handle", "pre"), InterceptorSpec("after_completion", "after")),
            capabilities=frozenset({"bot"}),
        )

    async def call(self, call: Call) -> Outcome:
        wire = json.loads(json.dumps(call.payload))  # exactly what crosses the C ABI / gRPC
        self.requests.append({"handler": call.handler, **wire})
        answer = json.loads(json.dumps(self.answers.get(call.handler)))
        sends = actions_from_json(answer.pop("sends", None)) if isinstance(answer, dict) else ()
        return Outcome(answer, sends)

    async def health(self) -> Health:
        return Health("ok")

    async def reconfigure(self, config: Any) -> None:
        return None

    async def set_enabled(self, enabled: bool) -> None:
        return None

    async def stop(self) -> None:
        return None


def test_answers_round_trip_through_json() -> None:
    for answer in (None, Reply(Message("hi"), stop=False, at_sender=True), Approve("r"), Reject("no"), Block()):
        encoded = json.loads(json.dumps(encode_answer(answer)))
        assert decode_answer(encoded) == answer
    assert decode_answer("text") == Reply(Message("text")) and decode_answer([]) is None


def test_qimenbot_numeric_answers_are_accepted() -> None:
    segments = json.dumps([{"type": "face", "data": {"id": "1"}}])
    assert decode_answer({"action_kind": 1, "message": "plain"}) == Reply(Message("plain"))
    assert decode_answer({"action_kind": 1, "message": "", "segments_json": segments}) == Reply(
        Message([Segment.face(1)])
    )
    assert decode_answer({"action_kind": 2, "message": "remark"}) == Approve("remark")
    assert decode_answer({"action_kind": 3, "message": "reason"}) == Reject("reason")
    assert decode_answer({"action_kind": 0}) is None
    assert decode_allow({"allow": 0}) is False and decode_allow({"allow": 1}) is True
    assert decode_allow({"action": "block"}) is False and decode_allow(None) is True


def test_invalid_answers_are_clear_errors() -> None:
    with pytest.raises(BotAnswerError, match="unknown bot answer action 'explode'"):
        decode_answer({"action": "explode"})
    with pytest.raises(BotAnswerError, match="must be an object"):
        decode_answer(42)
    with pytest.raises(BotAnswerError, match="pre_handle must answer"):
        decode_allow("maybe")
    with pytest.raises(BotAnswerError, match="returned int"):
        encode_answer(7)


async def test_json_plugins_answer_like_python_plugins() -> None:
    directory = GuardedPlugins()
    native = JsonHandle(
        "native",
        {
            "pre": {"allow": 1},
            "after": {"sends": [{"action": "send_private_msg", "params": {"user_id": 5, "message": "bye"}}]},
            "poke": {"action_kind": 1, "message": "poked!"},
            "req": {"action": "reject", "reason": "full"},
        },
    )
    directory.add("native", native)  # type: ignore[arg-type]
    bot = RecordingBot()
    async with Dispatcher(directory) as dispatcher:
        lane = dispatcher.attach("json", BotConfig(id="json", transport="ws-reverse", bind="127.0.0.1:0"), bot)
        await dispatcher.process(lane, parse_event(notice("notify", "poke", group_id=3, user_id=4)))
        await dispatcher.process(lane, parse_event(request("group", "add", group_id=3, user_id=4, flag="F")))
        await dispatcher.process(lane, parse_event(request("friend", user_id=4, flag="G")))
    assert bot.actions == [
        ("send_group_msg", {"group_id": 3, "message": [{"type": "text", "data": {"text": "poked!"}}]}),
        ("send_private_msg", {"user_id": 5, "message": "bye"}),
        ("set_group_add_request", {"flag": "F", "sub_type": "add", "approve": False, "reason": "full"}),
        ("send_private_msg", {"user_id": 5, "message": "bye"}),
        ("set_friend_add_request", {"flag": "G", "approve": False, "remark": ""}),
        ("send_private_msg", {"user_id": 5, "message": "bye"}),
    ]
    first = native.requests[0]
    assert first["handler"] == "pre"
    assert {k: first[k] for k in ("kind", "route", "bot_id", "self_id", "group_id", "sender_id")} == {
        "kind": "notice", "route": "GroupPoke", "bot_id": "json", "self_id": 10001, "group_id": "3", "sender_id": "4",
    }  # fmt: skip
    assert first["event"]["notice_type"] == "notify"


async def test_python_handlers_answer_json(plugins: tuple[GuardedPlugins, LoadPlugin]) -> None:
    """A Python plugin answers the same JSON outcome a native or process plugin does."""
    _, load = plugins
    handle = await load("py", """
        @plugin.route("message", "Group")
        async def answer(ev: MessageEvent, bot: BotApi) -> Reply:
            await bot.send_private_msg(ev.user_id, "psst")
            return ReplyBuilder().text("hi ").at(ev.user_id).build()

        @plugin.pre_handle
        def only_groups(ev: Event) -> bool:
            return isinstance(ev, MessageEvent) and ev.is_group

        @plugin.route("request", "Friend")
        async def friend(ev: RequestEvent, bot: BotApi) -> Approve:
            await bot.get_status()  # this call came without a bot connection: a clear error
            return Approve()
    """)  # fmt: skip
    wire = {"kind": "message", "route": "Group", "bot_id": "b", "self_id": 1,
            "event": group_message("x", message_id=1)}  # fmt: skip
    outcome = await handle.call(Call("route.message.answer", wire, "route"))
    assert outcome.value == {
        "action": "reply",
        "segments": [{"type": "text", "data": {"text": "hi "}}, {"type": "at", "data": {"qq": "456"}}],
        "stop": True,
    }
    assert outcome.sends == (
        Action("send_private_msg", {"user_id": 456, "message": [{"type": "text", "data": {"text": "psst"}}],
                                    "auto_escape": False}),
    )  # fmt: skip
    assert (await handle.call(Call("pre_handle.only_groups", wire, "pre_handle"))).value is True
    wire_request = {"event": request("friend", user_id=2, flag="f")}
    assert (await handle.call(Call("pre_handle.only_groups", wire_request, "pre_handle"))).value is False
    failed = await handle.call(Call("route.request.friend", wire_request, "route"))
    assert failed.error is not None and "needs a bot connection" in failed.error.message
    # a handler typed for request events does not apply to a call without one
    assert await handle.call(Call("route.request.friend", {"route": "Friend"}, "route")) == Outcome()


def test_route_declarations_are_checked() -> None:
    from plughost.sdk import Plugin

    plugin = Plugin(id="x", version="1")
    with pytest.raises(Exception, match="notice has no route 'GroupPok'; known routes:"):
        plugin.route("notice", "GroupPok")
    with pytest.raises(Exception, match="unknown route kind 'notices'"):
        plugin.route("notices")
    with pytest.raises(Exception, match="nothing can fill parameter 'mystery'"):

        @plugin.route("notice")
        async def handler(mystery):  # type: ignore[no-untyped-def]
            return None


async def test_token_bucket_limits_sends() -> None:
    assert TokenBucket(0).unlimited
    bucket = TokenBucket(rate=20, burst=1)
    assert bucket.try_acquire() is True
    assert bucket.try_acquire() is False  # the single token is gone until 50 ms pass
    order: list[int] = []

    async def take(n: int) -> None:
        await bucket.acquire()
        order.append(n)

    await asyncio.gather(*(take(n) for n in range(3)))
    assert order == [0, 1, 2] and bucket.waited >= 3


class NativeStyleHandle(JsonHandle):
    """Fails `poke` after queuing a `host.bot.send`, as the native runtime reports it."""

    async def call(self, call: Call) -> Outcome:
        if call.handler == "poke":
            early = [{"target": "group", "group_id": 3, "user_id": None,
                      "message": [{"type": "text", "data": {"text": "early"}}]}]  # fmt: skip
            return Outcome(None, actions_from_json(early), PluginError("plugin_error", "segfault avoided"))
        return await super().call(call)


async def test_native_runtime_answer_forms_and_sends_of_failed_calls() -> None:
    directory = GuardedPlugins()
    text = [{"type": "text", "data": {"text": "approved?"}}]
    native = NativeStyleHandle(
        "native",
        {
            "pre": {"action": "ignore", "allow": 1, "reply": None, "sends": []},
            "after": {"action": "ignore", "reply": None, "sends": []},
            "req": {"action": "reply", "text": "approved?", "reply": "approved?",
                    "sends": [{"target": "private", "group_id": None, "user_id": 4, "message": text}]},
        },
    )  # fmt: skip
    directory.add("native", native)  # type: ignore[arg-type]
    bot = RecordingBot()
    async with Dispatcher(directory) as dispatcher:
        lane = dispatcher.attach("json", BotConfig(id="json", transport="ws-reverse", bind="127.0.0.1:0"), bot)
        failed = await dispatcher.process(lane, parse_event(notice("notify", "poke", group_id=3, user_id=4)))
        answered = await dispatcher.process(lane, parse_event(request("friend", user_id=4, flag="G")))
    assert failed.errors and "segfault avoided" in failed.errors[0]
    assert bot.actions == [
        ("send_group_msg", {"group_id": 3, "message": [{"type": "text", "data": {"text": "early"}}]}),
        ("send_private_msg", {"user_id": 4, "message": text}),  # the reply to the request (a private chat)
        ("send_private_msg", {"user_id": 4, "message": text}),  # the queued send
    ]
    assert answered.status == "route"


async def test_the_docs_example_plugin_works(tmp_path: Any) -> None:
    """The first code block of docs/bot.md, loaded as a plugin and driven by the dispatcher."""
    import re
    from pathlib import Path

    from plughost.runtime.base import LoadRequest
    from plughost.runtime.python import PythonRuntime
    from plughost.sdk.manifest import PluginManifest

    docs = (Path(__file__).resolve().parents[2] / "docs" / "bot.md").read_text()
    code = re.search(r"```python\n(.*?)```", docs, re.S).group(1)  # type: ignore[union-attr]
    plugin_dir = tmp_path / "docs_example"
    plugin_dir.mkdir()
    (plugin_dir / "plugin.toml").write_text('id = "docs_example"\nversion = "1.0.0"\n')
    (plugin_dir / "__init__.py").write_text(code)
    manifest = PluginManifest.model_validate({"id": "docs_example", "version": "1.0.0"})
    handle = await PythonRuntime().load(LoadRequest("docs_example", plugin_dir, manifest, tmp_path / "data"))
    directory = GuardedPlugins()
    directory.add("docs_example", handle)
    bot = RecordingBot()
    try:
        async with Dispatcher(directory) as dispatcher:
            lane = dispatcher.attach("d", BotConfig(id="d", transport="ws-reverse", bind="127.0.0.1:0"), bot)
            await dispatcher.process(lane, parse_event(notice("notify", "poke", group_id=7, user_id=8)))
            await dispatcher.process(lane, parse_event(request("friend", user_id=8, flag="f", comment="plughost fan")))
            spam = await dispatcher.process(lane, parse_event(group_message("buy spam", message_id=1)))
    finally:
        await handle.stop()
    assert bot.actions == [
        ("send_group_msg", {"group_id": 7, "message": [
            {"type": "text", "data": {"text": "ouch, "}}, {"type": "at", "data": {"qq": "8"}}]}),
        ("set_friend_add_request", {"flag": "f", "approve": True, "remark": "met on QQ"}),
    ]  # fmt: skip
    assert spam.status == "blocked"
