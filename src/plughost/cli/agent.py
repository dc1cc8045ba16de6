"""`plughost mcp` (the workspace's plugins as an MCP server over stdio) and `plughost agent …`.

Imports stay inside the commands: `plughost --help` must not pay for the host, httpx or the `mcp` SDK.
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
    find_host,
    global_options,
    parse_json_option,
    run_with_host,
    unreachable,
)
from plughost.cli.output import fail, note, print_json, stdout

if TYPE_CHECKING:
    from plughost.host import Host

agent_app = typer.Typer(
    name="agent",
    help="The agent: the plugins' tools, LurkBot's prompt block, a question to the configured model.",
    no_args_is_help=True,
)
ToolFormat = Annotated[
    str, typer.Option("--format", "-f", help="table, openai, anthropic or mcp (the JSON each provider takes).")
]


def register(app: typer.Typer) -> None:
    """Add `plughost mcp` and `plughost agent …` to the CLI."""
    app.command("mcp")(mcp)
    app.add_typer(agent_app, name="agent")


def mcp(remote: RemoteOption = None, key: KeyOption = None, local: LocalOption = False) -> None:
    """Serve the workspace's plugins over MCP on stdin/stdout (for desktop agents and IDEs).

    Tools are the plugins' methods (and the commands of [agent.tools] commands), resources their
    manifests, docs and pages; clients are told when plugins change. When a host runs for the
    workspace (or --remote names one), MCP is relayed to its /mcp endpoint: the agent uses the
    running plugins and their state. Otherwise (or with --local) the workspace is loaded in this
    process, which the MCP client starts and stops. Logs go to stderr. Needs the agent extra.
    """
    import asyncio
    import importlib.util

    if importlib.util.find_spec("mcp") is None:
        fail("the MCP server needs the mcp SDK: pip install 'plughost[agent]'")
    from plughost.agent.mcp_relay import RelayError, relay_stdio
    from plughost.cli.remote import HostUnreachable

    where = Where.given(remote, key, local)
    found = find_host(where)
    if not isinstance(found, NoHost):
        try:
            with found:
                found.status()  # the host answers and takes the key: a clear error now, not an MCP one later
                if not found.serves("/mcp"):
                    fail(
                        f"the host at {found.url} serves no MCP ([agent.mcp] http = false in its plughost.toml, "
                        "or plughost[agent] is not installed there); --local serves this workspace from here"
                    )
        except HostUnreachable as exc:
            found = unreachable(found, exc, changes_state=False)
        else:  # the request said "via the running host at …" on stderr
            try:
                asyncio.run(relay_stdio(f"{found.url}/mcp", found.key))
            except RelayError as exc:
                fail(str(exc))
            return
    note(found.note())
    _serve_workspace(where)


def _serve_workspace(where: Where) -> None:
    """`plughost mcp` without a running host: load the workspace here and serve it over stdio."""
    import asyncio
    import signal

    from plughost.agent.mcp_server import serve_stdio
    from plughost.errors import PlugHostError
    from plughost.host import Host

    def make_host() -> Host:
        host = Host(where.workspace, extra_plugin_dirs=where.plugin_dirs or ())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, host.request_stop)
        return host

    try:
        asyncio.run(serve_stdio(make_host))
    except PlugHostError as exc:
        fail(str(exc))


@agent_app.command("tools")
def tools(
    output: ToolFormat = "table",
) -> None:
    """List the tools the plugins offer an agent (name, plugin, permission, description)."""
    if output not in ("table", "openai", "anthropic", "mcp"):
        fail(f"--format must be table, openai, anthropic or mcp, not {output!r}", 2)

    async def catalog(host: Host) -> list[dict[str, Any]]:
        from plughost.agent import AgentSettings, ToolCatalog

        settings = AgentSettings.from_host_config(host.config)
        found = ToolCatalog(host.manager, command_plugins=settings.tools.commands)
        try:
            if output == "table":
                return [
                    {"name": t.name, "tool": t.label, "permission": str(t.permission), "description": t.description}
                    for t in found.tools()
                ]
            return {"openai": found.openai_tools, "anthropic": found.anthropic_tools, "mcp": found.mcp_tools}[output]()
        finally:
            found.close()

    rows = run_with_host(global_options().workspace, catalog, global_options().plugin_dirs)
    if output != "table":
        print_json(rows)
        return
    from rich.table import Table

    table = Table(title=f"{len(rows)} tools")
    for column in ("name", "tool", "permission", "description"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["name"], row["tool"], row["permission"], row["description"].split("\n")[0])
    stdout().print(table)


@agent_app.command("prompt")
def prompt(
    context: Annotated[
        str | None, typer.Option("--context", "-c", help="The execution context as JSON (user_id, input_data …).")
    ] = None,
    include_errors: Annotated[bool, typer.Option("--include-errors", help="Show failed plugins too.")] = False,
) -> None:
    """Run every `execute()` plugin and print LurkBot's block the agent appends to its system prompt."""
    parsed = parse_json_option(context, "--context")
    if parsed is not None and not isinstance(parsed, dict):
        fail("--context must be a JSON object", 2)

    async def block(host: Host) -> str:
        from plughost.agent import plugin_results_for_prompt

        return await plugin_results_for_prompt(host.manager, parsed, include_errors)

    text = run_with_host(global_options().workspace, block, global_options().plugin_dirs)
    typer.echo(text or "(no plugin with execute() answered)")


@agent_app.command("ask")
def ask(
    question: Annotated[str, typer.Argument(help="What to ask.", show_default=False)],
    as_json: JsonOption = False,
) -> None:
    """Ask the model configured in [agent] one question; it may call every tool (you are the operator)."""

    async def run(host: Host) -> dict[str, Any]:
        from plughost.agent import Agent, AgentSettings

        settings = AgentSettings.from_host_config(host.config)
        if not settings.model_configured:
            fail("configure a model first: [agent] base_url and model in plughost.toml (see docs/agent.md)")
        async with Agent.from_settings(host.manager, settings) as agent:
            done = await agent.run(question, conversation="cli")
        return {
            "answer": done.answer,
            "stop_reason": done.stop_reason,
            "steps": done.steps,
            "tool_calls": [
                {"name": c.name, "arguments": c.arguments, "result": c.result.to_json()} for c in done.tool_calls
            ],
            "error": done.error,
        }

    result = run_with_host(global_options().workspace, run, global_options().plugin_dirs)
    if as_json:
        print_json(result)
        return
    for call in result["tool_calls"]:
        outcome = "ok" if call["result"]["ok"] else f"error: {call['result']['error']['message']}"
        stdout().print(f"→ {call['name']}({call['arguments']}) {outcome}", style="dim", highlight=False)
    typer.echo(result["answer"])
    if result["stop_reason"] != "answer":
        raise typer.Exit(1)
