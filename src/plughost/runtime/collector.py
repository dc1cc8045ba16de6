"""A young-generation threshold for the cyclic garbage collector that suits a busy host.

`plughost run` and every worker process apply it for their whole run; a `Host` embedded in
another program leaves the program's collector alone (`young_threshold()` applies it there too).

CPython collects its youngest generation once 700 more tracked objects were made than freed. With
hundreds of events in flight, a host keeps thousands of young objects alive, so those collections
come every few events and scan them all each time: 7 % of the bot pipeline's CPU in the benchmark
(`benchmarks/bench_bot.py`), 0.1 % at 10 000. Garbage in cycles is still collected, once 10 000
more objects were made than freed.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 10_000


@contextmanager
def young_threshold(at_least: int = YOUNG_THRESHOLD) -> Iterator[None]:
    """Raise the youngest generation's threshold to `at_least` for the block, then put back what
    was there (a higher threshold, or a collector switched off, is left alone)."""
    first, *older = gc.get_threshold()
    if not gc.isenabled() or first >= at_least:
        yield
        return
    gc.set_threshold(at_least, *older)
    try:
        yield
    finally:
        if gc.get_threshold()[0] == at_least:  # nobody changed it meanwhile
            gc.set_threshold(first, *older)


__all__ = ["YOUNG_THRESHOLD", "young_threshold"]
