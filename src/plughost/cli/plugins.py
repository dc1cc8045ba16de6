"""`plughost plugins …`: list, info, enable, disable, reload, execute."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from plughost.cli.common import JsonOption, PluginDirOption, WorkspaceOption, parse_json_option, run_with_host
from plughost.cli.output import fail, plugin_table, print_json, render_value, stdout
from plughost.errors import PluginNotFoundError

if TYPE_CHECKING:
    from plughost.host import Host

app = typer.Typer(help="Inspect and manage the plugins of a workspace.", no_args_is_help=True, rich_markup_mode=None)
PluginId = Annotated[str, typer.Argument(help="Plugin id.", show_default=False)]


@app.command("list")
def list_plugins(
    workspace: WorkspaceOption = Path("."),
    plugin_dir: PluginDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """List plugins with their state; invalid and not-loaded ones with their discovery status."""
    from rich.text import Text

    async def action(host: Host) -> Any:
        summaries = [i.summary() for i in host.manager.list_plugins()]
        return summaries, host.manager.catalog(), host.manager.last_discovery

    summaries, rows, report = run_with_host(workspace, action, plugin_dir)
    if as_json:
        print_json(rows)
        return
    out = stdout()
    out.print(plugin_table(summaries))
    for candidate in report.invalid:
        errors = "; ".join(str(e) for e in candidate.errors)
        out.print(Text.assemble(("invalid", "red"), f" {candidate.path}: {errors}"))
    for conflict in report.conflicts:
        out.print(Text.assemble(("conflict", "yellow"), f" {conflict}"))


@app.command()
def info(
    plugin_id: PluginId,
    workspace: WorkspaceOption = Path("."),
    plugin_dir: PluginDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one plugin: manifest fields, state, error, methods, commands and capabilities.

    --json adds the full manifest, descriptor and configuration.

    Call metrics (calls, failures, timeouts, latency) are not shown: they are always zero in this fresh host.

    In a running host (plughost run), /dynamic-errors shows circuit breakers and recent errors.
    """
    from rich.text import Text

    async def action(host: Host) -> dict[str, Any]:
        instance = host.manager.get_plugin(plugin_id)
        if instance is None:
            raise PluginNotFoundError(plugin_id)
        data = instance.summary()
        data["manifest"] = instance.manifest.model_dump(mode="json", exclude_defaults=True)
        data["descriptor"] = instance.descriptor.to_json() if instance.descriptor else None
        data["config"] = host.manager.get_config(plugin_id)
        return data

    data = run_with_host(workspace, action, plugin_dir)
    if as_json:
        print_json(data)
        return
    out = stdout()  # everything below comes from the plugin: printed as Text, never read as markup or emoji
    for key in ("id", "name", "version", "type", "runtime", "isolation", "state", "priority", "path", "error"):
        out.print(Text.assemble((key, "bold"), f": {data[key]}"))
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


def _toggle(plugin_id: str, workspace: Any, plugin_dir: Any, enable: bool) -> None:
    async def action(host: Host) -> bool:
        manager = host.manager
        return await (manager.enable_plugin(plugin_id) if enable else manager.disable_plugin(plugin_id))

    changed = run_with_host(workspace, action, plugin_dir)
    word = "enabled" if enable else "disabled"
    stdout().print(f"plugin '{plugin_id}' {'is now' if changed else 'is already'} {word}", highlight=False)


@app.command()
def enable(
    plugin_id: PluginId,
    workspace: WorkspaceOption = Path("."),
    plugin_dir: PluginDirOption = None,
) -> None:
    """Enable a plugin (saved in plugin-state.toml)."""
    _toggle(plugin_id, workspace, plugin_dir, True)


@app.command()
def disable(
    plugin_id: PluginId,
    workspace: WorkspaceOption = Path("."),
    plugin_dir: PluginDirOption = None,
) -> None:
    """Disable a plugin (saved in plugin-state.toml)."""
    _toggle(plugin_id, workspace, plugin_dir, False)


@app.command()
def reload(
    plugin_id: PluginId,
    workspace: WorkspaceOption = Path("."),
    plugin_dir: PluginDirOption = None,
) -> None:
    """Load the plugin's current code beside the old one and switch (checks that it loads)."""

    async def action(host: Host) -> str:
        instance = await host.manager.reload_plugin(plugin_id)
        return instance.manifest.version

    version = run_with_host(workspace, action, plugin_dir)
    stdout().print(f"plugin '{plugin_id}' reloaded (version {version})", highlight=False)


@app.command()
def execute(
    plugin_id: PluginId,
    method: Annotated[str | None, typer.Argument(help="Method to call; omit to run the plugin's execute().")] = None,
    args: Annotated[str | None, typer.Option("--args", "-a", help="Arguments as a JSON object.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds before the call is abandoned.")] = None,
    workspace: WorkspaceOption = Path("."),
    plugin_dir: PluginDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Call a plugin method (or its execute handler) and print the result."""
    from rich.text import Text

    payload = parse_json_option(args, "--args")
    if payload is not None and method is not None and not isinstance(payload, dict):
        fail('--args must be a JSON object of named arguments, e.g. \'{"name": "Ada"}\'')

    async def action(host: Host) -> Any:
        if host.manager.get_plugin(plugin_id) is None:
            raise PluginNotFoundError(plugin_id)
        if method is None:
            context = {"input_data": payload} if payload is not None else {}
            return await host.manager.execute_plugin(plugin_id, context)
        return await host.manager.execute(plugin_id, method, payload, timeout=timeout)

    result = run_with_host(workspace, action, plugin_dir)
    if as_json:
        print_json(result.model_dump(mode="python"))
    elif result.success:
        stdout().print(Text(render_value(result.result)))  # the plugin's text, not markup
    if not result.success:
        if not as_json:
            fail(result.error or "the call failed")
        raise typer.Exit(1)
