"""`plughost plugins …`: list, info, enable, disable, reload, execute.

Each command talks to the host serving the workspace when one runs (or to --remote), else loads
the workspace in this process (see `common.through_host`); the output is the same either way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from plughost.cli.common import (
    JsonOption,
    KeyOption,
    LocalOption,
    NoHost,
    RemoteOption,
    Where,
    parse_json_option,
    through_host,
)
from plughost.cli.output import fail, note, print_catalog, print_json, render_value, stdout
from plughost.errors import PlugHostError, PluginNotFoundError

if TYPE_CHECKING:
    from plughost.cli.remote import RemoteHost
    from plughost.host import Host

HELP = """Inspect and manage the plugins of a workspace.

Beside a running host (`plughost run`), every command goes through its management API: changes
take effect in the host and are saved by it. Without one, the workspace is loaded for the command
(`list` reads the plugins' files and loads none, unless --load).
"""
app = typer.Typer(help=HELP, no_args_is_help=True, rich_markup_mode=None)
PluginId = Annotated[str, typer.Argument(help="Plugin id.", show_default=False)]


LoadOption = Annotated[
    bool,
    typer.Option(
        "--load",
        help="Without a running host, load the plugins here to show what they offer and which fail to load "
        "(a running host's are loaded already; --local always loads).",
    ),
]


@app.command("list")
def list_plugins(
    remote: RemoteOption = None,
    key: KeyOption = None,
    local: LocalOption = False,
    load: LoadOption = False,
    as_json: JsonOption = False,
) -> None:
    """List plugins with their state; invalid ones with why.

    Through a running host: the plugins as it runs them, with what each offers and its error. Without
    one, the plugins are read from their files and none is loaded: the state is the one each starts in
    (--load or --local load them instead).
    """
    where = Where.given(remote, key, local)

    async def here(host: Host) -> tuple[list[dict[str, Any]], list[str]]:
        return host.manager.catalog(), [str(c) for c in host.manager.last_discovery.conflicts]

    def there(host: RemoteHost) -> tuple[list[dict[str, Any]], list[str]]:
        return host.plugins(), []

    def from_files(found: NoHost) -> tuple[list[dict[str, Any]], list[str]]:
        from plughost.cli.inventory import installed_plugins, listed_note

        try:
            listing = installed_plugins(where.workspace, where.plugin_dirs or ())
        except PlugHostError as exc:
            fail(str(exc))
        note(listed_note(found.reason))
        return listing

    rows, conflicts = through_host(where, there, here, unloaded=None if load else from_files)
    if as_json:
        print_json(rows)
        return
    print_catalog(rows, conflicts)


@app.command()
def info(
    plugin_id: PluginId,
    remote: RemoteOption = None,
    key: KeyOption = None,
    local: LocalOption = False,
    as_json: JsonOption = False,
) -> None:
    """Show one plugin: manifest fields, state, error, methods, commands and capabilities.

    --json adds the full manifest, descriptor and configuration.

    Through a running host, call metrics (calls, failures, timeouts, latency) and the circuit breaker
    are shown too (--json: config_schema and guard). Call metrics are not shown when the workspace is
    loaded for the command: they are always zero in that fresh host.
    """

    async def here(host: Host) -> dict[str, Any]:
        instance = host.manager.get_plugin(plugin_id)
        if instance is None:  # discovered but not loaded (an invalid one, say): why, from its files
            candidate = host.manager.discovered(plugin_id)
            if candidate is None:
                raise PluginNotFoundError(plugin_id)
            return candidate.row() | {"descriptor": None, "config": host.manager.get_config(plugin_id)}
        data = instance.summary()
        data["manifest"] = instance.manifest.model_dump(mode="json", exclude_defaults=True)
        data["descriptor"] = instance.descriptor.to_json() if instance.descriptor else None
        data["config"] = host.manager.get_config(plugin_id)
        return data

    def there(host: RemoteHost) -> dict[str, Any]:
        detail = host.plugin(plugin_id)
        extra = ("manifest", "descriptor", "config", "config_schema", "guard")
        return dict(detail["summary"]) | {k: detail.get(k) for k in extra}

    data = through_host(Where.given(remote, key, local), there, here)
    if as_json:
        print_json(data)
        return
    _print_info(data)


def _print_info(data: dict[str, Any]) -> None:
    """Everything below comes from the plugin: printed as Text, never read as markup or emoji."""
    from rich.text import Text

    out = stdout()
    loaded = data.get("state") is not None
    for key in ("id", "name", "version", "type", "runtime", "isolation", "state", "priority", "path", "error"):
        if loaded or data.get(key) is not None:  # what an unloaded plugin's files do not say is left out
            out.print(Text.assemble((key, "bold"), f": {data.get(key)}"))
    if data.get("offers"):
        out.print(Text.assemble(("offers", "bold"), f": {', '.join(data['offers'])}"))
    if not loaded:  # discovered, not loaded
        out.print(Text.assemble(("status", "bold"), f": {data.get('status')} (not loaded)"))
        for error in data.get("errors") or ():
            out.print(Text.assemble("  ", ("invalid", "red"), f": {error}"))
    if data.get("guard"):
        out.print(Text.assemble(("metrics", "bold"), f": {_metrics(data['guard'])}"))
    descriptor = data["descriptor"] or {}
    for method in descriptor.get("methods", []):
        out.print(Text.assemble("  method ", (method["name"], "cyan"), f" {method.get('description', '')}"))
    for command in descriptor.get("commands", []):
        out.print(Text.assemble("  command ", (command["name"], "cyan"), f" {command.get('description', '')}"))
    if descriptor.get("capabilities"):
        out.print(Text(f"  capabilities: {', '.join(descriptor['capabilities'])}"))
    inactive_reason = (descriptor.get("metadata") or {}).get("inactive_reason")
    if inactive_reason:
        out.print(Text.assemble("  ", ("inactive", "yellow"), f": {inactive_reason}"))


def _metrics(guard: dict[str, Any]) -> str:
    """`12 calls, 1 failures, 0 timeouts, p99 3.2 ms; breaker closed` from a guard snapshot."""
    handlers = list((guard.get("handlers") or {}).values())
    totals = {k: sum(int(h.get(k) or 0) for h in handlers) for k in ("calls", "failures", "timeouts")}
    p99 = max((h["p99_ms"] for h in handlers if h.get("p99_ms") is not None), default=None)
    latency = f", p99 {p99:g} ms" if p99 is not None else ""
    breaker = (guard.get("breaker") or {}).get("state", "?")
    return f"{totals['calls']} calls, {totals['failures']} failures, {totals['timeouts']} timeouts{latency}; " + (
        f"breaker {breaker}"
    )


def _toggle(where: Where, plugin_id: str, enable: bool) -> None:
    async def here(host: Host) -> bool:
        manager = host.manager
        return await (manager.enable_plugin(plugin_id) if enable else manager.disable_plugin(plugin_id))

    def there(host: RemoteHost) -> bool:
        return bool(host.action(plugin_id, "enable" if enable else "disable")["changed"])

    changed = through_host(where, there, here, changes_state=True)
    word = "enabled" if enable else "disabled"
    stdout().print(f"plugin '{plugin_id}' {'is now' if changed else 'is already'} {word}", highlight=False)


@app.command()
def enable(
    plugin_id: PluginId,
    remote: RemoteOption = None,
    key: KeyOption = None,
    local: LocalOption = False,
) -> None:
    """Enable a plugin (saved in plugin-state.toml; in the running host when one runs)."""
    _toggle(Where.given(remote, key, local), plugin_id, True)


@app.command()
def disable(
    plugin_id: PluginId,
    remote: RemoteOption = None,
    key: KeyOption = None,
    local: LocalOption = False,
) -> None:
    """Disable a plugin (saved in plugin-state.toml; in the running host when one runs)."""
    _toggle(Where.given(remote, key, local), plugin_id, False)


@app.command()
def reload(
    plugin_id: PluginId,
    remote: RemoteOption = None,
    key: KeyOption = None,
    local: LocalOption = False,
) -> None:
    """Load the plugin's current code beside the old one and switch (checks that it loads).

    In a running host the new code serves from then on; with --local (or no host) it only checks.
    """

    async def here(host: Host) -> str:
        instance = await host.manager.reload_plugin(plugin_id)
        return instance.manifest.version

    def there(host: RemoteHost) -> str:
        return str(host.action(plugin_id, "reload")["version"])

    version = through_host(Where.given(remote, key, local), there, here)
    stdout().print(f"plugin '{plugin_id}' reloaded (version {version})", highlight=False)


@app.command()
def execute(
    plugin_id: PluginId,
    method: Annotated[str | None, typer.Argument(help="Method to call; omit to run the plugin's execute().")] = None,
    args: Annotated[str | None, typer.Option("--args", "-a", help="Arguments as a JSON object.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds before the call is abandoned.")] = None,
    remote: RemoteOption = None,
    key: KeyOption = None,
    local: LocalOption = False,
    as_json: JsonOption = False,
) -> None:
    """Call a plugin method (or its execute handler) and print the result."""
    payload = parse_json_option(args, "--args")
    if payload is not None and method is not None and not isinstance(payload, dict):
        fail('--args must be a JSON object of named arguments, e.g. \'{"name": "Ada"}\'', 2)

    async def here(host: Host) -> dict[str, Any]:
        if host.manager.get_plugin(plugin_id) is None:
            raise PluginNotFoundError(plugin_id)
        if method is None:
            context = {"input_data": payload} if payload is not None else {}
            result = await host.manager.execute_plugin(plugin_id, context)
        else:
            result = await host.manager.execute(plugin_id, method, payload, timeout=timeout)
        return result.model_dump(mode="python")

    def there(host: RemoteHost) -> dict[str, Any]:
        return host.execute(plugin_id, method, payload, timeout)

    result = through_host(Where.given(remote, key, local), there, here)
    _print_result(result, as_json)


# what the caller got wrong (arguments that do not fit the method, no such method): exit 2, like a bad option
CALLER_ERRORS = frozenset({"invalid_request", "unknown_handler"})


def _print_result(result: dict[str, Any], as_json: bool) -> None:
    """A PluginExecutionResult: the value (or JSON), or one error line; a failed call exits 1 (2: bad arguments)."""
    from rich.text import Text

    if as_json:
        print_json(result)
    elif result["success"]:
        stdout().print(Text(render_value(result.get("result"))))  # the plugin's text, not markup
    if not result["success"]:
        code = 2 if (result.get("metadata") or {}).get("code") in CALLER_ERRORS else 1
        if not as_json:
            fail(result.get("error") or "the call failed", code)
        raise typer.Exit(code)


@app.command("remote-cert")
def remote_cert(
    show_path: Annotated[bool, typer.Option("--path", help="Print where the identity is kept instead.")] = False,
) -> None:
    """Print this workspace's client certificate (PEM) for remote plugins (`[remote]` in a manifest).

    Start the remote go-plugin plugin with it, then paste the handshake line it prints into
    the manifest:  PLUGIN_CLIENT_CERT="$(plughost plugins remote-cert)" ./my-plugin

    The certificate and its key are made on first use and kept in .plughost/remote-client.pem
    (mode 0600): every plugin started with this certificate accepts this workspace's hosts.
    """
    from plughost.cli.common import global_options
    from plughost.runtime.goplugin.remote import IDENTITY_FILE, RemoteError, workspace_identity

    path = global_options().workspace / IDENTITY_FILE
    try:
        identity = workspace_identity(path)
    except RemoteError as exc:
        fail(str(exc))
    typer.echo(str(path) if show_path else identity.cert_pem, nl=show_path)
