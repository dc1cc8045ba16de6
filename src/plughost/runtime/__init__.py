"""Runtimes: turn plugins (Python, native libraries, executables) into `PluginHandle`s."""

from plughost.runtime.base import Candidate, LoadRequest, Runtime

__all__ = ["Candidate", "LoadRequest", "Runtime", "default_runtimes"]


def default_runtimes() -> dict[str, Runtime]:
    """One instance of every runtime available in this installation, keyed by name."""
    from plughost.runtime.native import NativeRuntime
    from plughost.runtime.placement import ProcessRuntime, PythonPlacement, WorkerRuntime

    # isolation != "none" runs in a worker; see plughost.runtime.placement.placement_for
    process = ProcessRuntime()
    worker = WorkerRuntime(executables=process)
    runtimes: dict[str, Runtime] = {
        "python": PythonPlacement(worker=worker),
        "native": NativeRuntime(),
        "process": process,
        "worker": worker,
    }
    return runtimes
