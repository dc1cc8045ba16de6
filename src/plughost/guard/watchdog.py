"""The loop watchdog: plugin code that never yields cannot freeze the host.

The event loop beats every `interval`. A thread of the watchdog checks the beat; when the loop
has not beaten for two intervals, it looks at the loop thread's stack. If a guarded call is on
it whose deadline has passed and the innermost frame is the plugin's own code (not plughost's,
not asyncio's), it raises `PluginOvertime` in that thread: the plugin's frame unwinds, the call
is reported `timed_out` and counted on the plugin's breaker, and the log names the plugin, the
handler and the line. Code blocked inside C (`time.sleep`, a native library called on the loop)
cannot be interrupted there: the exception arrives when it returns to Python, and the log says
the loop is blocked outside Python code. A plugin that catches `BaseException` in its loop can
resist; only `isolation = "process"` stops every plugin for sure (its worker is killed).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import sys
import threading
import time
from pathlib import Path
from types import CodeType, FrameType

log = logging.getLogger("plughost.guard.watchdog")
_HOST_CODE = (str(Path(__file__).resolve().parents[1]), str(Path(asyncio.__file__).resolve().parent))


class PluginOvertime(BaseException):
    """Raised inside plugin code that ran past its call's deadline without yielding.

    A `BaseException`, so that a plugin's `except Exception` does not swallow it.
    """

    code = "timed_out"

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or ("it ran past its deadline without yielding and was interrupted",)))


class LoopWatchdog:
    """Watches one event loop for guarded calls that hold it past their deadline.

    `call_code` is the code object of the coroutine that runs guarded calls; its frame holds
    the locals `plugin_id`, `name`, `started` (a `time.perf_counter()` value) and `limit` (s).
    """

    def __init__(self, call_code: CodeType, *, interval: float = 0.1) -> None:
        self.call_code = call_code
        self.interval = interval
        self._beat = 0.0
        self._heart: asyncio.TimerHandle | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._loop_thread = 0
        self._reported: object = None  # the guarded frame last acted on (once per overrun)

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        """Watch the running loop (idempotent; call from the loop's thread)."""
        if self._thread is not None:
            return
        loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._stopped.clear()
        self._beat_now(loop)
        self._thread = threading.Thread(target=self._watch, name="plughost-loop-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching; the thread ends within one interval (joined here)."""
        self._stopped.set()
        if self._heart is not None:
            self._heart.cancel()
            self._heart = None
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.interval * 5)

    def _beat_now(self, loop: asyncio.AbstractEventLoop) -> None:
        self._beat = time.perf_counter()
        if not self._stopped.is_set():
            self._heart = loop.call_later(self.interval, self._beat_now, loop)

    def _watch(self) -> None:
        while not self._stopped.wait(self.interval):
            if time.perf_counter() - self._beat > 2 * self.interval:
                self._check()

    def _check(self) -> None:
        top = sys._current_frames().get(self._loop_thread)
        if top is None:
            return
        guarded = self._overdue(top)
        if guarded is None or guarded[0] is self._reported:
            return
        frame, plugin_id, handler, overrun = guarded
        self._reported = frame
        where = f"{top.f_code.co_filename}:{top.f_lineno}"
        if top.f_code.co_filename.startswith(_HOST_CODE):
            log.warning(
                "plugin '%s' handler '%s' holds the event loop %.1f s past its deadline, blocked outside its "
                "Python code (at %s); it cannot be interrupted there — run it with isolation = \"process\"",
                plugin_id, handler, overrun, where,
            )  # fmt: skip
            return
        log.warning(
            "plugin '%s' handler '%s' ran %.1f s past its deadline without yielding, at %s: interrupting it",
            plugin_id, handler, overrun, where,
        )  # fmt: skip
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._loop_thread), ctypes.py_object(PluginOvertime))

    def _overdue(self, top: FrameType) -> tuple[FrameType, str, str, float] | None:
        """The innermost guarded call on the stack, when its deadline has passed."""
        frame: FrameType | None = top
        while frame is not None:
            if frame.f_code is self.call_code:
                values = frame.f_locals
                started, limit = values.get("started"), values.get("limit")
                if not isinstance(started, float) or not isinstance(limit, int | float):
                    return None
                overrun = time.perf_counter() - started - limit
                if overrun <= 0:
                    return None
                return frame, str(values.get("plugin_id")), str(values.get("name")), overrun
            frame = frame.f_back
        return None
