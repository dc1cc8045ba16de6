"""Options and helpers every CLI command shares, and where a command runs: in the running host or here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from plughost.cli.output import fail, note
from plughost.errors import PlugHostError

if TYPE_CHECKING:
    from plughost.cli.remote import HostUnreachable, RemoteHost
    from plughost.host import Host

T = TypeVar("T")

WorkspaceOption = Annotated[
    Path,
    typer.Option(
        "--workspace",
        "-w",
        help="Workspace directory (plugins/, config/, data/, plugin-state.toml).",
        file_okay=False,
        resolve_path=True,
        envvar="PLUGHOST_WORKSPACE",
    ),
]
PluginDirOption = Annotated[
    list[Path] | None,
    typer.Option("--plugin-dir", "-p", help="Extra plugin directory to search (repeatable).", resolve_path=True),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
RemoteOption = Annotated[
    str | None,
    typer.Option(
        "--remote",
        metavar="URL",
        help="Talk to the host whose management API is at URL (e.g. http://127.0.0.1:3210). "
        "Default: the host serving the workspace, if one runs (.plughost/manage.json).",
        show_default=False,
    ),
]
KeyOption = Annotated[
    str | None,
    typer.Option(
        "--key",
        help="The host's management key. Default: the key file the running host names, else [manage] key "
        "in plughost.toml, PLUGHOST_MANAGE_KEY, .plughost/manage.key.",
        show_default=False,
    ),
]
LocalOption = Annotated[
    bool,
    typer.Option(
        "--local",
        help="Load the workspace in this process even when a host runs (not for changes: the host would undo them).",
    ),
]


@dataclass(frozen=True)
class Where:
    """What the user asked about where a command runs: the workspace, --plugin-dir, --remote, --key, --local."""

    workspace: Path
    plugin_dirs: list[Path] | None = None
    remote: str | None = None
    key: str | None = None
    local: bool = False


@dataclass(frozen=True)
class NoHost:
    """Why the command loads the workspace itself; `note()` is the line said on stderr."""

    reason: str = "no running host"
    detail: str = ""

    def note(self) -> str:
        return f"{self.reason}: loaded the workspace{self.detail}"


def find_host(where: Where, changes_state: bool = False) -> RemoteHost | NoHost:
    """The host to talk to (--remote, else the live one `.plughost/manage.json` names), or why there is none.

    `changes_state`: the command changes what the host keeps (plugin-state.toml…); with --local
    beside a running host it is refused, since the host would write its own view back over it.
    """
    from plughost.cli.remote import RemoteHost, read_server_file, resolve_key

    if where.remote is not None:
        if where.local:
            fail("--remote and --local exclude each other: choose one")
        return RemoteHost(where.remote, resolve_key(where.workspace, where.key, None))
    record, ignored = read_server_file(where.workspace)
    if where.local:
        if record is None:
            return NoHost("--local")
        if changes_state:
            fail(
                f"a host is running for this workspace (pid {record.pid}, {record.url}); it keeps the plugin "
                "state in memory and would write it back over a change made with --local: drop --local "
                "to make the change in the running host (or stop the host first)"
            )
        return NoHost("--local", f"; the host running at {record.url} is not changed")
    if record is None:
        return NoHost(f"{ignored}; no running host" if ignored else "no running host")
    if where.plugin_dirs:
        note(f"--plugin-dir is not used: the host running at {record.url} has its own plugin directories")
    return RemoteHost(record.url, resolve_key(where.workspace, where.key, record), record=record)


def unreachable(host: RemoteHost, error: HostUnreachable, changes_state: bool) -> NoHost:
    """After nothing answered at `host`: why the workspace is loaded instead, or a one-line failure."""
    from plughost.cli.remote import SERVER_FILE, pid_alive

    if host.record is None:
        fail(f"cannot reach a plughost at {host.url}: {error.reason} (is `plughost run` serving there?)")
    if changes_state and pid_alive(host.record.pid):
        fail(
            f"the host named by {SERVER_FILE} (pid {host.record.pid}) does not answer at {host.url} "
            f"({error.reason}); it may be starting or stopping: try again (if no plughost runs here, "
            f"remove {SERVER_FILE})"
        )
    return NoHost(f"the host at {host.url} does not answer ({error.reason}); no running host")


def through_host(
    where: Where,
    remote: Callable[[RemoteHost], T],
    local: Callable[[Host], Awaitable[T]],
    *,
    changes_state: bool = False,
) -> T:
    """`remote(host)` against the running host when one serves the workspace, else `local` in a freshly
    loaded one; one dim line on stderr says which."""
    from plughost.cli.remote import HostUnreachable

    found = find_host(where, changes_state)
    if not isinstance(found, NoHost):
        try:
            with found:
                return remote(found)
        except HostUnreachable as exc:
            found = unreachable(found, exc, changes_state)
    return run_with_host(where.workspace, local, where.plugin_dirs, loaded=found.note())


def run_with_host(
    workspace: Path,
    action: Callable[[Host], Awaitable[T]],
    plugin_dirs: list[Path] | None = None,
    *,
    loaded: str | None = None,
) -> T:
    """Load the workspace, say `loaded` (a note) once it is, run `action`, shut down; plughost errors
    become one line + exit 1 (a workspace that fails to load gets no note: the error is the one line)."""
    import asyncio

    from plughost.host import Host

    async def main() -> T:
        async with Host(workspace, extra_plugin_dirs=plugin_dirs or ()) as host:
            if loaded:
                note(loaded)
            return await action(host)

    try:
        return asyncio.run(main())
    except PlugHostError as exc:
        fail(str(exc))


def parse_json_option(value: str | None, what: str) -> Any:
    import json

    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        fail(f"{what} is not valid JSON: {exc.msg} at column {exc.colno}")
