"""Commands: tokenizer, typed argument parsing, resolution, registry, senders and permissions."""

from plughost.bot.commands.engine import CommandEngine, Triggered
from plughost.bot.commands.parsers import ParserRegistry, text_parser
from plughost.bot.commands.permissions import PermissionService
from plughost.bot.commands.registry import CommandNode, CommandRegistry, CommandSource, CommandTarget, Conflict
from plughost.bot.commands.results import CommandResult, ResultKind
from plughost.bot.commands.targets import PluginTarget, SdkTarget
from plughost.bot.commands.tokenizer import Argument, join_arguments, quote, tokenize, tokenize_text
from plughost.sdk.commands import CommandArgumentError, CommandContext
from plughost.sdk.permissions import PermissionId, PermitteeId
from plughost.sdk.senders import CommandSender

__all__ = [
    "Argument",
    "CommandArgumentError",
    "CommandContext",
    "CommandEngine",
    "CommandNode",
    "CommandRegistry",
    "CommandResult",
    "CommandSender",
    "CommandSource",
    "CommandTarget",
    "Conflict",
    "ParserRegistry",
    "PermissionId",
    "PermissionService",
    "PermitteeId",
    "PluginTarget",
    "ResultKind",
    "SdkTarget",
    "Triggered",
    "join_arguments",
    "quote",
    "text_parser",
    "tokenize",
    "tokenize_text",
]
