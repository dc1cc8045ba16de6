"""Daemon worker threads for native calls.

A native call cannot be interrupted; a hung one keeps its thread forever. Daemon threads make
sure such a thread never blocks interpreter exit (a `ThreadPoolExecutor` would join it).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from plughost.runtime.cpu import charged

T = TypeVar("T")
_Item = tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None


class DaemonPool:
    """Grows up to `max_workers` daemon threads; idle threads are reused."""

    def __init__(self, name: str, max_workers: int) -> None:
        self.name = name
        self.max_workers = max_workers
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._threads = 0
        self._closed = False
        self._workers: list[threading.Thread] = []
        self.submitted = 0

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"worker pool {self.name} is shut down")
            self.submitted += 1
            if self._idle > 0:
                self._idle -= 1
            elif self._threads < self.max_workers:
                self._threads += 1
                worker = threading.Thread(target=self._work, name=f"{self.name}-{self._threads}", daemon=True)
                self._workers.append(worker)
                worker.start()
        self._queue.put((future, charged(fn), args))  # a metered call is charged with the thread's CPU
        return future

    @property
    def threads(self) -> int:
        return self._threads

    def shutdown(self) -> None:
        """Let idle threads exit; busy (possibly hung) threads exit when their call returns."""
        with self._lock:
            self._closed = True
            count = self._threads
        for _ in range(count):
            self._queue.put(None)

    def join(self, timeout: float) -> bool:
        """After `shutdown`: wait up to `timeout` s for the threads to exit; False if some still run."""
        deadline = time.monotonic() + timeout
        for worker in list(self._workers):
            worker.join(max(0.0, deadline - time.monotonic()))
        return not any(w.is_alive() for w in self._workers)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn, args = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:
                    future.set_exception(exc)
            del item, future, fn, args
            with self._lock:
                self._idle += 1
