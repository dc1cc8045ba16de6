"""Process plugins: executables speaking the hashicorp/go-plugin gRPC protocol.

`ProcessRuntime` starts the plugin's executable (Go plugins built with go-plugin, go-plugin-style
Python plugins, or `plughost worker`), validates its handshake, connects over gRPC and keeps the
process supervised: a crash is detected at once, reported through `on_event`, and the process is
restarted with exponential backoff (at most `RestartPolicy.max_restarts` per window). Calls reach
the plugin through plughost's own `plughost.v1.Plugin` service when it serves one, else through
Jank's `PluginService.Execute`.

This module is what a host needs before any process plugin is loaded (options, the runtime); the
supervised handle, and gRPC with it, live in `plughost.runtime.process_handle`, imported by the
first `load()`. `ProcessPluginHandle` is importable from here as well.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plughost.errors import InvocationError, PluginLoadError
from plughost.runtime.base import Candidate, LoadRequest, started
from plughost.runtime.builds import build_argv, build_plugin, outputs
from plughost.runtime.goplugin.launch import DEFAULT_MAX_PORT, DEFAULT_MIN_PORT, LaunchSpec
from plughost.runtime.goplugin.supervisor import ProcessEvent, RestartPolicy

if TYPE_CHECKING:
    from plughost.runtime.process_handle import ProcessPluginHandle
    from plughost.runtime.remote_handle import RemotePluginHandle
    from plughost.sdk.manifest import PluginManifest

EventHook = Callable[[ProcessEvent], None]


class CallTimedOut(InvocationError, TimeoutError):
    """A call passed its deadline (a `TimeoutError`, so the guard reports it as `timed_out`)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="timed_out", retryable=True)


@dataclass(frozen=True)
class ProcessOptions:
    """Timeouts and policies of process plugins (per runtime; manifests override some)."""

    start_timeout_s: float = 60.0
    call_timeout_s: float = 30.0
    stop_grace_s: float = 2.0
    health_interval_s: float = 10.0
    health_timeout_s: float = 2.0
    health_failures: int = 2
    build_timeout_s: float = 300.0
    kill_on_timeout: bool = False
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    socket_dir: Path | None = None  # plugins' unix sockets; None: this process's own (`plughost.runtime.rundir`)
    invoke_lane: bool = True  # call Invoke over a worker's invoke lane when it offers one
    prefork: bool = True  # fork Python workers from a template process (`plughost.runtime.prefork`)
    # the host's client identity for remote plugins (`[remote]`); None: `<cwd>/.plughost/remote-client.pem`
    identity_file: Path | None = None


class ProcessRuntime:
    """Runs go-plugin executables; `load()` returns a supervised `ProcessPluginHandle`."""

    name = "process"

    def __init__(self, options: ProcessOptions | None = None, *, on_event: EventHook | None = None) -> None:
        self.options = options or ProcessOptions()
        self.on_event = on_event

    def launch_spec(self, request: LoadRequest) -> LaunchSpec:
        """How to start the plugin of `request` (executable, cookie, ports, timeouts)."""
        manifest = request.manifest
        handshake = manifest.handshake
        assert handshake is not None  # process manifests always carry one (Jank's defaults)
        binary = _binary(request.plugin_dir, manifest)
        start_timeout = manifest.start_timeout / 1000 if manifest.start_timeout else self.options.start_timeout_s
        return LaunchSpec(
            argv=[str(binary)],
            cwd=request.plugin_dir,
            cookie_key=handshake.magic_cookie_key,
            cookie_value=handshake.magic_cookie_value,
            protocol_versions=(handshake.protocol_version,),
            min_port=manifest.min_port or DEFAULT_MIN_PORT,
            max_port=manifest.max_port or DEFAULT_MAX_PORT,
            socket_dir=self.options.socket_dir,
            start_timeout_s=start_timeout,
        )

    async def prepare(self, request: LoadRequest, spec: LaunchSpec) -> None:
        """Build a plugin that has no binary yet (but a build file) before its first start."""
        binary = Path(spec.argv[0])
        if needs_no_build(binary, request.plugin_dir):
            return
        request.logger.info("building plugin '%s': it has no binary yet", request.plugin_id)
        await build_plugin(request.plugin_id, request.plugin_dir, binary, self.options.build_timeout_s)

    async def build(self, candidate: Candidate) -> None:
        """Build a candidate with its build file (`runtime.builds`): a `source_only` one before its
        load, one whose sources changed before its reload (the manager calls this)."""
        manifest = candidate.manifest
        assert manifest is not None
        plugin_dir = _plugin_dir(candidate)
        await build_plugin(candidate.id, plugin_dir, _binary(plugin_dir, manifest), self.options.build_timeout_s)

    def build_outputs(self, candidate: Candidate) -> tuple[Path, ...]:
        """Where the build of a local plugin with a build file writes (`builds.outputs`: `bin/`);
        () otherwise."""
        manifest = candidate.manifest
        plugin_dir = _plugin_dir(candidate)
        if manifest is None or manifest.remote is not None or build_argv(plugin_dir) is None:
            return ()
        return outputs(plugin_dir, _binary(plugin_dir, manifest))

    async def load(self, request: LoadRequest) -> ProcessPluginHandle | RemotePluginHandle:
        if request.manifest.remote is not None:
            return await self.attach(request)
        spec = self.launch_spec(request)
        await self.prepare(request, spec)
        identity = None
        if request.manifest.auto_mtls:
            from plughost.runtime.goplugin.mtls import ClientIdentity

            try:
                identity = ClientIdentity.generate()
            except RuntimeError as exc:
                raise PluginLoadError(request.plugin_id, str(exc)) from None
            spec = replace(spec, client_cert_pem=identity.cert_pem)
        from plughost.runtime.host_services import HostServices
        from plughost.runtime.process_handle import ProcessPluginHandle

        services = None
        if identity is None and (request.bus is not None or request.state is not None):
            # the plugin's ctx.bus and ctx.state over go-plugin's broker (not with AutoMTLS: the
            # plugin would dial the host's socket over TLS)
            from plughost.runtime.goplugin.host_server import HOST_SERVICE_ID, SERVICE_ID_ENV

            services = HostServices(request.bus, request.state)
            spec = replace(spec, extra_env={**spec.extra_env, SERVICE_ID_ENV: str(HOST_SERVICE_ID)})
        handle = ProcessPluginHandle(
            request, spec, options_for(self.options, request), self.on_event, host_services=services
        )
        handle.client_identity = identity
        return await started(handle)

    async def attach(self, request: LoadRequest) -> RemotePluginHandle:
        """Attach to the plugin running elsewhere that `[remote]` names (nothing is started)."""
        from plughost.runtime.goplugin.remote import IDENTITY_FILE
        from plughost.runtime.remote_handle import RemotePluginHandle

        identity_file = self.options.identity_file or Path.cwd() / IDENTITY_FILE
        handle = RemotePluginHandle(request, options_for(self.options, request), identity_file, self.on_event)
        return await started(handle)

    async def aclose(self) -> None:
        return None


def options_for(options: ProcessOptions, request: LoadRequest) -> ProcessOptions:
    """The options of one plugin: its manifest's `limits.timeout_s` is its call deadline."""
    limit = request.manifest.limits.timeout_s
    return options if limit is None else replace(options, call_timeout_s=limit)


def _plugin_dir(candidate: Candidate) -> Path:
    """The directory of a candidate's files (a plugin directory, or the one a file plugin is in)."""
    return candidate.path if candidate.path.is_dir() else candidate.path.parent


def _binary(plugin_dir: Path, manifest: PluginManifest) -> Path:
    """The executable a process plugin runs: its manifest's `entry`, else `bin/<id>`."""
    return plugin_dir / (manifest.entry or f"bin/{manifest.id}")


def needs_no_build(binary: Path, plugin_dir: Path) -> bool:
    """True when the binary exists or there is no build file to make it."""
    return binary.exists() or build_argv(plugin_dir) is None


def __getattr__(name: str) -> Any:
    if name == "ProcessPluginHandle":
        from plughost.runtime import process_handle

        return process_handle.ProcessPluginHandle
    raise AttributeError(f"module 'plughost.runtime.process' has no attribute '{name}'")


__all__ = ["CallTimedOut", "ProcessEvent", "ProcessOptions", "ProcessPluginHandle", "ProcessRuntime", "RestartPolicy"]
