"""The console: the default front end of `plughost run`, where the user is the console sender.

- interactive (stdin and stdout are terminals): a prompt_toolkit prompt with history, completion
  of commands, subcommands and plugin ids; log lines are printed above the prompt
  (`patch_stdout`); Ctrl-C cancels the line; Ctrl-D or `/stop` shuts down (`plughost.adapters.prompt`,
  imported only then);
- piped (stdin is a pipe or a file): one command per line, replies on stdout; the end of input
  shuts down, like Ctrl-D;
- none (stdin is /dev/null or `--no-console`): run until `/stop`, SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TextIO

from plughost.adapters.chat_sim import ChatSimulator
from plughost.adapters.console_commands import console_commands, names
from plughost.bot.commands import CommandResult, CommandSender
from plughost.sdk.tasks import TaskOwner

if TYPE_CHECKING:
    from plughost.host import Host

log = logging.getLogger("plughost.console")
ConsoleMode = Literal["interactive", "piped", "none"]
HISTORY_FILE = Path(".plughost") / "console_history"
PROMPT = "plughost> "


def detect_mode(stdin: TextIO | None = None, stdout: TextIO | None = None) -> ConsoleMode:
    """Which console fits the process's standard streams."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    try:
        fd = stdin.fileno()
    except (OSError, ValueError):
        return "none"
    if os.isatty(fd):
        return "interactive" if stdout.isatty() else "piped"
    mode = os.fstat(fd).st_mode
    if stat.S_ISCHR(mode):  # /dev/null and friends: nobody will type
        return "none"
    return "piped"


class Console:
    """Runs console command lines against a host and prints the replies."""

    def __init__(self, host: Host, *, output: Callable[[str], None] | None = None) -> None:
        self.host = host
        self.sender = CommandSender.console()
        self._output = output or _print
        self.chat = ChatSimulator(host, self._output)  # /as group|private …: simulated chats
        commands = console_commands(self.chat)
        self._own_commands = names(commands) | {"stop"}  # /stop quits while chatting as a user, too
        host.commands.set_console_commands(commands)

    async def execute(self, line: str) -> CommandResult | None:
        """Run one line; prints the replies. Blank lines are ignored. While a chat is selected a
        line is a message from its user, unless it starts with a console command (`/as console`,
        `/stop`)."""
        line = line.strip()
        if not line:
            return None
        try:
            if self.chat.chat is not None and not self._names_own_command(line):
                await self.chat.message(line)
                return None
            result = await self.host.commands.execute_command(self.sender, line)
        except Exception as exc:  # a bug must not end the console session
            log.exception("console command %r failed", line)
            self._output(f"internal error: {type(exc).__name__}: {exc}")
            return None
        if result.replies:
            self._output(result.text)
        elif not result.ok and result.error:
            self._output(result.error)
        return result

    def _names_own_command(self, line: str) -> bool:
        prefix = self.host.commands.engine.prefix
        head = line.split(maxsplit=1)[0]
        return head.startswith(prefix) and head[len(prefix) :].lower() in self._own_commands

    async def serve(self, mode: ConsoleMode) -> None:
        """Run the console in `mode` until the host is asked to stop; the end of input asks for it."""
        if mode == "interactive":
            await self._interactive()
        elif mode == "piped":
            await self._piped()
        else:
            await self.host.wait_until_stopped()

    # interactive ------------------------------------------------------------------------------
    async def _interactive(self) -> None:
        from plughost.adapters.prompt import serve_prompt  # prompt_toolkit: only on a terminal

        await serve_prompt(self)

    # piped ------------------------------------------------------------------------------------
    async def _piped(self) -> None:
        lines, end = await _stdin_lines()
        async with TaskOwner("console", logger=log) as tasks:
            tasks.spawn(self._end_input_on_stop(end), name="console-stop-watcher")
            while not self.host.stop_requested.is_set():
                line = await lines()
                if line == "":  # end of input (or the host is stopping)
                    self.host.request_stop()
                    break
                await self.execute(line.rstrip("\r\n"))

    async def _end_input_on_stop(self, end: Callable[[], None]) -> None:
        await self.host.stop_requested.wait()
        end()


async def _stdin_lines() -> tuple[Callable[[], Awaitable[str]], Callable[[], None]]:
    """A `readline` for stdin (a non-blocking pipe reader, or the whole file read up front) and a
    function that ends the input early (`readline` then returns "")."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    except ValueError:  # a regular file: read it now
        pending = list(sys.stdin.readlines())

        async def from_file() -> str:
            return pending.pop(0) if pending else ""

        return from_file, pending.clear

    async def from_pipe() -> str:
        return (await reader.readline()).decode("utf-8", errors="replace")

    return from_pipe, reader.feed_eof


def _print(text: str) -> None:
    print(text, flush=True)


async def serve_console(host: Host, mode: ConsoleMode | None = None) -> None:
    """`plughost run`'s front end: pick the console mode from the standard streams and serve."""
    chosen = mode or detect_mode()
    log.debug("console mode: %s", chosen)
    await Console(host).serve(chosen)
