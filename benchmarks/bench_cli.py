"""CLI start-up: `plughost --help`, `plughost plugins list` and `plughost run` to ready, as subprocesses;
and `plughost plugins list` beside a running host (through its management API) against loading a
workspace of 50 native libraries.

    python benchmarks/bench_cli.py                # prints a table
    python benchmarks/run.py cli                  # through the runner

Every command runs as `python -m plughost …` from this checkout's sources (`src/` first on
PYTHONPATH), in the same interpreter as the baseline, `python -c "import typer"`: the least any
typer program pays. Each figure is the median of `RUNS` runs, the commands taking turns so that
load on the machine falls on all of them alike. Byte code is cached (in a scratch
PYTHONPYCACHEPREFIX, filled by one discarded warm-up run), as it is for an installed package.

The remote comparison runs `plughost run --no-console` on a workspace of `NATIVE_LIBRARIES` copies
of bench_native's trivial C plugin (compiled with gcc), then times `plughost plugins list` (which
finds the host in `.plughost/manage.json` and asks it) against `plughost plugins list --local`
(which loads all 50 libraries, as every CLI call did before), taking turns.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench_native import TRIVIAL_C  # benchmarks/bench_native.py
from common import Row, median, print_rows  # benchmarks/common.py

ROOT = Path(__file__).resolve().parents[1]
RUNS = 5
HELP_TARGET = 2.0  # × the baseline
LIST_TARGET = 3.0
REMOTE_TARGET = 10.0  # × faster than loading the workspace
NATIVE_LIBRARIES = 50
READY_LINE = "running;"  # what `plughost run` prints once the workspace is loaded and the console reads
# The least a typer command like `plugins list` pays before doing anything: typer parses (and
# coerces, with pydantic) the same options, then the command imports asyncio and prints a rich table.
EMPTY_LIST_COMMAND = """
from pathlib import Path
from typing import Annotated
import typer

app = typer.Typer(rich_markup_mode=None)
plugins = typer.Typer(rich_markup_mode=None)
app.add_typer(plugins, name="plugins")


@app.callback()
def configure(log_level: Annotated[str, typer.Option("--log-level", "-l")] = "warning") -> None:
    pass


@plugins.command("list")
def list_plugins(
    workspace: Annotated[Path, typer.Option("--workspace", "-w", file_okay=False, resolve_path=True)] = Path("."),
    plugin_dir: Annotated[list[Path] | None, typer.Option("--plugin-dir", "-p", resolve_path=True)] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    import asyncio
    from rich.console import Console
    from rich.table import Table

    asyncio.run(asyncio.sleep(0))
    Console().print(Table("id", "version", "runtime", "state"))


app()
"""


def _environment(scratch: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONSTARTUP")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p)
    env["PYTHONPYCACHEPREFIX"] = str(scratch / "pycache")
    env.update(COLUMNS="120", NO_COLOR="1", PYTHONUNBUFFERED="1")
    return env


def _timed(argv: list[str], env: dict[str, str]) -> float:
    """Seconds from spawn to exit of `argv` (which must succeed)."""
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[2:])} exited {result.returncode}: {result.stderr[-2000:]}")
    return elapsed


def _to_ready(workspace: Path, env: dict[str, str]) -> float:
    """Seconds from spawning `plughost run` (stdin a pipe) to its ready line; then `/stop`."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "plughost", "run", "-w", str(workspace)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        for line in process.stdout:
            if line.startswith(READY_LINE):
                elapsed = time.perf_counter() - started
                break
        else:
            raise RuntimeError(f"plughost run exited {process.wait()} before it was ready")
        process.stdin.write("/stop\n")
        process.stdin.close()
        if process.wait(timeout=60) != 0:
            raise RuntimeError(f"plughost run exited {process.returncode} after /stop")
        return elapsed
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _native_workspace(scratch: Path) -> Path:
    """A workspace of `NATIVE_LIBRARIES` native plugins: one trivial C library, copied under 50 ids."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise RuntimeError("gcc is not installed; the remote CLI benchmark compiles a trivial native plugin")
    source = scratch / "bench.c"
    source.write_text(TRIVIAL_C)
    library = scratch / "bench.so"
    command = [gcc, "-O2", "-shared", "-fPIC", f"-I{ROOT / 'sdk' / 'c'}", "-o", str(library), str(source)]
    subprocess.run(command, check=True)
    plugins = scratch / "natives" / "plugins"
    plugins.mkdir(parents=True)
    for index in range(NATIVE_LIBRARIES):
        shutil.copy(library, plugins / f"native{index:02d}-v1.0.0.so")
    return plugins.parent


def _start_host(workspace: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    """`plughost run --no-console` on a free port; returns it once its management API is up, with the URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "plughost", "run", "--no-console", "--manage-bind", "127.0.0.1:0", "-w", str(workspace)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    for line in process.stdout:
        found = re.search(r"management API on (http://\S+)", line)
        if found:
            return process, found.group(1)
    raise RuntimeError(f"plughost run exited {process.wait()} before serving its management API")


def _stop_host(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _remote_rows(scratch: Path, env: dict[str, str], floor: float) -> list[Row]:
    """`plugins list` through a running host vs loading a workspace of 50 native libraries, taking turns;
    `floor` (ms) is what an empty typer command with the same options paid in this run."""
    workspace = _native_workspace(scratch)
    listing = [sys.executable, "-m", "plughost", "plugins", "list", "-w", str(workspace)]
    process, url = _start_host(workspace, env)
    try:
        commands: dict[str, Callable[[], float]] = {
            "remote": lambda: _timed(listing, env),
            "local": lambda: _timed([*listing, "--local"], env),
        }
        samples = _take_turns(commands)
        remote_rows = subprocess.run(listing, env=env, capture_output=True, text=True, timeout=60, check=True)
    finally:
        _stop_host(process)
    if f"via the running host at {url}" not in remote_rows.stderr:
        raise RuntimeError(f"plugins list did not go through the running host: {remote_rows.stderr}")
    remote, local = (median(samples[name]) * 1e3 for name in ("remote", "local"))
    speedup = local / remote
    return [
        Row(
            f"plughost plugins list, {NATIVE_LIBRARIES} native libraries: --local, loads the workspace (median of 5)",
            local,
            "ms",
            "—",
            "what every CLI call paid before",
        ),
        Row(
            f"plughost plugins list, {NATIVE_LIBRARIES} native libraries: through the running host (median of 5)",
            remote,
            "ms",
            f"≥ {REMOTE_TARGET:g}× faster than --local",
            f"--local: {local:.0f} ms; {speedup:.1f}× faster (an empty typer command: {floor:.0f} ms)",
            speedup >= REMOTE_TARGET,
        ),
    ]


def _take_turns(commands: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """One discarded warm-up each, then `RUNS` rounds in which every command runs once."""
    for measure in commands.values():  # warm-up: byte code into the scratch cache
        measure()
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(RUNS):
        for name, measure in commands.items():
            samples[name].append(measure())
    return samples


def run() -> list[Row]:
    """Measure everything; each row is (name, value, unit, target, comparison)."""
    with tempfile.TemporaryDirectory(prefix="plughost-bench-cli-") as tmp:
        scratch = Path(tmp)
        workspace = scratch / "examples"
        shutil.copytree(ROOT / "examples", workspace, ignore=shutil.ignore_patterns(".plughost"))
        env = _environment(scratch)
        python = [sys.executable]
        commands: dict[str, Callable[[], float]] = {
            "baseline": lambda: _timed([*python, "-c", "import typer"], env),
            "help": lambda: _timed([*python, "-m", "plughost", "--help"], env),
            "list": lambda: _timed([*python, "-m", "plughost", "plugins", "list", "-w", str(workspace)], env),
            "empty": lambda: _timed([*python, "-c", EMPTY_LIST_COMMAND, "plugins", "list", "-w", str(workspace)], env),
            "run": lambda: _to_ready(workspace, env),
        }
        samples = _take_turns(commands)
        figures = {name: median(values) * 1e3 for name, values in samples.items()}
        remote_rows = _remote_rows(scratch, env, figures["empty"])
    base = figures["baseline"]
    compared = f'python -c "import typer": {base:.0f} ms'

    def ratio(name: str) -> str:
        return f"{compared}; {figures[name] / base:.2f}×"

    return [
        Row('baseline: python -c "import typer" (median of 5)', base, "ms", "—", "baseline"),
        Row(
            "plughost --help (median of 5)",
            figures["help"],
            "ms",
            f"≤ {HELP_TARGET:g}× baseline",
            ratio("help"),
            figures["help"] <= HELP_TARGET * base,
        ),
        Row(
            "plughost plugins list -w examples, no running host (median of 5)",
            figures["list"],
            "ms",
            f"≤ {LIST_TARGET:g}× baseline",
            ratio("list"),
            figures["list"] <= LIST_TARGET * base,
        ),
        Row(
            "for scale: an empty typer command with plugins list's options, printing a table (median of 5)",
            figures["empty"],
            "ms",
            "—",
            ratio("empty"),
        ),
        Row("plughost run -w examples: spawn to ready (median of 5)", figures["run"], "ms", "—", ratio("run")),
        *remote_rows,
    ]


if __name__ == "__main__":
    print_rows("CLI start-up", run())
