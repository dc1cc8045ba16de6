"""The code-quality promises: ruff and mypy clean on src/, layers point down only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize(
    "command",
    [
        ("ruff", "check", "src"),
        ("ruff", "format", "--check", "src"),
        ("lint-imports",),
        ("mypy",),
    ],
    ids=["ruff", "ruff-format", "import-layers", "mypy"],
)
def test_tool_is_clean(command: tuple[str, ...]) -> None:
    result = run_tool(str(BIN / command[0]), *command[1:])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_every_task_has_an_owner() -> None:
    """Structured concurrency: tasks start through `TaskOwner.spawn` (or inside a lexical TaskGroup),
    never with a bare `create_task` / `ensure_future`."""
    import re

    bare = re.compile(r"(asyncio|loop|get_running_loop\(\)|get_event_loop\(\))\.create_task\(|ensure_future\(")
    owner = ROOT / "src" / "plughost" / "sdk" / "tasks.py"
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted((ROOT / "src" / "plughost").rglob("*.py"))
        if path != owner and "proto" not in path.parts
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if bare.search(line)
    ]
    assert offenders == [], "\n".join(offenders)
