"""`plughost init [DIR]`: a workspace in one command (like NoneBot's `nb create`).

It writes a commented `plughost.toml`, `plugins/hello/` (the `plughost new` skeleton: a command, a
poke route, a method and a test), `config/plugins/` and `.gitignore`; a `[[bots]]` table comes from
--onebot-ws-url / --onebot-reverse, or from questions when stdin is a terminal.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from plughost.cli.common import global_options
from plughost.cli.output import fail

EXAMPLE_PLUGIN = "hello"
HOST_CONFIG = """\
# plughost workspace configuration: every table and key is optional; unknown keys are errors.
# Reference: plughost's README.md and docs/ (bot.md for [[bots]], manage.md for [manage]).

[host]
plugin_dirs = ["plugins"]      # searched in order; `plughost run -p DIR` adds one
config_dir = "config/plugins"  # config/plugins/<id>.toml is handed to plugin <id>'s load hook
data_dir = "data"              # each plugin gets data/<id>/ (ctx.data_dir)
hot_reload = false             # true: reload a plugin when its files change (plughost run --reload)

[guard]
failure_threshold = 3          # consecutive failures that open a plugin's circuit breaker
cooldown_s = 60                # how long an open circuit stays open
default_timeout_s = 30         # a call that takes longer fails (a plugin's [limits] timeout_s wins)

[commands]
prefixes = ["/"]               # what starts a chat command
# owners = [10001]             # QQ ids that may run every command

# [manage]
# bind = "127.0.0.1:3210"      # the management API and web console of `plughost run`
{bots}"""
NO_BOTS = """
# A OneBot v11 bot (NapCat, Lagrange.OneBot, LLOneBot, go-cqhttp …), see docs/bot.md:
# [[bots]]
# id = "qq"
# transport = "ws-reverse"     # the implementation connects to plughost …
# bind = "127.0.0.1:8080"
# # transport = "ws-forward"   # … or plughost connects to it:
# # endpoint = "ws://127.0.0.1:3001/"
# # access_token = "change me"
"""
GITIGNORE = """\
# what plughost writes while it runs
data/
.plughost/
plugin-state.toml*
__pycache__/
"""


@dataclass(frozen=True)
class BotChoice:
    """The [[bots]] table `init` writes: plughost connects to `endpoint` (forward) or listens on `bind` (reverse)."""

    transport: str
    address: str
    access_token: str | None = None

    def toml(self) -> str:
        key = "endpoint" if self.transport == "ws-forward" else "bind"
        lines = ["", "[[bots]]", 'id = "qq"', f"transport = {json.dumps(self.transport)}"]
        lines.append(f"{key} = {json.dumps(self.address)}")
        if self.access_token:
            lines.append(f"access_token = {json.dumps(self.access_token)}")
        return "\n".join(lines) + "\n"


def init(
    directory: Annotated[
        Path | None,
        typer.Argument(help="Where to create it (default: -w, else the current directory).", show_default=False),
    ] = None,
    ws_url: Annotated[
        str | None,
        typer.Option(
            "--onebot-ws-url",
            metavar="URL",
            help="Add a bot that connects to this OneBot v11 WebSocket (ws://…).",
            show_default=False,
        ),
    ] = None,
    reverse: Annotated[
        str | None,
        typer.Option(
            "--onebot-reverse",
            metavar="HOST:PORT",
            help="Add a bot that listens here for a OneBot v11 implementation (reverse WebSocket).",
            show_default=False,
        ),
    ] = None,
    access_token: Annotated[
        str | None, typer.Option("--access-token", help="The bot's OneBot access token.", show_default=False)
    ] = None,
    interactive: Annotated[
        bool | None,
        typer.Option(
            "--interactive/--no-interactive",
            help="Ask about a bot (default: when stdin is a terminal and no --onebot-… option is given).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Write over a workspace's plughost.toml and example.")] = False,
) -> None:
    """Create a workspace: a commented plughost.toml, plugins/ with an example plugin, config/.

    The example plugin `hello` has a chat command (/hello), a route (it answers a poke) and a method
    (hello), and a test. A [[bots]] table is written from --onebot-ws-url or --onebot-reverse, or
    asked for when stdin is a terminal. An existing workspace is refused unless --force.
    """
    options = global_options()
    options.refuse_plugin_dirs("init")
    target = directory.resolve() if directory is not None else options.workspace_path
    if target.exists() and not target.is_dir():
        fail(f"{target} exists and is not a directory", 2)
    existing = [p.name for p in (target / "plughost.toml", target / "plugins") if p.exists()]
    if existing and not force:
        fail(f"{target} is already a workspace (it has {' and '.join(existing)}); pass --force to write over "
             "its plughost.toml and example plugin (other files are kept)", 2)  # fmt: skip
    bot = _bot_from_options(ws_url, reverse, access_token)
    if bot is None and (interactive if interactive is not None else sys.stdin.isatty() and not access_token):
        bot = _ask_for_bot()
    _write(target, bot, force)
    _say_next_steps(target, bot)


def _bot_from_options(ws_url: str | None, reverse: str | None, token: str | None) -> BotChoice | None:
    if ws_url and reverse:
        fail("--onebot-ws-url and --onebot-reverse exclude each other: choose one (more bots: edit plughost.toml)", 2)
    if ws_url:
        return BotChoice("ws-forward", _check_ws_url(ws_url, "--onebot-ws-url"), token)
    if reverse:
        return BotChoice("ws-reverse", _check_bind(reverse, "--onebot-reverse"), token)
    if token:
        fail("--access-token needs --onebot-ws-url or --onebot-reverse", 2)
    return None


def _check_ws_url(url: str, what: str) -> str:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("ws", "wss") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        fail(f"{what}: {url!r} is not a WebSocket address (e.g. ws://127.0.0.1:3001/)", 2)
    return url


def _check_bind(bind: str, what: str) -> str:
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        fail(f"{what}: {bind!r} is not host:port (e.g. 127.0.0.1:8080)", 2)
    return bind


def _ask_for_bot() -> BotChoice | None:
    """The questions of an interactive `init` (Ctrl-C or end of input: aborted, nothing written)."""
    transport = typer.prompt(
        "Connect a OneBot v11 bot? none, forward (plughost connects to it) or reverse (it connects to plughost)",
        default="none",
    ).strip()
    if transport not in ("none", "forward", "reverse"):
        fail(f"{transport!r} is not none, forward or reverse; nothing was written", 2)
    if transport == "none":
        return None
    if transport == "forward":
        address = typer.prompt("The implementation's WebSocket URL", default="ws://127.0.0.1:3001/")
        address = _check_ws_url(address, "the WebSocket URL")
    else:
        address = _check_bind(typer.prompt("Listen on host:port", default="127.0.0.1:8080"), "host:port")
    token = typer.prompt("Access token (empty: none)", default="", show_default=False)
    return BotChoice("ws-forward" if transport == "forward" else "ws-reverse", address, token or None)


def _write(target: Path, bot: BotChoice | None, force: bool) -> None:
    import shutil

    from plughost.cli.scaffold import scaffold
    from plughost.errors import PlugHostError

    try:
        (target / "config" / "plugins").mkdir(parents=True, exist_ok=True)
        (target / "plugins").mkdir(exist_ok=True)
        (target / "plughost.toml").write_text(HOST_CONFIG.format(bots=bot.toml() if bot else NO_BOTS), encoding="utf-8")
        gitignore = target / ".gitignore"
        if not gitignore.exists():
            gitignore.write_text(GITIGNORE, encoding="utf-8")
        example = target / "plugins" / EXAMPLE_PLUGIN
        if force and example.is_dir():
            shutil.rmtree(example)
        scaffold(EXAMPLE_PLUGIN, target / "plugins")
    except OSError as exc:
        fail(f"cannot create {target}: {exc.strerror or exc}")
    except PlugHostError as exc:
        fail(str(exc))


def _say_next_steps(target: Path, bot: BotChoice | None) -> None:
    import shlex

    lines = [
        f"created the workspace {target}",
        f"  plughost.toml, plugins/{EXAMPLE_PLUGIN}/ (a command, a route, a method, a test), config/plugins/",
    ]
    if bot is not None:
        where = "connects to" if bot.transport == "ws-forward" else "listens on"
        lines.append(f"  [[bots]] qq: plughost {where} {bot.address}")
    quoted = shlex.quote(str(target))
    lines += [
        "next:",
        f"  plughost run -w {quoted}                  # the console: /hello Ada, /help, /stop",
        f"  plughost exec '/hello Ada' -w {quoted}    # one command, then exit",
    ]
    typer.echo("\n".join(lines))
