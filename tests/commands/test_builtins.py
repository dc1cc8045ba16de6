"""Built-in commands against a real `Host` (manager, guard, permission file)."""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from plughost.bot.commands import CommandSender, ResultKind
from plughost.host import Host

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plugins"
CONSOLE = CommandSender.console()


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[Host]:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    for name in ("chat-tools", "flaky"):
        shutil.copytree(EXAMPLES / name, plugins / name)
    (tmp_path / "plughost.toml").write_text("[commands]\nowners = [1]\nadmins = [2]\nhelp_page_size = 4\n")
    async with Host(tmp_path) as running:
        yield running


async def run(host: Host, text: str, sender: CommandSender = CONSOLE) -> tuple[ResultKind, str]:
    result = await host.commands.execute_command(sender, text)
    return result.kind, result.text


async def test_plugin_commands_run_through_the_manager(host: Host) -> None:
    assert await run(host, "/greet bob 2 grumpy") == (ResultKind.SUCCESS, "hmpf bob hmpf bob")
    assert await run(host, "/remind 2024-05-01T09:00 buy milk") == (ResultKind.SUCCESS, "at 2024-05-01 09:00: buy milk")
    friend = CommandSender.friend(7)
    assert await run(host, "/todo add water plants", friend) == (ResultKind.SUCCESS, "added #1")
    assert await run(host, "/todo ls", friend) == (ResultKind.SUCCESS, "1. water plants")


async def test_host_wide_parser_applies_to_plugin_commands(host: Host) -> None:
    host.commands.register_parser("str", lambda text: text.upper())
    assert (await run(host, "/greet bob"))[1] == "hello BOB"


async def test_plugins_list_enable_disable(host: Host) -> None:
    kind, text = await run(host, "/plugins")
    assert kind is ResultKind.SUCCESS and "chat-tools 1.0.0 [enabled]" in text and "flaky" in text
    assert (await run(host, "/plugins list"))[1] == text
    assert await run(host, "/plugins enable chat-tools") == (
        ResultKind.SUCCESS,
        "plugin 'chat-tools' is already enabled",
    )
    assert await run(host, "/plugins disable chat-tools") == (ResultKind.SUCCESS, "plugin 'chat-tools' disabled")
    # its commands are gone while disabled, and the state is persisted
    assert (await run(host, "/greet x"))[0] is ResultKind.UNKNOWN_COMMAND
    assert "chat-tools" in (host.workspace / "plugin-state.toml").read_text()
    assert await run(host, "/plugins disable chat-tools") == (
        ResultKind.SUCCESS,
        "plugin 'chat-tools' is already disabled",
    )
    assert await run(host, "/plugins enable chat-tools") == (ResultKind.SUCCESS, "plugin 'chat-tools' enabled")
    assert (await run(host, "/greet x"))[1] == "hello x"
    assert await run(host, "/plugins enable nope") == (ResultKind.EXECUTION_ERROR, "plugin 'nope' was not found")


async def test_plugins_reload_one_and_all(host: Host) -> None:
    source = host.workspace / "plugins" / "chat-tools" / "plugin.py"
    source.write_text(source.read_text().replace('"hello" if', '"hey" if'))
    assert await run(host, "/plugins reload chat-tools") == (
        ResultKind.SUCCESS,
        "plugin 'chat-tools' reloaded (version 1.0.0)",
    )
    assert (await run(host, "/greet x"))[1] == "hey x"
    source.write_text("this is not python(")
    kind, text = await run(host, "/plugins reload chat-tools")
    assert kind is ResultKind.EXECUTION_ERROR
    assert text.startswith("reload of 'chat-tools' failed, the old version keeps serving")
    assert (await run(host, "/greet x"))[1] == "hey x"
    kind, text = await run(host, "/plugins reload")
    assert "plugin 'flaky' reloaded" in text and "plugin 'chat-tools' failed to reload" in text
    await host.manager.unload_plugin("flaky")  # nothing of it serves now: a failed reload says so
    (host.workspace / "plugins" / "flaky" / "plugin.py").write_text("this is not python(")
    kind, text = await run(host, "/plugins reload flaky")
    assert kind is ResultKind.EXECUTION_ERROR and text.startswith("reload of 'flaky' failed, it is not loaded: "), text


async def test_help_lists_only_runnable_commands_paged(host: Host) -> None:
    kind, text = await run(host, "/help")  # the console scrolls: everything on one page
    assert kind is ResultKind.SUCCESS and text.startswith("commands (page 1/1):")
    assert "/plugins enable <plugin_id>" in text and "/greet <name>" in text and "for more" not in text
    owner = CommandSender.friend(1)  # chat is paged (help_page_size = 4)
    kind, text = await run(host, "/help", owner)
    assert kind is ResultKind.SUCCESS and "type /help 2 for more" in text
    pages = int(text.split("/", 2)[1].split(")")[0])
    everything = "\n".join([(await run(host, f"/help {p}", owner))[1] for p in range(1, pages + 1)])
    assert "/plugins enable <plugin_id>" in everything and "/greet <name>" in everything
    assert "/as " not in everything and "/poke" not in everything  # console-only: not in chat
    assert (await run(host, f"/help {pages + 1}", owner))[1] == f"there is no page {pages + 1}; pages: 1..{pages}"
    kind, text = await run(host, "/help greet")
    assert text.startswith("/greet (aliases: hi)") and "permission: chat-tools:command.greet" in text
    assert (await run(host, "/help nope"))[1] == "unknown command: nope, type /help"


async def test_an_unknown_command_is_explained_to_the_console_and_hinted_only_with_what_the_sender_may_run(
    tmp_path: Path,
) -> None:
    plugins = tmp_path / "plugins"
    shutil.copytree(EXAMPLES / "chat-tools", plugins / "chat-tools")
    (tmp_path / "plughost.toml").write_text("[commands]\nunknown_reply_in_chat = true\nadmins = [2]\n")
    user = CommandSender.friend(9)
    async with Host(tmp_path) as host:
        unknown = ResultKind.UNKNOWN_COMMAND
        assert await run(host, "/gret bob") == (unknown, "unknown command: gret, type /help (did you mean /greet?)")
        assert await run(host, "/gret bob", user) == (
            unknown,
            "unknown command: gret, type /help (did you mean /greet?)",
        )
        assert await run(host, "/help gret") == (
            ResultKind.SUCCESS,
            "unknown command: gret, type /help (did you mean /greet?)",
        )
        assert await run(host, "/zzzz") == (unknown, "unknown command: zzzz, type /help")  # nothing alike
        # a chat user is never pointed at a command they may not run (/plugins needs console:command.plugins)
        assert (await run(host, "/plugnis"))[1] == "unknown command: plugnis, type /help (did you mean /plugins?)"
        assert await run(host, "/plugnis", user) == (unknown, "unknown command: plugnis, type /help")
        assert await run(host, "/plugnis", CommandSender.friend(2)) == (unknown, "unknown command: plugnis, type /help")
        await run(host, "/plugins disable chat-tools")
        assert await run(host, "/greet x") == (
            unknown, "unknown command: greet: plugin 'chat-tools' has it but is disabled (/plugins enable chat-tools)",
        )  # fmt: skip
        assert await run(host, "/greet x", user) == (
            unknown,
            "unknown command: greet, type /help",
        )  # chat: nothing of plugins
        await run(host, "/plugins enable chat-tools")
        assert (await run(host, "/greet x"))[1] == "hello x"


async def test_help_in_chat_shows_each_sender_what_they_may_run(host: Host) -> None:
    member, group_admin = CommandSender.member(5, 9), CommandSender.member(5, 8, role="admin")
    for sender in (member, group_admin, CommandSender.friend(2)):  # a member, a group admin, a configured admin
        chat_help = "\n".join([(await run(host, f"/help {p}", sender))[1] for p in (1, 2, 3)])
        assert "/greet <name>" in chat_help and "/help [topic]" in chat_help
        assert "permission denied" not in chat_help and "(needs" not in chat_help
        assert "/plugins" not in chat_help and "/stop" not in chat_help  # built-ins they may not run
        assert (await run(host, "/help plugins", sender))[1] == "unknown command: plugins, type /help"
        assert (await run(host, "/help help", sender))[1].endswith("permission: none, anyone may run it")
    await run(host, "/permission permit u2 console:command.status")
    admin_help = "\n".join([(await run(host, f"/help {p}", CommandSender.friend(2)))[1] for p in (1, 2, 3)])
    assert "/status  #" in admin_help and "/stop" not in admin_help
    await run(host, "/permission cancel * chat-tools:command.greet")
    assert "/greet" not in (await run(host, "/help", member))[1]  # revoked: no longer listed


async def test_builtins_in_chat_need_admin_and_permission(host: Host) -> None:
    user, admin, owner = CommandSender.friend(9), CommandSender.friend(2), CommandSender.friend(1)
    assert await run(host, "/plugins", user) == (ResultKind.PERMISSION_DENIED, "permission denied for this command")
    assert (await run(host, "/plugins", admin))[
        1
    ] == "permission denied for this command (needs console:command.plugins)"
    assert (await run(host, "/plugins", owner))[0] is ResultKind.SUCCESS
    assert await run(host, "/permission permit u2 console:*") == (ResultKind.SUCCESS, "granted console:* to u2")
    assert (await run(host, "/plugins", admin))[0] is ResultKind.SUCCESS
    assert (await run(host, "/plugins", user))[0] is ResultKind.PERMISSION_DENIED


async def test_permission_commands_persist(host: Host) -> None:
    assert await run(host, "/perm grant m5.6 chat-tools:*") == (ResultKind.SUCCESS, "granted chat-tools:* to m5.6")
    assert await run(host, "/perm grant m5.6 chat-tools:*") == (ResultKind.SUCCESS, "m5.6 already holds chat-tools:*")
    assert await run(host, "/perm add m5.6 chat-tools:command.roll") == (
        ResultKind.SUCCESS,
        "granted chat-tools:command.roll to m5.6",
    )
    assert await run(host, "/perm gp m5.6") == (ResultKind.SUCCESS, "m5.6: chat-tools:*, chat-tools:command.roll")
    listing = (await run(host, "/permission list"))[1]
    assert "chat-tools:command.greet  greet someone" in listing and "console:command.stop" in listing
    assert await run(host, "/perm cancel m5.6 chat-tools:* recursively") == (
        ResultKind.SUCCESS,
        "revoked 2 grants of chat-tools:* from m5.6",
    )
    assert await run(host, "/perm cancel m5.6 chat-tools:*") == (
        ResultKind.SUCCESS,
        "m5.6 holds no direct grants of chat-tools:*".replace("grants", "grant"),
    )
    kind, text = await run(host, "/perm permit nobody chat-tools:*")
    assert kind is ResultKind.PARSE_ERROR and "invalid permittee id 'nobody'" in text
    await run(host, "/perm permit g5 chat-tools:command.roll")
    saved = (host.workspace / "permissions.toml").read_text()
    assert '"g5"' in saved or "g5 =" in saved


async def test_cancel_of_default_grant_denies_chat_users(host: Host) -> None:
    member = CommandSender.member(5, 6)
    assert (await run(host, "/roll 6", member))[0] is ResultKind.SUCCESS
    assert (await run(host, "/perm cancel * chat-tools:command.roll"))[0] is ResultKind.SUCCESS
    assert (await run(host, "/roll 6", member))[0] is ResultKind.PERMISSION_DENIED
    assert (await run(host, "/perm permit m5.* chat-tools:command.roll"))[0] is ResultKind.SUCCESS
    assert (await run(host, "/roll 6", member))[0] is ResultKind.SUCCESS
    assert (await run(host, "/roll 6", CommandSender.member(4, 6)))[0] is ResultKind.PERMISSION_DENIED


async def test_dynamic_errors_show_and_clear_breaker_state(host: Host) -> None:
    assert await run(host, "/dynamic-errors") == (ResultKind.SUCCESS, "no plugin errors")
    for _ in range(3):
        kind, text = await run(host, "/fail")
        assert kind is ResultKind.EXECUTION_ERROR and "chat-tools failed on purpose" in text
    kind, text = await run(host, "/greet x")
    assert kind is ResultKind.EXECUTION_ERROR and "isolated by its circuit breaker" in text
    report = (await run(host, "/dynamic-errors"))[1]
    assert report.startswith("chat-tools: open, 3 consecutive failures")
    source = host.workspace / "plugins" / "chat-tools" / "plugin.py"  # the operator is told where it failed
    line = source.read_text().splitlines().index('    raise RuntimeError("chat-tools failed on purpose")') + 1
    assert re.search(
        rf"command:fail \[error [0-9a-f]{{8}}\]: chat-tools failed on purpose \(at {re.escape(str(source))}:{line}\)",
        report,
    )
    status = (await run(host, "/status"))[1]
    assert "breakers: chat-tools open" in status
    assert await run(host, "/dynamic-errors clear") == (
        ResultKind.SUCCESS,
        "closed 1 circuit breaker(s): chat-tools",
    )
    assert (await run(host, "/greet x"))[1] == "hello x"
    assert await run(host, "/dynamic-errors clear chat-tools") == (ResultKind.SUCCESS, "'chat-tools' was not isolated")
    assert await run(host, "/dynamic-errors clear") == (ResultKind.SUCCESS, "no circuit was open")
    report = (await run(host, "/dynamic-errors"))[1]
    assert report.startswith("chat-tools: closed, 0 consecutive failures, 1 isolations") and "s more" not in report
    assert (await run(host, "/dynamic-errors clear nope"))[1] == "plugin 'nope' was not found"


async def test_registry_status_and_stop(host: Host) -> None:
    registry = (await run(host, "/registry"))[1]
    assert "/greet  [chat-tools, priority" in registry and "names: greet, hi" in registry
    assert "0 conflicts" in registry
    status = (await run(host, "/status"))[1]
    assert status.startswith("uptime: 00:00:0")
    assert "plugins: 2 (2 enabled)" in status and "memory: " in status
    assert not host.stop_requested.is_set()
    assert await run(host, "/stop") == (ResultKind.SUCCESS, "stopping…")
    assert host.stop_requested.is_set()


def _complete(host: Host, text: str) -> list[str]:
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

    from plughost.adapters.prompt import CommandCompleter

    return [c.text for c in CommandCompleter(host).get_completions(Document(text), CompleteEvent())]


async def test_console_completion(host: Host) -> None:
    assert _complete(host, "/gr") == ["/greet"]
    assert "/plugins" in _complete(host, "/PLU") and "/plugin" in _complete(host, "/plu")
    assert sorted(_complete(host, "/plugins ")) == ["disable", "enable", "list", "ls", "reload"]
    assert _complete(host, "/plugins enable ch") == ["chat-tools"]
    assert sorted(_complete(host, "/plugins reload ")) == ["chat-tools", "flaky"]
    assert _complete(host, "/todo a") == ["add"]
    assert _complete(host, "/help gre") == ["greet"]
    assert _complete(host, "/nope ") == []


async def test_a_users_bad_input_never_trips_the_breaker_and_chat_sees_no_internals(host: Host) -> None:
    member = CommandSender.member(123, 456)
    for _ in range(5):  # more than the breaker's threshold
        kind, text = await run(host, "/roll 1", member)
        assert kind is ResultKind.PARSE_ERROR and text.startswith("a die needs at least 2 sides\nusage:")
    assert host.manager.guard.snapshot("chat-tools")["breaker"]["consecutive_failures"] == 0
    assert (await run(host, "/roll 6", member))[0] is ResultKind.SUCCESS
    kind, text = await run(host, "/fail", member)  # a real failure: chat sees an error id, not the exception
    found = re.fullmatch(r"command /fail failed \(error ([0-9a-f]{8})\)", text)
    assert kind is ResultKind.EXECUTION_ERROR and found, text
    report = (await run(host, "/dynamic-errors"))[1]
    assert f"[error {found.group(1)}]: chat-tools failed on purpose" in report  # the operator finds the detail
    for _ in range(host.manager.guard.policy.breaker.failure_threshold):  # now its breaker opens
        await run(host, "/fail", member)
    kind, text = await run(host, "/roll 6", member)  # not a failure of its own: no error id, but why and when
    assert kind is ResultKind.EXECUTION_ERROR
    assert re.fullmatch(r"command /roll failed: it is paused after repeated failures, try again in \d+ s", text), text
