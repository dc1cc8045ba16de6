"""Message matchers: handlers for chat messages whose text matches a keyword, prefix or regex.

```python
@plugin.on_message(keyword="weather")
async def weather(ev: MessageEvent) -> str: ...

@plugin.on_message(regex=r"^roll (?P<count>\\d+)d(?P<sides>\\d+)$")
async def roll(count: int, sides: int) -> str: ...          # named groups by name, converted

@plugin.on_message(startswith=("hi", "hello"), ignore_case=True, to_me=True)
async def greet(match: re.Match[str]) -> str: ...           # the match object (regex's Match API)
```

A matcher is part of the plugin's `Descriptor` (`MatcherSpec`), so every runtime declares it the
same way; the host matches (see docs/bot.md for the text matched and the ordering rule) and calls
the handler with the event's payload plus `match` (`{"type", "pattern", "text", "start", "end",
"groups", "named"}`) and `to_me`. Patterns are checked when the decorator runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import regex

from plughost.errors import PlugHostError
from plughost.sdk.contributions import DescriptorContribution

if TYPE_CHECKING:
    from plughost.sdk.descriptor import Descriptor
    from plughost.sdk.plugin import Handler

F = TypeVar("F", bound=Callable[..., Any])
MatcherType = Literal["keyword", "startswith", "endswith", "fullmatch", "regex", "any"]
MATCHER_TYPES: tuple[MatcherType, ...] = ("keyword", "startswith", "endswith", "fullmatch", "regex", "any")
MAX_PATTERN_LENGTH = 1000


class MatcherError(PlugHostError, ValueError):
    """A matcher that cannot match: an invalid regex, an empty pattern, an unknown type."""


@dataclass(frozen=True, slots=True)
class MatcherSpec:
    """One message matcher: `type` and its `patterns` (any one of them matches).

    `keyword`: a pattern occurs in the text; `startswith` / `endswith` / `fullmatch`: the text
    starts with, ends with or is a pattern; `regex`: a pattern's `search` finds a match; `any`:
    every message (no patterns). `ignore_case` compares case-folded text (regexes get IGNORECASE);
    `to_me`: only private messages, messages that @-mention the bot and replies to the bot.
    """

    handler: str
    type: MatcherType = "any"
    patterns: tuple[str, ...] = ()
    ignore_case: bool = False
    to_me: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "handler": self.handler,
            "type": self.type,
            "patterns": list(self.patterns),
            "ignore_case": self.ignore_case,
            "to_me": self.to_me,
        }

    @classmethod
    def from_json(cls, data: Any) -> MatcherSpec:
        """Read (and check) a matcher from its JSON shape; raises `MatcherError` naming the problem."""
        if not isinstance(data, Mapping):
            raise MatcherError(f"a matcher must be an object, got {type(data).__name__}")
        handler = data.get("handler")
        if not isinstance(handler, str) or not handler:
            raise MatcherError(f"a matcher needs a non-empty 'handler' string, got {handler!r}")
        patterns = data.get("patterns", ())
        if isinstance(patterns, str):
            patterns = (patterns,)
        if not isinstance(patterns, list | tuple) or not all(isinstance(p, str) for p in patterns):
            raise MatcherError(f"matcher '{handler}': 'patterns' must be a list of strings, got {patterns!r}")
        spec = cls(
            handler,
            cast(MatcherType, data.get("type", "any")),
            tuple(patterns),
            bool(data.get("ignore_case", False)),
            bool(data.get("to_me", False)),
        )
        return checked(spec)


def regex_flags(spec: MatcherSpec) -> int:
    """The `regex` flags a matcher's patterns are compiled with."""
    return int(regex.IGNORECASE | regex.FULLCASE) if spec.ignore_case else 0


def checked(spec: MatcherSpec) -> MatcherSpec:
    """`spec`, or `MatcherError` saying what is wrong with it (regexes are compiled here)."""
    where = f"matcher '{spec.handler}'"
    if spec.type not in MATCHER_TYPES:
        raise MatcherError(f"{where}: unknown type {spec.type!r}; use one of {', '.join(MATCHER_TYPES)}")
    if spec.type == "any":
        if spec.patterns:
            raise MatcherError(f"{where}: type 'any' takes no patterns")
        return spec
    if not spec.patterns:
        raise MatcherError(f"{where}: {spec.type} needs at least one pattern")
    for pattern in spec.patterns:
        if not pattern:
            raise MatcherError(f"{where}: an empty {spec.type} pattern would match every message; use on_message()")
        if len(pattern) > MAX_PATTERN_LENGTH:
            raise MatcherError(f"{where}: a pattern is {len(pattern)} characters long, at most {MAX_PATTERN_LENGTH}")
        if spec.type == "regex":
            try:
                regex.compile(pattern, regex_flags(spec))
            except regex.error as exc:
                raise MatcherError(f"{where}: invalid regex {pattern!r}: {exc}") from None
    return spec


def group_names(spec: MatcherSpec) -> frozenset[str]:
    """The named groups of a regex matcher's patterns (empty for other types)."""
    if spec.type != "regex":
        return frozenset()
    flags = regex_flags(spec)
    return frozenset(name for p in spec.patterns for name in regex.compile(p, flags).groupindex)


def rematch(spec: MatcherSpec, match: Mapping[str, Any]) -> Any:
    """The match object of a regex matcher's call (its `match` payload), found again in the
    plugin: the same pattern searched in the same text (`regex.Match`, the API of `re.Match`)."""
    pattern, text = match.get("pattern"), match.get("text")
    if spec.type != "regex" or not isinstance(pattern, str) or not isinstance(text, str):
        return None
    return regex.compile(pattern, regex_flags(spec)).search(text, timeout=1.0)


def _patterns(name: str, value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    items = tuple(value)
    if not all(isinstance(item, str) for item in items):
        raise MatcherError(f"{name}= takes a string or strings, got {value!r}")
    return items


class MatcherDecoratorsMixin(DescriptorContribution):
    """Mixed into `Plugin`: `@plugin.on_message`, added to the descriptor."""

    id: str
    add_handler: Callable[..., Handler]

    def _matchers(self) -> list[MatcherSpec]:
        return self._declared("_matcher_specs", list[MatcherSpec])

    def on_message(
        self,
        *,
        keyword: str | Iterable[str] | None = None,
        startswith: str | Iterable[str] | None = None,
        endswith: str | Iterable[str] | None = None,
        fullmatch: str | Iterable[str] | None = None,
        regex: str | Iterable[str] | None = None,
        to_me: bool = False,
        ignore_case: bool = False,
    ) -> Callable[[F], F]:
        """Call the handler for chat messages whose text matches (one kind of pattern, or none for
        every message). Parameters: what routes get (event, bot, Message, dict, ctx …), `match`
        (regexes) and the regex's named groups by name (converted to their type hints)."""
        options = (("keyword", keyword), ("startswith", startswith), ("endswith", endswith),
                   ("fullmatch", fullmatch), ("regex", regex))  # fmt: skip

        def register(func: F) -> F:
            where = f"plugin '{self.id}': on_message handler '{getattr(func, '__qualname__', func)}'"
            try:
                given = {kind: _patterns(kind, value) for kind, value in options if value is not None}
            except MatcherError as exc:
                raise MatcherError(f"{where}: {exc}") from None
            if len(given) > 1:
                raise MatcherError(f"{where}: give one of keyword=, startswith=, endswith=, fullmatch=, regex=, "
                                   f"not {' and '.join(given)}")  # fmt: skip
            kind, patterns = next(iter(given.items()), ("any", ()))
            name = f"matcher.{getattr(func, '__name__', 'handler')}"
            handlers: Mapping[str, Any] = getattr(self, "handlers", {})
            base, n = name, 1
            while name in handlers:
                n += 1
                name = f"{base}#{n}"
            try:
                spec = checked(MatcherSpec(name, cast(MatcherType, kind), patterns, ignore_case, to_me))
            except MatcherError as exc:
                raise MatcherError(f"{where}: {str(exc).partition(': ')[2]}") from None
            self.add_handler(name, func, "matcher", matcher=spec)
            self._matchers().append(spec)
            return func

        return register

    def _extend_descriptor(self, descriptor: Descriptor) -> Descriptor:
        """Add the matchers (cooperative: other mixins chain through `super()`)."""
        descriptor = super()._extend_descriptor(descriptor)
        specs = self._matchers()
        if not specs:
            return descriptor
        return dataclasses.replace(
            descriptor, matchers=(*descriptor.matchers, *specs), capabilities=descriptor.capabilities | {"bot"}
        )


__all__ = [
    "MATCHER_TYPES",
    "MatcherDecoratorsMixin",
    "MatcherError",
    "MatcherSpec",
    "MatcherType",
    "checked",
    "group_names",
    "regex_flags",
    "rematch",
]
