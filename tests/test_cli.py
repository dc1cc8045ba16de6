"""The real `plughost` program, run as a subprocess."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

import plughost as plughost_package
from tests.conftest import EXAMPLES, PluginWriter

PLUGHOST = [sys.executable, "-m", "plughost"]


def cli_env(**extra: str) -> dict[str, str]:
    """The environment CLI subprocesses run in: wide, no colour, no management key unless given."""
    env = {k: v for k, v in os.environ.items() if k != "PLUGHOST_MANAGE_KEY"}
    return {**env, "COLUMNS": "200", "NO_COLOR": "1", **extra}


def plughost(
    *args: str, cwd: Path | None = None, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PLUGHOST, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env or cli_env(), check=False
    )


NO_HOST = "no running host: loaded the workspace\n"
LISTED = "no running host: listed from the plugins' files, none loaded (--load loads them)\n"


def errors(result: subprocess.CompletedProcess[str]) -> str:
    """stderr after the line saying the workspace was loaded (no host runs beside these commands)."""
    return result.stderr.removeprefix(NO_HOST)


class HostProcess:
    """`plughost run --no-console` on a free port, as a subprocess; ready once it printed its API's URL."""

    def __init__(self, workspace: Path, timeout: float = 60, args: Sequence[str] = ()) -> None:
        self.workspace = workspace
        self._log = f"{workspace.name}-host.log"
        self._stderr = (workspace.parent / self._log).open("w")
        self.process = subprocess.Popen(
            [*PLUGHOST, "run", "--no-console", "--manage-bind", "127.0.0.1:0", "-w", str(workspace), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=cli_env(),
        )
        self.url = self._read_url(timeout)

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read_url(self, timeout: float) -> str:
        self.lines: queue.Queue[str | None] = queue.Queue()  # stdout after the URL stays here to read
        lines = self.lines
        stdout = self.process.stdout
        assert stdout is not None

        def pump() -> None:  # keeps reading, so the host never blocks on a full pipe
            for line in stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        try:
            while (line := lines.get(timeout=max(0.0, deadline - time.monotonic()))) is not None:
                found = re.search(r"management API on (http://\S+)", line)
                if found:
                    return found.group(1)
            problem = "exited before serving its management API"
        except queue.Empty:
            problem = f"did not serve its management API within {timeout:g} s"
        self.stop()
        raise AssertionError(f"plughost run {problem}: {(self.workspace.parent / self._log).read_text()}")

    def key(self) -> str:
        return (self.workspace / ".plughost" / "manage.key").read_text().strip()

    def stop(self) -> int:
        """SIGTERM, then its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self._stderr.close()

    def __enter__(self) -> HostProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A copy of the bundled example workspace."""
    target = tmp_path / "demo"
    shutil.copytree(EXAMPLES, target, ignore=shutil.ignore_patterns("data", ".plughost", "plugin-state.toml*"))
    return target


def test_help_lists_commands() -> None:
    result = plughost("--help")
    assert result.returncode == 0
    for word in ("run", "plugins", "new"):
        assert word in result.stdout
    sub = plughost("plugins", "--help")
    for word in ("list", "info", "enable", "disable", "reload", "execute"):
        assert word in sub.stdout


def test_list_json(demo: Path) -> None:
    result = plughost("plugins", "list", "--json", "--load", "-w", str(demo))
    assert result.returncode == 0, result.stderr
    assert result.stderr == NO_HOST  # stdout is only the JSON
    rows = {r["id"]: r for r in json.loads(result.stdout)}
    assert set(rows) >= {"calculator", "notes", "flaky", "greeter"}
    assert rows["calculator"]["state"] == "enabled" and rows["calculator"]["methods"] == ["add", "divide", "stats"]
    assert "loaded" not in rows["calculator"]


def test_list_without_a_host_reads_the_files_and_loads_nothing(demo: Path) -> None:
    (demo / "plugins" / "calculator" / "plugin.py").write_text("raise RuntimeError('loaded!')\n")
    (demo / "plugin-state.toml").write_text("[modules]\nnotes = false\n[priorities]\nflaky = 7\n")
    result = plughost("plugins", "list", "--json", "-w", str(demo))
    assert result.returncode == 0, result.stderr
    assert result.stderr == LISTED
    rows = {r["id"]: r for r in json.loads(result.stdout)}
    assert set(rows) >= {"calculator", "notes", "flaky", "greeter"}
    assert all(r["loaded"] is False and "methods" not in r and "error" not in r for r in rows.values())
    assert rows["calculator"]["state"] == "enabled"  # its code was not run
    assert (rows["notes"]["state"], rows["flaky"]["priority"]) == ("disabled", 7)
    assert rows["greeter"]["version"] is None  # a single file declares its version in its code
    table = plughost("plugins", "list", "-w", str(demo))
    header = [cell.strip() for cell in table.stdout.splitlines()[2].split("┃")[1:-1]]
    assert header == ["id", "version", "runtime", "state", "priority"]  # what is known without loading
    assert {"greeter", "?", "notes", "disabled"} <= set(table.stdout.split())
    loaded = plughost("plugins", "list", "--load", "-w", str(demo))
    assert loaded.stderr.endswith(NO_HOST) and "RuntimeError" in loaded.stdout and "loaded!" in loaded.stdout


def test_list_table_shows_invalid_plugins(demo: Path) -> None:
    (demo / "plugins" / "typo").mkdir()
    (demo / "plugins" / "typo" / "plugin.toml").write_text('id = "typo"\nversoin = "1.0.0"\n')
    result = plughost("plugins", "list", "-w", str(demo))
    assert result.returncode == 0
    assert "calculator" in result.stdout and "unknown key 'versoin'" in result.stdout


def test_info_of_an_invalid_plugin_says_why(demo: Path) -> None:
    (demo / "plugins" / "typo").mkdir()
    (demo / "plugins" / "typo" / "plugin.toml").write_text('id = "typo"\nversoin = "1.0.0"\n')
    result = plughost("plugins", "info", "typo", "-w", str(demo))
    assert result.returncode == 0, result.stderr
    assert "status: invalid (not loaded)" in result.stdout and "unknown key 'versoin'" in result.stdout
    assert "None" not in result.stdout  # not `version: None`, `state: None` …: what is not known is left out
    as_json = json.loads(plughost("plugins", "info", "typo", "--json", "-w", str(demo)).stdout)
    assert (as_json["state"], as_json["status"], as_json["descriptor"]) == (None, "invalid", None)
    missing = plughost("plugins", "info", "ghost", "-w", str(demo))
    assert missing.returncode != 0 and "ghost" in missing.stderr


def test_info_json(demo: Path) -> None:
    info = json.loads(plughost("plugins", "info", "notes", "--json", "-w", str(demo)).stdout)
    assert info["config"] == {"greeting": "welcome back", "max_notes": 50}
    assert {m["name"] for m in info["descriptor"]["methods"]} == {"add", "list"}


def test_execute_method_and_execute_handler(demo: Path) -> None:
    added = plughost("plugins", "execute", "calculator", "add", "--args", '{"a": 2, "b": 3.5}', "-w", str(demo))
    assert added.returncode == 0 and added.stdout.strip() == "5.5"
    greeted = plughost("plugins", "execute", "greeter", "--args", '"Ada"', "--json", "-w", str(demo))
    assert json.loads(greeted.stdout)["result"] == {"message": "hello, Ada!"}


def test_notes_persist_in_the_data_dir(demo: Path) -> None:
    for text in ("first", "second"):
        assert (
            plughost(
                "plugins", "execute", "notes", "add", "--args", json.dumps({"text": text}), "-w", str(demo)
            ).returncode
            == 0
        )
    listed = json.loads(plughost("plugins", "execute", "notes", "list", "--json", "-w", str(demo)).stdout)
    assert listed["result"] == {"greeting": "welcome back", "notes": ["first", "second"]}
    assert json.loads((demo / "data" / "notes" / "notes.json").read_text()) == ["first", "second"]


def test_failing_call_is_one_line_and_non_zero(demo: Path) -> None:
    result = plughost("plugins", "execute", "calculator", "divide", "--args", '{"a": 1, "b": 0}', "-w", str(demo))
    assert result.returncode == 1
    assert result.stderr == NO_HOST + "error: ValueError: cannot divide by zero\n"
    failed_json = plughost("plugins", "execute", "flaky", "fail", "--json", "-w", str(demo))
    assert failed_json.returncode == 1 and json.loads(failed_json.stdout)["success"] is False


def test_results_are_json_shaped_wherever_the_plugin_runs(demo: Path) -> None:
    (demo / "plugins" / "odd.py").write_text(
        "from plughost.sdk import Plugin\nplugin = Plugin(id='odd', version='1.0.0')\n"
        "@plugin.method('items')\ndef items() -> set:\n    return {1, 2}\n"
    )
    result = plughost("plugins", "execute", "odd", "items", "--json", "-w", str(demo))
    assert result.returncode == 0 and json.loads(result.stdout)["result"] == [1, 2]
    plain = plughost("plugins", "execute", "odd", "items", "-w", str(demo))
    assert plain.returncode == 0 and json.loads(plain.stdout) == [1, 2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("plugins", "execute", "ghost", "x"), "error: plugin 'ghost' was not found"),
        (("plugins", "execute", "calculator", "add", "--args", "{bad"), "error: --args is not valid JSON"),
        (("plugins", "execute", "calculator", "add", "--args", "[1]"), "error: --args must be a JSON object"),
        (("plugins", "enable", "ghost"), "error: plugin 'ghost' was not found"),
    ],
)
def test_usage_errors(demo: Path, args: tuple[str, ...], message: str) -> None:
    result = plughost(*args, "-w", str(demo))
    assert result.returncode != 0
    assert errors(result).startswith(message) and "Traceback" not in result.stderr


def test_enable_disable_persist(demo: Path) -> None:
    assert "is now disabled" in plughost("plugins", "disable", "greeter", "-w", str(demo)).stdout
    assert "is already disabled" in plughost("plugins", "disable", "greeter", "-w", str(demo)).stdout
    rows = {r["id"]: r for r in json.loads(plughost("plugins", "list", "--json", "-w", str(demo)).stdout)}
    assert rows["greeter"]["state"] == "disabled"
    assert "greeter = false" in (demo / "plugin-state.toml").read_text()
    assert "is now enabled" in plughost("plugins", "enable", "greeter", "-w", str(demo)).stdout


def test_reload_reports_failure_and_keeps_files(demo: Path) -> None:
    assert plughost("plugins", "reload", "calculator", "-w", str(demo)).returncode == 0
    (demo / "plugins" / "calculator" / "plugin.py").write_text("import nope\n")
    result = plughost("plugins", "reload", "calculator", "-w", str(demo))
    assert result.returncode == 1 and "ModuleNotFoundError" in result.stderr


def test_new_scaffolds_a_plugin_whose_test_passes(tmp_path: Path) -> None:
    result = plughost("new", "my-tool", "--dir", str(tmp_path / "plugins"))
    assert result.returncode == 0, result.stderr
    directory = tmp_path / "plugins" / "my-tool"
    assert (directory / "plugin.toml").exists() and (directory / "plugin.py").exists()
    source_root = str(Path(plughost_package.__file__).resolve().parents[1])  # the plughost under test
    python_path = os.pathsep.join(p for p in (source_root, os.environ.get("PYTHONPATH", "")) if p)
    test = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(directory / "tests")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": python_path},
        timeout=120,
        check=False,
    )
    assert test.returncode == 0, test.stdout + test.stderr
    assert "1 passed" in test.stdout
    again = plughost("new", "my-tool", "--dir", str(tmp_path / "plugins"))
    assert again.returncode == 1 and "already exists" in again.stderr
    bad = plughost("new", "bad id", "--dir", str(tmp_path / "plugins"))
    assert bad.returncode == 2 and "not a valid plugin id" in bad.stderr


def test_run_shows_status_and_stops_cleanly_on_sigterm(demo: Path) -> None:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    process = subprocess.Popen(
        [*PLUGHOST, "run", "-w", str(demo)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        seen = []
        for line in process.stdout:  # the status table ends with its bottom border
            seen.append(line)
            if line.startswith("└"):
                break
        output = "".join(seen)
        assert "calculator" in output and "enabled" in output
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()


MARKUP = "root:x:0:0 [bold]B[/bold] :thumbs_up:"


def test_plugin_text_is_printed_verbatim_not_as_markup(demo: Path) -> None:
    """Results, errors and descriptions come from plugins: rich must not read them as markup or emoji codes."""
    (demo / "plugins" / "echo.py").write_text(
        "from plughost.sdk import Plugin\nplugin = Plugin(id='echo', version='1.0.0')\n"
        f"@plugin.method('say', description={MARKUP!r})\ndef say() -> str:\n    return {MARKUP!r}\n"
        f"@plugin.method('boom')\ndef boom() -> str:\n    raise ValueError({MARKUP!r})\n"
    )
    said = plughost("plugins", "execute", "echo", "say", "-w", str(demo))
    assert said.returncode == 0, said.stderr
    assert said.stdout == MARKUP + "\n"

    failed = plughost("plugins", "execute", "echo", "boom", "-w", str(demo))
    assert failed.returncode == 1
    assert errors(failed).strip() == f"error: ValueError: {MARKUP}"

    info = plughost("plugins", "info", "echo", "-w", str(demo))
    assert info.returncode == 0, info.stderr
    assert f"method say {MARKUP}" in info.stdout

    (demo / "plugins" / "broken").mkdir()
    (demo / "plugins" / "broken" / "plugin.toml").write_text('id = "broken"\nversion = "1.0.0"\n')
    (demo / "plugins" / "broken" / "plugin.py").write_text(f"raise RuntimeError({MARKUP!r})\n")
    broken = plughost("plugins", "info", "broken", "-w", str(demo))
    assert broken.returncode == 0, broken.stderr
    assert MARKUP in broken.stdout and "❌" not in broken.stdout and "👍" not in broken.stdout

    listed = plughost("plugins", "list", "--load", "-w", str(demo))
    assert listed.returncode == 0, listed.stderr
    error_cell = "".join(line.split("│")[-2].strip() for line in listed.stdout.splitlines() if line.count("│") == 8)
    assert MARKUP.replace(" ", "") in error_cell.replace(" ", "")  # the error column folds over several lines
    assert "❌" not in listed.stdout and "👍" not in listed.stdout


def _flat(text: str) -> str:
    """Help text with rich's box characters and line wrapping removed."""
    return " ".join(text.translate(str.maketrans("│╭╮╰╯─", "      ")).split())


def test_info_help_says_what_info_shows(demo: Path) -> None:
    """Without a running host `plugins info` loads the workspace afresh, whose guard has counted no calls:
    no metrics then, and the help says so (through a running host they are shown: test_cli_remote)."""
    summary = "Show one plugin: manifest fields, state, error, methods, commands and capabilities."
    listing = _flat(plughost("plugins", "--help").stdout)
    assert summary in listing and "metrics" not in listing
    help_text = _flat(plughost("plugins", "info", "--help").stdout)
    assert summary in help_text
    assert "--json adds the full manifest, descriptor and configuration" in help_text
    assert "Through a running host, call metrics (calls, failures, timeouts, latency)" in help_text
    assert "Call metrics are not shown when the workspace is loaded for the command" in help_text

    shown = plughost("plugins", "info", "chat-tools", "-w", str(demo))
    assert shown.returncode == 0, shown.stderr
    for line in ("id: chat-tools", "version: 1.0.0", "state: enabled", "error: None", "command echo", "capabilities:"):
        assert line in shown.stdout
    assert "metrics" not in shown.stdout
    assert "method add" in plughost("plugins", "info", "calculator", "-w", str(demo)).stdout
    data = json.loads(plughost("plugins", "info", "chat-tools", "--json", "-w", str(demo)).stdout)
    assert {"manifest", "descriptor", "config"} <= set(data) and "metrics" not in data


GC_PROBE = """
import gc
from plughost.sdk import Plugin
plugin = Plugin()

@plugin.method("threshold")
def threshold() -> int:
    return gc.get_threshold()[0]
"""


def test_plughost_run_collects_young_objects_less_often(workspace: Path, write_plugin: PluginWriter) -> None:
    write_plugin("probe", GC_PROBE)
    with HostProcess(workspace):  # `plugins execute` runs the call in the running host
        result = plughost("plugins", "execute", "probe", "threshold", "--json", "-w", str(workspace))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["result"] == 10_000
