"""The real `plughost` program when a state file's path is unusable: one line, non-zero, nothing touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli import plughost

PLUGIN = "from plughost import Plugin\nplugin = Plugin(id='echo', version='1.0.0')\n"


@pytest.mark.parametrize(
    ("name", "what"),
    [
        ("permissions.toml", "permission grants"),
        (".plughost/registry.json", "the plugin registry"),
        ("plugin-state.toml", "plugin state"),
    ],
)
def test_state_file_that_is_a_directory_stops_the_start_with_one_line(tmp_path: Path, name: str, what: str) -> None:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "echo.py").write_text(PLUGIN)
    blocker = tmp_path / name
    (blocker / "inside").mkdir(parents=True)
    result = plughost("plugins", "list", "--load", "-w", str(tmp_path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.strip().splitlines() == [
        f"error: {blocker} is a directory, but plughost keeps {what} in a file of that name: "
        "move the directory away and start again"
    ]
    assert (blocker / "inside").is_dir()  # left as it was


def test_state_directory_that_is_a_file_stops_the_start_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "echo.py").write_text(PLUGIN)
    (tmp_path / ".plughost").write_text("not a directory")
    result = plughost("plugins", "list", "--load", "-w", str(tmp_path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / '.plughost'} is a file, but plughost keeps the plugin registry in "
        f"{tmp_path / '.plughost' / 'registry.json'}: move the file away and start again"
    ]
    assert (tmp_path / ".plughost").read_text() == "not a directory"
