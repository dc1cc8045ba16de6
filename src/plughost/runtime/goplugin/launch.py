"""Start a go-plugin executable: environment, process group, death signal, limits, handshake.

The child gets its own process group and `PR_SET_PDEATHSIG = SIGKILL`, so it dies with the host
even when the host is killed; `kill_group` kills the whole group. The death signal and the
resource limits are set by util-linux's `setpriv` / `prlimit` in front of the plugin, so the host
never forks with a `preexec_fn` (forking a process that runs gRPC threads runs gRPC's fork
handlers and can break its event engine); without those tools a `preexec_fn` does the same job.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import functools
import os
import resource
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from plughost.runtime.goplugin.handshake import HandshakeError, HandshakeInfo, parse_handshake
from plughost.runtime.goplugin.logs import LineSplitter, PluginLog
from plughost.runtime.rundir import host_socket_dir
from plughost.sdk.tasks import TaskOwner

PR_SET_PDEATHSIG = 1
# A process started with a secret reads it from this inherited descriptor (a pipe), never from its
# command line or environment, where other processes of the same user could read it.
SECRET_FD_ENV = "PLUGHOST_SECRET_FD"
# ... and its gRPC server requires it in this metadata key of every call.
SECRET_METADATA = "plughost-secret"
DEFAULT_MIN_PORT = 10000
DEFAULT_MAX_PORT = 25000
READ_CHUNK = 65536


PYTHON_ENV = "PLUGHOST_PYTHON"


class LaunchError(RuntimeError):
    """The plugin did not reach a valid handshake; the message says why (with the stderr tail)."""


@dataclass(frozen=True)
class LaunchSpec:
    """How to start one plugin process."""

    argv: Sequence[str]
    cwd: Path
    cookie_key: str
    cookie_value: str
    protocol_versions: tuple[int, ...] = (1,)
    min_port: int = DEFAULT_MIN_PORT
    max_port: int = DEFAULT_MAX_PORT
    socket_dir: Path | None = None  # sockets and TMPDIR; None: this process's directory (`plughost.runtime.rundir`)
    client_cert_pem: str | None = None
    # the environment the plugin starts from; None: the host's own (go-plugin's behaviour)
    base_env: Mapping[str, str] | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)
    secret: str | None = None  # handed over on an inherited pipe (`SECRET_FD_ENV`); a worker's links require it
    start_timeout_s: float = 60.0
    memory_mb: int | None = None
    # RLIMIT_CPU's soft limit (SIGXCPU); the hard limit stays as it is, so that the process can move
    # its soft limit forward (a worker's CPU watchdog does: `plughost.runtime.cpu`)
    cpu_seconds: int | None = None
    # exit codes that mean a limit stopped the process, each with the reason (calls it ends time out)
    limit_exits: Mapping[int, str] = field(default_factory=dict)

    def environment(self) -> dict[str, str]:
        env = dict(os.environ if self.base_env is None else self.base_env)
        if self.base_env is None:  # an interpreter with grpcio, for go-plugin-style Python plugins
            env.setdefault(PYTHON_ENV, sys.executable)
        env.update(self.extra_env)
        env[self.cookie_key] = self.cookie_value
        env["PLUGIN_PROTOCOL_VERSIONS"] = ",".join(str(v) for v in self.protocol_versions)
        env["PLUGIN_MIN_PORT"] = str(self.min_port)
        env["PLUGIN_MAX_PORT"] = str(self.max_port)
        # go-plugin before 1.5 ignores PLUGIN_UNIX_SOCKET_DIR and binds in the temp directory
        env["PLUGIN_UNIX_SOCKET_DIR"] = env["TMPDIR"] = str(self.socket_dir or host_socket_dir(None))
        if self.client_cert_pem:
            env["PLUGIN_CLIENT_CERT"] = self.client_cert_pem
        else:
            env.pop("PLUGIN_CLIENT_CERT", None)
        return env


@functools.cache
def _prctl() -> Callable[..., int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(name, use_errno=True).prctl
        return prctl
    except (OSError, AttributeError):
        return None


def child_setup(memory_mb: int | None, cpu_seconds: int | None) -> Callable[[], None]:
    """The `preexec_fn`: own process group, die with the parent, resource limits."""
    prctl = _prctl()
    parent = os.getpid()

    def setup() -> None:
        os.setpgid(0, 0)
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent:  # the host died between fork and prctl
                os._exit(1)
        if memory_mb is not None:
            limit = memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        if cpu_seconds is not None:
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, resource.getrlimit(resource.RLIMIT_CPU)[1]))

    return setup


def spawn_plan(
    argv: list[str], memory_mb: int | None, cpu_seconds: int | None
) -> tuple[list[str], Callable[[], None] | None]:
    """The command line (wrapped by setpriv/prlimit) and a `preexec_fn` only when they are missing."""
    setpriv, prlimit = shutil.which("setpriv"), shutil.which("prlimit")
    limited = memory_mb is not None or cpu_seconds is not None
    if setpriv is None or (limited and prlimit is None) or _prctl() is None:
        return argv, child_setup(memory_mb, cpu_seconds)
    command = list(argv)
    if limited:
        assert prlimit is not None
        limits = []
        if memory_mb is not None:
            limits.append(f"--as={memory_mb * 1024 * 1024}")
        if cpu_seconds is not None:
            limits.append(f"--cpu={cpu_seconds}:")  # the soft limit only
        command = [prlimit, *limits, "--", *command]
    return [setpriv, "--pdeathsig", "KILL", "--", *command], None


class ChildProcess(Protocol):
    """A started plugin process, a child of this one (an `asyncio.subprocess.Process`, or a worker
    forked from the worker template: `plughost.runtime.prefork`)."""

    stdout: asyncio.StreamReader | None
    stderr: asyncio.StreamReader | None

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int: ...

    def kill(self) -> None: ...


# How `launch` starts the process: (spec, its environment, the secret's descriptor or None).
Spawn = Callable[[LaunchSpec, dict[str, str], int | None], Awaitable[ChildProcess]]


async def exec_process(spec: LaunchSpec, env: dict[str, str], secret_fd: int | None) -> ChildProcess:
    """Start `spec.argv` as a new program (wrapped by setpriv/prlimit: `spawn_plan`)."""
    command, preexec = spawn_plan(list(spec.argv), spec.memory_mb, spec.cpu_seconds)
    return await asyncio.create_subprocess_exec(
        *command,
        cwd=str(spec.cwd),
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        process_group=0 if preexec is None else None,
        preexec_fn=preexec,
        pass_fds=() if secret_fd is None else (secret_fd,),
    )


@dataclass
class Launched:
    """A started plugin process that completed its handshake.

    `pumps` read its stdout and stderr until they close; they are tasks of `tasks`.
    """

    process: ChildProcess
    handshake: HandshakeInfo
    pumps: list[asyncio.Task[None]]
    tasks: TaskOwner


async def launch(
    spec: LaunchSpec, log: PluginLog, tasks: TaskOwner | None = None, spawn: Spawn | None = None
) -> Launched:
    """Start the process (with `spawn`; default: `exec_process`) and wait for a valid handshake.

    Its output pumps run in `tasks` (an owner of its own when None), which belongs to this process:
    on any failure the process is killed and `tasks` closed.
    """
    tasks = tasks if tasks is not None else TaskOwner(f"{log.plugin_id}:process")
    exe = Path(spec.argv[0])
    check_executable(exe)
    env = spec.environment()
    secret_fd = _secret_pipe(spec.secret) if spec.secret is not None else None
    if secret_fd is not None:
        env[SECRET_FD_ENV] = str(secret_fd)
    try:
        process = await (spawn or exec_process)(spec, env, secret_fd)
    except OSError as exc:
        await tasks.aclose()
        raise LaunchError(f"cannot start {exe}: {exc}") from exc
    finally:
        if secret_fd is not None:
            os.close(secret_fd)
    assert process.stdout is not None and process.stderr is not None
    stderr_done = asyncio.Event()
    try:
        stderr_pump = tasks.spawn(_pump(process.stderr, log.stderr_line, stderr_done), name=f"{log.plugin_id}:stderr")
        try:
            line, rest = await _read_handshake(process, spec.start_timeout_s)
        except TimeoutError:
            raise LaunchError(
                f"plugin printed no handshake within {spec.start_timeout_s:g} s (start_timeout); it was killed"
                + _tail(log, "stderr")
            ) from None
        if line is None:
            code = await _reap(process, 1.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stderr_done.wait(), 1.0)
            raise LaunchError(f"plugin exited before its handshake (exit code {code})" + _tail(log, "stderr"))
        try:
            info = parse_handshake(line, spec.protocol_versions)
        except HandshakeError as exc:
            raise LaunchError(str(exc) + _tail(log, "stderr")) from None
        splitter = LineSplitter()
        for extra in splitter.feed(rest):
            log.stdout_line(extra)
        stdout_pump = tasks.spawn(
            _pump(process.stdout, log.stdout_line, asyncio.Event(), splitter), name=f"{log.plugin_id}:stdout"
        )
    except BaseException:
        kill_group(process)
        await _reap(process, 2.0)
        await tasks.aclose()
        raise
    return Launched(process, info, [stderr_pump, stdout_pump], tasks)


def _secret_pipe(secret: str) -> int:
    """The read end of a pipe that holds `secret` and then ends (the child inherits it)."""
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, secret.encode())  # far below a pipe's buffer: never blocks
    finally:
        os.close(write_end)
    return read_end


def read_secret() -> str | None:
    """In the started process: the secret its host handed over (`SECRET_FD_ENV`), read once."""
    raw = os.environ.pop(SECRET_FD_ENV, None)
    if raw is None or not raw.isdigit():
        return None
    with os.fdopen(int(raw), "rb") as pipe:
        return pipe.read().decode() or None


def check_executable(exe: Path) -> None:
    """Raise `LaunchError` when `exe` is missing or not executable."""
    if not exe.exists():
        raise LaunchError(f"executable {exe} does not exist (build the plugin or fix `binary`/`entry`)")
    if not os.access(exe, os.X_OK) or exe.is_dir():
        raise LaunchError(f"{exe} is not executable (chmod +x it)")


async def _read_handshake(process: ChildProcess, timeout: float) -> tuple[str | None, bytes]:
    """The first stdout line (None if stdout closed first) and any bytes after it."""
    assert process.stdout is not None
    buffer = bytearray()
    async with asyncio.timeout(timeout):
        while True:
            chunk = await process.stdout.read(READ_CHUNK)
            if not chunk:
                return None, b""
            buffer += chunk
            cut = buffer.find(b"\n")
            if cut >= 0:
                return bytes(buffer[:cut]).decode("utf-8", "replace"), bytes(buffer[cut + 1 :])
            if len(buffer) > READ_CHUNK:
                return bytes(buffer[:200]).decode("utf-8", "replace"), b""


async def _pump(
    stream: asyncio.StreamReader,
    on_line: Callable[[str], None],
    done: asyncio.Event,
    splitter: LineSplitter | None = None,
) -> None:
    splitter = splitter or LineSplitter()
    try:
        while True:
            chunk = await stream.read(READ_CHUNK)
            if not chunk:
                break
            for line in splitter.feed(chunk):
                on_line(line)
        for line in splitter.flush():
            on_line(line)
    finally:
        done.set()


async def _reap(process: ChildProcess, timeout: float) -> int | None:
    try:
        return await asyncio.wait_for(process.wait(), timeout)
    except TimeoutError:
        kill_group(process)
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(process.wait(), timeout)
        return None


def kill_group(process: ChildProcess) -> None:
    """SIGKILL the plugin's whole process group (the plugin and anything it started)."""
    if process.returncode is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            process.kill()


def _tail(log: PluginLog, what: str) -> str:
    text = log.tail_text()
    return f"; {what} tail:\n{text}" if text else f"; no {what} output"
