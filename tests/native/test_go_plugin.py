"""A Go `c-shared` library (its own runtime and threads) loads and calls back like C and Rust."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from tests.native.conftest import Loader


async def test_go_plugin_registers_and_answers(go_probe: Path, load_native: Loader):
    handle = await load_native(go_probe, "goprobe")
    assert handle.descriptor.metadata["plugin"]["Name"] == "goprobe"
    assert handle.descriptor.capabilities == {"executor"}
    assert handle.descriptor.metadata["capability_values"] == {"executor_model_scope": "all"}
    assert await handle.call_abi("echo", {"a": [1, "ü"]}) == {"a": [1, "ü"]}
    replies = await asyncio.gather(*(handle.call_abi("echo", {"i": i}) for i in range(16)))
    assert replies == [{"i": i} for i in range(16)]


async def test_goroutines_call_back_concurrently(go_probe: Path, load_native: Loader, caplog: pytest.LogCaptureFixture):
    handle = await load_native(go_probe, "goprobe")
    with caplog.at_level(logging.DEBUG, logger="plughost.plugin.goprobe"):
        assert await handle.call_abi("host_log", None) == {"ok": True, "result": {}}
        assert await handle.call_abi("goroutines_log", {"n": 32}) == [True] * 32
    messages = [r.getMessage() for r in caplog.records if r.name == "plughost.plugin.goprobe"]
    assert "[goprobe] hello from Go" in messages
    assert sorted(m for m in messages if "goroutine" in m) == sorted(f"[goprobe] goroutine i={i}" for i in range(32))
    assert handle.callbacks.stats.calls["host.log"] == 33
