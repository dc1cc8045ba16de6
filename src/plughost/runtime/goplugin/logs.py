"""A plugin's stderr into the host's logging: hclog JSON lines or `[LEVEL]`-prefixed text."""

from __future__ import annotations

import json
import logging
import re
from collections import deque

HCLOG_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
_PREFIX_RE = re.compile(r"^\s*(?:\S+\s+\S+\s+)?\[(TRACE|DEBUG|INFO|WARN|WARNING|ERROR)\]\s*", re.IGNORECASE)
RESERVED_KEYS = ("@level", "@message", "@timestamp", "@module", "@caller")
MAX_LINE_CHARS = 8192


def parse_log_line(line: str) -> tuple[int, str, dict[str, object]]:
    """`(level, message, fields)` of one stderr line."""
    text = line.rstrip("\r\n")
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict) and "@message" in data:
            level = HCLOG_LEVELS.get(str(data.get("@level", "debug")).lower(), logging.DEBUG)
            fields = {k: v for k, v in data.items() if k not in RESERVED_KEYS}
            return level, str(data["@message"]), fields
    match = _PREFIX_RE.match(text)
    if match:
        return HCLOG_LEVELS[match.group(1).lower()], text[match.end() :], {}
    return logging.DEBUG, text, {}


class LineSplitter:
    """Split a byte stream into text lines; overlong lines are cut, never buffered without bound."""

    def __init__(self, max_chars: int = MAX_LINE_CHARS) -> None:
        self._buffer = bytearray()
        self._max = max_chars

    def feed(self, data: bytes) -> list[str]:
        self._buffer += data
        lines: list[str] = []
        while True:
            cut = self._buffer.find(b"\n")
            if cut < 0:
                break
            lines.append(bytes(self._buffer[:cut]).decode("utf-8", "replace"))
            del self._buffer[: cut + 1]
        if len(self._buffer) > self._max:
            lines.append(bytes(self._buffer[: self._max]).decode("utf-8", "replace") + " …(cut)")
            self._buffer.clear()
        return lines

    def flush(self) -> list[str]:
        rest = bytes(self._buffer).decode("utf-8", "replace")
        self._buffer.clear()
        return [rest] if rest else []


class PluginLog:
    """Routes a plugin's output lines to its logger and keeps the last lines for error reports."""

    def __init__(self, logger: logging.Logger, plugin_id: str, tail_lines: int = 20) -> None:
        self.logger = logger
        self.plugin_id = plugin_id
        self.tail: deque[str] = deque(maxlen=tail_lines)

    def stderr_line(self, line: str) -> None:
        if not line.strip():
            return
        level, message, fields = parse_log_line(line)
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        text = f"{message} {extra}" if extra else message
        # the tail goes into error messages: a log line as a person reads it, not hclog's JSON
        parsed = message != line.rstrip("\r\n")
        self.tail.append((f"[{logging.getLevelName(level).lower()}] {text}" if parsed else line)[:500])
        if self.logger.isEnabledFor(level):
            self.logger.log(level, "[%s] %s", self.plugin_id, text)

    def stdout_line(self, line: str) -> None:
        if line.strip() and self.logger.isEnabledFor(logging.DEBUG):
            self.logger.debug("[%s] stdout: %s", self.plugin_id, line)

    def tail_text(self) -> str:
        return "\n".join(self.tail)
