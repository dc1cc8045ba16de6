"""Message matchers in the host: compiled once per plugin-set change, tested per message event.

The text a matcher sees (`MatchText`): the message's text segments joined, after a leading reply
segment and the leading @bot mentions, stripped of surrounding whitespace; `ignore_case` matchers
compare its `str.casefold()` with their case-folded patterns (regexes get IGNORECASE|FULLCASE).
`to_me`: a private message, a message that @-mentions the bot anywhere, or a reply to a message
the bot sent (the lane remembers the ids of its recent sends).

Per event, one cheap prefilter per kind says which kinds can match at all — one `re`
alternation of every keyword, `str.startswith`/`endswith` with a tuple, a set for whole texts,
and one alternation of every regex's required literal — so an event that matches nothing costs a
handful of C calls however many matchers there are. Only then is each matcher tested. Regexes
run in the `regex` module with a timeout: one that times out (catastrophic backtracking) does not
match, and after `MAX_TIMEOUTS` it is switched off until the plugins change, with an error logged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

import regex

from plughost.sdk.events import MessageEvent
from plughost.sdk.matchers import MatcherSpec, regex_flags

log = logging.getLogger("plughost.bot.matching")
REGEX_TIMEOUT_S = 0.05
MAX_TIMEOUTS = 3

KEYWORD, PREFIX, SUFFIX, WHOLE, REGEX, ANY = 1, 2, 4, 8, 16, 32
_KIND_BITS = {"keyword": KEYWORD, "startswith": PREFIX, "endswith": SUFFIX, "fullmatch": WHOLE, "regex": REGEX,
              "any": ANY}  # fmt: skip


class MatchText:
    """The text of one message event as matchers see it (computed once per event)."""

    __slots__ = ("_folded", "text", "to_me")

    def __init__(self, event: MessageEvent, self_id: int, sent_ids: Mapping[str, Any]) -> None:
        segments = event.message
        self_key = str(self_id)
        replied = False
        start = 0
        if segments and segments[0].type == "reply":
            replied = str(segments[0].data.get("id", "")) in sent_ids
            start = 1
        mentioned = False
        parts: list[str] = []
        leading = True
        for segment in segments[start:]:
            kind = segment.type
            if kind == "at" and str(segment.data.get("qq", "")) == self_key:
                mentioned = True
                if leading:
                    continue
            elif kind == "text":
                text = str(segment.data.get("text", ""))
                if leading and not text.strip():
                    continue
                parts.append(text)
            leading = False
        self.text = "".join(parts).strip()
        self.to_me = replied or mentioned or not event.is_group
        self._folded: str | None = None

    @property
    def folded(self) -> str:
        if self._folded is None:
            self._folded = self.text.casefold()
        return self._folded


class CompiledMatcher:
    """One plugin's matcher, ready to test; `hit` answers the `match` payload of a call."""

    __slots__ = ("bit", "compiled", "literal", "patterns", "plugin_id", "spec", "timeouts")

    def __init__(self, plugin_id: str, spec: MatcherSpec) -> None:
        self.plugin_id = plugin_id
        self.spec = spec
        self.bit = _KIND_BITS[spec.type]
        self.patterns = tuple(p.casefold() for p in spec.patterns) if spec.ignore_case else spec.patterns
        self.compiled: tuple[Any, ...] = ()
        self.literal: tuple[str, ...] = ()
        self.timeouts = 0
        if spec.type == "regex":
            flags = regex_flags(spec)
            self.compiled = tuple(regex.compile(p, flags) for p in spec.patterns)
            literals = [required_literal(p, caseless_only=spec.ignore_case) for p in spec.patterns]
            self.literal = tuple(lit for lit in literals if lit) if all(literals) else ()

    @property
    def switched_off(self) -> bool:
        return self.timeouts >= MAX_TIMEOUTS

    def hit(self, text: MatchText) -> dict[str, Any] | None:
        """The match (JSON) when this matcher matches `text`, else None."""
        spec = self.spec
        if spec.to_me and not text.to_me:
            return None
        subject = text.folded if spec.ignore_case else text.text
        kind = spec.type
        if kind == "regex":
            return self._search(text.text)
        if kind == "any":
            return _plain(kind, "", text.text, 0, len(text.text))
        for pattern, original in zip(self.patterns, spec.patterns, strict=True):
            if kind == "keyword":
                at = subject.find(pattern)
                if at >= 0:
                    return _plain(kind, original, text.text, at, at + len(pattern))
            elif kind == "startswith" and subject.startswith(pattern):
                return _plain(kind, original, text.text, 0, len(pattern))
            elif kind == "endswith" and subject.endswith(pattern):
                return _plain(kind, original, text.text, len(text.text) - len(pattern), len(text.text))
            elif kind == "fullmatch" and subject == pattern:
                return _plain(kind, original, text.text, 0, len(text.text))
        return None

    def _search(self, text: str) -> dict[str, Any] | None:
        if self.switched_off or (self.literal and not any(lit in text for lit in self.literal)):
            return None
        for pattern, compiled in zip(self.spec.patterns, self.compiled, strict=True):
            try:
                found = compiled.search(text, timeout=REGEX_TIMEOUT_S)
            except TimeoutError:
                self._timed_out(pattern)
                return None
            if found is not None:
                return {
                    "type": "regex", "pattern": pattern, "text": text, "start": found.start(), "end": found.end(),
                    "groups": list(found.groups()), "named": found.groupdict(),
                }  # fmt: skip
        return None

    def _timed_out(self, pattern: str) -> None:
        self.timeouts += 1
        level = logging.ERROR if self.switched_off else logging.WARNING
        off = " — switched off until the plugins change" if self.switched_off else ""
        log.log(level, "plugin '%s' matcher '%s': regex %r took more than %g s (%d time(s))%s", self.plugin_id,
                self.spec.handler, pattern, REGEX_TIMEOUT_S, self.timeouts, off)  # fmt: skip


def _plain(kind: str, pattern: str, text: str, start: int, end: int) -> dict[str, Any]:
    return {"type": kind, "pattern": pattern, "text": text, "start": start, "end": end, "groups": [], "named": {}}


class MatcherTable:
    """The prefilters over every compiled matcher of the enabled plugins."""

    __slots__ = ("any", "keywords", "keywords_folded", "literals", "prefixes", "prefixes_folded", "regex_always",
                 "suffixes", "suffixes_folded", "wholes", "wholes_folded")  # fmt: skip

    def __init__(self, matchers: Iterable[CompiledMatcher]) -> None:
        words: dict[bool, set[str]] = {False: set(), True: set()}
        prefixes: dict[bool, set[str]] = {False: set(), True: set()}
        suffixes: dict[bool, set[str]] = {False: set(), True: set()}
        wholes: dict[bool, set[str]] = {False: set(), True: set()}
        literals: set[str] = set()
        self.any = False
        self.regex_always = False
        for matcher in matchers:
            folded, kind = matcher.spec.ignore_case, matcher.spec.type
            if kind == "keyword":
                words[folded].update(matcher.patterns)
            elif kind == "startswith":
                prefixes[folded].update(matcher.patterns)
            elif kind == "endswith":
                suffixes[folded].update(matcher.patterns)
            elif kind == "fullmatch":
                wholes[folded].update(matcher.patterns)
            elif kind == "any":
                self.any = True
            elif matcher.literal:
                literals.update(matcher.literal)
            else:
                self.regex_always = True
        self.keywords, self.keywords_folded = _alternation(words[False]), _alternation(words[True])
        self.prefixes, self.prefixes_folded = tuple(prefixes[False]), tuple(prefixes[True])
        self.suffixes, self.suffixes_folded = tuple(suffixes[False]), tuple(suffixes[True])
        self.wholes, self.wholes_folded = frozenset(wholes[False]), frozenset(wholes[True])
        self.literals = _alternation(literals)

    def kinds(self, text: MatchText) -> int:
        """The kinds of matchers that may match `text` (bits); 0 when none can."""
        plain = text.text
        bits = ANY if self.any else 0
        if self.regex_always or (self.literals is not None and self.literals.search(plain)):
            bits |= REGEX
        if not plain:
            return bits
        if (self.keywords is not None and self.keywords.search(plain)) or (
            self.keywords_folded is not None and self.keywords_folded.search(text.folded)
        ):
            bits |= KEYWORD
        if plain.startswith(self.prefixes) or (self.prefixes_folded and text.folded.startswith(self.prefixes_folded)):
            bits |= PREFIX
        if plain.endswith(self.suffixes) or (self.suffixes_folded and text.folded.endswith(self.suffixes_folded)):
            bits |= SUFFIX
        if plain in self.wholes or (self.wholes_folded and text.folded in self.wholes_folded):
            bits |= WHOLE
        return bits


def _alternation(words: Iterable[str]) -> re.Pattern[str] | None:
    """One `re` pattern matching any of `words`, as a trie (common prefixes factored out, so a
    position that starts no word is rejected at its first character); literal text only: no
    backtracking to fear."""
    trie: dict[str, Any] = {}
    for word in set(words):
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return re.compile(_trie_pattern(trie)) if trie else None


def _trie_pattern(node: dict[str, Any]) -> str:
    ends = "" in node
    branches = [re.escape(char) + _trie_pattern(child) for char, child in sorted(node.items()) if char]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if ends:  # a word ends here: what follows is optional (any match is enough for a prefilter)
        return ""
    return body


def required_literal(pattern: str, *, caseless_only: bool = False) -> str:
    """The longest literal text every match of `pattern` contains ("" when none is found, or the
    pattern is not one `re` can read). With `caseless_only`, only text without case (digits,
    CJK, punctuation) counts, so that it holds for an IGNORECASE pattern too."""
    from re import _constants as sre_constants  # type: ignore[attr-defined]
    from re import _parser as sre_parse  # type: ignore[attr-defined]

    try:
        parsed = sre_parse.parse(pattern, 0)
    except Exception:
        return ""
    if parsed.state.flags & (re.IGNORECASE | re.VERBOSE):
        return ""
    found: list[str] = []
    repeats = (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, getattr(sre_constants, "POSSESSIVE_REPEAT", None))

    def walk(items: Any) -> None:
        run: list[str] = []
        for op, av in items:
            if op is sre_constants.LITERAL:
                char = chr(av)
                if caseless_only and (char.casefold() != char or char.upper() != char):
                    found.append("".join(run))
                    run = []
                    continue
                run.append(char)
                continue
            found.append("".join(run))
            run = []
            if op is sre_constants.SUBPATTERN and not av[1] & re.IGNORECASE:
                walk(av[-1])
            elif op in repeats and av[0] >= 1:
                walk(av[2])
            elif op is sre_constants.ATOMIC_GROUP:
                walk(av)
        found.append("".join(run))

    walk(parsed)
    return max(found, key=len, default="")


__all__ = ["MAX_TIMEOUTS", "REGEX_TIMEOUT_S", "CompiledMatcher", "MatchText", "MatcherTable", "required_literal"]
