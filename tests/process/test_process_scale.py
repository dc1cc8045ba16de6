"""Many process plugins at once: Jank promised ≥ 100 concurrent plugins; plughost proves it."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from process_support import FAST, WORKER_OPTIONS, call_value, request_for

from plughost.runtime.placement import WorkerRuntime
from plughost.runtime.process import ProcessRuntime

GO_PLUGINS = 80
WORKERS = 20


async def test_hundred_plugins_start_concurrently_and_answer(
    go_plugins: dict[str, Path], behave_dir: Path, tmp_path: Path
) -> None:
    options = replace(FAST, start_timeout_s=60, call_timeout_s=30)
    process = ProcessRuntime(options)
    worker = WorkerRuntime(replace(WORKER_OPTIONS, start_timeout_s=60, call_timeout_s=30))
    requests = []
    for i in range(WORKERS):
        directory = tmp_path / f"behave-{i}"
        shutil.copytree(behave_dir, directory)
        requests.append((worker, request_for(directory, isolation="process")))
    requests += [(process, request_for(go_plugins["jank-echo"])) for _ in range(GO_PLUGINS)]
    results = await asyncio.gather(*(runtime.load(request) for runtime, request in requests), return_exceptions=True)
    handles: list[Any] = [r for r in results if not isinstance(r, BaseException)]
    try:
        assert len(handles) == GO_PLUGINS + WORKERS, [r for r in results if isinstance(r, BaseException)][:3]
        health = await asyncio.gather(*(h.health() for h in handles))
        assert all(h.ok for h in health)
        assert len({h.info["pid"] for h in health}) == GO_PLUGINS + WORKERS
        answers = await asyncio.gather(*(call_value(h, "echo", {"text": "hi"}) for h in handles))
        assert answers == [{"text": "hi"}] * (GO_PLUGINS + WORKERS)
    finally:
        await asyncio.gather(*(h.stop() for h in handles))


async def test_worker_socket_dir_is_used_and_cleaned(behave_dir: Path, tmp_path: Path) -> None:
    sockets = tmp_path / "sockets"
    sockets.mkdir()
    runtime = WorkerRuntime(replace(WORKER_OPTIONS, socket_dir=sockets))
    handle = await runtime.load(request_for(behave_dir, isolation="process"))
    try:
        address = Path(handle.info()["address"])
        assert address.parent == sockets and address.exists()
    finally:
        await handle.stop()
    assert list(sockets.iterdir()) == []
