"""Argument parsers, selected by `ParamSpec.type`; a failure is a user-facing message."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from plughost.bot.commands.tokenizer import Argument
from plughost.sdk.commands import CommandArgumentError, parse_text
from plughost.sdk.descriptor import ParamSpec
from plughost.sdk.message import Message, Segment
from plughost.sdk.permissions import PermissionId, PermissionSyntaxError, PermitteeId

ArgumentParser = Callable[[Argument, ParamSpec], Any]
"""`(argument, spec) -> value`; raise `CommandArgumentError` with a message for the user."""

TRUE_WORDS = frozenset({"true", "yes", "on", "enabled", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "disabled", "0"})
_INT = re.compile(r"[+-]?\d+")


def describe_argument(arg: Argument) -> str:
    if isinstance(arg, str):
        return arg
    if arg.type == "at":
        return f"@{arg.data.get('qq', '')}"
    return f"[{arg.type}]"


def _text(arg: Argument, what: str) -> str:
    if isinstance(arg, str):
        return arg
    raise CommandArgumentError(f"expected {what}, got {describe_argument(arg)}")


def parse_str(arg: Argument, spec: ParamSpec) -> str:
    return _text(arg, "text")


def parse_int(arg: Argument, spec: ParamSpec) -> int:
    text = _text(arg, "an integer")
    if _INT.fullmatch(text.strip()):
        return int(text)
    raise CommandArgumentError(f"cannot parse '{text}' as an integer")


def parse_float(arg: Argument, spec: ParamSpec) -> float:
    text = _text(arg, "a number")
    try:
        value = float(text)
    except ValueError:
        raise CommandArgumentError(f"cannot parse '{text}' as a number") from None
    if not math.isfinite(value):
        raise CommandArgumentError(f"cannot parse '{text}' as a number")
    return value


def parse_bool(arg: Argument, spec: ParamSpec) -> bool:
    text = _text(arg, "a boolean").lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise CommandArgumentError(
        f"cannot parse '{describe_argument(arg)}' as a boolean: use true/yes/on/enabled/1 or false/no/off/disabled/0"
    )


def parse_enum(arg: Argument, spec: ParamSpec) -> str:
    text = _text(arg, "a choice")
    for choice in spec.choices:
        if choice.lower() == text.lower():
            return choice
    raise CommandArgumentError(f"'{text}' is not one of: {', '.join(spec.choices)}")


def _temporal(kind: str, now: Callable[[], Any], parse: Callable[[str], Any]) -> ArgumentParser:
    def parser(arg: Argument, spec: ParamSpec) -> Any:
        text = _text(arg, f"a {kind}")
        if text.lower() == "now":
            return now()
        try:
            return parse(text)
        except ValueError:
            example = {"datetime": "2024-05-01T12:30", "date": "2024-05-01", "time": "12:30"}[kind]
            raise CommandArgumentError(f"cannot parse '{text}' as a {kind} (e.g. {example} or now)") from None

    return parser


def parse_user(arg: Argument, spec: ParamSpec) -> int:
    if isinstance(arg, Segment):
        if arg.type == "at" and str(arg.data.get("qq", "")).isdigit():
            return int(arg.data["qq"])
        raise CommandArgumentError(f"expected a user id or an @mention, got {describe_argument(arg)}")
    text = arg.removeprefix("@")
    if text.isdigit():
        return int(text)
    raise CommandArgumentError(f"cannot parse '{arg}' as a user: give a numeric id or @mention")


def parse_group(arg: Argument, spec: ParamSpec) -> int:
    text = _text(arg, "a group id")
    if text.isdigit():
        return int(text)
    raise CommandArgumentError(f"cannot parse '{text}' as a group id")


def parse_permission_id(arg: Argument, spec: ParamSpec) -> PermissionId:
    try:
        return PermissionId.parse(_text(arg, "a permission id"))
    except PermissionSyntaxError as exc:
        raise CommandArgumentError(str(exc)) from None


def parse_permittee_id(arg: Argument, spec: ParamSpec) -> PermitteeId:
    if isinstance(arg, Segment) and arg.type == "at":
        return PermitteeId.parse(f"u{arg.data.get('qq', '')}")
    try:
        return PermitteeId.parse(_text(arg, "a permittee id"))
    except PermissionSyntaxError as exc:
        raise CommandArgumentError(str(exc)) from None


def parse_message(arg: Argument, spec: ParamSpec) -> Message:
    return Message(Segment.text(arg) if isinstance(arg, str) else arg)


def parse_segment(arg: Argument, spec: ParamSpec) -> Segment:
    return Segment.text(arg) if isinstance(arg, str) else arg


def parse_any(arg: Argument, spec: ParamSpec) -> Any:
    return arg


def builtin_parsers() -> dict[str, ArgumentParser]:
    return {
        "str": parse_str,
        "int": parse_int,
        "float": parse_float,
        "bool": parse_bool,
        "enum": parse_enum,
        "datetime": _temporal("datetime", dt.datetime.now, dt.datetime.fromisoformat),
        "date": _temporal("date", dt.date.today, dt.date.fromisoformat),
        "time": _temporal("time", lambda: dt.datetime.now().time(), dt.time.fromisoformat),
        "user": parse_user,
        "group": parse_group,
        "permission_id": parse_permission_id,
        "permittee_id": parse_permittee_id,
        "message": parse_message,
        "segment": parse_segment,
        "any": parse_any,
    }


@dataclass
class ParserRegistry:
    """Parsers by type name: built-ins plus host-wide custom parsers (`register`)."""

    parsers: dict[str, ArgumentParser] = field(default_factory=builtin_parsers)

    def register(self, type_name: str, parser: ArgumentParser | Callable[[str], Any]) -> None:
        """Add a host-wide parser; a one-argument callable receives the argument text."""
        self.parsers[type_name] = _adapt(parser)

    def get(self, type_name: str) -> ArgumentParser | None:
        return self.parsers.get(type_name)

    def names(self) -> Mapping[str, ArgumentParser]:
        return self.parsers


def _adapt(parser: Callable[..., Any]) -> ArgumentParser:
    import inspect

    try:
        count = len(inspect.signature(parser).parameters)
    except (TypeError, ValueError):
        count = 2
    if count >= 2:
        return parser
    return text_parser(parser)


def text_parser(func: Callable[[str], Any]) -> ArgumentParser:
    """Wrap a `text -> value` function as an argument parser; `ValueError` becomes a user message."""

    def parser(arg: Argument, spec: ParamSpec) -> Any:
        return parse_text(func, _text(arg, spec.type), spec.type)

    return parser
