"""`plughost init` and `plughost new`: a workspace and a plugin in one command each, which run and whose
generated test passes with the command printed for it (real `plughost` subprocesses)."""

from __future__ import annotations

import shlex
import subprocess
import tomllib
from pathlib import Path

from tests.test_cli import PLUGHOST, cli_env, plughost
from tests.test_cli_global import run_console


def init(*args: str, answers: str = "") -> subprocess.CompletedProcess[str]:
    """`plughost init *args` with `answers` on stdin (a pipe, so nothing is asked unless --interactive)."""
    return subprocess.run(
        [*PLUGHOST, "init", *args],
        input=answers,
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
        check=False,
    )


def test_init_creates_a_workspace_that_runs_and_answers(tmp_path: Path) -> None:
    workspace = tmp_path / "bot"
    created = init(str(workspace))
    assert created.returncode == 0, created.stderr
    assert f"plughost run -w {workspace}" in created.stdout
    for path in ("plughost.toml", ".gitignore", "plugins/hello/plugin.toml", "plugins/hello/tests/test_hello.py"):
        assert (workspace / path).is_file(), path
    assert (workspace / "config" / "plugins").is_dir()
    config = tomllib.loads((workspace / "plughost.toml").read_text())
    assert config["host"]["plugin_dirs"] == ["plugins"] and "bots" not in config
    assert "# [[bots]]" in (workspace / "plughost.toml").read_text()  # how to add one, commented

    commands = "/hello Ada\n/plugins\n/as private 42\n/poke\n/as console\n/stop\n"
    ran = run_console("-w", str(workspace), commands=commands)
    assert ran.returncode == 0, ran.stderr
    assert "hello, Ada" in ran.stdout
    assert "hello 0.1.0 [enabled] python, priority 0, 1 command, 1 method, 1 route" in ran.stdout
    assert "bot → private 42: ouch! try /hello" in ran.stdout
    assert ran.stdout.count("stopping…") == 1 and ran.stderr == ""

    once = plughost("exec", "/hello Bo", "-w", str(workspace))
    assert (once.returncode, once.stdout) == (0, "hello, Bo\n"), once.stderr
    method = plughost("plugins", "execute", "hello", "hello", "-a", '{"name": "Cy"}', "--json", "-w", str(workspace))
    assert '"greeting": "hello, Cy"' in method.stdout


def test_init_defaults_to_the_workspace_option(tmp_path: Path) -> None:
    assert init("-w", str(tmp_path / "ws")).returncode == 0
    assert (tmp_path / "ws" / "plugins" / "hello" / "plugin.py").is_file()


def test_init_refuses_an_existing_workspace_unless_forced(tmp_path: Path) -> None:
    assert init(str(tmp_path)).returncode == 0
    (tmp_path / "plughost.toml").write_text("# mine\n")
    (tmp_path / "plugins" / "mine.py").write_text("# my plugin\n")
    refused = init(str(tmp_path))
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr == (
        f"error: {tmp_path} is already a workspace (it has plughost.toml and plugins); pass --force to write over "
        "its plughost.toml and example plugin (other files are kept)\n"
    )
    assert (tmp_path / "plughost.toml").read_text() == "# mine\n"  # nothing was lost

    forced = init(str(tmp_path), "--force")
    assert forced.returncode == 0, forced.stderr
    assert (tmp_path / "plughost.toml").read_text().startswith("# plughost workspace configuration")
    assert (tmp_path / "plugins" / "mine.py").read_text() == "# my plugin\n"


def test_init_writes_a_bot_from_flags(tmp_path: Path) -> None:
    forward = init(str(tmp_path / "fwd"), "--onebot-ws-url", "ws://127.0.0.1:1/", "--access-token", "s3cret")
    assert forward.returncode == 0, forward.stderr
    bots = tomllib.loads((tmp_path / "fwd" / "plughost.toml").read_text())["bots"]
    assert bots == [{"id": "qq", "transport": "ws-forward", "endpoint": "ws://127.0.0.1:1/", "access_token": "s3cret"}]
    said = run_console("-w", str(tmp_path / "fwd"), commands="/stop\n")
    assert "bot 'qq': connecting to ws://127.0.0.1:1/ (OneBot v11, forward WebSocket)" in said.stdout

    reverse = init(str(tmp_path / "rev"), "--onebot-reverse", "127.0.0.1:0")
    assert reverse.returncode == 0, reverse.stderr
    assert tomllib.loads((tmp_path / "rev" / "plughost.toml").read_text())["bots"][0]["bind"] == "127.0.0.1:0"
    listening = run_console("-w", str(tmp_path / "rev"), commands="/stop\n")
    assert listening.returncode == 0, listening.stderr
    found = [
        line for line in listening.stdout.splitlines() if line.startswith("bot 'qq': listening on ws://127.0.0.1:")
    ]
    assert found and found[0].endswith("/onebot/v11/ws (OneBot v11, reverse WebSocket)")
    assert ":0/" not in found[0]  # the port it got


def test_init_asks_for_a_bot_when_interactive(tmp_path: Path) -> None:
    asked = init(str(tmp_path), "--interactive", answers="reverse\n127.0.0.1:8081\ntok\n")
    assert asked.returncode == 0, asked.stderr
    assert "Connect a OneBot v11 bot?" in asked.stdout
    bots = tomllib.loads((tmp_path / "plughost.toml").read_text())["bots"]
    assert bots == [{"id": "qq", "transport": "ws-reverse", "bind": "127.0.0.1:8081", "access_token": "tok"}]


def test_init_refuses_bad_bot_options_in_one_line(tmp_path: Path) -> None:
    cases = [
        (("--onebot-ws-url", "http://x"), "error: --onebot-ws-url: 'http://x' is not a WebSocket address"),
        (("--onebot-reverse", "nowhere"), "error: --onebot-reverse: 'nowhere' is not host:port (e.g. 127.0.0.1:8080)"),
        (("--onebot-ws-url", "ws://a/", "--onebot-reverse", "h:1"), "error: --onebot-ws-url and --onebot-reverse"),
        (("--access-token", "t"), "error: --access-token needs --onebot-ws-url or --onebot-reverse"),
        (("--interactive",), "error: 'maybe' is not none, forward or reverse; nothing was written"),
    ]
    for args, message in cases:
        result = init(str(tmp_path / "ws"), *args, answers="maybe\n")
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr
        assert not (tmp_path / "ws").exists()  # nothing was written


def test_new_scaffolds_a_plugin_whose_test_passes_with_the_printed_command(tmp_path: Path) -> None:
    result = plughost("new", "my.tool", "-w", str(tmp_path))
    assert result.returncode == 0, result.stderr
    directory = tmp_path / "plugins" / "my.tool"
    hint = result.stdout.splitlines()[-1]
    assert hint.startswith("run its test with: ")
    command = shlex.split(hint.removeprefix("run its test with: "))
    assert command[1:3] == ["-m", "pytest"] and Path(command[-1]) == directory / "tests"
    test = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=cli_env(), timeout=120,
                          check=False)  # fmt: skip
    assert test.returncode == 0, test.stdout + test.stderr
    assert "1 passed" in test.stdout

    source = (directory / "plugin.py").read_text()
    for decorator in ('@plugin.command("my-tool"', '@plugin.route("notice"', '@plugin.method("hello")'):
        assert decorator in source
    listed = plughost("exec", "/my-tool Ada", "-w", str(tmp_path))
    assert (listed.returncode, listed.stdout) == (0, "hello, Ada\n"), listed.stderr
