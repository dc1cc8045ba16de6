"""`plughost market …` and `plughost pack`: find, install, update, roll back and uninstall plugins; publish them.

Beside a running host every `market` command goes through its management API (`/api/v1/market`),
so an installed plugin loads in that host at once; without one it works on the workspace's files
(the next `plughost run` loads them). A dim line on stderr says which.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote, urlencode

import typer

from plughost.cli.common import JsonOption, KeyOption, LocalOption, NoHost, RemoteOption, Where, global_options
from plughost.cli.output import fail, note, print_json, stderr, stdout, warning_line
from plughost.errors import PlugHostError

if TYPE_CHECKING:
    from plughost.cli.remote import RemoteHost
    from plughost.market.market import Market

HELP = """Find, install, update, roll back and uninstall plugins from the indexes in plughost.toml [market].

Every download is checked against the SHA-256 its index names before anything is unpacked.
Beside a running host the commands go through its management API and installs load at once;
without one they change the workspace's files. See docs/market.md.
"""
app = typer.Typer(help=HELP, no_args_is_help=True, rich_markup_mode=None)
PluginId = Annotated[str, typer.Argument(help="Plugin id.", show_default=False)]
API = "/api/v1/market"
LONG_WAIT_S = 3600.0  # installs answer when done (downloads, pip)


class _Bar:
    """A rich progress bar on stderr for downloads (made only on a terminal, without --json)."""

    def __init__(self) -> None:
        self._progress: Any = None
        self._task: Any = None

    def start(self, label: str, total: int | None) -> None:
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=stderr(),
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task(f"downloading {label}", total=total)

    def advance(self, amount: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=amount)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def _through(
    where: Where,
    remote: Callable[[RemoteHost], Any],
    local: Callable[[Market], Awaitable[Any] | Any],
    *,
    changes: bool = False,
    as_json: bool = False,
) -> dict[str, Any]:
    """`remote(host)` when a host serves the workspace (or --remote), else `local(market)` on the files."""
    from plughost.cli.common import find_host, unreachable
    from plughost.cli.remote import HostUnreachable

    found = find_host(where, changes)
    if not isinstance(found, NoHost):
        try:
            with found:
                answer: dict[str, Any] = remote(found)
                return answer
        except HostUnreachable as exc:
            found = unreachable(found, exc, changes)
    return _locally(where.workspace, local, found, progress=not as_json)


def _locally(
    workspace: Path, local: Callable[[Market], Awaitable[Any] | Any], why: NoHost, *, progress: bool
) -> dict[str, Any]:
    import asyncio
    import inspect

    from plughost.market.market import Market

    async def main() -> dict[str, Any]:
        market = Market.for_workspace(workspace, progress=_Bar() if bar else None)
        note(f"{why.reason}: working on the workspace's files{why.detail}")
        result = local(market)
        if inspect.isawaitable(result):
            result = await result
        data: dict[str, Any] = result.model_dump(mode="json")
        return data

    bar = progress and sys.stderr.isatty()
    try:
        return asyncio.run(main())
    except PlugHostError as exc:
        fail(str(exc))


def _call(host: RemoteHost, method: str, path: str, body: Any = None, *, wait_s: float | None = None) -> Any:
    from plughost.market.errors import ERROR_CODES

    return host.request(method, f"{API}{path}", body, wait_s=wait_s, own=ERROR_CODES)


def _spinner(text: str, as_json: bool) -> Any:
    """A spinner on stderr while the host works (a terminal without --json only)."""
    import contextlib

    if as_json or not sys.stderr.isatty():
        return contextlib.nullcontext()
    return stderr().status(text)


def _warnings(data: dict[str, Any]) -> None:
    for warning in data.get("warnings") or []:
        warning_line(str(warning))


def _where(remote: str | None, key: str | None, local: bool) -> Where:
    global_options().refuse_plugin_dirs("market")  # it works on the workspace's files, loading no plugin
    return Where(global_options().workspace, None, remote, key, local)


@app.command()
def refresh(
    remote: RemoteOption = None,
    key: KeyOption = None,
    local: LocalOption = False,
    as_json: JsonOption = False,
) -> None:
    """Fetch every index now and cache it (an unreachable index: its cache is used, with a warning)."""
    data = _through(
        _where(remote, key, local),
        lambda host: _call(host, "POST", "/refresh", wait_s=LONG_WAIT_S),
        lambda market: market.refresh(),
    )
    if as_json:
        print_json(data)
    else:
        from rich.text import Text

        if not data["indexes"]:
            stdout().print("no index is configured: add [[market.indexes]] to plughost.toml", highlight=False)
        for index in data["indexes"]:
            if index["source"] == "unavailable":
                stdout().print(
                    Text.assemble((index["name"], "bold"), ": ", ("unavailable", "red"), f" — {index['error']}")
                )
                continue
            signed = f", signed by {index['signed_by']}" if index.get("signed_by") else ""
            origin = "fetched" if index["source"] == "network" else "from the cache"
            stdout().print(Text.assemble((index["name"], "bold"), f": {index['plugins']} plugins ({origin}{signed})"))
        _warnings(data)
    if any(i["source"] == "unavailable" for i in data["indexes"]):
        raise typer.Exit(1)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="Words to find in id, name, description and tags.")] = "",
    tag: Annotated[str | None, typer.Option("--tag", "-t", help="Only plugins with this tag.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=500, help="At most this many.")] = 20,
    remote: RemoteOption = None,
    key: KeyOption = None,
    local: LocalOption = False,
    as_json: JsonOption = False,
) -> None:
    """Search the indexes (all plugins without a query)."""
    params = urlencode({k: v for k, v in {"q": query, "tag": tag, "limit": limit}.items() if v not in (None, "")})
    data = _through(
        _where(remote, key, local),
        lambda host: _call(host, "GET", f"/search?{params}", wait_s=LONG_WAIT_S),
        lambda market: market.search(query, tag=tag, limit=limit),
    )
    if as_json:
        print_json(data)
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title=f"{data['total']} found"
        + (f", {len(data['results'])} shown" if data["total"] > len(data["results"]) else ""),
        title_justify="left",
    )
    for column in ("id", "latest", "installed", "index", "description"):
        table.add_column(column, overflow="fold")
    for hit in data["results"]:
        table.add_row(
            Text(hit["id"]),
            Text(hit["latest"]),
            Text(hit.get("installed") or ""),
            Text(hit["index"]),
            Text(hit["description"]),
        )
    stdout().print(table)
    _warnings(data)


@app.command()
def info(
    plugin_id: PluginId,
    version: Annotated[str | None, typer.Option("--version", "-v", help="Only this version.")] = None,
    remote: RemoteOption = None,
    key: KeyOption = None,
    local: LocalOption = False,
    as_json: JsonOption = False,
) -> None:
    """Show a plugin of the indexes: description, versions (and whether each fits here), what is installed."""
    query = f"?{urlencode({'version': version})}" if version else ""
    data = _through(
        _where(remote, key, local),
        lambda host: _call(host, "GET", f"/plugins/{quote(plugin_id, safe='')}{query}", wait_s=LONG_WAIT_S),
        lambda market: market.info(plugin_id, version),
    )
    if as_json:
        print_json(data)
        return
    from rich.table import Table
    from rich.text import Text

    out = stdout()
    installed = data.get("installed")
    fields = {
        "id": data["id"],
        "name": data["name"],
        "description": data["description"],
        "tags": ", ".join(data["tags"]),
        "author": data["author"],
        "homepage": data.get("homepage") or "",
        "index": data["index"],
        "latest": data.get("latest") or "none fits this host",
        "installed": f"{installed['version']}" if installed else "no",
        "kept versions": ", ".join(data["kept_versions"]),
    }
    for name, value in fields.items():
        if value:
            out.print(Text.assemble((name, "bold"), f": {value}"))
    table = Table(title="versions", title_justify="left")
    for column in ("version", "runtime", "platforms", "plughost", "dependencies", "python", "fits"):
        table.add_column(column, overflow="fold")
    for entry in data["versions"]:
        table.add_row(
            Text(entry["version"]),
            Text(entry["runtime"]),
            Text(", ".join(entry["platforms"]) or "any"),
            Text(entry["plughost"] or "any"),
            Text(", ".join(entry["dependencies"])),
            Text(", ".join(entry["python"])),
            Text("yes" if entry["fits"] else f"no: {entry['why_not']}", style="" if entry["fits"] else "yellow"),
        )
    out.print(table)
    _warnings(data)


def _split(spec: str) -> tuple[str, str | None]:
    plugin_id, sep, version = spec.rpartition("@")
    if not sep:
        return spec, None
    if not plugin_id or not version:
        fail(f"'{spec}': write ID or ID@VERSION (e.g. weather@1.2.0)")
    return plugin_id, version


def _report(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(data)
    else:
        out = stdout()
        for change in data["changes"]:
            state = f" ({change['state']})" if change.get("state") else ""
            dependency = f" as a dependency of {change['required_by']}" if change.get("required_by") else ""
            if change["action"] == "install":
                text = f"installed {change['id']} {change['version']}{dependency}{state}"
            elif change["action"] == "reinstall":
                text = f"reinstalled {change['id']} {change['version']}{state}"
            else:
                text = (
                    f"{change['action']}d {change['id']} {change['previous']} → {change['version']}{dependency}{state}"
                )
            out.print(text, highlight=False)
        _warnings(data)
        if not data["changes"] and not data["failed"] and not data["warnings"]:
            out.print("everything is up to date", highlight=False)
        for failure in data["failed"]:
            stderr().print(f"error: {failure['id']}: {failure['message']}", highlight=False, markup=False)
    if data["failed"]:
        raise typer.Exit(1)


@app.command()
def install(
    spec: Annotated[
        str, typer.Argument(metavar="ID[@VERSION]", help="Plugin id, optionally @version.", show_default=False)
    ],
    enable: Annotated[bool, typer.Option("--enable/--no-enable", help="Enable it once installed.")] = True,
    remote: RemoteOption = None,
    key: KeyOption = None,
    local: LocalOption = False,
    as_json: JsonOption = False,
) -> None:
    """Install a plugin (and the plugins it depends on): download, check SHA-256, unpack, pip, load, enable.

    With a version when another one is installed, switches to it (the current one is kept for rollback).
    """
    plugin_id, version = _split(spec)
    body = {"id": plugin_id, "version": version, "enable": enable}

    def there(host: RemoteHost) -> Any:
        with _spinner(f"installing {spec} in the host…", as_json):
            return _call(host, "POST", "/install", body, wait_s=LONG_WAIT_S)

    data = _through(
        _where(remote, key, local),
        there,
        lambda market: market.install(plugin_id, version, enable=enable),
        changes=True,
        as_json=as_json,
    )
    _report(data, as_json)


@app.command()
def update(
    plugin_id: Annotated[str | None, typer.Argument(help="The plugin to update.", show_default=False)] = None,
    all_plugins: Annotated[bool, typer.Option("--all", help="Update every plugin the market installed.")] = False,
    remote: RemoteOption = None,
    key: KeyOption = None,
    local: LocalOption = False,
    as_json: JsonOption = False,
) -> None:
    """Update a plugin (or --all) to the newest version that fits; the previous one is kept for rollback."""
    if (plugin_id is None) == (not all_plugins):
        fail("name the plugin to update, or --all", 2)

    def there(host: RemoteHost) -> Any:
        with _spinner("updating in the host…", as_json):
            return _call(host, "POST", "/update", {"id": plugin_id, "all": all_plugins}, wait_s=LONG_WAIT_S)

    data = _through(
        _where(remote, key, local),
        there,
        lambda market: market.update(plugin_id, all_plugins=all_plugins),
        changes=True,
        as_json=as_json,
    )
    _report(data, as_json)


@app.command()
def uninstall(
    plugin_id: PluginId,
    purge: Annotated[bool, typer.Option("--purge", help="Remove its config/ and data/ too.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Even though other plugins depend on it.")] = False,
    remote: RemoteOption = None,
    key: KeyOption = None,
    local: LocalOption = False,
    as_json: JsonOption = False,
) -> None:
    """Stop a plugin the market installed and remove its files (config and data stay unless --purge)."""
    body = {"id": plugin_id, "purge": purge, "force": force}
    data = _through(
        _where(remote, key, local),
        lambda host: _call(host, "POST", "/uninstall", body, wait_s=LONG_WAIT_S),
        lambda market: market.uninstall(plugin_id, purge=purge, force=force),
        changes=True,
    )
    if as_json:
        print_json(data)
        return
    if data["dependents"]:
        stderr().print(
            f"warning: {', '.join(data['dependents'])} depend on '{plugin_id}' and will fail without it",
            style="yellow",
            highlight=False,
        )
    purged = " (its configuration and data too)" if data["purged"] else ""
    stdout().print(f"uninstalled {plugin_id} {data['version']}{purged}", highlight=False)


@app.command("list")
def list_installed(
    remote: RemoteOption = None,
    key: KeyOption = None,
    local: LocalOption = False,
    as_json: JsonOption = False,
) -> None:
    """List the plugins the market installed: version, newest cached version, index, state, kept versions."""
    data = _through(
        _where(remote, key, local),
        lambda host: _call(host, "GET", "/installed"),
        lambda market: market.installed(),
    )
    if as_json:
        print_json(data)
        return
    import time

    from rich.table import Table
    from rich.text import Text

    table = Table(title="installed from the market", title_justify="left")
    for column in ("id", "version", "latest", "index", "state", "installed", "kept"):
        table.add_column(column, overflow="fold")
    for row in data["plugins"]:
        latest = row.get("latest") or ""
        newer = latest and latest != row["version"]
        table.add_row(
            Text(row["id"]),
            Text(row["version"] + (" (dependency)" if row.get("dependency") else "")),
            Text(latest, style="green" if newer else ""),
            Text(row["index"]),
            Text(row.get("state") or ""),
            Text(time.strftime("%Y-%m-%d %H:%M", time.localtime(row["installed_at"]))),
            Text(", ".join(row["kept_versions"])),
        )
    stdout().print(table)


@app.command()
def rollback(
    plugin_id: PluginId,
    version: Annotated[
        str | None, typer.Option("--version", "-v", help="A kept version (default: the one before).")
    ] = None,
    remote: RemoteOption = None,
    key: KeyOption = None,
    local: LocalOption = False,
    as_json: JsonOption = False,
) -> None:
    """Switch back to the version used before the current one (a reload in a running host; enabled state kept)."""
    body = {"id": plugin_id, "version": version}
    data = _through(
        _where(remote, key, local),
        lambda host: _call(host, "POST", "/rollback", body, wait_s=LONG_WAIT_S),
        lambda market: market.rollback(plugin_id, version),
        changes=True,
    )
    if as_json:
        print_json(data)
        return
    state = f" ({data['state']})" if data.get("state") else ""
    stdout().print(f"rolled {plugin_id} back from {data['previous']} to {data['version']}{state}", highlight=False)


@app.command()
def history(
    plugin_id: PluginId,
    remote: RemoteOption = None,
    key: KeyOption = None,
    local: LocalOption = False,
    as_json: JsonOption = False,
) -> None:
    """What the market installed, updated, rolled back or uninstalled for a plugin, and when."""
    data = _through(
        _where(remote, key, local),
        lambda host: _call(host, "GET", f"/history/{quote(plugin_id, safe='')}"),
        lambda market: market.history(plugin_id),
    )
    if as_json:
        print_json(data)
        return
    import time

    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"{plugin_id}: now {data.get('current') or 'not installed'}", title_justify="left")
    for column in ("when", "action", "version", "previous", "index"):
        table.add_column(column)
    for entry in data["entries"]:
        table.add_row(
            Text(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry["at"]))),
            Text(entry["action"]),
            Text(entry.get("version") or ""),
            Text(entry.get("previous") or ""),
            Text(entry.get("index") or ""),
        )
    stdout().print(table)
    if data["kept_versions"]:
        stdout().print(f"kept for rollback: {', '.join(data['kept_versions'])}", highlight=False)


@app.command()
def keygen(
    private_key: Annotated[
        Path, typer.Argument(help="Where to write the private key (PEM, mode 0600).", dir_okay=False)
    ],
) -> None:
    """Make an ed25519 key to sign indexes with; prints the public key for [market.trusted_keys]."""
    import os

    from plughost.market.verify import generate_key

    if private_key.exists():
        fail(f"{private_key} exists; choose another path")
    try:
        pem, public = generate_key()
        fd = os.open(private_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
    except (PlugHostError, OSError) as exc:
        fail(str(exc))
    note(f"wrote {private_key}; put the public key below in [market.trusted_keys]")
    sys.stdout.write(public + "\n")


@app.command()
def sign(
    index: Annotated[Path, typer.Argument(help="The index file to sign.", exists=True, dir_okay=False)],
    private_key: Annotated[
        Path, typer.Option("--key", help="The private key (PEM, from `market keygen`).", exists=True)
    ],
) -> None:
    """Write INDEX.sig: the ed25519 signature of the index's exact bytes (publish it beside the index)."""
    from plughost.market.verify import sign as sign_bytes

    try:
        signature = sign_bytes(index.read_bytes(), private_key.read_bytes())
        target = index.with_name(index.name + ".sig")
        target.write_text(signature + "\n", encoding="ascii")
    except (PlugHostError, OSError) as exc:
        fail(str(exc))
    note(f"wrote {target}")


def pack(
    directory: Annotated[Path, typer.Argument(help="The plugin directory.", exists=True, file_okay=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the archive.", file_okay=False)] = Path(
        "dist"
    ),
    url: Annotated[
        str | None, typer.Option("--url", help="Download URL for the entry (default: the archive's name).")
    ] = None,
    platforms: Annotated[
        list[str] | None,
        typer.Option("--platform", help="os/arch it runs on (repeatable; default: this machine for native/process)."),
    ] = None,
    plughost: Annotated[str, typer.Option("--plughost", help="plughost versions it needs, e.g. '>=0.1,<1'.")] = "",
    archive_format: Annotated[str, typer.Option("--format", help="tar.gz or zip.")] = "tar.gz",
) -> None:
    """Pack a plugin directory into an archive and print its index entry (with the SHA-256) as JSON."""
    from plughost.market.pack import pack_plugin

    if archive_format not in ("tar.gz", "zip"):
        fail(f"--format must be tar.gz or zip, not {archive_format!r}", 2)
    try:
        packed = pack_plugin(
            directory,
            out,
            url=url,
            platforms=platforms or (),
            plughost=plughost,
            archive_format="zip" if archive_format == "zip" else "tar.gz",
        )
    except (PlugHostError, OSError) as exc:
        fail(str(exc))
    note(f"wrote {packed.archive} ({packed.size} bytes, sha256 {packed.sha256})")
    sys.stdout.write(json.dumps(packed.entry, indent=2) + "\n")
