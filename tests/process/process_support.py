"""Helpers shared by the process-plugin tests (importable from test modules, unlike conftest)."""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from plughost.runtime.base import LoadRequest
from plughost.runtime.goplugin.supervisor import RestartPolicy
from plughost.runtime.process import ProcessOptions
from plughost.sdk.manifest import find_manifest_file, load_manifest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GO_SDK = ROOT / "sdk" / "go"  # GOPATH root of plughost's Go client (plughost/hostapi)

FAST = ProcessOptions(
    start_timeout_s=10.0,
    call_timeout_s=10.0,
    stop_grace_s=1.0,
    health_interval_s=0,
    restart=RestartPolicy(initial_delay_s=0.01, max_delay_s=0.1, max_restarts=3, window_s=30.0),
)
WORKER_OPTIONS = replace(FAST, kill_on_timeout=True)


def require_tool(name: str, why: str = "") -> str:
    """Path of `name`; skip with the reason locally, fail under CI=true (as tests/conftest.py does)."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed{': ' + why if why else ''} (Debian: apt-get install it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must provide every tool the tests need: {message}")
        pytest.skip(message)
    return path


def request_for(plugin_dir: Path, *, logger: logging.Logger | None = None, **manifest_changes: Any) -> LoadRequest:
    manifest_file = find_manifest_file(plugin_dir)
    assert manifest_file is not None
    manifest = load_manifest(manifest_file, default_id=plugin_dir.name)
    if manifest_changes:  # as if the manifest said so: what it does not state keeps its default
        manifest = type(manifest).model_validate({**manifest.model_dump(exclude_unset=True), **manifest_changes})
    return LoadRequest(
        plugin_id=manifest.id,
        path=plugin_dir,
        manifest=manifest,
        data_dir=plugin_dir / ".data",
        logger=logger or logging.getLogger(f"test.plugin.{manifest.id}"),
    )


async def call_value(handle: Any, name: str, payload: Any = None) -> Any:
    """Call a method through the call contract; its value, or its error raised as `InvocationError`."""
    from plughost.sdk.call import Call

    return (await handle.call(Call(name, payload))).unwrap()
