"""Runtimes: turn plugins (Python, native libraries, executables) into `PluginHandle`s."""

from __future__ import annotations

from typing import TYPE_CHECKING

from plughost.runtime.base import Candidate, LoadRequest, Runtime

if TYPE_CHECKING:
    from plughost.runtime.process import ProcessOptions

__all__ = ["Candidate", "LoadRequest", "Runtime", "default_runtimes"]


def default_runtimes(process_options: ProcessOptions | None = None) -> dict[str, Runtime]:
    """One instance of every runtime available in this installation, keyed by name.

    `process_options` configure process plugins and workers (`[process]` in plughost.toml).
    """
    from plughost.runtime.native import NativeRuntime
    from plughost.runtime.placement import ProcessRuntime, PythonPlacement, WorkerRuntime

    # isolation != "none" runs in a worker; see plughost.runtime.placement.placement_for
    process = ProcessRuntime(process_options)
    worker = WorkerRuntime(WorkerRuntime.worker_options(process_options), executables=process)
    runtimes: dict[str, Runtime] = {
        "python": PythonPlacement(worker=worker),
        "native": NativeRuntime(),
        "process": process,
        "worker": worker,
    }
    return runtimes
