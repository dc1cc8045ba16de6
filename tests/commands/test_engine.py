"""Resolution, overloads, optional/varargs, parsers, result kinds and their replies."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from plughost.bot.commands import CommandEngine, CommandSender, PermissionService, ResultKind
from plughost.bot.config import CommandsConfig
from plughost.sdk.message import Message, Segment

from .conftest import Lab

CONSOLE = CommandSender.console()

DEMO = """
class Color(enum.Enum):
    RED = "r"
    BLUE = "b"

@plugin.command("greet", aliases=["hi", "你好"], description="greet someone")
async def greet(ctx: CommandContext, name: str, times: int = 1) -> str:
    return " ".join([f"hello {name}"] * times)

@plugin.command("创建角色")
def create(spec: str) -> str:
    return f"created {spec}"

@plugin.command("创建")
def create_short(spec: str) -> str:
    return f"short {spec}"

@plugin.command("types")
def types(a: int, b: float, c: bool, d: Color, e: dt.datetime, f: dt.date, g: dt.time) -> str:
    return repr((a, b, c, d, e, f, g))

@plugin.command("when")
def when(a: dt.datetime, b: dt.date, c: dt.time) -> str:
    return f"{a.isoformat()}|{b.isoformat()}|{c.isoformat()}"

@plugin.command("pic")
def pic(caption: Message, picture: Segment) -> str:
    return f"text:{caption.plain_text()} {picture.type}:{picture.data.get('file')}"

@plugin.command("who")
def who(u: UserId, g: Optional[GroupId] = None) -> str:
    return f"{type(u).__name__}={u} group={g}"

@plugin.command("sum")
def total(label: str, *numbers: int) -> str:
    return f"{label}={sum(numbers)} n={len(numbers)}"

@plugin.command("maybe")
def maybe(x: Optional[int]) -> str:
    return f"x={x!r}"

@plugin.command("ov")
def ov_one(a: str) -> str:
    return "one"

@plugin.command("ov")
def ov_two(a: str, b: str) -> str:
    return "two"

@plugin.command("ov")
def ov_two_defaults(a: str, b: str, c: str = "z") -> str:
    return "three:" + c

@plugin.command("amb")
def amb_int(a: int) -> str:
    return "int"

@plugin.command("amb")
def amb_str(a: str) -> str:
    return "str"

@plugin.command("echo", raw=True)
async def echo(ctx: CommandContext, args: Message) -> Message:
    return Message([Segment.text("got:"), *args])

@plugin.command("ctx")
async def show_ctx(first: str, ctx: CommandContext) -> str:
    ctx.reply(f"sender={ctx.sender.kind}")
    return f"first={first} alias={ctx.alias} plugin={ctx.plugin_id}"

@plugin.command("boom")
def boom() -> str:
    raise RuntimeError("kaput")

@plugin.command("silent")
def silent() -> None:
    return None

class Point:
    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

def parse_point(text: str) -> Point:
    x, _, y = text.partition(",")
    if not y:
        raise CommandArgumentError(f"'{text}' is not a point: use x,y")
    return Point(int(x), int(y))

@plugin.command("dist", parsers={Point: parse_point})
def dist(p: Point) -> str:
    return str(abs(p.x) + abs(p.y))

@plugin.argument_parser("Temperature")
def parse_temp(text: str) -> float:
    return float(text.removesuffix("C"))

class Temperature(float):
    pass

@plugin.command("temp")
def temp(t: Temperature) -> str:
    return f"{t!r}"

perm = plugin.command_group("perm", aliases=["p"], description="permissions")

@perm.sub("permit", "grant", "add")
async def permit(ctx: CommandContext, who: PermitteeId, what: PermissionId) -> str:
    return f"permit {who} {what}"

inner = perm.group("deep")

@inner.sub("er")
def deeper(n: int) -> str:
    return f"deeper {n}"
"""


@pytest.fixture
async def engine(lab: Lab) -> CommandEngine:
    await lab.load("demo", DEMO)
    return lab.engine()


async def run(engine: CommandEngine, text: str, sender: CommandSender = CONSOLE) -> tuple[ResultKind, str]:
    result = await engine.execute_command(sender, text)
    return result.kind, result.text


async def test_names_aliases_and_case(engine: CommandEngine) -> None:
    assert await run(engine, "/greet bob 2") == (ResultKind.SUCCESS, "hello bob hello bob")
    assert await run(engine, "/HI bob") == (ResultKind.SUCCESS, "hello bob")
    assert await run(engine, "/你好 bob") == (ResultKind.SUCCESS, "hello bob")
    assert await run(engine, "/GrEeT bob") == (ResultKind.SUCCESS, "hello bob")


async def test_glued_argument_longest_registered_prefix_wins(engine: CommandEngine) -> None:
    assert await run(engine, "/创建角色小明-男") == (ResultKind.SUCCESS, "created 小明-男")
    assert await run(engine, "/创建小明") == (ResultKind.SUCCESS, "short 小明")
    assert await run(engine, "/hibob") == (ResultKind.SUCCESS, "hello bob")


async def test_unknown_command_console_hint_and_chat_silence(engine: CommandEngine) -> None:
    assert await run(engine, "/nope") == (ResultKind.UNKNOWN_COMMAND, "unknown command: nope, type /help")
    kind, text = await run(engine, "/nope", CommandSender.friend(1))
    assert (kind, text) == (ResultKind.UNKNOWN_COMMAND, "")


async def test_typed_parameters(engine: CommandEngine) -> None:
    kind, text = await run(engine, "/types -3 2.5 yes blue 2024-05-01T12:30 2024-05-02 08:15")
    assert kind is ResultKind.SUCCESS
    assert text == repr(
        (-3, 2.5, True, "<Color.BLUE: 'b'>", dt.datetime(2024, 5, 1, 12, 30), dt.date(2024, 5, 2), dt.time(8, 15))
    ).replace("\"<Color.BLUE: 'b'>\"", "<Color.BLUE: 'b'>")


async def test_now_is_accepted_for_datetimes(engine: CommandEngine) -> None:
    before = dt.datetime.now()
    kind, text = await run(engine, "/when now now now")
    after = dt.datetime.now()
    assert kind is ResultKind.SUCCESS, text
    stamp, day, clock = text.split("|")
    assert before <= dt.datetime.fromisoformat(stamp) <= after
    assert before.date() <= dt.date.fromisoformat(day) <= after.date()
    assert dt.time.fromisoformat(clock) is not None


async def test_message_and_segment_parameters(engine: CommandEngine) -> None:
    image = Segment("image", {"file": "cat.png"})
    result = await engine.execute_command(CONSOLE, Message([Segment.text("/pic hello "), image]))
    assert (result.kind, result.text) == (ResultKind.SUCCESS, "text:hello image:cat.png")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("abc 1 true red now now now", "cannot parse 'abc' as an integer"),
        ("1 x true red now now now", "cannot parse 'x' as a number"),
        ("1 1 maybe red now now now", "cannot parse 'maybe' as a boolean"),
        ("1 1 true green now now now", "'green' is not one of: RED, BLUE"),
        ("1 1 true red yesterday now now", "cannot parse 'yesterday' as a datetime"),
        ("1 1 true red now 2024-13-01 now", "cannot parse '2024-13-01' as a date"),
        ("1 1 true red now now 25:00", "cannot parse '25:00' as a time"),
        ("1 nan true red now now now", "cannot parse 'nan' as a number"),
    ],
)
async def test_parse_errors_are_user_messages_with_usage(engine: CommandEngine, args: str, message: str) -> None:
    result = await engine.execute_command(CONSOLE, f"/types {args}")
    assert result.kind is ResultKind.PARSE_ERROR
    assert result.error.startswith(message)
    assert "usage:" in result.text and "/types <a:int>" in result.text


async def test_users_from_ids_and_mentions(engine: CommandEngine) -> None:
    assert await run(engine, "/who 123") == (ResultKind.SUCCESS, "UserId=123 group=None")
    assert await run(engine, "/who @77 9") == (ResultKind.SUCCESS, "UserId=77 group=9")
    msg = Message([Segment.text("/who "), Segment.at(4242), Segment.text(" 5")])
    result = await engine.execute_command(CONSOLE, msg)
    assert (result.kind, result.text) == (ResultKind.SUCCESS, "UserId=4242 group=5")
    kind, text = await run(engine, "/who bob")
    assert kind is ResultKind.PARSE_ERROR and "cannot parse 'bob' as a user" in text


async def test_varargs_and_optional(engine: CommandEngine) -> None:
    assert await run(engine, "/sum s") == (ResultKind.SUCCESS, "s=0 n=0")
    assert await run(engine, "/sum s 1 2 3") == (ResultKind.SUCCESS, "s=6 n=3")
    assert (await run(engine, "/sum s 1 x"))[0] is ResultKind.PARSE_ERROR
    assert await run(engine, "/maybe") == (ResultKind.SUCCESS, "x=None")
    assert await run(engine, "/maybe 4") == (ResultKind.SUCCESS, "x=4")


async def test_overloads_most_specific_wins(engine: CommandEngine) -> None:
    assert await run(engine, "/ov a") == (ResultKind.SUCCESS, "one")
    # (a, b) and (a, b, c="z") both apply to two arguments: the one with more parameters wins
    assert await run(engine, "/ov a b") == (ResultKind.SUCCESS, "three:z")
    assert await run(engine, "/ov a b c") == (ResultKind.SUCCESS, "three:c")


async def test_surplus_arguments_are_an_error_with_usage(engine: CommandEngine) -> None:
    result = await engine.execute_command(CONSOLE, "/ov a b c d")
    assert result.kind is ResultKind.SIGNATURE_MISMATCH
    assert result.error == "/ov: too many arguments (1 extra)"
    assert result.usage == ["/ov <a>", "/ov <a> <b>", "/ov <a> <b> [c]"]
    result = await engine.execute_command(CONSOLE, "/greet")
    assert result.kind is ResultKind.SIGNATURE_MISMATCH and result.error == "/greet: missing arguments"
    assert "/greet <name> [times:int]  # greet someone" in result.text


async def test_ambiguous_overloads_list_candidates(engine: CommandEngine) -> None:
    result = await engine.execute_command(CONSOLE, "/amb 1")
    assert result.kind is ResultKind.SIGNATURE_MISMATCH
    assert result.text == "/amb: ambiguous call, candidates:\n/amb <a:int>\n/amb <a>"


async def test_raw_command_gets_the_rest_of_the_message_untouched(engine: CommandEngine) -> None:
    msg = Message([Segment.text('/echo a  "b c"'), Segment("image", {"file": "x.png"})])
    result = await engine.execute_command(CONSOLE, msg)
    assert result.kind is ResultKind.SUCCESS
    assert result.replies[0] == Message(
        [Segment.text("got:"), Segment.text('a  "b c"'), Segment("image", {"file": "x.png"})]
    )


RAW = """
@plugin.command("echo", raw=True)
def echo(args: Message) -> Message:
    return args

say = plugin.command_group("say")

@say.sub("loud", raw=True)
def loud(args: Message) -> Message:
    return args
"""


@pytest.mark.parametrize(
    ("message", "raw"),
    [
        ("/echo hello world", [Segment.text("hello world")]),
        ("/echo   hello    world  ", [Segment.text("hello    world  ")]),  # leading whitespace stripped once
        ("/echo hello\tworld\n  again", [Segment.text("hello\tworld\n  again")]),
        ('/echo a\\ b "c  d" -- e', [Segment.text('a\\ b "c  d" -- e')]),  # escapes and quotes kept
        ("/echohello  world", [Segment.text("hello  world")]),  # glued to the name
        ("/ECHO x", [Segment.text("x")]),
        ("/say loud  shout   it", [Segment.text("shout   it")]),  # after the subcommand name
        ("/echo", []),
        ("/echo    ", []),
        (
            Message([Segment.text("/echo hi  "), Segment.at(42), Segment.text("  there  you")]),
            [Segment.text("hi  "), Segment.at(42), Segment.text("  there  you")],
        ),
        (
            Message([Segment.text("/echo "), Segment.at(42), Segment.text(" x")]),
            [Segment.at(42), Segment.text(" x")],
        ),
        (
            Message([Segment.text("/say  loud"), Segment.text("  a "), Segment("image", {"file": "x.png"})]),
            [Segment.text("a "), Segment("image", {"file": "x.png"})],
        ),
    ],
)
async def test_raw_message_keeps_whitespace_and_segments(lab: Lab, message: str | Message, raw: list[Segment]) -> None:
    await lab.load("raws", RAW)
    result = await lab.engine().execute_command(CONSOLE, message)
    assert result.kind is ResultKind.SUCCESS, result.text
    assert result.replies == [Message(raw)]


async def test_context_is_recognised_by_type_and_replies_keep_order(engine: CommandEngine) -> None:
    result = await engine.execute_command(CONSOLE, "/ctx one")
    assert result.kind is ResultKind.SUCCESS
    assert result.text == "sender=console\nfirst=one alias=ctx plugin=demo"


async def test_execution_error_and_no_reply(engine: CommandEngine, lab: Lab) -> None:
    source = lab.root / "demo" / "plugin.py"  # the console is told where in the plugin it failed
    line = source.read_text().splitlines().index('    raise RuntimeError("kaput")') + 1
    assert await run(engine, "/boom") == (
        ResultKind.EXECUTION_ERROR, f"command /boom failed: RuntimeError at {source}:{line}: kaput",
    )  # fmt: skip
    result = await engine.execute_command(CONSOLE, "/silent")
    assert result.kind is ResultKind.SUCCESS and result.replies == []


async def test_custom_parsers_per_command_and_per_plugin(engine: CommandEngine) -> None:
    assert await run(engine, "/dist 3,-4") == (ResultKind.SUCCESS, "7")
    kind, text = await run(engine, "/dist 3")
    assert kind is ResultKind.PARSE_ERROR and text.startswith("'3' is not a point: use x,y")
    assert await run(engine, "/temp 21.5C") == (ResultKind.SUCCESS, "21.5")
    kind, text = await run(engine, "/temp hot")
    assert kind is ResultKind.PARSE_ERROR and text.startswith("cannot parse 'hot' as Temperature")


async def test_global_custom_parser(lab: Lab) -> None:
    await lab.load(
        "g",
        """
class Hex(int):
    pass

@plugin.command("hex")
def hexa(v: Hex) -> str:
    return str(v)
""",
    )
    engine = CommandEngine()
    engine.parsers.register("Hex", lambda text: int(text, 16))
    engine.rebuild(lab.sources())
    assert await run(engine, "/hex ff") == (ResultKind.SUCCESS, "255")
    assert (await run(engine, "/hex zz"))[0] is ResultKind.PARSE_ERROR


async def test_composite_and_nested_subcommands(engine: CommandEngine) -> None:
    assert await run(engine, "/perm permit m1.2 demo:*") == (ResultKind.SUCCESS, "permit m1.2 demo:*")
    assert await run(engine, "/P GRANT u5 demo:command.greet") == (ResultKind.SUCCESS, "permit u5 demo:command.greet")
    assert await run(engine, "/perm deep er 3") == (ResultKind.SUCCESS, "deeper 3")
    result = await engine.execute_command(CONSOLE, "/perm")
    assert result.kind is ResultKind.SIGNATURE_MISMATCH
    assert "/perm permit <who:permittee_id> <what:permission_id>" in result.text
    assert "/perm deep er <n:int>" in result.text
    result = await engine.execute_command(CONSOLE, "/perm nuke")
    assert result.kind is ResultKind.SIGNATURE_MISMATCH and "unknown subcommand 'nuke'" in result.error
    kind, text = await run(engine, "/perm permit x:y demo:*")
    assert kind is ResultKind.PARSE_ERROR and "invalid permittee id 'x:y'" in text


async def test_prefixes_longest_wins_and_slash_alone_is_not_a_command(lab: Lab) -> None:
    await lab.load("demo", DEMO)
    engine = lab.engine(CommandsConfig(prefixes=["/", "//", "!"]))
    friend = CommandSender.friend(1)
    engine.permissions.permit(friend.permittee, engine.registry.table["greet"].permission)
    assert await run(engine, "//greet x", friend) == (ResultKind.SUCCESS, "hello x")
    assert await run(engine, "!greet x", friend) == (ResultKind.SUCCESS, "hello x")
    assert (await run(engine, "/", friend))[0] is ResultKind.NOT_A_COMMAND
    assert (await run(engine, "/ greet x", friend))[0] is ResultKind.NOT_A_COMMAND
    assert (await run(engine, "greet x", friend))[0] is ResultKind.NOT_A_COMMAND
    # the console does not need a prefix
    assert await run(engine, "greet x") == (ResultKind.SUCCESS, "hello x")


async def test_mention_and_reply_make_the_prefix_optional(lab: Lab) -> None:
    await lab.load("demo", DEMO)
    engine = lab.engine()
    member = CommandSender.member(10, 20, bot_id=99)
    engine.permissions.permit(member.permittee, engine.registry.table["greet"].permission)
    at_bot = Message([Segment.at(99), Segment.text(" greet bob")])
    assert (await engine.execute_command(member, at_bot)).text == "hello bob"
    replied = Message([Segment("reply", {"id": "1"}), Segment.at(99), Segment.text(" /greet amy")])
    assert (await engine.execute_command(member, replied)).text == "hello amy"
    other = Message([Segment.at(5), Segment.text(" greet bob")])
    assert (await engine.execute_command(member, other)).kind is ResultKind.NOT_A_COMMAND


async def test_bare_commands_need_prefix_optional_or_config(lab: Lab) -> None:
    await lab.load(
        "bare",
        """
@plugin.command("ping", prefix_optional=True)
def ping() -> str:
    return "pong"

@plugin.command("pong")
def pong() -> str:
    return "ping"
""",
    )
    perms = PermissionService(default_permittees=["*"])
    engine = lab.engine(permissions=perms)
    friend = CommandSender.friend(3)
    assert await run(engine, "ping", friend) == (ResultKind.SUCCESS, "pong")
    assert (await run(engine, "pong", friend))[0] is ResultKind.NOT_A_COMMAND
    assert (await run(engine, "hello there", friend))[0] is ResultKind.NOT_A_COMMAND
    assert (await run(engine, "pinging", friend))[0] is ResultKind.NOT_A_COMMAND  # no glued match without a prefix
    assert (await run(engine, "/pinging", friend))[0] is ResultKind.SIGNATURE_MISMATCH
    engine = lab.engine(CommandsConfig(bare_private=True), permissions=perms)
    assert await run(engine, "pong", friend) == (ResultKind.SUCCESS, "ping")
    assert (await run(engine, "pong", CommandSender.member(1, 3)))[0] is ResultKind.NOT_A_COMMAND


async def test_size_limits_refuse_before_parsing(lab: Lab) -> None:
    await lab.load("demo", DEMO)
    engine = lab.engine(CommandsConfig(max_length=20, max_arguments=3))
    assert await run(engine, "/sum n 1 2") == (ResultKind.SUCCESS, "n=3 n=2")
    long = "/greet " + "x" * 30
    refused = await engine.execute_command(CONSOLE, long)
    assert (refused.kind, refused.text) == (ResultKind.TOO_LONG, "the command is too long: 36 characters, at most 20")
    assert refused.command is not None and refused.command.name == "greet"
    assert await run(engine, "/sum n 1 2 3") == (
        ResultKind.TOO_LONG,
        "the command has too many arguments: 4, at most 3",
    )
    assert (await run(engine, "/greet" + "x" * 30))[0] is ResultKind.TOO_LONG  # an argument glued to the name
    # non-text segments are arguments, not characters
    pictures = Message([Segment.text("/sum n"), *[Segment.image("a.png")] * 3])
    assert (await engine.execute_command(CONSOLE, pictures)).text == (
        "the command has too many arguments: 4, at most 3"
    )
    # what names no command stays what it was: unknown on the console, silent in chat
    assert (await run(engine, "/nope " + "x" * 30))[0] is ResultKind.UNKNOWN_COMMAND
    assert await run(engine, "/nope " + "x" * 30, CommandSender.friend(1)) == (ResultKind.UNKNOWN_COMMAND, "")
    assert (await run(engine, "greet " + "x" * 30, CommandSender.friend(1)))[0] is ResultKind.NOT_A_COMMAND


MEDDLER = """
@plugin.command("meddle")
async def meddle(ctx: CommandContext, word: str) -> str:
    ctx.sender.event["post_type"] = "changed"  # the handler's own copies: the host's stay as they were
    ctx.message.clear()
    return f"{word} from {ctx.sender.group_id}"
"""


async def test_a_handler_changing_its_context_leaves_the_hosts_event_and_message_alone(lab: Lab) -> None:
    await lab.load("meddler", MEDDLER)
    engine = lab.engine()
    event = {"post_type": "message", "message_type": "group", "group_id": 20, "user_id": 10}
    member = replace(CommandSender.member(20, 10), event=event)
    engine.permissions.permit(member.permittee, engine.registry.table["meddle"].permission)
    message = Message("/meddle hi")
    for _ in range(2):  # and the second call gets a fresh context
        result = await engine.execute_command(member, message)
        assert (result.kind, result.text) == (ResultKind.SUCCESS, "hi from 20")
    assert event["post_type"] == "message" and message == Message("/meddle hi")
