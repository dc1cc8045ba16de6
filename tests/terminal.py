"""A program on a pseudo-terminal whose output is rendered by pyte: tests wait on what the screen
shows, not on byte strings (a busy machine makes a terminal redraw in arbitrary pieces)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pexpect
import pyte

ROWS, COLUMNS = 100, 200  # tall enough that no test scrolls: what appeared stays on screen


class Terminal:
    """Drives `child` (spawned with `dimensions=(ROWS, COLUMNS)`) and renders everything it prints."""

    def __init__(self, child: pexpect.spawn, timeout: float) -> None:
        self.child = child
        self.timeout = timeout
        self.screen = pyte.Screen(COLUMNS, ROWS)
        self._stream = pyte.Stream(self.screen)
        self.ended = False
        self._before: list[str] = []

    # keys -------------------------------------------------------------------------------------------
    def send(self, keys: str) -> None:
        """Type `keys`; `appeared` then counts what is shown from now on."""
        self._before = self.lines()
        self.child.send(keys)

    def sendline(self, line: str = "") -> None:
        self.send(line + "\r")

    # what the screen shows -----------------------------------------------------------------------------
    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    def cursor_line(self) -> str:
        """The line the cursor is on: the prompt and what is typed after it."""
        return self.lines()[self.screen.cursor.y]

    def appeared(self, text: str) -> bool:
        """Do more lines show `text` than before the last key was sent?"""
        return _count(self.lines(), text) > _count(self._before, text)

    # waiting ----------------------------------------------------------------------------------------
    def wait(self, condition: Callable[[], bool], what: str) -> None:
        """Render the output until `condition()` holds (AssertionError with the screen after `timeout`)."""
        deadline = time.monotonic() + self.timeout
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0 or self.ended:
                state = "the program ended" if self.ended else f"timed out after {self.timeout} s"
                raise AssertionError(f"{state} waiting for {what}; the screen:\n" + "\n".join(self.lines()).rstrip())
            self._read(min(left, 1.0))

    def wait_for(self, text: str) -> None:
        """Wait until a line showing `text` appears (one more than before the last key)."""
        self.wait(lambda: self.appeared(text), repr(text))

    def wait_input(self, prompt: str, typed: str = "") -> None:
        """Wait until the cursor line is `prompt` followed by exactly `typed`."""
        expected = (prompt + " " + typed).rstrip() if typed else prompt.rstrip()
        self.wait(lambda: self.cursor_line() == expected, f"the input line {expected!r}")

    def wait_end(self) -> int:
        """Wait until the program ends; its exit status."""
        self.wait(lambda: self.ended, "the end of the program")
        self.child.close()
        assert self.child.exitstatus is not None, f"killed by signal {self.child.signalstatus}"
        return int(self.child.exitstatus)

    def _read(self, timeout: float) -> None:
        try:
            data = self.child.read_nonblocking(65536, timeout=timeout)
        except pexpect.TIMEOUT:
            return
        except pexpect.EOF:
            self.ended = True
            return
        self._stream.feed(data)


def _count(lines: list[str], text: str) -> int:
    return sum(text in line for line in lines)
