"""Build a `source_only` process plugin with its `scripts/build.sh` (Jank's convention)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from plughost.runtime.goplugin.launch import kill_group, spawn_plan
from plughost.sdk.golang import GO_CLIENT, GO_CLIENT_ENV

BUILD_SCRIPT = Path("scripts") / "build.sh"
OUTPUT_TAIL_CHARS = 4000


class BuildError(RuntimeError):
    """The build script failed or timed out; the message carries the output tail."""


def build_script(plugin_dir: Path) -> Path | None:
    """`<plugin_dir>/scripts/build.sh` if it exists."""
    script = plugin_dir / BUILD_SCRIPT
    return script if script.is_file() else None


async def build_plugin(plugin_dir: Path, binary: Path, timeout_s: float) -> str:
    """Run the build script (cwd = plugin dir, `PLUGHOST_GO_SDK` = plughost's Go client unless set);
    return its output; raise `BuildError` on failure."""
    script = build_script(plugin_dir)
    if script is None:
        raise BuildError(f"{binary} does not exist and {plugin_dir / BUILD_SCRIPT} is missing; build the plugin")
    command, preexec = spawn_plan(["/bin/sh", str(script)], None, None)
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=str(plugin_dir),
        env={GO_CLIENT_ENV: str(GO_CLIENT), **os.environ},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        process_group=0 if preexec is None else None,
        preexec_fn=preexec,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        kill_group(process)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 5)
        raise BuildError(f"{script} did not finish within {timeout_s:g} s and was killed") from None
    except BaseException:
        kill_group(process)
        raise
    text = output.decode("utf-8", "replace")
    tail = text[-OUTPUT_TAIL_CHARS:]
    if process.returncode != 0:
        raise BuildError(f"{script} failed with exit code {process.returncode}; output:\n{tail}")
    if not _exists(binary):
        raise BuildError(f"{script} succeeded but did not produce {binary}; output:\n{tail}")
    return text


def _exists(path: Path) -> bool:
    return path.exists()
