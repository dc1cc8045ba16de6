"""The command engine: trigger → tokenize → resolve → role/scope/permission → parse → call → reply."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from plughost.bot.commands.parsers import ParserRegistry, describe_argument
from plughost.bot.commands.permissions import PermissionService
from plughost.bot.commands.registry import CommandNode, CommandRegistry, CommandSource, OverloadPlan, usage_line
from plughost.bot.commands.results import CommandResult, ResultKind
from plughost.bot.commands.tokenizer import Argument, text_after, tokenize, tokenize_text
from plughost.bot.config import CommandsConfig
from plughost.sdk.bot import BotApi
from plughost.sdk.call import BAD_ARGUMENT, ISOLATED, PLUGIN_ERROR, USER_ERROR, Action, Call, PluginError
from plughost.sdk.commands import CommandArgumentError, CommandContext, CommandPayload, to_json_value
from plughost.sdk.descriptor import Role, Scope
from plughost.sdk.events import Event
from plughost.sdk.message import Message, Segment, to_message
from plughost.sdk.permissions import PermissionId
from plughost.sdk.runner import describe_error
from plughost.sdk.senders import CommandSender

log = logging.getLogger("plughost.commands")
DENIED = "permission denied for this command"


@dataclass(frozen=True, slots=True)
class Triggered:
    """A message with its trigger removed; `bare` when no prefix/mention/reply was used."""

    message: Message | str
    bare: bool


@dataclass(slots=True)
class Resolution:
    node: CommandNode
    alias: str
    overload: OverloadPlan
    args: list[Argument]
    raw: Message | None = None
    """For a raw overload: the message after the command (and subcommand) names, untouched."""


class CommandEngine:
    """Resolves and runs commands for any sender; owns the registry and the permission service."""

    def __init__(
        self,
        *,
        config: CommandsConfig | None = None,
        permissions: PermissionService | None = None,
        parsers: ParserRegistry | None = None,
    ) -> None:
        self.config = config or CommandsConfig()
        self.permissions = permissions or PermissionService()
        self.registry = CommandRegistry(parsers)
        self._prefixes = sorted({p for p in self.config.prefixes if p}, key=len, reverse=True)
        self._owners = frozenset(self.config.owners)
        self._admins = frozenset(self.config.admins) | self._owners
        self.also_allowed: dict[tuple[str, ...], PermissionId] = {}
        """Command paths (`("plugins", "disable")`) a narrower permission also admits to; their
        handlers check what such a sender may do (`console:plugins.group`: its own group only)."""
        self.switched_off: Callable[[CommandSender], frozenset[str]] | None = None
        """The plugins switched off in the sender's chat (per-chat switches): their commands are unknown there."""
        self.dormant: Mapping[str, tuple[str, str]] = {}
        """Command names (lower case) of loaded plugins that are not enabled → (plugin id, state): the
        console is told why such a command is unknown."""

    @property
    def parsers(self) -> ParserRegistry:
        return self.registry.parsers

    @property
    def prefix(self) -> str:
        """The prefix shown in usage lines."""
        return self._prefixes[-1] if self._prefixes else ""

    # registry ---------------------------------------------------------------------------------
    def rebuild(self, sources: Iterable[CommandSource]) -> None:
        """Rebuild the registry and declare `<id>:*` / `<id>:command.<name>` permissions."""
        sources = list(sources)
        before = set(self.registry.conflicts)
        self.registry.build(sources)
        for conflict in self.registry.conflicts:
            if conflict not in before:  # each conflict once, not at every rebuild
                log.warning("command name conflict: %s (see /registry)", conflict)
        for source in sources:
            namespace = "console" if source.builtin else source.plugin_id
            self.permissions.register(PermissionId(namespace, "*"), f"everything of {namespace}")
        for node in self.registry.commands:
            self.permissions.register(
                node.permission, node.spec.description or f"run /{node.name}", grant_defaults=not node.builtin
            )
        self.permissions.flush()

    def all_commands(self) -> list[CommandNode]:
        return self.registry.all_commands()

    # entry points -----------------------------------------------------------------------------
    async def execute_command(self, sender: CommandSender, text: str | Message) -> CommandResult:
        """Run `"/x a b"` (or a message) as `sender`; the console may omit the prefix."""
        triggered = self.strip_trigger(sender, text)
        original = text if isinstance(text, Message) else Message(text)
        return await self.run(sender, triggered, original)

    def strip_trigger(self, sender: CommandSender, message: str | Message) -> Triggered:
        """Remove mention/reply/prefix (QimenBot's order); `bare` when none was used and bare text
        is not enabled for this sender (then only `prefix_optional` commands match)."""
        if isinstance(message, str):
            rest = self._strip_prefix(message.lstrip())
            if rest is not None:
                return Triggered(rest, bare=False)
            return Triggered(message, bare=not self._bare_allowed(sender))
        segments = list(message)
        index, explicit = 0, False
        while True:
            before = index
            if self.config.mention_trigger and sender.bot_id is not None:
                while index < len(segments) and _is_mention(segments[index], sender.bot_id, segments, index):
                    index += 1
            if self.config.reply_trigger and index < len(segments) and segments[index].type == "reply":
                index += 1
            explicit = explicit or index > 0
            if index == before:
                break
        remaining = segments[index:]
        if remaining and remaining[0].type == "text":
            head = str(remaining[0].data.get("text", "")).lstrip()
            stripped = self._strip_prefix(head)
            if stripped is not None:
                return Triggered(Message([Segment.text(stripped), *remaining[1:]]), bare=False)
            remaining = [Segment.text(head), *remaining[1:]] if head else remaining[1:]
        if explicit:
            return Triggered(Message(remaining), bare=False)
        return Triggered(Message(remaining), bare=not self._bare_allowed(sender))

    def _strip_prefix(self, text: str) -> str | None:
        for prefix in self._prefixes:
            if text.startswith(prefix):
                rest = text[len(prefix) :]
                return rest if rest and not rest[0].isspace() else None
        return None

    def _bare_allowed(self, sender: CommandSender) -> bool:
        if sender.is_console:
            return True
        return self.config.bare_group if sender.in_group else self.config.bare_private

    # the pipeline -----------------------------------------------------------------------------
    async def run(
        self,
        sender: CommandSender,
        triggered: Triggered,
        original: Message,
        bot: BotApi | None = None,
        event: Event | None = None,
    ) -> CommandResult:
        """Run a message whose trigger was already removed; `bot` (chat) runs the handler's bot
        actions and `event` is the chat event it came with."""
        message = triggered.message
        length = _text_length(message)
        too_long = length > self.config.max_length
        # an over-long command is never tokenized whole: its head is enough to name the command
        head = _head(message, self.config.max_length, self.config.max_arguments + 1) if too_long else message
        args: list[Argument] = list(tokenize_text(head)) if isinstance(head, str) else tokenize(head)
        if not args or not isinstance(args[0], str):
            return CommandResult(ResultKind.NOT_A_COMMAND if triggered.bare else ResultKind.UNKNOWN_COMMAND)
        token = args[0]
        # bare chat text only matches whole names: "pinging" must not become /ping + "ing"
        found = self.registry.lookup(token, glued=not triggered.bare, console=sender.is_console)
        if found is None or (triggered.bare and not found[0].spec.prefix_optional):
            if triggered.bare:
                return CommandResult(ResultKind.NOT_A_COMMAND)
            return self._unknown(sender, token)
        node, glued = found
        if self.switched_off is not None and not node.builtin and node.plugin_id in self.switched_off(sender):
            return CommandResult(ResultKind.NOT_A_COMMAND) if triggered.bare else self._unknown(sender, token)
        if too_long:
            limit = self.config.max_length
            return self._fail(
                ResultKind.TOO_LONG, node, f"the command is too long: {length} characters, at most {limit}"
            )
        if len(args) - 1 > self.config.max_arguments:
            return self._fail(
                ResultKind.TOO_LONG,
                node,
                f"the command has too many arguments: {len(args) - 1}, at most {self.config.max_arguments}",
            )
        rest: list[Argument] = args[1:]
        if glued:
            rest.insert(0, glued)
        resolved = self._resolve(node, token[: len(token) - len(glued)] if glued else token, rest)
        if isinstance(resolved, CommandResult):
            return resolved
        if resolved.overload.overload.raw:
            left = len(resolved.args)
            if glued and left == len(rest):  # the text glued to the name is the first raw argument
                resolved.raw = text_after(message, 1, tail=glued)
            else:  # the name, any subcommand names (the glued text was one) and nothing else
                resolved.raw = text_after(message, len(args) - left)
        node = resolved.node
        spec = node.spec
        # role → scope → permission (QimenBot's order, then Mirai's permission)
        if not self._role_allows(sender, _role_of(node)):
            return self._fail(ResultKind.PERMISSION_DENIED, node, DENIED)
        if not _scope_allows(sender, spec.scope):
            return CommandResult(ResultKind.WRONG_SCOPE, command=node)
        if not node.public and not self._holds(sender, node.permission) and not self._also_allowed(sender, node):
            return self._fail(ResultKind.PERMISSION_DENIED, node, f"{DENIED} (needs {node.permission})")
        try:
            payload = self._payload(sender, original, resolved, bot)
        except CommandArgumentError as exc:
            return self._fail(ResultKind.PARSE_ERROR, node, str(exc), usage=True)
        if bot is not None:  # a chat's conversation bot counts the prompts of this plugin
            bot = bot.for_plugin(node.plugin_id)
        call = Call(resolved.overload.handler, payload, "command", event, bot)
        outcome = await node.target.call(call)
        if outcome.error is not None:
            return self._failed_call(sender, node, outcome.error, list(outcome.sends))
        value = outcome.value
        replies = [m for m in map(to_message, value if isinstance(value, list) else [value]) if m is not None]
        return CommandResult(ResultKind.SUCCESS, replies, command=node, sends=list(outcome.sends))

    def _failed_call(
        self, sender: CommandSender, node: CommandNode, error: PluginError, sends: list[Action]
    ) -> CommandResult:
        """A bad argument or a `UserError` is the user's to fix: its message is the reply. Any other
        failure shows the console the detail and a chat user a short message with the error id
        (the detail is in the log and in /dynamic-errors)."""
        if error.code == BAD_ARGUMENT:
            result = self._fail(ResultKind.PARSE_ERROR, node, error.message, usage=True)
        elif error.code == USER_ERROR or node.builtin:  # the host's own commands speak to the user too
            result = self._fail(ResultKind.EXECUTION_ERROR, node, error.message)
        else:
            error_id = error.detail.get("error_id", "")
            described = describe_error(error) if error.code == PLUGIN_ERROR else str(error)  # with where it failed
            numbered = f" (error {error_id})" if error_id else ""
            log.warning("command /%s of %s failed%s: %s", node.full_name, node.plugin_id, numbered, described)
            detail = f": {described}" if sender.is_console else numbered or _why_not_counted(error)
            result = self._fail(ResultKind.EXECUTION_ERROR, node, f"command /{node.full_name} failed{detail}")
        result.sends = sends
        return result

    def _resolve(self, node: CommandNode, alias: str, args: list[Argument]) -> Resolution | CommandResult:
        """Descend into subcommands, then choose the overload (Mirai's most specific rule)."""
        while node.children and args and isinstance(args[0], str):
            child = node.children.get(args[0].lower())
            if child is None:
                break
            alias = args[0]
            node = child
            args = args[1:]
        if not node.overloads:
            what = f"unknown subcommand '{args[0]}'" if args else "missing subcommand"
            if args and not isinstance(args[0], str):
                what = "missing subcommand"
            return self._fail(ResultKind.SIGNATURE_MISMATCH, node, f"/{node.full_name}: {what}", usage=True)
        count = len(args)
        applicable = [o for o in node.overloads if o.applies(count)]
        if not applicable:
            if all(count > o.required + o.optional and o.variadic is None for o in node.overloads):
                surplus = count - max(o.required + o.optional for o in node.overloads)
                message = f"/{node.full_name}: too many arguments ({surplus} extra)"
            else:
                message = f"/{node.full_name}: missing arguments"
            return self._fail(ResultKind.SIGNATURE_MISMATCH, node, message, usage=True)
        if len(applicable) == 1:
            return Resolution(node, alias, applicable[0], args)
        best = max(o.specificity(count) for o in applicable)
        winners = [o for o in applicable if o.specificity(count) == best]
        if len(winners) > 1:
            lines = [usage_line(self.prefix, node.path, o.overload.params, "") for o in winners]
            return CommandResult(
                ResultKind.SIGNATURE_MISMATCH,
                [Message(f"/{node.full_name}: ambiguous call, candidates:\n" + "\n".join(lines))],
                error="ambiguous call",
                command=node,
                usage=lines,
            )
        return Resolution(node, alias, winners[0], args)

    def _payload(
        self, sender: CommandSender, original: Message, resolved: Resolution, bot: BotApi | None
    ) -> CommandPayload:
        """The command payload (see `plughost.sdk.commands`): parsed arguments in their JSON form,
        omitted optional ones absent, and the argument words as the user typed them."""
        node, plan, args = resolved.node, resolved.overload, resolved.args
        event = dict(sender.event) if sender.event is not None else None  # the handler's own copy
        # the handler's context holds copies too: what it changes stays out of the host's event
        own = sender.with_event(event) if event is not None else sender
        context = CommandContext(own, Message(original), node.plugin_id, node.full_name, resolved.alias)
        payload = CommandPayload(
            {
                "context": context.to_json(),
                "args": {},
                "varargs": [],
                "raw": None,
                "words": [a if isinstance(a, str) else describe_argument(a) for a in args],
                "event": event,
                "bot_id": bot.bot_id if bot is not None else "",
                "self_id": bot.self_id if bot is not None else 0,
            },
            context,
        )
        if plan.overload.raw:
            payload["raw"] = (resolved.raw if resolved.raw is not None else Message()).to_json()
            return payload
        params = plan.params
        fixed = min(len(args), len(params))
        payload["args"] = {
            params[i].spec.name: to_json_value(params[i].parse(args[i], params[i].spec)) for i in range(fixed)
        }
        if plan.variadic is not None and len(args) > fixed:
            variadic = plan.variadic
            payload["varargs"] = [to_json_value(variadic.parse(a, variadic.spec)) for a in args[fixed:]]
        return payload

    # checks and replies -----------------------------------------------------------------------
    def may_run(self, sender: CommandSender, node: CommandNode) -> bool:
        """Would `sender` pass the role, scope and permission checks of `node`? (Console-only
        commands exist only for the console.)"""
        if node.console_only and not sender.is_console:
            return False
        return (
            self._role_allows(sender, _role_of(node))
            and _scope_allows(sender, node.spec.scope)
            and (node.public or self._holds(sender, node.permission) or self._also_allowed(sender, node))
        )

    def _also_allowed(self, sender: CommandSender, node: CommandNode) -> bool:
        narrower = self.also_allowed.get(node.path) if self.also_allowed else None
        return narrower is not None and self._holds(sender, narrower)

    def holds(self, sender: CommandSender, permission: PermissionId) -> bool:
        """Does `sender` hold `permission` (the console and the configured owners hold every one)?"""
        return self._holds(sender, permission)

    def _holds(self, sender: CommandSender, permission: PermissionId) -> bool:
        """The console and the configured owners hold every permission."""
        if sender.user_id is not None and sender.user_id in self._owners and not sender.is_console:
            return True
        return self.permissions.has(sender.permittee, permission)

    def _role_allows(self, sender: CommandSender, role: Role) -> bool:
        if role == "anyone" or sender.is_console:
            return True
        user = sender.user_id
        if role == "owner":
            return user in self._owners
        return user in self._admins or (sender.in_group and sender.group_role in ("owner", "admin"))

    def unknown_text(self, sender: CommandSender, token: str) -> str:
        """What `sender` is told of a command name nobody answers to: on the console, whose command it
        is when its plugin is not enabled; to anyone, the commands they may run that are spelt alike."""
        text = f"unknown command: {token}, type {self.prefix}help"
        dormant = self.dormant.get(token.lower()) if sender.is_console else None
        if dormant is not None:
            plugin_id, state = dormant
            how = f"{self.prefix}plugins enable {plugin_id}" if state == "disabled" else f"{self.prefix}plugins"
            return f"unknown command: {token}: plugin '{plugin_id}' has it but is {state} ({how})"
        table = self.registry.console_table if sender.is_console else self.registry.table
        off = self.switched_off(sender) if self.switched_off is not None else frozenset()
        names = [
            name for name, node in table.items()
            if name != token.lower() and (node.builtin or node.plugin_id not in off) and self.may_run(sender, node)
        ]  # fmt: skip
        alike: dict[int, str] = {}  # one name per command, the closest first
        for name in difflib.get_close_matches(token.lower(), names, n=6, cutoff=0.75):
            alike.setdefault(id(table[name]), self.prefix + name)
        if alike:
            text += f" (did you mean {' or '.join(list(alike.values())[:3])}?)"
        return text

    def _unknown(self, sender: CommandSender, token: str) -> CommandResult:
        if not (sender.is_console or self.config.unknown_reply_in_chat):  # silent: no hint to look for
            return CommandResult(ResultKind.UNKNOWN_COMMAND, [], error=f"unknown command: {token}")
        text = self.unknown_text(sender, token)
        return CommandResult(ResultKind.UNKNOWN_COMMAND, [Message(text)], error=text)

    def _fail(self, kind: ResultKind, node: CommandNode, message: str, *, usage: bool = False) -> CommandResult:
        lines = node.usage_lines(self.prefix) if usage else []
        text = message + ("\nusage:\n" + "\n".join(f"  {line}" for line in lines) if lines else "")
        return CommandResult(kind, [Message(text)], error=message, command=node, usage=lines)


def _text_length(message: Message | str) -> int:
    """Characters of text in a command (non-text segments count as arguments, not characters)."""
    if isinstance(message, str):
        return len(message)
    return sum(len(str(s.data.get("text", ""))) for s in message if s.type == "text")


def _head(message: Message | str, limit: int, segments: int) -> Message | str:
    """The start of an over-long command: its first `limit` characters of text and at most
    `segments` segments (enough to name the command without reading the rest)."""
    if isinstance(message, str):
        return message[:limit]
    head = Message()
    for segment in message:
        if len(head) >= segments:
            break
        if segment.type != "text":
            head.append(segment)
            continue
        text = str(segment.data.get("text", ""))
        if len(text) >= limit:
            head.append(Segment.text(text[:limit]))
            break
        head.append(segment)
        limit -= len(text)
    return head


def _role_of(node: CommandNode) -> Role:
    """Built-ins need at least the admin role in chat (except the public ones, like `/help`)."""
    if node.builtin and not node.public and node.spec.role == "anyone":
        return "admin"
    return node.spec.role


def _scope_allows(sender: CommandSender, scope: Scope) -> bool:
    if scope == "all" or sender.is_console:
        return True
    return sender.in_group if scope == "group" else not sender.in_group


def _is_mention(segment: Segment, bot_id: int, segments: list[Segment], index: int) -> bool:
    if segment.type == "at" and str(segment.data.get("qq", "")) == str(bot_id):
        return True
    # whitespace-only text between leading self-mentions/replies is skipped too
    return (
        segment.type == "text"
        and not str(segment.data.get("text", "")).strip()
        and index > 0
        and index + 1 < len(segments)
    )


def _why_not_counted(error: PluginError) -> str:
    """What a chat user is told of a failure that has no error id (it was not the plugin's fault)."""
    if error.code == ISOLATED:
        wait = error.detail.get("retry_after_s")
        later = f" in {max(1, round(wait))} s" if isinstance(wait, int | float) else " later"
        return f": it is paused after repeated failures, try again{later}"
    return ""
