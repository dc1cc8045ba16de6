"""The example plugin of docs/commands.md, run as written: no name conflict, every command reachable."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from plughost.adapters.console import Console
from plughost.host import Host

DOC = Path(__file__).resolve().parents[2] / "docs" / "commands.md"


def writing_commands_example() -> str:
    section = DOC.read_text(encoding="utf-8").split("## Writing commands (Python)", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found is not None, "docs/commands.md lost its example plugin"
    return found.group(1)


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[tuple[Console, list[str]]]:
    plugin = tmp_path / "plugins" / "doc-example"
    plugin.mkdir(parents=True)
    (plugin / "plugin.toml").write_text('id = "doc-example"\nversion = "1.0.0"\n')
    (plugin / "__init__.py").write_text(writing_commands_example())
    lines: list[str] = []
    async with Host(tmp_path) as host:
        yield Console(host, output=lines.append), lines


async def run(console: Console, lines: list[str], line: str) -> str:
    start = len(lines)
    await console.execute(line)
    return "\n".join(lines[start:])


async def test_the_documented_plugin_claims_every_name_and_runs_from_the_console(
    console: tuple[Console, list[str]],
) -> None:
    c, out = console
    registry = await run(c, out, "/registry")
    assert "0 conflicts" in registry and "problems" not in registry
    assert await run(c, out, "/greet bob 2") == "hello bob hello bob"
    assert await run(c, out, "/你好 amy") == "hello amy"
    assert await run(c, out, "/nudge 5") == "nudged 5"
    assert await run(c, out, "/nudge @5 2") == "nudged 5 2×"
    assert await run(c, out, "/acl grant u7 doc-example:*") == "u7 may doc-example:*"
    assert await run(c, out, "/acl audit show") == "nothing to audit"
    assert await run(c, out, "/echo a   b") == "a   b"
    assert "/acl permit <who:permittee_id> <what:permission_id>" in await run(c, out, "/help acl")
