"""Python requirements of a plugin, installed with pip into the plugin's own site directory.

`python -m pip install --target <plugin>/.site <requirements>` with the host's interpreter: the
packages land beside the plugin, never in the host's environment, go away with the plugin, and
each version of the plugin has its own. The Python runtime puts `<plugin>/.site` on the import
path when it loads the plugin (after the host's own paths: the host's packages win). Extra pip
arguments come from `[market] pip_args` (a mirror, `--no-index --find-links DIR`, …), never from
an index: requirements from an index are parsed as PEP 508 requirements, so they cannot smuggle
in options, and direct URLs are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from plughost.market.errors import RequirementsFailed
from plughost.market.index import parse_python_requirement
from plughost.sdk.manifest import SITE_DIR

OUTPUT_TAIL_LINES = 12


def pip_command(requirements: Sequence[str], target: Path, pip_args: Sequence[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--target",
        str(target),
        "--no-input",
        "--disable-pip-version-check",
        "--no-warn-script-location",
        *pip_args,
        *requirements,
    ]


async def install_requirements(
    plugin_id: str, requirements: Sequence[str], plugin_dir: Path, *, pip_args: Sequence[str], timeout_s: float
) -> Path | None:
    """Install `requirements` into `<plugin_dir>/.site`; its path (None when there is nothing to install).

    `RequirementsFailed` with the end of pip's output when pip fails or takes longer than `timeout_s`.
    """
    if not requirements:
        return None
    for requirement in requirements:
        try:
            parse_python_requirement(requirement)
        except ValueError as exc:
            raise RequirementsFailed(f"plugin '{plugin_id}': {exc}") from None
    target = plugin_dir / SITE_DIR
    env = {**os.environ, "PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONNOUSERSITE": "1"}
    command = pip_command(requirements, target, pip_args)
    process = await asyncio.create_subprocess_exec(
        *command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        raise RequirementsFailed(
            f"plugin '{plugin_id}': pip did not finish installing {', '.join(requirements)} within {timeout_s:g} s"
        ) from None
    finally:
        if process.returncode is None:  # timed out or cancelled: no pip left behind
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    if process.returncode != 0:
        tail = "\n".join(output.decode("utf-8", "replace").strip().splitlines()[-OUTPUT_TAIL_LINES:])
        raise RequirementsFailed(
            f"plugin '{plugin_id}': pip failed on {', '.join(requirements)} (exit {process.returncode}):\n{tail}",
            detail={"requirements": list(requirements), "exit_code": process.returncode, "output": tail},
        )
    return target


__all__ = ["install_requirements", "pip_command"]
