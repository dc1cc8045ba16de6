"""The CLI beside no running host: an MCP server's tools are listed and called like any methods."""

from __future__ import annotations

import json
from pathlib import Path

from tests.mcp_client.support import demo_command, fast_workspace, write_mcp_plugin
from tests.test_cli import plughost


def test_cli_lists_and_executes_its_tools(tmp_path: Path) -> None:
    workspace = fast_workspace(tmp_path)
    write_mcp_plugin(workspace, "demo", command=demo_command())

    result = plughost("plugins", "execute", "demo", "add", "--args", '{"a": 1, "b": 2}', "--json", cwd=workspace)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["result"] == {"total": 3}

    result = plughost("plugins", "execute", "demo", "add", "--args", '{"a": "one", "b": 2}', cwd=workspace)
    assert result.returncode == 2  # arguments that do not fit: the caller's mistake, like a bad option
    assert "arguments of tool 'add' do not match its input schema: a: 'one' is not of type 'integer'" in result.stderr

    result = plughost("plugins", "info", "demo", "--json", cwd=workspace)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["runtime"] == "mcp" and "add" in info["methods"], info
