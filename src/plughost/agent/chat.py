"""The agent in chat: `/ask …` and messages that start with @bot go to the agent.

```python
host = Host(workspace)
attach_agent(host)           # when [agent] configures a model; returns the surface (or None)
async with host: ...
```

`AgentChat` is a surface the host starts and stops (an adapter). It registers `/ask` with the
host's command service (`add_host_commands`: an ordinary command, permission `agent:command.ask`,
granted to `[permissions] default_permittees` when first seen) and answers messages addressed to
the bot that name no command (`CommandService.addressed`) — the bot layer never imports the agent.

The model is offered only the tools the sender may use (`tool:…` permissions; owners and the
console may use all). Each conversation (a user in a group, or a private chat, per bot) keeps its
recent messages in a `ConversationStore` the surface owns (bounded, in memory by default). Long
answers are split into several messages; every tool call is an `execute` event in the manager's
event log (`metadata.agent_tool`, `metadata.conversation`) and a line of the `plughost.agent` log.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from plughost.agent.conversations import ConversationStore, MemoryConversations, split_text
from plughost.agent.loop import Agent
from plughost.agent.model import ChatModel
from plughost.agent.settings import AgentSettings
from plughost.agent.tools import Caller, Toolbox
from plughost.sdk.bot import BotApi
from plughost.sdk.commands import CommandContext
from plughost.sdk.events import MessageEvent
from plughost.sdk.message import Message
from plughost.sdk.permissions import PermissionId
from plughost.sdk.plugin import Plugin
from plughost.sdk.senders import CommandSender
from plughost.sdk.tasks import TaskOwner

if TYPE_CHECKING:
    from plughost.host import Host

log = logging.getLogger("plughost.agent")
AGENT_ID = "agent"
"""The id of the agent's host commands (their permissions are `agent:command.<name>`)."""


class AgentChat:
    """Chat messages to the agent, answers back to the chat (see the module docs).

    `model` replaces the one `[agent]` configures (tests, other providers); `conversations`
    replaces the in-memory store. Construction does no I/O; `start` wires the surface into the
    host's command service and `aclose` takes it out again.
    """

    def __init__(
        self,
        host: Host,
        settings: AgentSettings | None = None,
        *,
        model: ChatModel | None = None,
        conversations: ConversationStore | None = None,
    ) -> None:
        self.host = host
        self.settings = settings if settings is not None else AgentSettings.from_host_config(host.config)
        chat = self.settings.chat
        self.conversations: ConversationStore = (
            conversations
            if conversations is not None
            else MemoryConversations(max_messages=chat.history_messages, max_conversations=chat.conversations)
        )
        self._model = model
        self.toolbox: Toolbox | None = None
        self.agent: Agent | None = None
        self.ask_permission = PermissionId(AGENT_ID, f"command.{chat.ask_command or 'ask'}")

    async def start(self, tasks: TaskOwner) -> None:
        commands = self.host.commands
        self.toolbox = Toolbox(
            self.host.manager,
            command_plugins=self.settings.tools.commands,
            permissions=commands.engine.permissions,
            timeout_s=self.settings.tools.timeout_s,
        )
        self.agent = Agent.from_settings(self.host.manager, self.settings, model=self._model, toolbox=self.toolbox)
        chat = self.settings.chat
        commands.engine.permissions.register(self.ask_permission, "ask the agent in chat", grant_defaults=True)
        if chat.ask_command:
            commands.add_host_commands(self._commands(chat.ask_command))
        if chat.mention:
            commands.addressed = self._addressed
        commands.engine.permissions.flush()

    async def aclose(self) -> None:
        commands = self.host.commands
        commands.remove_host_commands(AGENT_ID)
        if commands.addressed == self._addressed:
            commands.addressed = None
        if self.agent is not None:
            await self.agent.aclose()
            self.agent = None
        if self.toolbox is not None:
            self.toolbox.close()
            self.toolbox = None

    # answering ------------------------------------------------------------------------------------
    async def answer(self, sender: CommandSender, text: str, *, bot_id: str = "") -> list[Message]:
        """The agent's answer to `text` from `sender`, as chat messages (never raises)."""
        agent = self.agent
        if agent is None:
            return [Message("the agent is not running")]
        question = text.strip()
        if not question:
            return [Message(f"ask me something: /{self.settings.chat.ask_command or 'ask'} <question>")]
        key = conversation_key(bot_id, sender)
        caller = Caller.of_sender(sender, owners=set(self.host.commands.engine.config.owners))
        try:
            history = await self.conversations.history(key)
            run = await agent.run(question, history=history, caller=caller, conversation=key)
            if run.ok:
                await self.conversations.append(
                    key, [{"role": "user", "content": question}, {"role": "assistant", "content": run.answer}]
                )
        except Exception as exc:  # the chat gets a reply whatever failed
            log.exception("the agent failed answering %s", key)
            return [Message(f"the agent failed: {type(exc).__name__}: {exc}")]
        chat = self.settings.chat
        parts = split_text(run.answer or "(no answer)", chat.max_reply_chars, max_parts=chat.max_replies)
        return [Message(part) for part in parts]

    async def _addressed(self, sender: CommandSender, text: Message, event: MessageEvent, bot: BotApi) -> list[Message]:
        if not self._may_ask(sender):
            return []  # not for this sender: silent, as an unknown command is
        return await self.answer(sender, text.render(), bot_id=bot.bot_id)

    def _may_ask(self, sender: CommandSender) -> bool:
        engine = self.host.commands.engine
        if sender.is_console or (sender.user_id is not None and sender.user_id in engine.config.owners):
            return True
        return engine.permissions.has(sender.permittee, self.ask_permission)

    def _commands(self, name: str) -> Plugin:
        plugin = Plugin(id=AGENT_ID, version="1")

        @plugin.command(name, description="ask the agent (it may use the tools you are allowed to use)", raw=True)
        async def ask(ctx: CommandContext, question: Message) -> None:
            bot_id = ctx.bot.bot_id if ctx.bot is not None else "console"
            for part in await self.answer(ctx.sender, question.render(), bot_id=bot_id):
                ctx.reply(part)

        return plugin


def attach_agent(
    host: Host, *, model: ChatModel | None = None, settings: AgentSettings | None = None
) -> AgentChat | None:
    """Add the chat surface to `host` (before it starts) when `[agent]` configures a model (or a
    `model` is given); None when the agent is off."""
    settings = settings if settings is not None else AgentSettings.from_host_config(host.config)
    if not settings.enabled or not settings.chat.enabled or (model is None and not settings.model_configured):
        return None
    return host.add_adapter(AgentChat(host, settings, model=model))


def conversation_key(bot_id: str, sender: CommandSender) -> str:
    """One conversation per user of a group, per private chat, per bot (`console` for the console)."""
    if sender.is_console:
        return "console"
    if sender.group_id is not None and sender.kind == "member":
        return f"{bot_id}:g{sender.group_id}:u{sender.user_id}"
    return f"{bot_id}:u{sender.user_id}"
