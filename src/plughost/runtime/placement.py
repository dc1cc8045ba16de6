"""Where a plugin runs: in the host's process, in a `plughost worker`, or as its own executable.

`placement_for(manifest)` is the rule, written once:

| manifest                               | placement    | runtime used              |
|----------------------------------------|--------------|---------------------------|
| `runtime = "process"`                  | `executable` | `ProcessRuntime`          |
| `runtime = "python"`, isolation none   | `in_process` | `PythonRuntime`           |
| `runtime = "native"`, isolation none   | `in_process` | `NativeRuntime`           |
| `runtime = "python"`, isolation ≠ none | `worker`     | `WorkerRuntime`           |
| `runtime = "native"`, isolation ≠ none | `worker`     | `WorkerRuntime` (the worker loads the library) |

`default_runtimes()` builds the runtimes a host injects into its `PluginManager`, one
`PlacedRuntime` per manifest `runtime`, each applying the rule (and `McpRuntime` for
`runtime = "mcp"`: an MCP server runs as its own process, or elsewhere at a url). Permissions that switch something
off are only enforced in a worker; a plugin placed anywhere else that asks for them runs
unconfined, with a warning.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from plughost.errors import PluginLoadError
from plughost.runtime.base import (
    Candidate,
    LoadRequest,
    Runtime,
    SupportsBuild,
    SupportsDiscover,
    SupportsRediscover,
    SupportsWatch,
    started,
)
from plughost.runtime.config import ProcessConfig
from plughost.runtime.goplugin.launch import LaunchSpec
from plughost.runtime.goplugin.remote import IDENTITY_FILE
from plughost.runtime.goplugin.supervisor import RestartPolicy
from plughost.runtime.prefork import WorkerTemplate
from plughost.runtime.process import EventHook, ProcessOptions, ProcessRuntime, options_for
from plughost.runtime.python import PythonRuntime, checked_bytecode
from plughost.runtime.rundir import host_socket_dir
from plughost.runtime.sandbox import FALLBACKS_ENV, restricts
from plughost.sdk.handle import PluginHandle
from plughost.sdk.manifest import PluginManifest

if TYPE_CHECKING:
    from plughost.runtime.mcp import McpOptions
    from plughost.runtime.process_handle import ProcessPluginHandle
    from plughost.runtime.remote_handle import RemotePluginHandle

Placement = Literal["in_process", "worker", "executable"]
WORKER_START_TIMEOUT_S = 30.0
WORKER_CALL_TIMEOUT_S = 30.0
# What a worker takes from the host's environment: what a program needs to run and format text
# (the interpreter's own PYTHONHOME and LD_LIBRARY_PATH included, so that it starts as the host's
# did) and the sandbox's switch to its fallbacks. Nothing else — tokens, keys and passwords in the
# host's environment stay there; a plugin names the variables it reads in `dependencies.env`.
WORKER_ENV = ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", "PYTHONHOME", "LD_LIBRARY_PATH", FALLBACKS_ENV)
WORKER_ENV_PREFIXES = ("LC_",)


def worker_environment(manifest: PluginManifest, host: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables a worker starts with: `WORKER_ENV`, `LC_*` and the manifest's `dependencies.env`
    (those set in the host's environment). The worker's own variables are added by `launch_spec`."""
    host = os.environ if host is None else host
    declared = set(manifest.dependencies.env)
    return {
        name: value
        for name, value in host.items()
        if name in WORKER_ENV or name.startswith(WORKER_ENV_PREFIXES) or name in declared
    }


def placement_for(manifest: PluginManifest) -> Placement:
    """Where the plugin of `manifest` runs (see the module docstring)."""
    if manifest.runtime == "process":
        return "executable"
    if manifest.runtime in ("python", "native") and manifest.isolation != "none":
        return "worker"
    return "in_process"


class WorkerRuntime:
    """Runs a Python plugin in a supervised `plughost worker` process.

    Limits apply to the worker only: `limits.memory_mb` → RLIMIT_AS; `limits.cpu_seconds` → the
    CPU time of each call, which the worker measures (`plughost.runtime.cpu`), with RLIMIT_CPU as
    the kernel's backstop. A call that passes its timeout or its CPU limit stops the worker (the
    result is a timeout) and the worker is restarted for the next call. The worker starts from a
    minimal environment (`worker_environment`), never the host's whole one.
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
        # forks the workers (`options.prefork`); started by the first load, stopped by `aclose`
        self.template = WorkerTemplate(self.options.start_timeout_s) if self.options.prefork else None

    @staticmethod
    def worker_options(base: ProcessOptions | None = None) -> ProcessOptions:
        """Worker options: `base` (or the defaults) with kill-on-timeout, which makes timeouts real."""
        if base is None:
            base = ProcessOptions(
                start_timeout_s=WORKER_START_TIMEOUT_S, call_timeout_s=WORKER_CALL_TIMEOUT_S, restart=RestartPolicy()
            )
        return replace(base, kill_on_timeout=True)

    def launch_spec(self, request: LoadRequest, config: Mapping[str, Any]) -> LaunchSpec:
        from plughost.runtime.worker import CONFIG_ENV, MANIFEST_ENV, WORKER_COOKIE_KEY, WORKER_COOKIE_VALUE

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
            base_env=worker_environment(manifest),
            extra_env={
                MANIFEST_ENV: manifest.model_dump_json(),
                CONFIG_ENV: json.dumps(dict(config), default=str),
                "PYTHONPATH": python_path,
                "PYTHONUNBUFFERED": "1",
                # under RLIMIT_AS, glibc's per-thread malloc arenas (64 MiB of address space each)
                # would use up the limit and make gRPC's thread creation fail
                **({"MALLOC_ARENA_MAX": "2"} if manifest.limits.memory_mb is not None else {}),
            },
            secret=secrets.token_hex(32),  # a new one for every start: the worker's links require it
            start_timeout_s=start_timeout,
            memory_mb=manifest.limits.memory_mb,
            **cpu_limits(manifest.limits.cpu_seconds),
        )

    async def build(self, candidate: Candidate) -> None:
        """Executables are built by the process runtime."""
        await self.executables.build(candidate)

    def build_outputs(self, candidate: Candidate) -> tuple[Path, ...]:
        return self.executables.build_outputs(candidate)

    async def load(self, request: LoadRequest) -> ProcessPluginHandle | RemotePluginHandle:
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
        from plughost.runtime.process_handle import ProcessPluginHandle

        if request.manifest.runtime == "python":  # here: a sandboxed worker may not remove files
            checked_bytecode(request.path)
        handle = ProcessPluginHandle(
            request,
            self.launch_spec(request, request.config),
            options_for(self.options, request),
            self.on_event,
            spec_factory=lambda: self.launch_spec(request, handle.config),
            spawn=self.template.spawn if self.template is not None else None,
        )
        return await started(handle)

    async def aclose(self) -> None:
        """Stop the worker template (the workers belong to their handles)."""
        if self.template is not None:
            await self.template.aclose()


def cpu_limits(cpu_seconds: int | None) -> dict[str, Any]:
    """`LaunchSpec` fields for a worker with `limits.cpu_seconds`: the kernel's backstop (start-up
    allowance plus `CPU_BACKSTOP_FACTOR` times the limit; the worker's watchdog keeps moving it
    forward) and what the worker's exit codes mean."""
    if cpu_seconds is None:
        return {}
    from plughost.runtime.worker import CPU_BACKSTOP_FACTOR, CPU_LIMIT_EXIT_CODE, CPU_START_ALLOWANCE_S

    backstop = CPU_BACKSTOP_FACTOR * cpu_seconds
    return {
        "cpu_seconds": CPU_START_ALLOWANCE_S + backstop,
        "limit_exits": {
            CPU_LIMIT_EXIT_CODE: f"was stopped: a call used more than its CPU time limit "
            f"(limits.cpu_seconds = {cpu_seconds} s)",
            -signal.SIGXCPU: f"was stopped by the kernel: it ran {backstop} s of CPU time (limits.cpu_seconds = "
            f"{cpu_seconds} s, times {CPU_BACKSTOP_FACTOR}) without its CPU watchdog getting a turn, as native "
            "code that holds the GIL does",
        },
    }


class PlacedRuntime:
    """The runtime of one manifest `runtime` name: loads each plugin where `placement_for` says.

    `in_process` loads plugins into this process, `worker` (a `WorkerRuntime`, shared by the
    runtimes that isolate) runs them in a worker, `executables` (a `ProcessRuntime`) starts
    executables. A placement without a runtime is a clear load error. Discovery and builds go to
    the runtime that has them.
    """

    def __init__(
        self,
        name: str,
        *,
        in_process: Runtime | None = None,
        worker: WorkerRuntime | None = None,
        executables: ProcessRuntime | None = None,
    ) -> None:
        self.name = name
        self.in_process = in_process
        self.worker = worker
        self.executables = executables

    async def load(self, request: LoadRequest) -> PluginHandle:
        manifest = request.manifest
        placement = placement_for(manifest)
        runtime: Runtime | None = {
            "in_process": self.in_process,
            "worker": self.worker,
            "executable": self.executables,
        }[placement]
        if runtime is None:
            what = f"isolation '{manifest.isolation}'" if placement == "worker" else f"runtime '{manifest.runtime}'"
            raise PluginLoadError(request.plugin_id, f"{what} is not available in this installation")

        if placement != "worker" and restricts(manifest.permissions):
            request.logger.warning(
                "plugin '%s' switches permissions off, but they are only enforced for Python and native plugins "
                'with isolation = "process" or "sandbox"; it runs unconfined',
                request.plugin_id,
            )
        return await runtime.load(request)

    def discover(self, directory: Path) -> list[Candidate]:
        """Plugins without a manifest that the in-process runtime finds (native libraries)."""
        return self.in_process.discover(directory) if isinstance(self.in_process, SupportsDiscover) else []

    def rediscover(self, path: Path, plugin_id: str) -> Candidate | None:
        if isinstance(self.in_process, SupportsRediscover):
            return self.in_process.rediscover(path, plugin_id)
        return None

    def plugin_of(self, path: Path) -> str | None:
        return self.in_process.plugin_of(path) if isinstance(self.in_process, SupportsWatch) else None

    async def build(self, candidate: Candidate) -> None:
        """Executables are built by the process runtime, libraries by the in-process one."""
        builder = self._builder(candidate)
        if builder is None:
            raise PluginLoadError(candidate.id, "the plugin has no binary and its runtime cannot build it")
        await builder.build(candidate)

    def build_outputs(self, candidate: Candidate) -> tuple[Path, ...]:
        builder = self._builder(candidate)
        return () if builder is None else builder.build_outputs(candidate)

    def _builder(self, candidate: Candidate) -> SupportsBuild | None:
        """The runtime that builds `candidate` wherever it runs (a worker loads what this host built)."""
        manifest = candidate.manifest
        executable = manifest is not None and placement_for(manifest) == "executable"
        runtime = self.executables if executable else self.in_process
        return runtime if isinstance(runtime, SupportsBuild) else None

    async def aclose(self) -> None:
        for runtime in dict.fromkeys(r for r in (self.in_process, self.worker, self.executables) if r is not None):
            await runtime.aclose()


def process_options(config: ProcessConfig, workspace: Path | None = None) -> ProcessOptions:
    """The process runtime's options from `[process]` (`socket_dir` is relative to `workspace`)."""
    configured = (workspace or Path.cwd()) / config.socket_dir if config.socket_dir else None
    socket_dir = host_socket_dir(workspace, configured)
    return ProcessOptions(
        start_timeout_s=config.start_timeout_s,
        call_timeout_s=config.call_timeout_s,
        stop_grace_s=config.stop_grace_s,
        health_interval_s=config.health_interval_s,
        health_timeout_s=config.health_timeout_s,
        health_failures=config.health_failures,
        build_timeout_s=config.build_timeout_s,
        restart=RestartPolicy(
            initial_delay_s=config.restart_initial_delay_s,
            max_delay_s=config.restart_max_delay_s,
            max_restarts=config.max_restarts,
            window_s=config.restart_window_s,
        ),
        socket_dir=socket_dir,
        invoke_lane=config.invoke_lane,
        prefork=config.prefork,
        identity_file=(workspace or Path.cwd()) / IDENTITY_FILE,
    )


def in_process_runtimes() -> dict[str, Runtime]:
    """The runtimes that load plugins into this process, keyed by manifest `runtime` (what a
    worker uses for the plugin it serves)."""
    from plughost.runtime.native import NativeRuntime

    return {"python": PythonRuntime(), "native": NativeRuntime()}


def default_runtimes(process: ProcessConfig | None = None, *, workspace: Path | None = None) -> dict[str, Runtime]:
    """One runtime per manifest `runtime` (python, native, process, mcp), each placing plugins by
    `placement_for`; what a `PluginManager` needs: `PluginManager(workspace, runtimes=default_runtimes())`.

    `process` is `[process]` of plughost.toml (timeouts, health, restarts of process plugins and
    workers; a relative `socket_dir` is taken from `workspace`).
    """
    from plughost.runtime.mcp import McpRuntime

    options = process_options(process, workspace) if process is not None else None
    executables = ProcessRuntime(options)
    worker = WorkerRuntime(WorkerRuntime.worker_options(options), executables=executables)
    in_process = in_process_runtimes()
    return {
        "python": PlacedRuntime("python", in_process=in_process["python"], worker=worker),
        "native": PlacedRuntime("native", in_process=in_process["native"], worker=worker),
        "process": PlacedRuntime("process", executables=executables),
        "mcp": McpRuntime(mcp_options(options)),
    }


def mcp_options(options: ProcessOptions | None) -> McpOptions:
    """MCP servers' timeouts and restart policy from `[process]` (None: the defaults)."""
    from plughost.runtime.mcp import McpOptions

    if options is None:
        return McpOptions()
    return McpOptions(
        start_timeout_s=options.start_timeout_s,
        call_timeout_s=options.call_timeout_s,
        stop_grace_s=options.stop_grace_s,
        health_timeout_s=options.health_timeout_s,
        restart=options.restart,
    )


__all__ = [
    "PlacedRuntime",
    "Placement",
    "ProcessRuntime",
    "WorkerRuntime",
    "default_runtimes",
    "in_process_runtimes",
    "mcp_options",
    "placement_for",
    "process_options",
    "worker_environment",
]
