"""The fast path of `plughost plugins list` beside a running host prints what the full command prints.

Each command line runs twice as a real subprocess against the in-process host of `conftest.py`:
as the user runs it, and with `PLUGHOST_NO_FAST_PATH=1` (the typer command). The first must not
have imported typer (it was answered by `plughost.cli.quick`) unless the fast path had to decline.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from plughost.cli.quick import OFF_ENV, WORKSPACE_ENV
from tests.manage.conftest import Running
from tests.test_cli import cli_env
from tests.test_cli_imports import WRAPPER


async def run(tmp_path: Path, *args: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """`plughost *args` (without blocking the host's loop) and the modules it imported."""
    record = tmp_path / "modules.json"
    record.unlink(missing_ok=True)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRAPPER, str(record), *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    modules = set(json.loads(record.read_text())) if record.exists() else set()
    return subprocess.CompletedProcess(args, process.returncode, out.decode(), err.decode()), modules


async def both(tmp_path: Path, *args: str, **extra: str) -> tuple[subprocess.CompletedProcess[str], bool]:
    """The fast run (asserted equal to the full command's: status, stdout, stderr) and whether it was fast."""
    fast, modules = await run(tmp_path, *args, env=cli_env(**extra))
    full, full_modules = await run(tmp_path, *args, env=cli_env(**extra, **{OFF_ENV: "1"}))
    assert "typer" in full_modules
    assert (fast.returncode, fast.stdout, fast.stderr) == (full.returncode, full.stdout, full.stderr), args
    return fast, "typer" not in modules


async def test_the_fast_path_answers_as_the_full_command(running: Running, tmp_path: Path) -> None:
    ws, url = str(running.workspace), running.server.url
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for args in (
        ("plugins", "list", "-w", ws),
        ("plugins", "list", "--json", "-w", ws),
        ("-w", ws, "plugins", "list", "--load"),
        ("plugins", f"--workspace={ws}", "list", "--log-level", "ERROR", "--json"),
        ("plugins", "list", "--remote", url, "--key", running.key, "-w", str(elsewhere)),
        ("plugins", "list", f"--remote={url}/", f"--key={running.key}", "--json", f"-w{elsewhere}"),
    ):
        result, fast = await both(tmp_path, *args)
        assert result.returncode == 0 and fast, (args, result.stderr)
        assert "settings" in result.stdout and result.stderr.startswith("via ")
    by_environment, fast = await both(tmp_path, "plugins", "list", **{WORKSPACE_ENV: ws})
    assert fast and "plain" in by_environment.stdout


async def test_what_the_fast_path_declines_is_the_full_commands_answer(running: Running, tmp_path: Path) -> None:
    ws = str(running.workspace)
    for args, code in (
        (("plugins", "list", "--key", "w" * 43, "-w", ws), 1),  # 401: the full command says so
        (("plugins", "list", "--local", "-w", ws), 0),
        (("plugins", "list", "-l", "debug", "-w", ws), 0),
        (("plugins", "list", "-p", ws, "-w", ws), 0),
        (("plugins", "list", "--json=yes", "-w", ws), 2),
        (("plugins", "list", "--bogus", "-w", ws), 2),
        (("plugins", "list", "extra", "-w", ws), 2),
        (("plugins", "list", "--remote", "ftp://x", "-w", ws), 2),
        (("plugins", "list", "-w", str(tmp_path / "missing")), 2),
        (("plugins", "list", "--help"), 0),
    ):
        result, fast = await both(tmp_path, *args)
        assert result.returncode == code and not fast, (args, result.stderr)
        assert "Traceback" not in result.stderr
