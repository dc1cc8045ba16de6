"""Where a plugin runs: in the host's process, in a `plughost worker`, or as its own executable.

`placement_for(manifest)` is the rule:

| manifest                               | placement    | runtime used              |
|----------------------------------------|--------------|---------------------------|
| `runtime = "process"`                  | `executable` | `ProcessRuntime`          |
| `runtime = "python"`, isolation none   | `in_process` | `PythonRuntime`           |
| `runtime = "python"`, isolation ≠ none | `worker`     | `WorkerRuntime`           |
| `runtime = "native"`, isolation ≠ none | `worker`     | `WorkerRuntime` (the worker loads the library) |

The manager loads plugins with isolation ≠ none through `default_runtimes()["worker"]` (a
`WorkerRuntime`, which hands executables on to the process runtime); `default_runtimes()["python"]`
is a `PythonPlacement`, which applies the same rule for callers that pick by `manifest.runtime`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from plughost.errors import PluginLoadError
from plughost.runtime.base import Candidate, LoadRequest, started
from plughost.runtime.goplugin.launch import LaunchSpec
from plughost.runtime.goplugin.supervisor import RestartPolicy
from plughost.runtime.process import EventHook, ProcessOptions, ProcessPluginHandle, ProcessRuntime, options_for
from plughost.runtime.python import PythonRuntime
from plughost.runtime.worker import CONFIG_ENV, MANIFEST_ENV, WORKER_COOKIE_KEY, WORKER_COOKIE_VALUE
from plughost.sdk.handle import PluginHandle
from plughost.sdk.manifest import PluginManifest

Placement = Literal["in_process", "worker", "executable"]
WORKER_START_TIMEOUT_S = 30.0
WORKER_CALL_TIMEOUT_S = 30.0


def placement_for(manifest: PluginManifest) -> Placement:
    """Where the plugin of `manifest` runs (see the module docstring)."""
    if manifest.runtime == "process":
        return "executable"
    if manifest.runtime in ("python", "native") and manifest.isolation != "none":
        return "worker"
    return "in_process"


class WorkerRuntime:
    """Runs a Python plugin in a supervised `plughost worker` process.

    Limits apply to the worker only: `limits.memory_mb` → RLIMIT_AS, `limits.cpu_seconds` →
    RLIMIT_CPU. A call that passes its timeout kills the worker (the result is a timeout) and the
    worker is restarted for the next call.
    """

    name = "worker"

    def __init__(
        self,
        options: ProcessOptions | None = None,
        *,
        on_event: EventHook | None = None,
        executables: ProcessRuntime | None = None,
    ) -> None:
        self.executables = executables or ProcessRuntime(on_event=on_event)
        self.options = options or self.worker_options()
        self.on_event = on_event

    @staticmethod
    def worker_options(base: ProcessOptions | None = None) -> ProcessOptions:
        """Worker options: `base` (or the defaults) with kill-on-timeout, which makes timeouts real."""
        if base is None:
            base = ProcessOptions(
                start_timeout_s=WORKER_START_TIMEOUT_S, call_timeout_s=WORKER_CALL_TIMEOUT_S, restart=RestartPolicy()
            )
        return replace(base, kill_on_timeout=True)

    def launch_spec(self, request: LoadRequest, config: Mapping[str, Any]) -> LaunchSpec:
        manifest = request.manifest
        source_root = str(Path(__file__).resolve().parents[2])
        python_path = os.pathsep.join(p for p in (source_root, os.environ.get("PYTHONPATH", "")) if p)
        start_timeout = manifest.start_timeout / 1000 if manifest.start_timeout else self.options.start_timeout_s
        return LaunchSpec(
            argv=[
                sys.executable,
                "-m",
                "plughost.runtime.worker",
                "--plugin-id",
                request.plugin_id,
                "--path",
                str(request.path),
                "--data-dir",
                str(request.data_dir),
            ],
            cwd=request.plugin_dir,
            cookie_key=WORKER_COOKIE_KEY,
            cookie_value=WORKER_COOKIE_VALUE,
            protocol_versions=(1,),
            socket_dir=self.options.socket_dir,
            extra_env={
                MANIFEST_ENV: manifest.model_dump_json(),
                CONFIG_ENV: json.dumps(dict(config), default=str),
                "PYTHONPATH": python_path,
                "PYTHONUNBUFFERED": "1",
                # under RLIMIT_AS, glibc's per-thread malloc arenas (64 MiB of address space each)
                # would use up the limit and make gRPC's thread creation fail
                **({"MALLOC_ARENA_MAX": "2"} if manifest.limits.memory_mb is not None else {}),
            },
            start_timeout_s=start_timeout,
            memory_mb=manifest.limits.memory_mb,
            cpu_seconds=manifest.limits.cpu_seconds,
        )

    async def build(self, candidate: Candidate) -> None:
        """Executables are built by the process runtime."""
        await self.executables.build(candidate)

    async def load(self, request: LoadRequest) -> ProcessPluginHandle:
        """Start the worker (an executable plugin is already isolated: it runs as itself)."""
        placement = placement_for(request.manifest)
        if placement == "executable":
            return await self.executables.load(request)
        if request.manifest.runtime not in ("python", "native"):
            raise PluginLoadError(
                request.plugin_id,
                f"isolation '{request.manifest.isolation}' is not available for {request.manifest.runtime} plugins "
                'yet; set isolation = "none"',
            )
        handle = ProcessPluginHandle(
            request,
            self.launch_spec(request, request.config),
            options_for(self.options, request),
            self.on_event,
            spec_factory=lambda: self.launch_spec(request, handle.config),
        )
        return await started(handle)

    async def aclose(self) -> None:
        return None


class PythonPlacement:
    """The "python" runtime: in-process, or in a worker when the manifest asks for isolation."""

    name = "python"

    def __init__(self, in_process: PythonRuntime | None = None, worker: WorkerRuntime | None = None) -> None:
        self.in_process = in_process or PythonRuntime()
        self.worker = worker or WorkerRuntime()

    async def load(self, request: LoadRequest) -> PluginHandle:
        if placement_for(request.manifest) == "worker":
            return await self.worker.load(request)
        return await self.in_process.load(request)

    async def aclose(self) -> None:
        await self.in_process.aclose()
        await self.worker.aclose()


__all__ = ["Placement", "ProcessRuntime", "PythonPlacement", "WorkerRuntime", "placement_for"]
