"""The interactive console: a prompt_toolkit prompt with history and completion.

`plughost.adapters.console.Console` uses it when stdin and stdout are terminals, and imports it
only then: piped and headless runs never load prompt_toolkit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory
from prompt_toolkit.patch_stdout import patch_stdout

from plughost.adapters.console import HISTORY_FILE, PROMPT, log
from plughost.sdk.tasks import TaskOwner

if TYPE_CHECKING:
    from plughost.adapters.console import Console
    from plughost.host import Host

PLUGIN_ID_SUBCOMMANDS = frozenset({"enable", "disable", "reload"})


async def serve_prompt(console: Console) -> None:
    """Prompt for lines and run them on `console` until Ctrl-D, `/stop` or a stop of the host."""
    host = console.host
    history_path = host.workspace / HISTORY_FILE
    history_path.parent.mkdir(parents=True, exist_ok=True)
    session: PromptSession[str] = PromptSession(
        history=FileHistory(str(history_path)),
        completer=CommandCompleter(host),
        complete_while_typing=False,
    )
    # the prompt is awaited in this task (a KeyboardInterrupt inside a separate task would
    # escape the event loop); a watcher ends it when the host is asked to stop
    async with TaskOwner("console", logger=log) as tasks:
        tasks.spawn(_exit_prompt_on_stop(host, session), name="console-stop-watcher")
        with patch_stdout(raw=True):
            while not host.stop_requested.is_set():
                try:
                    line = await session.prompt_async(console.chat.prompt or PROMPT)
                except KeyboardInterrupt:  # Ctrl-C: drop the line, keep going
                    continue
                except EOFError:  # Ctrl-D, or the host is stopping
                    host.request_stop()
                    break
                await console.execute(line)


async def _exit_prompt_on_stop(host: Host, session: PromptSession[str]) -> None:
    await host.stop_requested.wait()
    if session.app.is_running:
        session.app.exit(exception=EOFError())


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
        registry = engine.registry
        if not words:
            bare = current.removeprefix(prefix)
            found_names = [(n, node) for node in registry.commands for n in registry.names_of(node, console=True)]
            for name, node in sorted(found_names, key=lambda pair: pair[0]):
                if name.lower().startswith(bare.lower()):
                    yield Completion(prefix + name, start_position=-len(current), display_meta=node.spec.description)
            return
        found = registry.lookup(words[0].removeprefix(prefix), console=True)
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
                candidates = sorted({n for c in registry.commands for n in registry.names_of(c, console=True)})
            for candidate in candidates:
                if candidate.lower().startswith(current.lower()):
                    yield Completion(candidate, start_position=-len(current))
