"""What market operations answer: the Python API returns these, the management API sends them as JSON."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from plughost.market.store import HistoryEntry, InstalledPlugin


class IndexStatus(BaseModel):
    """One configured index after reading it."""

    name: str
    url: str
    priority: int
    source: str = Field(description="network (fetched now), cache (the cached copy) or unavailable.")
    plugins: int = 0
    fetched_at: float | None = Field(default=None, description="Unix time the copy in use was fetched.")
    signed_by: str | None = Field(default=None, description="The trusted key whose signature verified.")
    warning: str | None = None
    error: str | None = None


class RefreshResult(BaseModel):
    indexes: list[IndexStatus]
    warnings: list[str] = Field(default_factory=list)


class SearchHit(BaseModel):
    id: str
    name: str
    description: str
    tags: list[str]
    latest: str = Field(description="The newest version.")
    index: str
    installed: str | None = Field(default=None, description="The version in the workspace, if any.")


class SearchResult(BaseModel):
    results: list[SearchHit]
    total: int = Field(description="How many matched (before the limit).")
    warnings: list[str] = Field(default_factory=list)


class VersionInfo(BaseModel):
    version: str
    url: str
    sha256: str
    size: int | None = None
    runtime: str
    platforms: list[str]
    plughost: str
    dependencies: list[str]
    python: list[str]
    released: str | None = None
    fits: bool = Field(description="Installable here (platform and plughost version).")
    why_not: str | None = None


class PluginInfo(BaseModel):
    id: str
    name: str
    description: str
    tags: list[str]
    author: str
    homepage: str | None
    index: str
    latest: str | None = Field(description="The newest version that fits this host.")
    versions: list[VersionInfo]
    installed: InstalledPlugin | None = None
    kept_versions: list[str] = Field(default_factory=list, description="Previous versions kept for rollback.")
    warnings: list[str] = Field(default_factory=list)


class Change(BaseModel):
    """One plugin installed, updated, downgraded or reinstalled."""

    id: str
    version: str
    previous: str | None = None
    action: str = Field(description="install, update, downgrade or reinstall.")
    index: str
    required_by: str | None = Field(default=None, description="Installed as a dependency of this plugin.")
    state: str | None = Field(default=None, description="Its state in the running host (none without one).")


class Failure(BaseModel):
    id: str
    code: str
    message: str


class ChangeReport(BaseModel):
    """What an install or update did: each change, dependencies first."""

    changes: list[Change] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list, description="Plugins already at the version asked for.")
    failed: list[Failure] = Field(default_factory=list, description="update --all: the plugins that failed.")
    warnings: list[str] = Field(default_factory=list)


class UninstallResult(BaseModel):
    id: str
    version: str
    purged: bool = Field(description="config/ and data/ were removed too.")
    dependents: list[str] = Field(default_factory=list, description="Plugins that depend on it (--force).")
    removed: list[str] = Field(default_factory=list, description="Paths removed.")


class RollbackResult(BaseModel):
    id: str
    version: str
    previous: str
    state: str | None = None


class InstalledRow(InstalledPlugin):
    state: str | None = Field(default=None, description="State in the running host.")
    latest: str | None = Field(default=None, description="Newest fitting version in the cached index.")
    kept_versions: list[str] = Field(default_factory=list)


class InstalledList(BaseModel):
    plugins: list[InstalledRow]


class History(BaseModel):
    id: str
    entries: list[HistoryEntry]
    current: str | None = None
    kept_versions: list[str] = Field(default_factory=list)


def json_ready(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


__all__ = [
    "Change",
    "ChangeReport",
    "Failure",
    "History",
    "IndexStatus",
    "InstalledList",
    "InstalledRow",
    "PluginInfo",
    "RefreshResult",
    "RollbackResult",
    "SearchHit",
    "SearchResult",
    "UninstallResult",
    "VersionInfo",
]
