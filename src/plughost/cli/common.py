"""Options and helpers every CLI command shares, and where a command runs: in the running host or here.

The global options (-w, -p, -l) are defined once, here, and `add_global_options` puts them on every
command of the tree, so they are accepted before and after a command's name and every `--help`
lists them. Commands read them with `global_options()`.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

# typer 0.28 carries its own copy of click (pinned < 0.29): its context and command classes
from typer._click.core import Command, Parameter
from typer._click.globals import get_current_context
from typer.core import TyperGroup, TyperOption

from plughost.cli import quick
from plughost.cli.logs import setup_logging
from plughost.cli.output import fail, note
from plughost.errors import PlugHostError

if TYPE_CHECKING:
    from plughost.cli.remote import HostUnreachable, RemoteHost
    from plughost.host import Host

T = TypeVar("T")

WORKSPACE_ENV = quick.WORKSPACE_ENV  # read by the fast path of `plugins list` too
_OPTIONS_KEY = "plughost.global_options"  # in click's `Context.meta`, which every context of a run shares


@dataclass
class GlobalOptions:
    """What -w, -p and -l said, wherever on the command line they were given (a later one wins;
    --plugin-dir adds up)."""

    workspace_path: Path = field(default_factory=Path.cwd)
    plugin_dirs: list[Path] = field(default_factory=list)
    log_level: str = "warning"

    @property
    def workspace(self) -> Path:
        """The workspace directory; one that does not exist is a usage error (exit 2), never an empty one."""
        path = self.workspace_path
        if not path.is_dir():
            problem = "is not a directory" if path.exists() else "does not exist"
            fail(f"workspace {path} {problem} (-w/--workspace, {WORKSPACE_ENV}); `plughost init {path}` creates one", 2)
        return path

    def refuse_plugin_dirs(self, command: str) -> None:
        """For commands that load no plugins: --plugin-dir there is a mistake, said, not ignored."""
        if self.plugin_dirs:
            fail(f"--plugin-dir does not apply to `plughost {command}` (it loads no plugins)", 2)


def global_options() -> GlobalOptions:
    """The global options of the command line being run."""
    meta = get_current_context().meta
    options = meta.get(_OPTIONS_KEY)
    if not isinstance(options, GlobalOptions):
        options = meta[_OPTIONS_KEY] = GlobalOptions()
    return options


class LogLevel(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


def _given(ctx: typer.Context, param: typer.CallbackParam) -> bool:
    """Was the option on the command line (or, for the root's -w, in the environment)?"""
    source = ctx.get_parameter_source(param.name or "")
    return source is not None and source.name != "DEFAULT"


def _set_workspace(ctx: typer.Context, param: typer.CallbackParam, value: Path | None) -> None:
    if value is not None and _given(ctx, param):
        global_options().workspace_path = value


def _add_plugin_dirs(value: list[Path] | None) -> None:
    global_options().plugin_dirs.extend(value or ())


def _set_log_level(ctx: typer.Context, param: typer.CallbackParam, value: LogLevel | None) -> None:
    if value is not None and (ctx.parent is None or _given(ctx, param)):
        global_options().log_level = value.value
        setup_logging(value.value)


def _global_options_definition(
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace",
            "-w",
            metavar="DIR",
            file_okay=False,
            resolve_path=True,
            envvar=WORKSPACE_ENV,
            callback=_set_workspace,
            show_default=False,
            help="Workspace directory (plughost.toml, plugins/, config/, data/); default: the current directory. "
            "Global: before or after the command.",
        ),
    ] = None,
    plugin_dirs: Annotated[
        list[Path] | None,
        typer.Option(
            "--plugin-dir",
            "-p",
            metavar="DIR",
            exists=True,
            file_okay=False,
            resolve_path=True,
            callback=_add_plugin_dirs,
            show_default=False,
            help="Extra plugin directory to search (repeatable). Global.",
        ),
    ] = None,
    log_level: Annotated[
        LogLevel,
        typer.Option(
            "--log-level", "-l", case_sensitive=False, callback=_set_log_level, help="What stderr shows. Global."
        ),
    ] = LogLevel.warning,
) -> None:
    """The one definition of the global options; `add_global_options` copies them onto every command."""


def _global_params() -> list[Parameter]:
    definition = typer.Typer(add_completion=False)
    definition.command()(_global_options_definition)
    params = typer.main.get_command(definition).params
    for param in params:
        param.expose_value = False  # the callbacks keep them (`global_options()`), no command takes them
    return params


def add_global_options(command: Command, params: list[Parameter] | None = None) -> None:
    """Give `command` and every command below it -w, -p and -l (a command may not define them itself).

    Only the program's own copy reads PLUGHOST_WORKSPACE and has a default (the log level); below it an
    option counts only when it is given, so `plughost -l debug run` is not undone by `run`'s default.
    """
    below = None if params is None else params
    params = _global_params() if params is None else params
    clash = {o for p in command.params for o in p.opts} & {o for p in params for o in p.opts}
    if clash:
        raise RuntimeError(f"`{command.name}` defines the global option(s) {', '.join(sorted(clash))} itself")
    command.params.extend(params)
    if isinstance(command, TyperGroup):
        below = below or [_without_default(p) for p in params]
        for sub in command.commands.values():
            add_global_options(sub, below)


def _without_default(param: Parameter) -> Parameter:
    copied = copy.copy(param)
    copied.envvar, copied.default = None, None
    if isinstance(copied, TyperOption):
        copied.show_default, copied.show_envvar = False, False
    return copied


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

    @classmethod
    def given(cls, remote: str | None = None, key: str | None = None, local: bool = False) -> Where:
        """The global -w and -p of this command line, with the command's own --remote, --key and --local."""
        options = global_options()
        return cls(options.workspace, options.plugin_dirs, remote, key, local)


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
    from plughost.cli.remote import RemoteHost, no_host_reason, read_server_file, resolve_key

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
        return NoHost(no_host_reason(ignored))
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
    unloaded: Callable[[NoHost], T] | None = None,
) -> T:
    """`remote(host)` against the running host when one serves the workspace, else `local` in a freshly
    loaded one; one dim line on stderr says which. `unloaded`: what answers instead of loading the
    workspace when no host runs and --local was not given (it says so itself)."""
    from plughost.cli.remote import HostUnreachable

    found = find_host(where, changes_state)
    if not isinstance(found, NoHost):
        try:
            with found:
                return remote(found)
        except HostUnreachable as exc:
            found = unreachable(found, exc, changes_state)
    if unloaded is not None and not where.local:
        return unloaded(found)
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
        fail(f"{what} is not valid JSON: {exc.msg} at column {exc.colno}", 2)
