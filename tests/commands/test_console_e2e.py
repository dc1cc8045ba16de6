"""End to end: the real `plughost` process, driven through a pipe and a pseudo-terminal."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from tests.terminal import COLUMNS, ROWS, Terminal

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plugins"
PLUGHOST = [sys.executable, "-m", "plughost"]
TIMEOUT = 60
PROMPT = "plughost>"  # what the console shows before the typed text (then a space)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "plugins").mkdir()
    for name in ("chat-tools", "flaky"):
        shutil.copytree(EXAMPLES / name, tmp_path / "plugins" / name)
    chatty = tmp_path / "plugins" / "chatty"
    chatty.mkdir()
    (chatty / "plugin.toml").write_text('id = "chatty"\nversion = "1.0.0"\n')
    (chatty / "plugin.py").write_text(
        "import asyncio, logging\n"
        "from plughost.sdk import Plugin\n"
        "plugin = Plugin()\n"
        "log = logging.getLogger('chatty')\n"
        "@plugin.command('later')\n"
        "async def later() -> str:\n"
        "    async def speak() -> None:\n"
        "        await asyncio.sleep(0.3)\n"
        "        log.warning('background log line from chatty')\n"
        "    asyncio.get_running_loop().create_task(speak())\n"
        "    return 'scheduled'\n"
    )
    return tmp_path


def plughost(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PLUGHOST, *args], input=stdin, capture_output=True, text=True, timeout=TIMEOUT, env=env(), check=False
    )


def env() -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200", "TERM": "xterm", "NO_COLOR": "1", "PROMPT_TOOLKIT_NO_CPR": "1"}


def test_piped_commands_get_replies_in_order_and_end_of_input_stops(ws: Path) -> None:
    script = "/greet bob 2\n\n/roll 1\n/todo add tea\n/todo ls\n/nope\n/plugins disable flaky\n"
    done = plughost("run", "-w", str(ws), stdin=script)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    expected = [
        "hello bob hello bob",
        "a die needs at least 2 sides",
        "added #1",
        "1. tea",
        "unknown command: nope, type /help",
        "plugin 'flaky' disabled",
    ]
    positions = [out.index(line) for line in expected]
    assert positions == sorted(positions)
    assert (
        "enabled = false" in (ws / "plugin-state.toml").read_text().replace("\n", " ")
        or "flaky" in (ws / "plugin-state.toml").read_text()
    )


def test_a_command_calling_sys_exit_does_not_stop_the_console(ws: Path) -> None:
    quitter = ws / "plugins" / "quitter"
    quitter.mkdir()
    (quitter / "plugin.toml").write_text('id = "quitter"\nversion = "1.0.0"\n')
    (quitter / "plugin.py").write_text(
        "import sys\n"
        "from plughost.sdk import Plugin\n"
        "plugin = Plugin()\n"
        "@plugin.command('bye')\n"
        "def bye() -> str:\n"
        "    sys.exit(0)\n"
        "@plugin.command('interrupt')\n"
        "async def interrupt() -> str:\n"
        "    raise KeyboardInterrupt\n"
    )
    done = plughost("run", "-w", str(ws), stdin="/bye\n/interrupt\n/greet bob\n")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    source = quitter / "plugin.py"  # the console is told where the plugin failed
    assert f"command /bye failed: SystemExit at {source}:6: 0" in out
    assert f"command /interrupt failed: KeyboardInterrupt at {source}:9\n" in out
    assert out.index("hello bob") > out.index("command /interrupt failed")  # the console went on
    ran = plughost("exec", "-w", str(ws), "/bye")
    assert ran.returncode == 1 and f"command /bye failed: SystemExit at {source}:6: 0" in ran.stderr


def test_stop_command_ends_a_piped_session_before_the_input_does(ws: Path) -> None:
    done = plughost("run", "-w", str(ws), stdin="/status\n/stop\n/greet never\n")
    assert done.returncode == 0, done.stderr
    assert "uptime:" in done.stdout and "stopping…" in done.stdout
    assert "hello never" not in done.stdout


def test_exec_runs_one_command_with_exit_codes(ws: Path) -> None:
    ok = plughost("exec", "-w", str(ws), "/greet amy")
    assert (ok.returncode, ok.stdout) == (0, "hello amy\n")
    usage = plughost("exec", "-w", str(ws), "/greet")
    assert usage.returncode == 2 and "/greet: missing arguments" in usage.stderr and "usage:" in usage.stderr
    unknown = plughost("exec", "-w", str(ws), "/nope")
    assert unknown.returncode == 2 and "unknown command: nope" in unknown.stderr
    failed = plughost("exec", "-w", str(ws), "/plugins enable ghost")
    note, error = failed.stderr.strip().splitlines()
    assert (failed.returncode, note, error) == (
        1,
        "no running host: loaded the workspace",
        "plugin 'ghost' was not found",
    )
    granted = plughost("exec", "-w", str(ws), "/permission permit g42 chat-tools:*")
    assert granted.returncode == 0
    listed = plughost("exec", "-w", str(ws), "/permission granted g42")
    assert listed.stdout.strip() == "g42: chat-tools:*"  # restored from permissions.toml by a new process


@pytest.fixture
def terminal(ws: Path) -> Iterator[Terminal]:
    child = pexpect.spawn(
        PLUGHOST[0],
        [*PLUGHOST[1:], "run", "-w", str(ws)],
        env=env(),
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(ROWS, COLUMNS),
    )
    term = Terminal(child, TIMEOUT)
    term.wait_input(PROMPT)
    yield term
    if child.isalive():
        child.terminate(force=True)


def test_interactive_prompt_runs_commands(terminal: Terminal) -> None:
    terminal.sendline("/greet bob")
    terminal.wait_for("hello bob")
    terminal.wait_input(PROMPT)


def test_interactive_completion_of_commands_subcommands_and_plugin_ids(terminal: Terminal) -> None:
    # completion runs in the background: each Tab's completion must be on the input line before the
    # next key; the replies prove what the Tabs completed
    terminal.send("/gre\t")
    terminal.wait_input(PROMPT, "/greet")
    terminal.sendline(" zed")
    terminal.wait_for("hello zed")
    terminal.wait_input(PROMPT)
    terminal.send("/plugins disa\t")
    terminal.wait_input(PROMPT, "/plugins disable")
    terminal.send(" fla\t")
    terminal.wait_input(PROMPT, "/plugins disable flaky")
    terminal.sendline()
    terminal.wait_for("plugin 'flaky' disabled")
    terminal.wait_input(PROMPT)
    terminal.send("/help a\t")  # the console's own commands complete too
    terminal.wait_input(PROMPT, "/help as")
    terminal.sendline()
    terminal.wait_for("permission: console only")


def test_ctrl_c_cancels_the_line_and_history_recalls(terminal: Terminal) -> None:
    terminal.sendline("/greet first")
    terminal.wait_for("hello first")
    terminal.wait_input(PROMPT)
    terminal.send("/plugins disable chat-tools")
    terminal.wait_input(PROMPT, "/plugins disable chat-tools")
    terminal.send("\x03")  # Ctrl-C: the line is dropped, a new prompt is drawn
    terminal.wait_input(PROMPT)
    terminal.send("\x1b[A")  # up arrow: the last executed line, not the cancelled one
    terminal.wait_input(PROMPT, "/greet first")
    terminal.sendline()
    terminal.wait_for("hello first")
    terminal.wait_input(PROMPT)
    terminal.sendline("/plugins")
    terminal.wait_for("chat-tools 1.0.0 [enabled]")


def test_log_lines_print_above_the_prompt(terminal: Terminal) -> None:
    terminal.sendline("/later")
    terminal.wait_for("scheduled")
    terminal.wait_for("background log line from chatty")
    # the prompt is drawn again below the log line, so typing continues normally
    terminal.wait(
        lambda: terminal.cursor_line() == PROMPT.rstrip() and _above_cursor(terminal, "background log line"),
        "an empty prompt below the log line",
    )
    terminal.sendline("/greet again")
    terminal.wait_for("hello again")


def _above_cursor(terminal: Terminal, text: str) -> bool:
    return any(text in line for line in terminal.lines()[: terminal.screen.cursor.y])


def test_ctrl_d_shuts_down_cleanly(terminal: Terminal) -> None:
    terminal.send("\x04")
    assert terminal.wait_end() == 0


def test_stop_command_shuts_down_cleanly(terminal: Terminal) -> None:
    terminal.sendline("/stop")
    assert terminal.wait_end() == 0


def test_sigterm_ends_the_prompt_and_shuts_down_cleanly(terminal: Terminal) -> None:
    terminal.child.kill(signal.SIGTERM)
    assert terminal.wait_end() == 0


def test_no_console_with_dev_null_stdin_runs_until_sigterm(ws: Path) -> None:
    with subprocess.Popen(
        [*PLUGHOST, "run", "-w", str(ws)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, env=env()
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:  # the status table is printed once the workspace is loaded
            if "chat-tools" in line:
                break
        assert proc.poll() is None  # /dev/null is not end-of-input: the host keeps running
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=TIMEOUT) == 0
