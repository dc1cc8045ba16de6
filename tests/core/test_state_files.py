"""State files on real disks: corrupt files, crashes mid-write and unwritable workspaces lose nothing.

plugin-state.toml, permissions.toml and .plughost/registry.json follow one rule (plughost.core.files):
a corrupt version is kept and never replaces the good `.bak`; a change that cannot be written
does not happen.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from plughost.bot.commands import CommandSender, PermissionService, ResultKind
from plughost.core.registry import PluginRegistry, RegistryEntry
from plughost.core.state import PluginStateFile
from plughost.errors import StateFileError
from plughost.host import Host
from plughost.sdk.models import PluginState
from plughost.sdk.permissions import PermissionId, PermitteeId
from tests.conftest import ROOT, require_tool

EXAMPLES = ROOT / "examples" / "plugins"
CONSOLE = CommandSender.console()


def who(text: str) -> PermitteeId:
    return PermitteeId.parse(text)


def pid(text: str) -> PermissionId:
    return PermissionId.parse(text)


def temp_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp"))


@dataclass
class Store:
    """Version `n` of one persisted file, written and read through its real class."""

    name: str
    save: Callable[[Path, int], None]
    load: Callable[[Path], int | None]


def _save_state(path: Path, n: int) -> None:
    PluginStateFile.load(path).set_priority("p", n)


def _load_state(path: Path) -> int | None:
    return PluginStateFile.load(path).priorities.get("p")


def _save_registry(path: Path, n: int) -> None:
    PluginRegistry(path).register(RegistryEntry(id="p", name="p", version=f"{n}.0.0"))


def _load_registry(path: Path) -> int | None:
    entry = PluginRegistry(path).get("p")
    return None if entry is None else int(entry.version.split(".")[0])


def _save_permissions(path: Path, n: int) -> None:
    PermissionService(path).permit(who(f"u{n}"), pid("demo:*"))


def _load_permissions(path: Path) -> int | None:
    holders = PermissionService(path).grants()
    return max((int(str(h)[1:]) for h in holders), default=None)


STORES = [
    Store("plugin-state.toml", _save_state, _load_state),
    Store(".plughost/registry.json", _save_registry, _load_registry),
    Store("permissions.toml", _save_permissions, _load_permissions),
]


@pytest.mark.parametrize("bad", [b"", b"\n  \n", b"\xff\xfe\x00garbage"], ids=["empty", "blank", "undecodable"])
@pytest.mark.parametrize("store", STORES, ids=lambda s: s.name)
def test_corrupt_file_is_kept_backup_is_used_and_never_overwritten(
    tmp_path: Path, store: Store, bad: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / store.name
    store.save(path, 1)
    store.save(path, 2)
    backup = path.with_name(path.name + ".bak")
    good_backup = backup.read_bytes()
    assert store.load(backup) == 1
    path.write_bytes(bad)  # emptied or garbled (disk full, a bad edit …)

    assert store.load(path) == 1  # the backup's version, with a warning
    assert f"{path} is corrupt" in caplog.text and "restored" in caplog.text
    assert path.read_bytes() == bad  # loading changes nothing

    store.save(path, 3)  # the next save keeps the corrupt file aside and the good backup as it is
    assert store.load(path) == 3
    assert backup.read_bytes() == good_backup
    (kept,) = path.parent.glob(f"{path.name}.corrupt-*")
    assert kept.read_bytes() == bad
    store.save(path, 4)  # from now on the backup follows again
    assert store.load(backup) == 3
    assert temp_files(path.parent) == []


def test_emptied_permissions_file_neither_drops_grants_nor_undoes_revocations(tmp_path: Path) -> None:
    path = tmp_path / "permissions.toml"
    backup = tmp_path / "permissions.toml.bak"
    command = pid("demo:command.x")
    service = PermissionService(path, default_permittees=["*"])
    service.register(command, grant_defaults=True)
    service.flush()
    service.cancel(who("*"), command)  # revoked from everybody: must stay revoked
    service.permit(who("g7"), command)
    service.permit(who("g8"), pid("demo:*"))
    saved_backup = backup.read_bytes()
    path.write_text("")

    restored = PermissionService(path, default_permittees=["*"])
    restored.register(command, grant_defaults=True)  # a start registers every command again
    restored.flush()
    assert not restored.has(who("f1"), command), "the revocation was undone"
    assert restored.has(who("m7.3"), command)  # the grant of the backup
    assert not restored.has(who("m8.3"), command)  # made after the backup: lost with the emptied file
    assert backup.read_bytes() == saved_backup and path.read_text() == ""  # nothing changed: nothing written
    restored.permit(who("g9"), command)
    assert backup.read_bytes() == saved_backup
    assert [p.read_text() for p in tmp_path.glob("permissions.toml.corrupt-*")] == [""]
    assert PermissionService(path).granted(who("g9")) == [command]


def test_corrupt_permissions_and_backup_refuse_to_start_and_change_nothing(tmp_path: Path) -> None:
    path = tmp_path / "permissions.toml"
    path.write_text("")
    path.with_name("permissions.toml.bak").write_text("grants = [")
    with pytest.raises(Exception, match=r"permissions\.toml: cannot read permission grants \(permissions\.toml: the"):
        PermissionService(path, default_permittees=["*"])
    assert path.read_text() == "" and path.with_name("permissions.toml.bak").read_text() == "grants = ["


WRITER = """
import sys
import threading
from pathlib import Path
from plughost.core.state import PluginStateFile

state = PluginStateFile.load(Path(sys.argv[1]))
saved = threading.Condition()
done = state.priorities.get("counter", 0)

def write() -> None:
    global done
    n = done
    while True:
        n += 1
        state.priorities = {"check": 1000 - n, "counter": n}
        state.save()
        with saved:
            done = n
            saved.notify()

threading.Thread(target=write, daemon=True).start()
reported = done
while True:  # reported by another thread, so the kill lands wherever the writer is by then
    with saved:
        saved.wait_for(lambda: done != reported)
        reported = done
    print(reported, flush=True)
"""


def _version(path: Path) -> int:
    """The counter of a complete version (a torn or mixed file fails here)."""
    data = tomllib.loads(path.read_text())
    priorities = data["priorities"]
    assert data["modules"] == {} and set(priorities) == {"check", "counter"}, data
    assert priorities["counter"] + priorities["check"] == 1000, data
    counter: int = priorities["counter"]
    return counter


def test_sigkill_mid_write_leaves_file_and_backup_whole_and_leftovers_are_cleaned(tmp_path: Path) -> None:
    path = tmp_path / "plugin-state.toml"
    backup = tmp_path / "plugin-state.toml.bak"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    leftovers = 0
    for run in range(30):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True, env=env)
        assert writer.stdout is not None
        try:
            for _ in range(2 + run % 5):  # a different point of the loop each run
                printed = int(writer.stdout.readline())
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait()
            writer.stdout.close()
        current = _version(path)
        assert current >= printed  # every completed write is there
        assert _version(backup) in (current, current - 1)  # the version before (or the same, killed in between)
        interrupted = temp_files(tmp_path)
        leftovers += len(interrupted)
        state = PluginStateFile.load(path)  # the next load removes what the killed writer left
        assert state.warnings == [] and state.priorities["counter"] == current
        assert temp_files(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plugin-state.toml", "plugin-state.toml.bak"]
    assert leftovers > 0, "no kill interrupted a write: the cleanup was not exercised"


def test_only_our_own_leftovers_of_that_file_are_removed(tmp_path: Path) -> None:
    path = tmp_path / "plugin-state.toml"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    dead_pid = int(dead.stdout)
    ours_dead = tmp_path / f".plugin-state.toml.{dead_pid}.0a1b2c3d.tmp"
    ours_legacy = tmp_path / ".plugin-state.toml.k2j_x9q1.tmp"  # earlier versions carried no pid
    ours_live = tmp_path / f".plugin-state.toml.{os.getppid()}.0a1b2c3d.tmp"  # a live writer's
    others = [
        tmp_path / ".permissions.toml.0a1b2c3d.tmp",
        tmp_path / ".plugin-state.toml.notes.tmp",
        tmp_path / "plugin-state.toml.0a1b2c3d.tmp",
        tmp_path / "sub" / ".plugin-state.toml.0a1b2c3d.tmp",
    ]
    for file in (ours_dead, ours_legacy, ours_live, *others):
        file.parent.mkdir(exist_ok=True)
        file.write_text("x")
    PluginStateFile.load(path)
    assert not ours_dead.exists() and not ours_legacy.exists()
    assert ours_live.exists() and all(p.exists() for p in others)


# unwritable workspace ------------------------------------------------------------------------
Freeze = Callable[[Path, bool], None]


@pytest.fixture
def freeze() -> Iterator[Freeze]:
    """`freeze(directory, True)` makes it immutable (`chattr +i`): nothing can be created, renamed or
    removed in it, even by root; `freeze(directory, False)` undoes it (and so does the fixture's end)."""
    chattr = require_tool("chattr", "makes a directory unwritable for root")
    frozen: set[Path] = set()

    def apply(directory: Path, on: bool) -> None:
        subprocess.run([chattr, "+i" if on else "-i", str(directory)], check=True, capture_output=True)
        (frozen.add if on else frozen.discard)(directory)

    try:
        yield apply
    finally:
        for directory in frozen:
            subprocess.run([chattr, "-i", str(directory)], check=False)


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[Host]:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    for name in ("chat-tools", "flaky"):
        shutil.copytree(EXAMPLES / name, plugins / name)
    async with Host(tmp_path) as running:
        yield running


async def run(host: Host, text: str) -> tuple[ResultKind, str]:
    result = await host.commands.execute_command(CONSOLE, text)
    return result.kind, result.text


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


async def test_a_change_that_cannot_be_written_does_not_happen(host: Host, freeze: Freeze) -> None:
    workspace, manager = host.workspace, host.manager
    assert (await run(host, "/plugins disable flaky"))[0] is ResultKind.SUCCESS
    assert (await run(host, "/permission permit g1 chat-tools:*"))[0] is ResultKind.SUCCESS
    await manager.enable_plugin("flaky")
    await manager.disable_plugin("flaky")  # plugin-state.toml and its .bak exist
    before = snapshot(workspace)
    freeze(workspace, True)

    state_error = (
        f"cannot write {workspace / 'plugin-state.toml'}: Operation not permitted (writing plugin-state.toml.bak)"
    )
    for _ in range(2):  # a retry fails the same way: nothing half-happened
        assert await run(host, "/plugins disable chat-tools") == (ResultKind.EXECUTION_ERROR, state_error)
        assert await run(host, "/plugins enable flaky") == (ResultKind.EXECUTION_ERROR, state_error)
    assert manager.get_plugin("chat-tools").state is PluginState.ENABLED  # type: ignore[union-attr]
    assert manager.get_plugin("flaky").state is PluginState.DISABLED  # type: ignore[union-attr]
    assert (await run(host, "/greet bob"))[1] == "hello bob"  # still enabled in the dispatcher too
    assert manager.state_file.modules == {"flaky": False}
    with pytest.raises(StateFileError, match=r"plugin-state\.toml: Operation not permitted"):
        manager.set_priority("chat-tools", 7)
    assert manager.get_plugin("chat-tools").priority != 7  # type: ignore[union-attr]
    assert manager.state_file.priorities == {}

    grants_error = (
        f"cannot write {workspace / 'permissions.toml'}: Operation not permitted (writing permissions.toml.bak)"
    )
    assert await run(host, "/permission permit g2 chat-tools:*") == (ResultKind.EXECUTION_ERROR, grants_error)
    assert await run(host, "/permission cancel g1 chat-tools:*") == (ResultKind.EXECUTION_ERROR, grants_error)
    assert await run(host, "/permission granted g2") == (ResultKind.SUCCESS, "g2 holds no direct grants")
    assert await run(host, "/permission granted g1") == (ResultKind.SUCCESS, "g1: chat-tools:*")

    assert snapshot(workspace) == before  # nothing on disk changed, no temporary files left
    freeze(workspace, False)
    assert await run(host, "/plugins disable chat-tools") == (ResultKind.SUCCESS, "plugin 'chat-tools' disabled")
    assert tomllib.loads((workspace / "plugin-state.toml").read_text())["modules"]["chat-tools"] is False


async def test_failing_enable_hook_rolls_the_persisted_flag_back(workspace: Path, write_plugin) -> None:
    write_plugin(
        "moody",
        """
        from plughost import Plugin
        plugin = Plugin()

        @plugin.on_enable
        def on_enable() -> None:
            raise RuntimeError("not today")
        """,
        manifest_extra="enabled = false\n",
    )
    async with Host(workspace) as host:
        with pytest.raises(Exception, match="not today"):
            await host.manager.enable_plugin("moody")
        assert host.manager.get_plugin("moody").state is PluginState.DISABLED  # type: ignore[union-attr]
        assert host.manager.state_file.modules == {}
    assert PluginStateFile.load(workspace / "plugin-state.toml").modules == {}
