"""`plughost new <id>` (and the example plugin of `plughost init`): a plugin skeleton that loads and passes its
generated test — in Python, or natively in C or Rust (`scaffold_native`)."""

from __future__ import annotations

from pathlib import Path

from plughost.core.config import HOST_CONFIG_FILE
from plughost.errors import PlugHostError
from plughost.sdk.manifest import is_valid_plugin_id

MANIFEST = """\
id = "{id}"
version = "0.1.0"
description = "Describe what {id} does."
type = "tool"
runtime = "python"
entry = "plugin.py"
tags = []
"""

PLUGIN = """\
\"\"\"{id}: a plughost plugin with a chat command, a route and a method.\"\"\"

from plughost.sdk import NoticeEvent, Plugin, PluginContext, Reply, ReplyBuilder

plugin = Plugin()


def greeting(name: str) -> str:
    return f"hello, {{name}}"


@plugin.on_load
async def setup(ctx: PluginContext) -> None:
    ctx.logger.info("{id} loaded from %s", ctx.plugin_dir)


@plugin.command("{command}", description="say hello (/{command} Ada)")
def hello_command(name: str = "world") -> str:
    return greeting(name)


@plugin.route("notice", "GroupPoke", "PrivatePoke")
def on_poke(event: NoticeEvent) -> Reply:
    \"\"\"Answer a poke (in the console: /as private 42, then /poke).\"\"\"
    return ReplyBuilder().text("ouch! try /{command}").build()


@plugin.method("hello")
def hello(name: str = "world") -> dict:
    \"\"\"Greet someone (plughost plugins execute {id} hello --args '{{"name": "Ada"}}').\"\"\"
    return {{"greeting": greeting(name)}}
"""

TEST = """\
\"\"\"Generated test: loads the plugin into a real host, calls its method and runs its command.\"\"\"

from pathlib import Path

import pytest

from plughost import Host
from plughost.bot.commands import CommandSender

PLUGIN_DIR = Path(__file__).resolve().parents[1]


@pytest.mark.asyncio
async def test_method_and_command(tmp_path: Path) -> None:
    async with Host(tmp_path) as host:  # an empty workspace, then this plugin
        await host.manager.load_plugin(PLUGIN_DIR)

        result = await host.manager.execute("{id}", "hello", {{"name": "Ada"}})
        assert result.success, result.error
        assert result.result == {{"greeting": "hello, Ada"}}

        answer = await host.commands.execute_command(CommandSender.console(), "/{command} Ada")
        assert answer.ok, answer.error
        assert answer.text == "hello, Ada"
"""


LANGUAGES = ("python", "c", "rust", "go")
"""What `plughost new --lang` writes a plugin in."""


def scaffold(plugin_id: str, parent: Path, language: str = "python") -> Path:
    """Create `<parent>/<id>/` with plugin.toml, the plugin (a command named after the id and a
    `hello` method; in Python also a poke route) and tests/; returns the directory. In "c" and
    "rust" a native library, in "go" a go-plugin executable, each with its build file (`language`:
    one of LANGUAGES)."""
    if not is_valid_plugin_id(plugin_id):
        raise PlugHostError(invalid_id(plugin_id))
    target = parent / plugin_id
    if target.exists():
        raise PlugHostError(f"{target} already exists; choose another id or remove it")
    try:
        _write_plugin(target, plugin_id, language)
    except OSError as exc:
        raise PlugHostError(f"cannot create {target}: {exc.strerror or exc}") from exc
    return target


def plugin_dirs(workspace: Path) -> list[Path]:
    """The directories the host searches for plugins in `workspace` (its plughost.toml's [host] plugin_dirs)."""
    from plughost.core.config import HostConfig

    return [(workspace / d).resolve() for d in HostConfig.load(workspace).host.plugin_dirs]


def enclosing_workspace(directory: Path) -> Path:
    """`directory`, or, when it has no plughost.toml, the nearest workspace above whose plugin directories
    hold it (`plughost new` run inside WS/plugins/ writes into WS's plugin directory)."""
    if (directory / HOST_CONFIG_FILE).exists():
        return directory
    for parent in directory.parents:
        if (parent / HOST_CONFIG_FILE).is_file():
            return parent if any(directory.is_relative_to(d) for d in plugin_dirs(parent)) else directory
    return directory


def invalid_id(plugin_id: str) -> str:
    """Why `plugin_id` is not a plugin id."""
    return (
        f"'{plugin_id}' is not a valid plugin id: use letters, digits, '.', '_' and '-', "
        "starting with a letter or digit"
    )


def _write_plugin(target: Path, plugin_id: str, language: str) -> None:
    (target / "tests").mkdir(parents=True)
    command = plugin_id.replace(".", "-")  # command names have no dots
    test_name = f"test_{plugin_id.replace('.', '_').replace('-', '_')}.py"
    if language != "python":
        from plughost.cli.scaffold_native import write_native_plugin

        write_native_plugin(target, language, plugin_id, command, test_name)
        return
    (target / "plugin.toml").write_text(MANIFEST.format(id=plugin_id), encoding="utf-8")
    (target / "plugin.py").write_text(PLUGIN.format(id=plugin_id, command=command), encoding="utf-8")
    (target / "tests" / test_name).write_text(TEST.format(id=plugin_id, command=command), encoding="utf-8")
