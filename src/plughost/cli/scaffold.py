"""`plughost new <id>`: a plugin skeleton that loads and passes its generated test."""

from __future__ import annotations

from pathlib import Path

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

PLUGIN = '''\
"""{id}: a plughost plugin."""

from plughost.sdk import Plugin, PluginContext

plugin = Plugin()


@plugin.on_load
async def setup(ctx: PluginContext) -> None:
    ctx.logger.info("{id} loaded from %s", ctx.plugin_dir)


@plugin.method("hello")
def hello(name: str = "world") -> dict:
    """Greet someone."""
    return {{"greeting": f"hello, {{name}}"}}
'''

TEST = '''\
"""Generated test: loads the plugin through a real host and calls its method."""

from pathlib import Path

import pytest

from plughost import PluginManager

PLUGIN_DIR = Path(__file__).resolve().parents[1]


@pytest.mark.asyncio
async def test_hello(tmp_path: Path) -> None:
    async with PluginManager(tmp_path) as manager:
        await manager.load_plugin(PLUGIN_DIR)
        result = await manager.execute("{id}", "hello", {{"name": "Ada"}})
        assert result.success, result.error
        assert result.result == {{"greeting": "hello, Ada"}}
'''


def scaffold(plugin_id: str, parent: Path) -> Path:
    """Create `<parent>/<id>/` with plugin.toml, plugin.py and tests/; returns the directory."""
    if not is_valid_plugin_id(plugin_id):
        raise PlugHostError(
            f"'{plugin_id}' is not a valid plugin id: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    target = parent / plugin_id
    if target.exists():
        raise PlugHostError(f"{target} already exists; choose another id or remove it")
    (target / "tests").mkdir(parents=True)
    (target / "plugin.toml").write_text(MANIFEST.format(id=plugin_id), encoding="utf-8")
    (target / "plugin.py").write_text(PLUGIN.format(id=plugin_id), encoding="utf-8")
    (target / "tests" / f"test_{plugin_id.replace('.', '_').replace('-', '_')}.py").write_text(
        TEST.format(id=plugin_id), encoding="utf-8"
    )
    return target
