"""The one exception hierarchy of plughost.

Every error says what was wrong, where (file, plugin id, field) and, where it helps, what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class PlugHostError(Exception):
    """Base class of every error plughost raises on purpose."""


@dataclass(frozen=True)
class ValidationIssue:
    """One problem found in a file: which file, which field, what is wrong."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.field}" if self.field else self.file
        return f"{where}: {self.message}"


class ManifestError(PlugHostError):
    """A plugin manifest could not be read or is invalid; `issues` lists every problem."""

    def __init__(self, issues: list[ValidationIssue]) -> None:
        self.issues = issues
        super().__init__("; ".join(str(i) for i in issues))


class ConfigError(PlugHostError):
    """A configuration file (host or plugin) could not be read or is invalid."""


class StateFileError(PlugHostError):
    """A file plughost keeps (plugin state, permission grants, the registry, plugin configuration)
    cannot be read or written; the message names the file, why, and what to do."""


class PluginNotFoundError(PlugHostError, LookupError):
    """No plugin with that id is known."""

    def __init__(self, plugin_id: str) -> None:
        self.plugin_id = plugin_id
        super().__init__(f"plugin '{plugin_id}' was not found")


class PluginLoadError(PlugHostError):
    """A plugin could not be loaded (import error, failing load hook, missing entry …)."""

    def __init__(self, plugin_id: str, reason: str) -> None:
        self.plugin_id = plugin_id
        self.reason = reason
        super().__init__(f"plugin '{plugin_id}' failed to load: {reason}")


class NotAPluginError(PluginLoadError):
    """A path to load is no plugin: no manifest, and not a `.py` file or a plugin directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        reason = f"not a plugin: {path} has no plugin manifest and is not a .py file or a plugin directory"
        super().__init__(path.stem, reason)


class PluginStateError(PlugHostError):
    """An operation is not possible in the plugin's current lifecycle state."""


class DependencyError(PlugHostError):
    """A plugin dependency is missing, has the wrong version, or is part of a cycle."""


class InvocationError(PlugHostError):
    """A call into a plugin failed in the runtime (unknown handler, protocol error, crash)."""

    def __init__(self, message: str, *, code: str = "plugin_error", retryable: bool = False) -> None:
        self.code = code
        self.retryable = retryable
        super().__init__(message)


class UnknownHandlerError(InvocationError):
    """The plugin declares no handler with that name."""

    def __init__(self, plugin_id: str, name: str) -> None:
        super().__init__(f"plugin '{plugin_id}' has no handler '{name}'", code="unknown_method")
