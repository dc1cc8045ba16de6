"""The CLI's log output: rich's handler on stderr, installed by the -l option (the library itself logs only)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from plughost.cli.output import stderr

ISO_8601 = "%Y-%m-%dT%H:%M:%S"  # log lines' time stamps (local time)
PLAIN_FORMAT = "%(name)s: %(message)s"


class _RichLogHandler(logging.Handler):
    """rich's log handler on a terminal, made (and `rich.logging` imported) at the first record that
    reaches it: most commands log nothing, and they need not pay for importing it. Elsewhere (a pipe,
    a file, a log collector) a record is one plain line, never wrapped to a terminal's width:
    `<time> <LEVEL> <logger>: <message>`."""

    def __init__(self) -> None:
        super().__init__()
        self._rich: logging.Handler | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self._rich is None:
            self._rich = _terminal_handler(self.formatter)
        self._rich.emit(record)


def _terminal_handler(formatter: logging.Formatter | None) -> logging.Handler:
    console = stderr()
    if not console.is_terminal:
        plain = logging.StreamHandler(console.file)
        plain.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {PLAIN_FORMAT}", ISO_8601))
        return plain
    from rich.logging import RichHandler

    handler = RichHandler(
        console=console,
        show_path=False,
        rich_tracebacks=False,
        markup=False,
        omit_repeated_times=False,
        log_time_format=ISO_8601,
    )
    handler.setFormatter(formatter)
    return handler


def setup_logging(level: str) -> None:
    """Install a rich handler on the root logger (the library itself never does this)."""
    handler = _RichLogHandler()
    handler.setLevel(level.upper())  # the terminal's level; other handlers (the management log ring) choose theirs
    logging.basicConfig(level=level.upper(), handlers=[handler], format=PLAIN_FORMAT, force=True)


@contextmanager
def kept_off_the_terminal(logger_name: str) -> Iterator[None]:
    """While inside, records of `logger_name` do not reach the terminal (other handlers still get them):
    for what the command prints itself, so it is not said twice."""

    def keep(record: logging.LogRecord) -> bool:
        return record.name != logger_name

    handlers = [h for h in logging.getLogger().handlers if isinstance(h, _RichLogHandler)]
    for handler in handlers:
        handler.addFilter(keep)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(keep)
