"""The CLI behaves the same everywhere: global options before and after the command, one-line errors
with the documented exit codes, no silent mistakes, no noise (real `plughost` subprocesses)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from tests.test_cli import NO_HOST, PLUGHOST, cli_env, errors, plughost

ISO_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d ", re.MULTILINE)
INTS_PLUGIN = """\
from plughost.sdk import Plugin

plugin = Plugin(id="ints", version="1.0.0")


@plugin.method("add")
def add(a: int, b: int) -> int:
    return a + b
"""


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A copy of the example workspace plus `ints`, a method with integer arguments."""
    target = tmp_path / "demo"
    shutil.copytree(EXAMPLES, target, ignore=shutil.ignore_patterns("data", ".plughost", "plugin-state.toml*"))
    (target / "plugins" / "ints.py").write_text(INTS_PLUGIN)
    return target


def run_console(*args: str, commands: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """`plughost run --no-manage *args` with `commands` piped to its console (end with /stop)."""
    return subprocess.run(
        [*PLUGHOST, "run", "--no-manage", *args],
        input=commands,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(),
        check=False,
    )


def ids(result: subprocess.CompletedProcess[str]) -> set[str]:
    assert result.returncode == 0, result.stderr
    return {row["id"] for row in json.loads(result.stdout)}


def test_version() -> None:
    from plughost import __version__

    result = plughost("--version")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"plughost {__version__}\n", "")


def test_workspace_and_plugin_dir_go_before_after_or_between_the_commands(demo: Path, tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "lonely.py").write_text("from plughost.sdk import Plugin\nplugin = Plugin(id='lonely', version='1.0.0')\n")
    before = ids(plughost("-w", str(demo), "-p", str(extra), "plugins", "list", "--json"))
    between = ids(plughost("plugins", "-w", str(demo), "list", "-p", str(extra), "--json"))
    after = ids(plughost("plugins", "list", "--json", "-p", str(extra), "-w", str(demo)))
    assert before == between == after >= {"calculator", "ints", "lonely"}
    env_workspace = subprocess.run(
        [*PLUGHOST, "plugins", "list", "--json"],
        capture_output=True,
        text=True,
        env=cli_env(PLUGHOST_WORKSPACE=str(demo)),
        timeout=60,
        check=False,
    )
    assert ids(env_workspace) == before - {"lonely"}


def test_log_level_before_or_after_the_command_with_iso_timestamps(demo: Path) -> None:
    quiet = plughost("exec", "/plugins", "-w", str(demo))
    assert quiet.returncode == 0 and quiet.stderr == NO_HOST  # warning: the notes plugin's info line is not shown
    for args in (("-l", "info", "exec", "/plugins"), ("exec", "/plugins", "--log-level", "INFO")):
        loud = plughost(*args, "-w", str(demo))
        assert loud.returncode == 0, loud.stderr
        assert "INFO" in loud.stderr and "notes: 0 stored notes" in loud.stderr
        assert ISO_STAMP.search(loud.stderr), loud.stderr  # 2026-12-02T21:10:21, not [12/02/26 21:10:21]


def test_a_log_record_is_one_line_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    """Piped or collected, a record is not wrapped to a terminal's width (a compiler's output, a long
    error): one line with its time, level and logger, however long."""
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "talker.py").write_text(
        "from plughost.sdk import Plugin\nplugin = Plugin(id='talker', version='1.0.0')\n\n"
        "@plugin.on_load\ndef speak(ctx):\n    ctx.logger.warning('long ' + 'word ' * 120 + 'end')\n"
    )
    result = plughost("exec", "/help", "-w", str(tmp_path))
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if "long word" in line]
    assert ISO_STAMP.match(line) and " WARNING " in line and line.endswith("word end"), result.stderr


def test_new_takes_the_workspace_after_the_command(tmp_path: Path) -> None:
    result = plughost("new", "x", "-w", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "plugins" / "x" / "plugin.toml").is_file()


def test_every_help_lists_the_global_options() -> None:
    for command in ((), ("run",), ("plugins", "list"), ("new",), ("init",), ("market", "list")):
        shown = plughost(*command, "--help")
        assert shown.returncode == 0, shown.stderr
        for option in ("--workspace", "--plugin-dir", "--log-level"):
            assert option in shown.stdout, (command, option)


MISSING = "/nonexistent/plughost-workspace"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("-l", "verbose", "plugins", "list"),
            "error: invalid value for '--log-level' / '-l': 'verbose' is not one of 'debug', 'info', 'warning', "
            "'error' (see `plughost --help`)",
        ),
        (
            ("plugins", "list", "-l", "verbose"),
            "error: invalid value for '--log-level' / '-l': 'verbose' is not one of 'debug', 'info', 'warning', "
            "'error' (see `plughost plugins list --help`)",
        ),
        (
            ("plugins", "list", "-w", MISSING),
            f"error: workspace {MISSING} does not exist (-w/--workspace, PLUGHOST_WORKSPACE); "
            f"`plughost init {MISSING}` creates one",
        ),
        (
            ("run", "--no-manage", "-w", MISSING),
            f"error: workspace {MISSING} does not exist (-w/--workspace, PLUGHOST_WORKSPACE); "
            f"`plughost init {MISSING}` creates one",
        ),
        (
            ("plugins", "list", "--plugin-dir", MISSING),
            f"error: invalid value for '--plugin-dir' / '-p': Directory '{MISSING}' does not exist "
            "(see `plughost plugins list --help`)",
        ),
        (("plugins", "list", "--bogus"), "error: no such option: --bogus (see `plughost plugins list --help`)"),
        (("plugins", "info"), "error: missing argument 'plugin_id' (see `plughost plugins info --help`)"),
        (("new", "x", "-p", "."), "error: --plugin-dir does not apply to `plughost new` (it loads no plugins)"),
        (("init", "x", "-p", "."), "error: --plugin-dir does not apply to `plughost init` (it loads no plugins)"),
        (
            ("market", "list", "-p", "."),
            "error: --plugin-dir does not apply to `plughost market` (it loads no plugins)",
        ),
    ],
)
def test_a_bad_command_line_is_one_line_and_exits_2(
    demo: Path, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = plughost(*args, cwd=demo)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", message + "\n")
    assert not Path(MISSING).exists()  # nothing was created for it
    assert not (tmp_path / "plugins").exists() and not (demo / "plugins" / "x").exists() and not (demo / "x").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ints", "add", "--args", '{"a": "two", "b": 1}'), "error: argument 'a': expected an integer, got 'two'"),
        (("ints", "add", "--args", '{"a": 1}'), "error: missing argument 'b'"),
        (("ints", "add", "--args", '{"a": 1, "b": 2, "c": 3}'), "error: unknown argument 'c'"),
        (("ints", "nope"), "error: plugin 'ints' has no handler 'nope' (its methods: add)"),
        (("ints", "ad"), "error: plugin 'ints' has no handler 'ad' (its methods: add); did you mean 'add'?"),
    ],
)
def test_bad_arguments_of_a_method_are_one_line_and_exit_2(demo: Path, args: tuple[str, ...], message: str) -> None:
    result = plughost("plugins", "execute", *args, "-w", str(demo))
    assert (result.returncode, result.stdout, errors(result)) == (2, "", message + "\n")
    assert plughost("plugins", "execute", "ints", "add", "--args", '{"a": 1, "b": 2}', "-w", str(demo)).stdout == "3\n"


def test_a_bad_command_argument_exits_2_as_documented(demo: Path) -> None:
    result = plughost("exec", "/greet Ada abc", "-w", str(demo))
    assert result.returncode == 2
    assert errors(result).splitlines()[0] == "cannot parse 'abc' as an integer"


def test_run_says_when_it_found_no_plugin(tmp_path: Path) -> None:
    result = run_console("-w", str(tmp_path), commands="/stop\n")
    assert result.returncode == 0, result.stderr
    assert f"no plugin loaded from {tmp_path / 'plugins'}: `plughost new ID` adds one" in result.stdout
    assert "┏" not in result.stdout  # no empty table


def test_run_prints_each_load_error_once(demo: Path) -> None:
    (demo / "plugins" / "broken").mkdir()
    (demo / "plugins" / "broken" / "plugin.toml").write_text('id = "broken"\nversion = "1.0.0"\n')
    (demo / "plugins" / "broken" / "plugin.py").write_text("import nope\n")
    (demo / "plugins" / "typo").mkdir()
    (demo / "plugins" / "typo" / "plugin.toml").write_text('id = "typo"\nversoin = "1.0.0"\n')
    result = run_console("-w", str(demo), commands="/stop\n")
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert output.count("ModuleNotFoundError") == 1, output  # in the table, not also as a log line
    assert output.count("unknown key 'versoin'") == 1, output
    assert f"invalid {demo / 'plugins' / 'typo'}: " in result.stdout
    assert result.stdout.count("stopping…") == 1


def test_console_plugins_says_what_each_plugin_offers(demo: Path) -> None:
    result = plughost("exec", "/plugins", "-w", str(demo))
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert lines["calculator"].endswith("priority 0, 3 methods")  # not "0 commands"
    assert lines["chat-tools"].endswith("priority 0, 6 commands, 2 routes")
    assert lines["ints"].endswith("priority 0, 1 method")
    assert lines["greeter"].endswith("priority 0, execute")
    table = plughost("plugins", "list", "--load", "-w", str(demo))
    row = next(line for line in table.stdout.splitlines() if "│ ints " in line)
    assert "1 method " in row and "methods" not in row


def test_the_examples_answer_pokes_and_friend_requests(demo: Path) -> None:
    commands = "/as group 5 42\n/poke\n/friend-request hi\n/friend-request spam\n/as private 42\n/poke\n/stop\n"
    result = run_console("-w", str(demo), commands=commands)
    assert result.returncode == 0, result.stderr
    assert "bot → group 5: ouch! [@42] try /greet or /help" in result.stdout
    assert "bot approved the friend request (remark: met through plughost)" in result.stdout
    assert "bot rejected the friend request" in result.stdout
    assert "bot → private 42: ouch! try /greet or /help" in result.stdout
    assert "no plugin answered" not in result.stdout


SLOW_WORKER = """\
import time

from plughost.sdk import Plugin, PluginContext

plugin = Plugin()


@plugin.on_load
def ready(ctx: PluginContext) -> None:
    ctx.logger.warning("ready to nap")


@plugin.method("nap")
def nap() -> str:
    time.sleep(30)
    return "rested"
"""


def test_a_worker_timeout_says_what_the_worker_logged_readably(tmp_path: Path) -> None:
    plugin = tmp_path / "plugins" / "sleepy"
    plugin.mkdir(parents=True)
    (plugin / "plugin.toml").write_text(
        'id = "sleepy"\nversion = "1.0.0"\nentry = "plugin.py"\nisolation = "process"\n\n[limits]\ntimeout_s = 1\n'
    )
    (plugin / "plugin.py").write_text(SLOW_WORKER)
    result = plughost("plugins", "execute", "sleepy", "nap", "-w", str(tmp_path))
    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]  # the guard's clock or the worker's deadline: whichever fires first
    assert last in ("error: timed out after 1 s", "error: call to 'nap' of plugin 'sleepy' passed its deadline of 1 s")
    assert "ready to nap" in result.stderr  # what the worker logged, as a log line or in its stderr tail
    assert '"@message"' not in result.stderr and "@level" not in result.stderr


def test_docs_and_code_agree_on_exit_codes() -> None:
    """The documented exit codes are the ones the commands use (see the tests above)."""
    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    assert "2 for a bad command line or argument" in readme
    help_text = " ".join(plughost("--help").stdout.split())
    assert "Exit status: 0 success, 2 a bad command line or argument" in help_text
