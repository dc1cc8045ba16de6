"""Options and helpers every CLI command shares."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from plughost.cli.output import fail
from plughost.errors import PlugHostError

if TYPE_CHECKING:
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


def run_with_host(workspace: Path, action: Callable[[Host], Awaitable[T]], plugin_dirs: list[Path] | None = None) -> T:
    """Load the workspace, run `action`, shut down; plughost errors become one line + exit 1."""
    import asyncio

    from plughost.host import Host

    async def main() -> T:
        async with Host(workspace, extra_plugin_dirs=plugin_dirs or ()) as host:
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
