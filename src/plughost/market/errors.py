"""The market's errors: each has a machine-readable `code` and the HTTP `status` the management API answers.

Errors caused by what an index or a download contains (an invalid index, a checksum that does not
match, an unsafe archive, a failing pip) answer 502: the request was fine, the source was not.
"""

from __future__ import annotations

from typing import Any, ClassVar

from plughost.errors import PlugHostError


class MarketError(PlugHostError):
    """Base of every market error; `detail` is structured data for the API (may be None)."""

    code: ClassVar[str] = "market_error"
    status: ClassVar[int] = 400

    def __init__(self, message: str, *, detail: Any = None) -> None:
        super().__init__(message)
        self.detail = detail


class IndexUnavailable(MarketError):
    """No index could be read (unreachable and not cached)."""

    code, status = "index_unavailable", 502


class InvalidIndex(MarketError):
    """An index is not JSON, does not fit the format, or its signature does not verify."""

    code, status = "invalid_index", 502


class NotInIndex(MarketError):
    """No index offers that plugin or that version."""

    code, status = "market_not_found", 404


class NoCompatibleVersion(MarketError):
    """The plugin exists, but no version fits this host (platform, plughost version, dependents)."""

    code, status = "no_compatible_version", 409


class DownloadFailed(MarketError):
    """The archive could not be downloaded completely."""

    code, status = "download_failed", 502


class ChecksumMismatch(MarketError):
    """The archive's SHA-256 is not the one the index names."""

    code, status = "checksum_mismatch", 502


class UnsafeArchive(MarketError):
    """The archive holds something that must not be unpacked (paths out, links out, devices, too much)."""

    code, status = "unsafe_archive", 502


class InvalidPackage(MarketError):
    """The unpacked plugin does not match its index entry (manifest id, version, runtime) or is invalid."""

    code, status = "invalid_package", 502


class DependencyConflict(MarketError):
    """Plugin dependencies cannot all be satisfied, or form a cycle (`detail.cycle`)."""

    code, status = "dependency_conflict", 409


class RequirementsFailed(MarketError):
    """pip could not install the plugin's Python requirements."""

    code, status = "requirements_failed", 502


class AlreadyExists(MarketError):
    """A plugin with that id exists but was not installed from this index."""

    code, status = "already_exists", 409


class NotInstalled(MarketError):
    """The plugin was not installed from the market."""

    code, status = "not_installed", 404


class HasDependents(MarketError):
    """Other installed plugins depend on the plugin (`detail.dependents`)."""

    code, status = "has_dependents", 409


class NoPreviousVersion(MarketError):
    """There is no kept version to roll back to."""

    code, status = "no_previous_version", 409


class InstallLoadFailed(MarketError):
    """The installed plugin did not load in the running host; everything was put back."""

    code, status = "install_load_failed", 409


class CannotWrite(MarketError):
    """A file or directory the market needs cannot be written (read-only, disk full, permissions)."""

    code, status = "cannot_write", 503


class MarketBusy(MarketError):
    """Another market operation on this workspace is running."""

    code, status = "market_busy", 409


ERROR_CODES = frozenset(
    cls.code
    for cls in (
        MarketError,
        IndexUnavailable,
        InvalidIndex,
        NotInIndex,
        NoCompatibleVersion,
        DownloadFailed,
        ChecksumMismatch,
        UnsafeArchive,
        InvalidPackage,
        DependencyConflict,
        RequirementsFailed,
        AlreadyExists,
        NotInstalled,
        HasDependents,
        NoPreviousVersion,
        InstallLoadFailed,
        CannotWrite,
        MarketBusy,
    )
)
"""Every code a market error carries (the CLI shows these as plughost's own errors)."""
