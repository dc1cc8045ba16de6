"""Runtimes: turn plugins (Python, native libraries, executables) into `PluginHandle`s."""

from plughost.runtime.base import Candidate, LoadRequest, Runtime

__all__ = ["Candidate", "LoadRequest", "Runtime", "default_runtimes"]


def default_runtimes() -> dict[str, Runtime]:
    """One instance of every runtime available in this installation, keyed by name."""
    from plughost.runtime.python import PythonRuntime

    runtimes: dict[str, Runtime] = {"python": PythonRuntime()}
    return runtimes
