"""The docs test itself: it must catch a block that does not do what the docs say."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.blocks import Block, blocks_of
from tests.docs.test_docs import VENV_BIN, Reader


def _blocks(tmp_path: Path, markdown: str) -> list[Block]:
    (tmp_path / "doc.md").write_text(markdown, encoding="utf-8")
    return blocks_of(tmp_path / "doc.md", tmp_path)


@pytest.fixture
def reader(tmp_path: Path) -> Reader:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".venv").symlink_to(VENV_BIN.parent)
    (tmp_path / "home").mkdir()
    return Reader(repo, Path("doc.md"))


def test_problems_are_reported(tmp_path: Path) -> None:
    blocks = _blocks(
        tmp_path,
        "```\nplughost run\n```\n\n    indented code\n\n<!-- docs: frobnicate -->\n```sh\ntrue\n```\n\n"
        "```python\nprint(1)\n```\n\n<!-- docs: skip -->\n```sh\ntrue\n```\n",
    )
    problems = [p for b in blocks for p in b.problems]
    assert any("no language" in p for p in problems)
    assert any("indented code block" in p for p in problems)
    assert any("unknown directive 'frobnicate'" in p for p in problems)
    assert any("a python block needs a directive" in p for p in problems)
    assert any("'skip' needs a value" in p for p in problems)


def test_a_failing_command_fails_and_a_fails_block_must_fail(tmp_path: Path, reader: Reader) -> None:
    failing, expected_failure, console = _blocks(
        tmp_path,
        "```sh\nfalse\n```\n\n<!-- docs: fails -->\n```sh\ntrue\n```\n\n"
        "```console\n$ echo hi > out.txt\nthis line is output, not run\n```\n",
    )
    with pytest.raises(AssertionError, match="the block failed"):
        reader.run(failing)
    with pytest.raises(AssertionError, match="should fail"):
        reader.run(expected_failure)
    reader.run(console)
    assert (reader.repo / "out.txt").read_text() == "hi\n"


def test_a_plugin_that_does_not_load_and_a_bad_config_are_caught(tmp_path: Path, reader: Reader) -> None:
    plugin, config = _blocks(
        tmp_path,
        "<!-- docs: plugin broken -->\n```python\nfrom plughost.sdk import Plugin\nplugin = Plugin()\n"
        "raise RuntimeError('load fails')\n```\n\n<!-- docs: config -->\n```toml\n[manage]\nbind = 42\n```\n",
    )
    with pytest.raises(AssertionError, match="load fails"):
        reader.run(plugin)
    with pytest.raises(Exception, match="manage"):
        reader.run(config)
