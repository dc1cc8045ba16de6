"""`plughost worker`: serve one Python plugin as a go-plugin plugin (the host starts it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def worker(
    plugin_id: Annotated[str, typer.Option("--plugin-id", help="The plugin's id.")],
    path: Annotated[Path, typer.Option("--path", help="The plugin directory or file.")],
    data_dir: Annotated[Path, typer.Option("--data-dir", help="The plugin's data directory.")],
) -> None:
    """Serve a Python plugin over the go-plugin protocol (plughost.v1 and Jank's PluginService).

    The host runs this for plugins with isolation = "process"; started by hand it prints
    go-plugin's "This binary is a plugin" notice and exits 1.
    """
    from plughost.runtime.worker import main

    raise typer.Exit(main(["--plugin-id", plugin_id, "--path", str(path), "--data-dir", str(data_dir)]))
