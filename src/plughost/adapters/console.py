"""The console: the default front end of `plughost run`, where the user is the console sender.

- interactive (stdin and stdout are terminals): a prompt_toolkit prompt with history, completion
  of commands, subcommands and plugin ids; log lines are printed above the prompt
  (`patch_stdout`); Ctrl-C cancels the line; Ctrl-D or `/stop` shuts down;
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
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory
from prompt_toolkit.patch_stdout import patch_stdout

from plughost.adapters.chat_sim import ChatSimulator
from plughost.bot.commands import CommandResult, CommandSender
from plughost.sdk.tasks import TaskOwner

if TYPE_CHECKING:
    from plughost.host import Host

log = logging.getLogger("plughost.console")
ConsoleMode = Literal["interactive", "piped", "none"]
HISTORY_FILE = Path(".plughost") / "console_history"
PROMPT = "plughost> "
PLUGIN_ID_SUBCOMMANDS = frozenset({"enable", "disable", "reload"})


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

    async def execute(self, line: str) -> CommandResult | None:
        """Run one line; prints the replies. Blank lines are ignored."""
        if not line.strip():
            return None
        try:
            if await self.chat.handle(line.strip()):
                return None
            result = await self.host.commands.execute_command(self.sender, line.strip())
        except Exception as exc:  # a bug must not end the console session
            log.exception("console command %r failed", line)
            self._output(f"internal error: {type(exc).__name__}: {exc}")
            return None
        if result.replies:
            self._output(result.text)
        elif not result.ok and result.error:
            self._output(result.error)
        return result

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
        history_path = self.host.workspace / HISTORY_FILE
        history_path.parent.mkdir(parents=True, exist_ok=True)
        session: PromptSession[str] = PromptSession(
            history=FileHistory(str(history_path)),
            completer=CommandCompleter(self.host),
            complete_while_typing=False,
        )
        # the prompt is awaited in this task (a KeyboardInterrupt inside a separate task would
        # escape the event loop); a watcher ends it when the host is asked to stop
        async with TaskOwner("console", logger=log) as tasks:
            tasks.spawn(self._exit_prompt_on_stop(session), name="console-stop-watcher")
            with patch_stdout(raw=True):
                while not self.host.stop_requested.is_set():
                    try:
                        line = await session.prompt_async(self.chat.prompt or PROMPT)
                    except KeyboardInterrupt:  # Ctrl-C: drop the line, keep going
                        continue
                    except EOFError:  # Ctrl-D, or the host is stopping
                        self.host.request_stop()
                        break
                    await self.execute(line)

    async def _exit_prompt_on_stop(self, session: PromptSession[str]) -> None:
        await self.host.stop_requested.wait()
        if session.app.is_running:
            session.app.exit(exception=EOFError())

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


class CommandCompleter(Completer):
    """Completes command names, subcommand names and plugin ids (`/plugins enable <id>`)."""

    def __init__(self, host: Host) -> None:
        self.host = host

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        text = document.text_before_cursor
        words = text.split()
        current = words.pop() if words and not text[-1].isspace() else ""
        engine = self.host.commands.refresh()
        prefix = engine.prefix
        if not words:
            bare = current.removeprefix(prefix)
            names = sorted({n for node in engine.all_commands() for n in node.spec.names})
            for name in names:
                if name.lower().startswith(bare.lower()):
                    node = engine.registry.table.get(name.lower())
                    meta = node.spec.description if node is not None else ""
                    yield Completion(prefix + name, start_position=-len(current), display_meta=meta)
            return
        found = engine.registry.lookup(words[0].removeprefix(prefix))
        if found is None or found[1]:
            return
        node = found[0]
        for word in words[1:]:
            child = node.children.get(word.lower())
            if child is None:
                break
            node = child
        else:
            candidates: list[str] = []
            for child in node.unique_children():
                candidates.extend(child.spec.names)
            if node.path[0] == "plugins" and node.name in PLUGIN_ID_SUBCOMMANDS:
                candidates = [i.id for i in self.host.manager.list_plugins()]
            if node.path[0] == "help":
                candidates = sorted({n.name for n in engine.all_commands()})
            for candidate in candidates:
                if candidate.lower().startswith(current.lower()):
                    yield Completion(candidate, start_position=-len(current))


def _print(text: str) -> None:
    print(text, flush=True)


async def serve_console(host: Host, mode: ConsoleMode | None = None) -> None:
    """`plughost run`'s front end: pick the console mode from the standard streams and serve."""
    chosen = mode or detect_mode()
    log.debug("console mode: %s", chosen)
    await Console(host).serve(chosen)
