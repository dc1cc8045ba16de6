"""Registry: collisions by priority then id, diagnostics, invalid names, JSON payloads, usage."""

from __future__ import annotations

import json

from plughost.bot.commands import CommandEngine, CommandSender, CommandSource, PluginTarget, ResultKind
from plughost.sdk.call import Call, Outcome
from plughost.sdk.descriptor import CommandOverload, CommandSpec, Descriptor, ParamSpec

from .conftest import FunctionTarget, Lab

CONSOLE = CommandSender.console()


def plugin_with(name: str, reply: str, *, aliases: str = "") -> str:
    alias_list = [a for a in aliases.split(",") if a]
    return f'''
@plugin.command("{name}", aliases={alias_list!r})
def handler() -> str:
    return "{reply}"
'''


async def test_higher_priority_wins_then_lower_id(lab: Lab) -> None:
    await lab.load("bbb", plugin_with("hello", "from bbb", aliases="hey"), priority=5)
    await lab.load("aaa", plugin_with("hello", "from aaa", aliases="yo"), priority=1)
    await lab.load("ccc", plugin_with("hello", "from ccc", aliases="hey,ccc-only"), priority=5)
    engine = lab.engine()
    assert (await engine.execute_command(CONSOLE, "/hello")).text == "from bbb"
    assert (await engine.execute_command(CONSOLE, "/hey")).text == "from bbb"
    # the losers keep the names nobody else claimed
    assert (await engine.execute_command(CONSOLE, "/yo")).text == "from aaa"
    assert (await engine.execute_command(CONSOLE, "/ccc-only")).text == "from ccc"
    conflicts = sorted(str(c) for c in engine.registry.conflicts)
    assert conflicts == [
        "'hello': bbb wins over aaa (priority 5 > 1)",
        "'hello': bbb wins over ccc (same priority, lower id wins)",
        "'hey': bbb wins over ccc (same priority, lower id wins)",
    ]


async def test_builtin_commands_win_over_plugins(lab: Lab) -> None:
    await lab.load("aaa", plugin_with("help", "plugin help"), priority=100)

    spec = CommandSpec("help", overloads=(CommandOverload("help"),))
    target = FunctionTarget("console", {"help": lambda payload: "builtin help"})
    builtins = CommandSource("console", 0, Descriptor("console", commands=(spec,)), target, builtin=True)
    engine = CommandEngine()
    engine.rebuild([*lab.sources(), builtins])
    assert (await engine.execute_command(CONSOLE, "/help")).text == "builtin help"
    assert [str(c) for c in engine.registry.conflicts] == ["'help': console wins over aaa (built-in command)"]
    assert engine.registry.table["help"].permission.namespace == "console"


async def test_invalid_names_from_descriptors_are_diagnostics(lab: Lab) -> None:
    # a native/process plugin's descriptor arrives as JSON and may carry bad names
    descriptor = Descriptor.from_json(
        {
            "commands": [
                {"name": "bad name", "overloads": [{"handler": "h"}]},
                {"name": "ns:x", "overloads": [{"handler": "h"}]},
                {"name": "ok", "aliases": ["a.b", "fine"], "overloads": [{"handler": "h"}]},
            ]
        },
        id="native",
    )

    engine = CommandEngine()
    engine.rebuild([CommandSource("native", 0, descriptor, FunctionTarget("native", {"h": lambda payload: "ok"}))])
    assert sorted(engine.registry.table) == ["fine", "ok"]
    assert engine.registry.problems == [
        "native: invalid command name 'bad name' (no blanks, ':' or '.')",
        "native: invalid command name 'ns:x' (no blanks, ':' or '.')",
        "native: invalid command name 'a.b' (no blanks, ':' or '.')",
    ]


async def test_json_payload_is_turned_back_into_types_by_the_binder(lab: Lab) -> None:
    """Every runtime gets the same JSON payload; the SDK binder turns it back into types, and the
    handler's own defaults apply to omitted arguments."""
    handle = await lab.load(
        "j",
        """
class Mode(enum.Enum):
    FAST = 1
    SLOW = 2

@plugin.command("j")
async def j(ctx: CommandContext, when: dt.datetime, mode: Mode, who: PermitteeId, msg: Message, n: int = 7) -> str:
    return f"{ctx.sender.kind} {when!r} {mode} {who!r} {msg.plain_text()} {n}"
""",
    )
    seen: list[Call] = []

    async def over_the_wire(call: Call) -> Outcome:
        seen.append(call)
        wire = Call(call.handler, json.loads(json.dumps(call.payload)), call.kind)  # what crosses a process boundary
        return await lab.guard.call("j", handle, wire)

    engine = CommandEngine()
    engine.rebuild([CommandSource("j", 0, handle.descriptor, PluginTarget("j", over_the_wire))])
    result = await engine.execute_command(CONSOLE, "/j 2024-01-02T03:04 fast m1.2 hi")
    assert result.kind is ResultKind.SUCCESS, result.text
    assert result.text == "console datetime.datetime(2024, 1, 2, 3, 4) Mode.FAST PermitteeId(text='m1.2') hi 7"
    payload = seen[0].payload
    assert payload["args"]["when"] == "2024-01-02T03:04:00" and payload["args"]["mode"] == "FAST"
    assert "n" not in payload["args"]  # omitted: the handler's default applies wherever it runs
    assert payload["words"] == ["2024-01-02T03:04", "fast", "m1.2", "hi"]


async def test_lookup_cost_does_not_grow_with_commands(lab: Lab) -> None:
    specs = tuple(
        CommandSpec(f"cmd{i}", overloads=(CommandOverload("h", (ParamSpec("x", "int"),)),)) for i in range(2000)
    )

    target = FunctionTarget("many", {"h": lambda payload: str(payload["args"]["x"])})
    engine = CommandEngine()
    engine.rebuild([CommandSource("many", 0, Descriptor("many", commands=specs), target)])
    assert len(engine.all_commands()) == 2000
    assert (await engine.execute_command(CONSOLE, "/cmd1999 5")).text == "5"
    # glued lookup is bounded by the longest name, not by the number of commands
    assert engine.registry.max_name_length == len("cmd1999")
    assert (await engine.execute_command(CONSOLE, "/cmd19995")).text == "5"


async def test_usage_lines_are_generated(lab: Lab) -> None:
    await lab.load(
        "u",
        """
class Level(enum.Enum):
    LOW = 1
    HIGH = 2

@plugin.command("set", description="set a level")
def set_(name: str, level: Level, *tags: str) -> str:
    return "ok"

@plugin.command("doc", usage="/doc <anything>  # hand-written")
def doc(x: str) -> str:
    return "ok"

@plugin.command("nudge", description="nudge someone")
def nudge(who: int) -> str:
    return "ok"

@plugin.command("nudge")
def nudge_times(who: int, times: int) -> str:
    '''nudge someone again and again'''
    return "ok"

@plugin.command("nudge", description="nudge someone")  # the command's own words: nothing of its own
def nudge_both(who: int, other: int, times: int) -> str:
    return "ok"
""",
    )
    engine = lab.engine()
    assert engine.registry.table["nudge"].usage_lines() == [
        "/nudge <who:int>  # nudge someone",
        "/nudge <who:int> <times:int>  # nudge someone again and again",
        "/nudge <who:int> <other:int> <times:int>  # nudge someone",
    ]
    descriptor = lab.handles["u"][0].descriptor  # a worker's or a native plugin's travels as JSON
    assert Descriptor.from_json(json.loads(json.dumps(descriptor.to_json()))) == descriptor
    assert [o.description for o in descriptor.commands[-1].overloads] == ["", "nudge someone again and again", ""]
    assert engine.registry.table["set"].usage_lines() == ["/set <name> <level:LOW|HIGH> [tags...]  # set a level"]
    assert engine.registry.table["doc"].usage_lines() == ["/doc <anything>  # hand-written"]
