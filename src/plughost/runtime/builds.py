"""Building a plugin from its sources, as its directory says: Jank's `scripts/build.sh`, else a
`Makefile` (`make`), else a `Cargo.toml` (`cargo build --release --offline`).

The process runtime builds a plugin that has no binary yet before its first start; every runtime
that builds (process, native) builds again before a hot reload when a source changed, and says
where its build writes (`outputs`) so that what the build wrote is not taken for a change.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
from pathlib import Path

from plughost.errors import PluginLoadError
from plughost.sdk.golang import GO_CLIENT, GO_CLIENT_ENV

BUILD_SCRIPT = Path("scripts") / "build.sh"
OUTPUT_TAIL_CHARS = 4000


def build_argv(plugin_dir: Path) -> list[str] | None:
    """The command that builds the plugin in `plugin_dir`, run in that directory; None without a
    build file."""
    if (plugin_dir / BUILD_SCRIPT).is_file():
        return ["/bin/sh", str(BUILD_SCRIPT)]
    if (plugin_dir / "Makefile").is_file():
        return ["make"]
    if (plugin_dir / "Cargo.toml").is_file():
        return ["cargo", "build", "--release", "--offline"]
    return None


def build_hint(plugin_dir: Path) -> str | None:
    """The same build as one shell command that runs from anywhere (printed for a plugin that is
    not built yet), with plughost's Go client as the host passes it; None without a build file."""
    argv = build_argv(plugin_dir)
    if argv is None:
        return None
    if argv[0] == "make":
        return shlex.join(["make", "-C", str(plugin_dir)])
    if argv[0] == "cargo":
        return shlex.join([*argv, "--manifest-path", str(plugin_dir / "Cargo.toml")])
    return f"{GO_CLIENT_ENV}={shlex.quote(str(GO_CLIENT))} " + shlex.join(["sh", str(plugin_dir / BUILD_SCRIPT)])


def outputs(plugin_dir: Path, artifact: Path) -> tuple[Path, ...]:
    """Where a build that makes `artifact` writes: the artifact when it sits in the plugin's
    directory itself, else the top directory it is under (`bin/`, Cargo's `target/`), where the
    compiler also leaves its other files. Resolved paths."""
    plugin_dir, artifact = plugin_dir.resolve(), artifact.resolve()
    if artifact.parent == plugin_dir or not artifact.is_relative_to(plugin_dir):
        return (artifact,)
    return (plugin_dir / artifact.relative_to(plugin_dir).parts[0],)


async def build_plugin(plugin_id: str, plugin_dir: Path, artifact: Path, timeout_s: float) -> str:
    """Run the plugin's build (cwd = plugin dir, `PLUGHOST_GO_SDK` = plughost's Go client unless
    set) and return its output; raise `PluginLoadError` ("build failed: …", with the output's tail)
    when there is none to run, when it fails or times out (its process group is killed) and when it
    does not make `artifact`."""

    def failed(message: str) -> PluginLoadError:
        return PluginLoadError(plugin_id, f"build failed: {message}")

    argv = build_argv(plugin_dir)
    if argv is None:
        raise failed(f"{artifact} does not exist and {plugin_dir} has no build file ({BUILD_SCRIPT}, Makefile, "
                         "Cargo.toml); build the plugin")  # fmt: skip
    shown = " ".join(argv)
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=str(plugin_dir),
        env={GO_CLIENT_ENV: str(GO_CLIENT), **os.environ},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        process_group=0,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        _kill_group(process)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 5)
        raise failed(f"{shown} (in {plugin_dir}) did not finish within {timeout_s:g} s and was killed") from None
    except BaseException:
        _kill_group(process)
        raise
    text = output.decode("utf-8", "replace")
    tail = text[-OUTPUT_TAIL_CHARS:]
    if process.returncode != 0:
        raise failed(f"{shown} (in {plugin_dir}) failed with exit code {process.returncode}; output:\n{tail}")
    if not artifact.exists():
        raise failed(f"{shown} (in {plugin_dir}) succeeded but did not produce {artifact}; output:\n{tail}")
    return text


def _kill_group(process: asyncio.subprocess.Process) -> None:
    """SIGKILL the build's whole process group (the compiler and anything it started)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
