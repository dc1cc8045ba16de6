"""Manifest permissions enforced in workers: each test tries to break one guarantee.

Every attempt is also made by the same plugin without the restriction, so a sandbox that
stopped working (or a test that could not tell) fails.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from process_support import WORKER_OPTIONS, call_value, request_for

from plughost.runtime import default_runtimes
from plughost.runtime.placement import WorkerRuntime
from plughost.runtime.sandbox import FALLBACKS_ENV, landlock

JAIL = """
import os
import socket
import subprocess
import tempfile
import threading

from plughost.sdk import Plugin

plugin = Plugin()


def attempt(action):
    try:
        return {"ok": True, "value": action()}
    except OSError as exc:
        return {"ok": False, "errno": exc.errno, "error": f"{type(exc).__name__}: {exc}"}


def read_file(path):
    with open(path) as handle:
        return handle.read()


def write_file(path, text):
    with open(path, "w") as handle:
        return handle.write(text)


@plugin.method("read")
def read(path: str) -> dict:
    return attempt(lambda: read_file(path))


@plugin.method("write")
def write(path: str, text: str) -> dict:
    return attempt(lambda: write_file(path, text))


@plugin.method("listdir")
def listdir(path: str) -> dict:
    return attempt(lambda: sorted(os.listdir(path)))


@plugin.method("link")
def link(source: str, target: str) -> dict:
    return attempt(lambda: os.link(source, target))


@plugin.method("temp")
def temp() -> dict:
    def make():
        with tempfile.NamedTemporaryFile("w", delete=False) as handle:
            handle.write("scratch")
            return handle.name
    return attempt(make)


@plugin.method("connect")
def connect(port: int) -> dict:
    return attempt(lambda: socket.create_connection(("127.0.0.1", port), timeout=5).close())


@plugin.method("udp")
def udp() -> dict:
    return attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close())


@plugin.method("run")
def run(argv: list) -> dict:
    return attempt(lambda: subprocess.run(argv, capture_output=True, check=False).returncode)


@plugin.method("fork")
def fork() -> dict:
    def child():
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        return os.waitpid(pid, 0)[1]
    return attempt(child)


@plugin.method("thread")
def thread() -> int:
    results = []
    worker = threading.Thread(target=lambda: results.append(6 * 7))
    worker.start()
    worker.join()
    return results[0]


@plugin.method("crash")
def crash() -> None:
    os._exit(3)


@plugin.method("metadata")
def metadata(path: str) -> dict:
    return {
        "chmod": attempt(lambda: os.chmod(path, 0o4755)),
        "chown": attempt(lambda: os.chown(path, os.getuid(), os.getgid())),
        "utime": attempt(lambda: os.utime(path, (0, 0))),
        "setxattr": attempt(lambda: os.setxattr(path, "user.plugin", b"was here")),
    }


@plugin.method("undo")
def undo() -> dict:
    # try to get out of the read-only mounts: a new mount namespace, or clearing read-only
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def checked(result):
        if result != 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))

    class MountAttr(ctypes.Structure):
        _fields_ = [(name, ctypes.c_uint64) for name in ("attr_set", "attr_clr", "propagation", "userns_fd")]

    def writable_again():
        attr = MountAttr(0, 1, 0, 0)  # clear MOUNT_ATTR_RDONLY, recursively from /
        checked(libc.syscall(442, -100, b"/", 0x8000, ctypes.byref(attr), ctypes.sizeof(attr)))

    return {
        "unshare": attempt(lambda: checked(libc.unshare(0x00020000))),
        "mount_setattr": attempt(writable_again),
        "remount": attempt(lambda: checked(libc.mount(None, b"/", None, 0x20 | 0x1000, None))),
    }


@plugin.method("unix")
def unix(path: str, abstract: str) -> dict:
    def connect(address):
        with socket.socket(socket.AF_UNIX) as connection:
            connection.connect(address)

    def listed():
        with open("/proc/self/net/unix") as handle:
            return len(handle.read().splitlines())

    return {
        "path": attempt(lambda: connect(path)),
        "abstract": attempt(lambda: connect("\\0" + abstract)),
        "listing": attempt(listed),
    }


@plugin.method("signal")
def signal_(pid: int, number: int) -> dict:
    return attempt(lambda: os.kill(pid, number))


@plugin.method("kill_host")
def kill_host() -> dict:
    import signal

    return attempt(lambda: os.kill(os.getppid(), signal.SIGKILL))


@plugin.method("peek")
def peek(pid: int, address: int, size: int) -> dict:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    class IoVec(ctypes.Structure):
        _fields_ = (("base", ctypes.c_void_p), ("length", ctypes.c_size_t))

    def read_memory():
        buffer = ctypes.create_string_buffer(size)
        local, remote = IoVec(ctypes.addressof(buffer), size), IoVec(address, size)
        done = libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
        if done < 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        return buffer.raw[:done].decode()

    def attach():
        PTRACE_ATTACH, PTRACE_DETACH = 16, 17
        if libc.ptrace(PTRACE_ATTACH, pid, None, None) != 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        os.waitpid(pid, os.WALL if hasattr(os, "WALL") else 0x40000000)
        libc.ptrace(PTRACE_DETACH, pid, None, None)
        return "attached"

    return {"process_vm_readv": attempt(read_memory), "ptrace": attempt(attach)}
"""

DENIED = 13  # EACCES from Landlock
NOT_PERMITTED = 1  # EPERM from seccomp


@pytest.fixture(scope="module", autouse=True)
def _landlock_present() -> None:
    if landlock.abi_version() < 1:
        message = "this kernel has no Landlock (Linux ≥ 5.13 with Landlock enabled); filesystem sandbox untestable"
        (pytest.fail if os.environ.get("CI", "").lower() == "true" else pytest.skip)(message)


def _plugin(root: Path, name: str, permissions: dict[str, bool], isolation: str = "process") -> Path:
    directory = root / name
    directory.mkdir()
    lines = "\n".join(f"{key} = {str(value).lower()}" for key, value in permissions.items())
    table = f"\n[permissions]\n{lines}\n" if permissions else ""
    (directory / "plugin.toml").write_text(f'id = "{name}"\nversion = "1.0.0"\nisolation = "{isolation}"\n{table}')
    (directory / "plugin.py").write_text(JAIL)
    return directory


@pytest.fixture
async def start_worker() -> AsyncIterator[Any]:
    handles: list[Any] = []

    async def start(directory: Path) -> Any:
        handle = await WorkerRuntime(WORKER_OPTIONS).load(request_for(directory))
        handles.append(handle)
        return handle

    yield start
    for handle in handles:
        await handle.stop()


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    path = outside / "secret.txt"
    path.write_text("the host's secret")
    return path


async def test_filesystem_false_confines_to_plugin_and_data_dirs(
    tmp_path: Path, start_worker: Any, secret: Path
) -> None:
    jailed = await start_worker(_plugin(tmp_path, "jailed", {"filesystem": False}))
    free = await start_worker(_plugin(tmp_path, "free", {"filesystem": True}))
    data_dir = jailed.request.data_dir
    escape = secret.parent / "written-by-plugin.txt"
    for handle in (jailed, free):
        (handle.request.plugin_dir / "to-secret").symlink_to(secret)

    for handle, allowed in ((free, True), (jailed, False)):
        attempts = {
            "read outside": await call_value(handle, "read", {"path": str(secret)}),
            "read /etc/passwd": await call_value(handle, "read", {"path": "/etc/passwd"}),
            "list outside": await call_value(handle, "listdir", {"path": str(secret.parent)}),
            "symlink to outside": await call_value(
                handle, "read", {"path": str(handle.request.plugin_dir / "to-secret")}
            ),
        }
        for what, result in attempts.items():
            assert result["ok"] is allowed, (handle.plugin_id, what, result)
            if not allowed:
                assert result["errno"] == DENIED, (what, result)
        write = await call_value(handle, "write", {"path": str(escape), "text": "x"})
        assert write["ok"] is allowed, write
        escape.unlink(missing_ok=True)

    hardlink = await call_value(jailed, "link", {"source": str(secret), "target": str(data_dir / "secret-link")})
    assert not hardlink["ok"] and not (data_dir / "secret-link").exists()
    assert secret.read_text() == "the host's secret"  # nothing outside was touched
    assert not escape.exists()

    # inside its own directories the plugin works normally
    own = await call_value(jailed, "read", {"path": str(jailed.request.plugin_dir / "plugin.toml")})
    assert own["ok"] and 'id = "jailed"' in own["value"]
    assert (await call_value(jailed, "write", {"path": str(data_dir / "notes.txt"), "text": "kept"}))["ok"]
    assert (data_dir / "notes.txt").read_text() == "kept"
    scratch = await call_value(jailed, "temp", {})
    assert scratch["ok"] and Path(scratch["value"]).parent == data_dir / "tmp"


async def test_network_false_allows_no_ip_sockets(tmp_path: Path, start_worker: Any) -> None:
    connections: list[Any] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer.get_extra_info("peername"))
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        offline = await start_worker(_plugin(tmp_path, "offline", {"network": False}))
        online = await start_worker(_plugin(tmp_path, "online", {"network": True}))
        refused = await call_value(offline, "connect", {"port": port})
        assert refused == {"ok": False, "errno": NOT_PERMITTED, "error": refused["error"]}
        assert (await call_value(offline, "udp", {}))["errno"] == NOT_PERMITTED
        assert connections == []  # nothing reached the server
        assert (await call_value(online, "connect", {"port": port}))["ok"]
        assert (await call_value(online, "udp", {}))["ok"]
        assert len(connections) == 1
        assert (await offline.health()).ok  # its own link to the host is a unix socket: unaffected
    finally:
        server.close()
        await server.wait_closed()


async def test_exec_false_allows_no_programs_or_processes(tmp_path: Path, start_worker: Any) -> None:
    marker = tmp_path / "ran"
    argv = [sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"]
    locked = await start_worker(_plugin(tmp_path, "locked", {"exec": False}))
    ran = await call_value(locked, "run", {"argv": argv})
    assert ran["errno"] == NOT_PERMITTED, ran
    assert (await call_value(locked, "fork", {}))["errno"] == NOT_PERMITTED
    assert not marker.exists()
    assert await call_value(locked, "thread", {}) == 42  # threads are not processes
    unlocked = await start_worker(_plugin(tmp_path, "unlocked", {"exec": True}))
    assert (await call_value(unlocked, "run", {"argv": argv})) == {"ok": True, "value": 0}
    assert marker.exists()
    assert (await call_value(unlocked, "fork", {}))["ok"]


async def test_restarted_worker_is_confined_again(tmp_path: Path, start_worker: Any, secret: Path) -> None:
    jailed = await start_worker(_plugin(tmp_path, "again", {"filesystem": False, "network": False, "exec": False}))
    with pytest.raises(Exception, match="crashed"):
        await call_value(jailed, "crash", {})
    after = await call_value(jailed, "read", {"path": str(secret)})  # waits for the restart
    assert after["errno"] == DENIED
    assert (await call_value(jailed, "fork", {}))["errno"] == NOT_PERMITTED
    assert jailed.info()["restarts"] == 1


def test_unenforceable_permission_is_an_error_not_a_no_op(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from plughost.runtime import sandbox
        from plughost.runtime.sandbox import landlock
        from plughost.sdk.manifest import Permissions

        landlock.abi_version = lambda: 0  # a kernel without Landlock
        try:
            here = Path({str(tmp_path)!r})
            sandbox.confine(Permissions(filesystem=False), plugin_dir=here, data_dir=here)
        except sandbox.SandboxUnavailable as exc:
            print(exc)
        else:
            print("confined without Landlock?")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert "permissions.filesystem = false cannot be enforced: Landlock is not available" in result.stdout


async def test_manager_warns_when_permissions_cannot_apply(
    workspace: Path, write_plugin: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from plughost import PluginManager

    write_plugin("trusting", JAIL, manifest_extra="[permissions]\nnetwork = false\n")
    async with PluginManager(workspace, runtimes=default_runtimes()) as manager:
        with caplog.at_level(logging.WARNING):
            assert await manager.discover_and_load_all() == 1
        assert "only enforced" in caplog.text and "'trusting'" in caplog.text
        # in-process means unconfined: the warning is the truth
        assert (await manager.execute("trusting", "udp", {})).result == {"ok": True, "value": None}


def _require(available: bool, message: str) -> None:
    """A kernel feature a test needs: skip locally without it, fail under CI=true."""
    if not available:
        (pytest.fail if os.environ.get("CI", "").lower() == "true" else pytest.skip)(message)


def _mount_namespace_reason(prefix: tuple[str, ...] = ()) -> str:
    """ "" when this machine lets a worker make its private read-only mount namespace, else why not."""
    script = "from plughost.runtime.sandbox import mounts\nmounts.enter()\nmounts.seal([])\n"
    command = [*prefix, sys.executable, "-c", script]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    return "" if result.returncode == 0 else result.stderr.strip().splitlines()[-1]


@pytest.fixture(params=["kernel", "fallbacks"])
def sandbox_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each guarantee twice: with what this kernel offers, and with the fallbacks of older kernels
    (`PLUGHOST_SANDBOX_FALLBACKS`, passed from the host's environment to its workers)."""
    mode: str = request.param
    if mode == "fallbacks":
        monkeypatch.setenv(FALLBACKS_ENV, "1")
    else:
        monkeypatch.delenv(FALLBACKS_ENV, raising=False)
    return mode


def _require_scopes(sandbox_mode: str) -> None:
    if sandbox_mode == "kernel":
        _require(landlock.abi_version() >= 6, "Landlock ABI 6 (Linux ≥ 6.12) scopes signals and abstract sockets")


READ_ONLY_FS = 30  # EROFS: the worker's mount namespace


async def test_file_metadata_outside_the_plugin_dirs_cannot_change(
    tmp_path: Path, start_worker: Any, secret: Path, sandbox_mode: str
) -> None:
    if sandbox_mode == "kernel":
        reason = _mount_namespace_reason()
        _require(not reason, f"no private mount namespace for workers: {reason}")
    os.chmod(secret, 0o644)
    before = secret.stat()
    jailed = await start_worker(_plugin(tmp_path, "jailed", {"filesystem": False}))
    own_file = jailed.request.data_dir / "own.txt"
    own_file.parent.mkdir(parents=True, exist_ok=True)
    own_file.write_text("mine")

    attempts = await call_value(jailed, "metadata", {"path": str(secret)})
    expected = READ_ONLY_FS if sandbox_mode == "kernel" else NOT_PERMITTED
    assert {what: result.get("errno") for what, result in attempts.items()} == dict.fromkeys(attempts, expected)
    after = secret.stat()
    assert (after.st_mode, after.st_uid, after.st_gid, after.st_mtime_ns) == (
        before.st_mode,
        before.st_uid,
        before.st_gid,
        before.st_mtime_ns,
    )
    assert os.listxattr(secret) == []
    if sandbox_mode == "kernel":  # and it cannot leave or change the read-only mounts
        undone = await call_value(jailed, "undo", {})
        assert {what: result.get("errno") for what, result in undone.items()} == dict.fromkeys(undone, NOT_PERMITTED)
        assert (await call_value(jailed, "metadata", {"path": str(secret)}))["chmod"]["errno"] == READ_ONLY_FS
    own = await call_value(jailed, "metadata", {"path": str(own_file)})
    if sandbox_mode == "kernel":  # read-only mounts know paths: its own files are the plugin's to change
        assert all(result["ok"] for result in own.values()), own
    else:  # seccomp does not: no metadata changes at all
        assert not any(result["ok"] for result in own.values()), own

    free = await start_worker(_plugin(tmp_path, "free", {"filesystem": True}))
    assert all(result["ok"] for result in (await call_value(free, "metadata", {"path": str(secret)})).values())
    changed = secret.stat()  # (chown clears the set-user-ID bit chmod set)
    assert (changed.st_mode & 0o777, changed.st_mtime_ns) == (0o755, 0) and os.listxattr(secret) == ["user.plugin"]


async def test_no_unix_socket_outside_its_own_link(tmp_path: Path, start_worker: Any, sandbox_mode: str) -> None:
    _require_scopes(sandbox_mode)
    import secrets as tokens
    import socket

    reached: list[str] = []
    listening = []
    named = socket.socket(socket.AF_UNIX)
    named.bind(str(tmp_path / "elsewhere.sock"))
    abstract_name = f"plughost-test-{tokens.token_hex(6)}"
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind("\0" + abstract_name)
    for server, label in ((named, "path"), (abstract, "abstract")):
        server.listen()
        server.setblocking(False)
        listening.append((server, label))

    def accepted() -> None:
        for server, label in listening:
            try:
                connection, _ = server.accept()
            except BlockingIOError:
                continue
            connection.close()
            reached.append(label)

    try:
        jailed = await start_worker(_plugin(tmp_path, "jailed", {"filesystem": False, "network": False}))
        free = await start_worker(_plugin(tmp_path, "free", {"network": True}))
        request = {"path": str(tmp_path / "elsewhere.sock"), "abstract": abstract_name}
        refused = await call_value(jailed, "unix", request)
        assert refused["path"]["errno"] == NOT_PERMITTED, refused
        assert refused["abstract"]["errno"] == NOT_PERMITTED, refused
        assert refused["listing"]["errno"] == DENIED, refused  # /proc/self/net/unix lists the machine's sockets
        accepted()
        assert reached == []
        assert (await jailed.health()).ok and await call_value(jailed, "thread", {}) == 42  # its own link works

        allowed = await call_value(free, "unix", request)
        assert all(result["ok"] for result in allowed.values()), allowed
        accepted()
        assert sorted(reached) == ["abstract", "path"]
    finally:
        named.close()
        abstract.close()


def _throwaway_host(
    tmp_path: Path, plugin: Path, calls: list[Any], prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Run `calls` on `plugin` in a worker of a host process of its own (see throwaway_host.py),
    started behind `prefix` (a command such as setpriv)."""
    import json

    sockets = tmp_path / f"run-{plugin.name}"
    sockets.mkdir(mode=0o700)
    plan = json.dumps({"plugin": str(plugin), "sockets": str(sockets), "calls": calls})
    script = Path(__file__).with_name("throwaway_host.py")
    return subprocess.run(
        [*prefix, sys.executable, str(script), plan], capture_output=True, text=True, timeout=120, check=False
    )


def test_sandboxed_plugin_cannot_kill_its_host(tmp_path: Path, sandbox_mode: str) -> None:
    _require_scopes(sandbox_mode)
    import json
    import signal

    # only the network is off: signals are blocked in every sandboxed worker
    survived = _throwaway_host(tmp_path, _plugin(tmp_path, "assassin", {"network": False}), [["kill_host", {}]])
    assert survived.returncode == 0, survived.stderr
    lines = [json.loads(line) for line in survived.stdout.splitlines()]
    assert lines == [
        {"value": {"ok": False, "errno": NOT_PERMITTED, "error": lines[0]["value"]["error"]}},
        {"host": "alive"},
    ]

    killed = _throwaway_host(tmp_path, _plugin(tmp_path, "unconfined", {}), [["kill_host", {}]])
    assert killed.returncode == -signal.SIGKILL, (killed.stdout, killed.stderr)
    assert "alive" not in killed.stdout


VICTIM = """
import ctypes, sys, time

secret = b"the victim's secret"
ctypes.CDLL(None).prctl(0x59616D61, ctypes.c_ulong(-1), 0, 0, 0)  # PR_SET_PTRACER_ANY: Yama may not stop the try
print(id(secret) + sys.getsizeof(b"") - 1, flush=True)  # where the bytes of `secret` start
time.sleep(120)
"""


async def test_sandboxed_plugin_cannot_trace_signal_or_read_other_processes(
    tmp_path: Path, start_worker: Any, sandbox_mode: str
) -> None:
    _require_scopes(sandbox_mode)
    import signal

    victim = await asyncio.create_subprocess_exec(sys.executable, "-c", VICTIM, stdout=asyncio.subprocess.PIPE)
    try:
        assert victim.stdout is not None
        address = int(await victim.stdout.readline())
        peek = {"pid": victim.pid, "address": address, "size": len(b"the victim's secret")}
        # only exec is off: tracing and signalling are blocked in every sandboxed worker
        jailed = await start_worker(_plugin(tmp_path, "tracer", {"exec": False}))
        refused = await call_value(jailed, "peek", peek)
        assert refused["process_vm_readv"]["errno"] == NOT_PERMITTED, refused
        assert refused["ptrace"]["errno"] == NOT_PERMITTED, refused
        killing = await call_value(jailed, "signal", {"pid": victim.pid, "number": int(signal.SIGKILL)})
        assert killing["errno"] == NOT_PERMITTED, killing
        assert victim.returncode is None

        free = await start_worker(_plugin(tmp_path, "free", {}))
        assert await call_value(free, "peek", peek) == {
            "process_vm_readv": {"ok": True, "value": "the victim's secret"},
            "ptrace": {"ok": True, "value": "attached"},
        }
        assert (await call_value(free, "signal", {"pid": victim.pid, "number": int(signal.SIGKILL)}))["ok"]
        assert await asyncio.wait_for(victim.wait(), 10) == -signal.SIGKILL
    finally:
        if victim.returncode is None:
            victim.kill()
        await victim.wait()


def test_metadata_guard_needs_no_administrator(tmp_path: Path, secret: Path) -> None:
    """A host that is not root has no CAP_SYS_ADMIN: its workers make their read-only mount
    namespace inside a user namespace of their own (a root host here drops the capability)."""
    import json

    from process_support import require_tool

    prefix = (require_tool("setpriv"), "--bounding-set=-sys_admin", "--") if os.geteuid() == 0 else ()
    reason = _mount_namespace_reason(prefix)
    _require(not reason, f"no user namespace for unprivileged workers (kernel.unprivileged_userns_clone?): {reason}")
    plugin = _plugin(tmp_path, "unprivileged", {"filesystem": False})
    own = plugin / "own.txt"
    own.write_text("mine")
    calls = [["metadata", {"path": str(secret)}], ["metadata", {"path": str(own)}]]
    ran = _throwaway_host(tmp_path, plugin, calls, prefix)
    assert ran.returncode == 0, ran.stderr
    outside, inside, alive = (json.loads(line) for line in ran.stdout.splitlines())
    assert {what: result.get("errno") for what, result in outside["value"].items()} == dict.fromkeys(
        outside["value"], READ_ONLY_FS
    ), ran.stderr
    assert all(result["ok"] for result in inside["value"].values()), inside
    assert "file metadata: read-only outside them (user and mount namespace)" in ran.stderr
    assert alive == {"host": "alive"}


def _run_bpf(program: list[tuple[int, int, int, int]], nr: int, args: tuple[int, ...], arch: int) -> int:
    """What the filter answers for one syscall (a small interpreter of the opcodes it uses)."""
    from plughost.runtime.sandbox import seccomp

    words = {seccomp.OFFSET_NR: nr, seccomp.OFFSET_ARCH: arch}
    for index, value in enumerate(args):
        words[seccomp.offset_arg(index)] = value & 0xFFFFFFFF
    accumulator, pc = 0, 0
    while True:
        code, jt, jf, k = program[pc]
        pc += 1
        if code == seccomp.LD_W_ABS:
            accumulator = words.get(k, 0)
        elif code == seccomp.ALU_AND_K:
            accumulator &= k
        elif code == seccomp.RET_K:
            return k
        else:
            taken = {
                seccomp.JEQ_K: accumulator == k,
                seccomp.JGE_K: accumulator >= k,
                seccomp.JSET_K: bool(accumulator & k),
            }[code]
            pc += jt if taken else jf


@pytest.mark.parametrize("arch_name", ["x86_64", "aarch64"])
def test_seccomp_filter_decisions(arch_name: str) -> None:
    """The filter's logic on both architectures (the real workers above run it on this machine)."""
    from plughost.runtime.sandbox import seccomp

    arch = seccomp.ARCHES[arch_name]
    allow, eperm, enosys = seccomp.RET_ALLOW, seccomp.RET_ERRNO | 1, seccomp.RET_ERRNO | 38
    strict = seccomp.build_filter(arch, seccomp.Policy(network=False, exec_=False, signals_pid=4242, metadata=False))
    loose = seccomp.build_filter(arch, seccomp.Policy())

    def answer(program: Any, name: str, *args: int) -> int:
        return _run_bpf(program, arch.numbers[name], args, arch.audit_arch)

    thread = 0x3D0F00  # CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | …, as pthread_create
    cases = [
        (strict, "socket", (1, 1, 0), eperm),
        (strict, "socketpair", (1, 1 | 0x80000, 0), allow),  # unix stream pair (SOCK_CLOEXEC)
        (strict, "socketpair", (1, 2, 0), eperm),  # datagram pair
        (strict, "socketpair", (2, 1, 0), eperm),
        (strict, "clone", (thread,), allow),
        (strict, "clone", (17,), eperm),  # fork: SIGCHLD only
        (strict, "clone", (thread | 0x10000000,), eperm),  # CLONE_NEWUSER
        (strict, "clone3", (), enosys),
        (strict, "execve", (), eperm),
        (strict, "kill", (4242, 9), allow),
        (strict, "kill", (0, 15), allow),
        (strict, "kill", (-4242, 15), allow),
        (strict, "kill", (1, 9), eperm),
        (strict, "kill", (-1, 9), eperm),
        (strict, "tgkill", (4242, 4243, 10), allow),
        (strict, "tgkill", (1, 1, 9), eperm),
        (strict, "tkill", (4243, 9), eperm),
        (strict, "pidfd_send_signal", (3, 9), eperm),
        (strict, "fcntl", (3, 8, 1), eperm),  # F_SETOWN
        (strict, "fcntl", (3, 2, 1), allow),  # F_SETFD
        (strict, "ioctl", (3, 0x8901, 0), eperm),  # FIOSETOWN
        (strict, "ioctl", (3, 0x40086602, 0), eperm),  # FS_IOC_SETFLAGS
        (strict, "ioctl", (3, 0x5401, 0), allow),  # TCGETS
        (strict, "fchmodat", (-100, 0, 0o755), eperm),
        (strict, "setxattr", (), eperm),
        (strict, "openat", (), allow),
        (loose, "socket", (2, 1, 0), allow),
        (loose, "clone", (17,), allow),
        (loose, "execve", (), allow),
        (loose, "kill", (1, 9), allow),
        (loose, "fchmodat", (-100, 0, 0o755), allow),
        (loose, "ptrace", (16, 1), eperm),
        (loose, "process_vm_readv", (), eperm),
        (loose, "mount", (), eperm),
        (loose, "unshare", (0x20000,), eperm),
        (loose, "io_uring_setup", (), eperm),
    ]
    numbers = {**arch.numbers, "openat": 257 if arch_name == "x86_64" else 56}
    for program, name, args, expected in cases:
        got = _run_bpf(program, numbers[name], args, arch.audit_arch)
        assert got == expected, (arch_name, name, args, hex(got))
    assert _run_bpf(loose, 1, (), 0x40000003) == seccomp.RET_KILL_PROCESS  # another architecture's call
    assert answer(loose, "socket", 1, 1, 0) == allow


async def test_sandbox_isolation_denies_what_it_does_not_grant(tmp_path: Path, start_worker: Any, secret: Path) -> None:
    """`isolation = "sandbox"` with no [permissions]: no files outside, no network, no programs;
    granted explicitly, each works; `process` without [permissions] allows all of it."""
    connections: list[Any] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer.get_extra_info("peername"))
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    marker = tmp_path / "ran"
    argv = [sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"]

    async def attempts(handle: Any) -> dict[str, Any]:
        return {
            "read": await call_value(handle, "read", {"path": str(secret)}),
            "connect": await call_value(handle, "connect", {"port": port}),
            "run": await call_value(handle, "run", {"argv": argv}),
        }

    try:
        sandboxed = await start_worker(_plugin(tmp_path, "default-deny", {}, isolation="sandbox"))
        denied = await attempts(sandboxed)
        assert {what: result.get("errno") for what, result in denied.items()} == {
            "read": DENIED,
            "connect": NOT_PERMITTED,
            "run": NOT_PERMITTED,
        }, denied
        assert connections == [] and not marker.exists()
        own = await call_value(sandboxed, "write", {"path": str(sandboxed.request.data_dir / "x"), "text": "ok"})
        assert own["ok"]  # its data directory is its own

        everything = {"filesystem": True, "network": True, "exec": True}
        for handle in (
            await start_worker(_plugin(tmp_path, "granted", everything, isolation="sandbox")),
            await start_worker(_plugin(tmp_path, "process-default", {}, isolation="process")),
        ):
            marker.unlink(missing_ok=True)
            allowed = await attempts(handle)
            assert all(result["ok"] for result in allowed.values()), (handle.plugin_id, allowed)
            assert marker.exists()
        assert len(connections) == 2
    finally:
        server.close()
        await server.wait_closed()
