"""`McpRuntime`: what the host needs before any MCP server is loaded — options, the server's spec.

`server_spec(request)` turns a manifest into how to reach the server: a `StdioServer` (the
command, resolved; its working directory; its environment, built from a minimal set plus the
manifest's `dependencies.env` and `[mcp] env` with `${NAME}` taken from the host's environment;
the sandbox launcher in front when permissions are enforced) or an `HttpServer` (the url and
headers). Every problem is a `PluginLoadError` naming the field. The session itself, and the
`mcp` SDK with it, live in `plughost.runtime.mcp.handle`, imported by the first `load()`.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from plughost.errors import PluginLoadError
from plughost.runtime.base import LoadRequest, started
from plughost.runtime.goplugin.supervisor import ProcessEvent, RestartPolicy
from plughost.runtime.sandbox import FALLBACKS_ENV, restricts
from plughost.sdk.manifest import McpSettings, PluginManifest, env_references

if TYPE_CHECKING:
    from collections.abc import Callable

    from plughost.runtime.mcp.handle import McpPluginHandle

    EventHook = Callable[[ProcessEvent], None]

# What a stdio server takes from the host's environment: what a program needs to run and format
# text, and the sandbox's switch to its fallbacks. Nothing else: secrets stay in the host's
# environment unless the manifest names them (`dependencies.env`, `${NAME}` in `[mcp] env`).
SERVER_ENV = ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", "USER", "LOGNAME", "SHELL", "TERM", FALLBACKS_ENV)
SERVER_ENV_PREFIXES = ("LC_",)
SOURCE_ROOT = str(Path(__file__).resolve().parents[3])  # where `plughost` is imported from (src/)
# the sandbox launcher: an isolated interpreter (no PYTHON* variables, nothing imported from the
# working directory) that confines itself and then becomes the server (`plughost.runtime.mcp.confine`)
LAUNCHER = f"import sys; sys.path.insert(0, {SOURCE_ROOT!r}); from plughost.runtime.mcp.confine import main; main()"


@dataclass(frozen=True)
class McpOptions:
    """Timeouts and the restart policy of MCP servers (per runtime; manifests override some).

    `start_timeout_s`: from starting the server (or connecting) to the end of `initialize` and
    the first `tools/list`; `call_timeout_s`: a call's deadline unless `limits.timeout_s` says
    otherwise; `stop_grace_s`: how long a stdio server has to exit after its stdin closes (then
    SIGTERM, then SIGKILL); `max_message_bytes`: the longest line a stdio server may write.
    """

    start_timeout_s: float = 30.0
    call_timeout_s: float = 60.0
    stop_grace_s: float = 2.0
    health_timeout_s: float = 5.0
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    max_message_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True)
class StdioServer:
    """An MCP server the host starts and talks to over its stdin and stdout."""

    argv: tuple[str, ...]  # what is started: the command (resolved), behind the sandbox launcher if any
    command: tuple[str, ...]  # the manifest's command, its program resolved
    cwd: Path
    env: Mapping[str, str]
    confined: bool = False  # the sandbox launcher enforces `permissions`
    memory_mb: int | None = None
    cpu_seconds: int | None = None

    @property
    def transport(self) -> str:
        return "stdio"


@dataclass(frozen=True)
class HttpServer:
    """An MCP server the host reaches over streamable HTTP."""

    url: str
    headers: Mapping[str, str]

    @property
    def transport(self) -> str:
        return "streamable-http"


ServerSpec = StdioServer | HttpServer


def server_spec(request: LoadRequest, host_env: Mapping[str, str] | None = None) -> ServerSpec:
    """How to reach the server of `request` (see the module docstring); `PluginLoadError` on problems."""
    manifest = request.manifest
    host_env = os.environ if host_env is None else host_env
    settings = manifest.mcp or McpSettings()
    if manifest.url is not None:
        headers = {k: _expand(request.plugin_id, f"mcp.headers.{k}", v, host_env) for k, v in settings.headers.items()}
        return HttpServer(manifest.url, headers)
    assert manifest.command is not None  # the manifest guarantees one of the two
    plugin_dir = request.plugin_dir
    cwd = (plugin_dir / settings.cwd).resolve() if settings.cwd else plugin_dir
    if not cwd.is_dir():
        raise PluginLoadError(request.plugin_id, f"mcp.cwd: {cwd} is not a directory")
    env = server_environment(manifest, host_env)
    env.update({k: _expand(request.plugin_id, f"mcp.env.{k}", v, host_env) for k, v in settings.env.items()})
    program = resolve_program(request.plugin_id, manifest.command[0], plugin_dir, env.get("PATH", os.defpath))
    command = (program, *manifest.command[1:])
    confined = manifest.isolation != "none" and restricts(manifest.permissions)
    argv = command
    if confined:
        permissions = manifest.permissions.model_dump_json()
        data_dir = str(request.data_dir)
        argv = (sys.executable, "-I", "-c", LAUNCHER, str(plugin_dir), data_dir, permissions, "--", *command)
    elif restricts(manifest.permissions):
        request.logger.warning(
            "plugin '%s' switches permissions off, but they are only enforced for MCP servers with "
            'isolation = "process" or "sandbox"; it runs unconfined',
            request.plugin_id,
        )
    return StdioServer(
        argv=argv,
        command=command,
        cwd=cwd,
        env=env,
        confined=confined,
        memory_mb=manifest.limits.memory_mb,
        cpu_seconds=manifest.limits.cpu_seconds,
    )


def server_environment(manifest: PluginManifest, host_env: Mapping[str, str]) -> dict[str, str]:
    """A stdio server's variables before `[mcp] env`: `SERVER_ENV`, `LC_*` and `dependencies.env`
    (those the host's environment sets)."""
    declared = set(manifest.dependencies.env)
    return {
        name: value
        for name, value in host_env.items()
        if name in SERVER_ENV or name.startswith(SERVER_ENV_PREFIXES) or name in declared
    }


def resolve_program(plugin_id: str, program: str, plugin_dir: Path, path: str) -> str:
    """The program to start: a path (relative to the plugin directory) or a name found on `path`."""
    if "/" in program:
        candidate = (plugin_dir / program).resolve()
        if not candidate.is_file():
            raise PluginLoadError(plugin_id, f"command: {candidate} does not exist")
        if not os.access(candidate, os.X_OK):
            raise PluginLoadError(plugin_id, f"command: {candidate} is not executable (chmod +x it)")
        return str(candidate)
    found = shutil.which(program, path=path)
    if found is None:
        raise PluginLoadError(
            plugin_id, f"command: '{program}' was not found on the server's PATH ({path}); install it or give its path"
        )
    return found


def _expand(plugin_id: str, where: str, value: str, host_env: Mapping[str, str]) -> str:
    """`value` with every `${NAME}` replaced by the host's variable; an unset one is an error."""
    for name in env_references(value):
        if name not in host_env:
            raise PluginLoadError(
                plugin_id, f"{where} refers to ${{{name}}}, which is not set in the host's environment"
            )
        value = value.replace(f"${{{name}}}", host_env[name])
    return value


class McpRuntime:
    """Runs MCP servers as plugins; `load()` returns a connected, supervised `McpPluginHandle`.

    Constructing it does nothing; the `mcp` SDK is imported by the first `load()` (the `mcp`
    extra: `pip install plughost[mcp]`).
    """

    name = "mcp"

    def __init__(self, options: McpOptions | None = None, *, on_event: EventHook | None = None) -> None:
        self.options = options or McpOptions()
        self.on_event = on_event

    async def load(self, request: LoadRequest) -> McpPluginHandle:
        spec = server_spec(request)
        try:
            from plughost.runtime.mcp.handle import McpPluginHandle
        except ImportError as exc:
            raise PluginLoadError(
                request.plugin_id, f"MCP servers need the MCP SDK ({exc}): pip install 'plughost[mcp]'"
            ) from None
        handle = McpPluginHandle(request, spec, self.options, self.on_event)
        return await started(handle)

    async def aclose(self) -> None:
        return None


__all__ = [
    "HttpServer",
    "McpOptions",
    "McpRuntime",
    "ServerSpec",
    "StdioServer",
    "resolve_program",
    "server_environment",
    "server_spec",
]
