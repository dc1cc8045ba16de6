#!/usr/bin/env python3
"""A host with its OneBot transports in a process of its own, for `bench_bot`.

    python bot_host.py WORKSPACE CPU

Starts the host on WORKSPACE (its plugins' worker processes start with every core), then pins
itself to core CPU, prints `ready <plugins>` and serves until its standard input closes. The
benchmark runs the pipeline whose plugins are in workers this way, so that its gRPC channels and
supervisors do not share an event loop (and a GIL) with the hosts it is compared with.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path

from plughost.adapters.onebot import OneBotAdapter
from plughost.host import Host
from plughost.runtime.collector import young_threshold


async def main(workspace: Path, cpu: int) -> None:
    async with contextlib.AsyncExitStack() as stack:
        host = await stack.enter_async_context(Host(workspace))
        await stack.enter_async_context(OneBotAdapter(host.bot_settings.bots, host.dispatcher))
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {cpu})
        print(f"ready {len(host.manager.enabled_plugins())}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the benchmark ends


if __name__ == "__main__":
    with young_threshold():  # the host's collector as `plughost run` sets it
        asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
