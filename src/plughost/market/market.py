"""`Market`: search, install, update, uninstall and roll back plugins of one workspace.

With a `PluginManager` (a running host) every change is loaded at once: a new plugin is loaded
and enabled, an update or rollback is a reload (the new version starts beside the old one, which
keeps serving if the new one fails; the enabled state is kept). Without one only the files and
`plugin-state.toml` change, and the next `plughost run` loads them.

An install is a transaction. First every plugin of the plan (dependencies first) is downloaded,
checked against its SHA-256, unpacked safely and given its Python requirements, all in
`.plughost/market/staging/`: a failure there has changed nothing. Then each is moved into
`plugins/<id>` (the version it replaces goes to `.plughost/market/versions/<id>/<version>/`) and
loaded; if one of them fails, the ones before are put back as they were, and the host keeps
serving what it served. Finally `state.json` records the change and its history.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from packaging.specifiers import SpecifierSet

from plughost.core.config import HostConfig, PluginConfigStore
from plughost.core.discovery import candidate_from_path, discover
from plughost.core.state import PluginStateFile
from plughost.errors import PlugHostError, PluginLoadError, StateFileError
from plughost.market import fetch
from plughost.market.errors import (
    AlreadyExists,
    CannotWrite,
    DependencyConflict,
    HasDependents,
    IndexUnavailable,
    InstallLoadFailed,
    InvalidIndex,
    InvalidPackage,
    MarketError,
    NoPreviousVersion,
    NotInIndex,
    NotInstalled,
    UnsafeArchive,
)
from plughost.market.extract import ArchiveLimits, extract_archive, plugin_root
from plughost.market.fetch import IndexCache, IndexReader, LoadedIndex, NoProgress, Progress, resolve_url
from plughost.market.models import (
    Change,
    ChangeReport,
    Failure,
    History,
    IndexStatus,
    InstalledList,
    InstalledRow,
    PluginInfo,
    RefreshResult,
    RollbackResult,
    SearchHit,
    SearchResult,
    UninstallResult,
    VersionInfo,
)
from plughost.market.requirements import install_requirements
from plughost.market.resolve import Catalog, Offer, Requirements, Resolver, Step, host_platform, version_of
from plughost.market.settings import MarketSettings
from plughost.market.store import HistoryEntry, InstalledPlugin, MarketState, MarketStore, move, now, remove_tree
from plughost.sdk.manifest import MANIFEST_FILES, SITE_DIR, PluginManifest
from plughost.sdk.models import DiscoveryStatus

if TYPE_CHECKING:
    from plughost.core.manager import PluginManager

log = logging.getLogger("plughost.market")


@dataclass
class _Staged:
    """A plugin ready to move into place: checked, unpacked, requirements installed."""

    step: Step
    work: Path  # the staging directory (removed at the end)
    root: Path  # the plugin directory inside it


@dataclass
class _Committed:
    staged: _Staged
    target: Path
    kept: Path | None  # where the replaced version went (None: there was none)
    fresh: bool  # the host did not have the plugin before
    enabled_before: bool | None = None  # plugin-state.toml's flag before a fresh install


class Market:
    """The plugin market of one workspace; see the module docstring and docs/market.md.

    Construct it with `Market.for_manager(manager)` (changes load in that manager's host) or
    `Market.for_workspace(workspace)` (files only; reads plughost.toml). The constructor itself does
    no I/O (without `config` or `manager` it uses a default configuration: no indexes).
    Operations that change the workspace run one at a time (also across processes).
    """

    def __init__(
        self,
        workspace: Path | str,
        *,
        config: HostConfig | None = None,
        manager: PluginManager | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.workspace = Path(workspace).resolve()
        self.config = config if config is not None else (manager.config if manager is not None else HostConfig())
        self.settings = MarketSettings.from_host_config(self.config)
        self.manager = manager
        self.progress: Progress = progress or NoProgress()
        self.store = MarketStore(self.workspace)
        self.reader = IndexReader(self.settings, self.workspace, IndexCache(self.store.index_dir))
        self.platform = host_platform()
        self._lock = asyncio.Lock()

    @classmethod
    def for_workspace(cls, workspace: Path | str, *, progress: Progress | None = None) -> Market:
        """The market of a workspace without a running host (reads its plughost.toml); files only."""
        root = Path(workspace).resolve()
        return cls(root, config=HostConfig.load(root), progress=progress)

    @classmethod
    def for_manager(cls, manager: PluginManager, *, progress: Progress | None = None) -> Market:
        """The market of the manager's workspace; installed plugins load in that manager."""
        return cls(manager.workspace, config=manager.config, manager=manager, progress=progress)

    @property
    def plugin_dir(self) -> Path:
        """Where the market installs: the first of `[host] plugin_dirs`."""
        if not self.config.host.plugin_dirs:
            raise MarketError("[host] plugin_dirs is empty: the market has nowhere to install plugins")
        return self.workspace / self.config.host.plugin_dirs[0]

    # reading ---------------------------------------------------------------------------------
    async def refresh(self) -> RefreshResult:
        """Fetch every configured index now (an unreachable one falls back to its cache, with a warning)."""
        _, statuses, warnings = await self._read_indexes(force=True)
        return RefreshResult(indexes=statuses, warnings=warnings)

    async def search(self, query: str = "", *, tag: str | None = None, limit: int = 20) -> SearchResult:
        """Plugins whose id, name, description or tags contain every word of `query` (and `tag`)."""
        catalog, warnings = await self._catalog(force=False, required=False)
        present = self._requirements(self.store.load()).present
        words = query.casefold().split()
        hits = [o for o in catalog.plugins() if o.plugin.matches(query, tag)]

        def rank(offer: Offer) -> tuple[int, str]:
            plugin_id = offer.plugin.id
            exact = bool(words) and plugin_id.casefold() == " ".join(words)
            in_id = bool(words) and all(w in plugin_id.casefold() for w in words)
            return (0 if exact else 1 if in_id else 2, plugin_id)

        hits.sort(key=rank)
        results = [
            SearchHit(
                id=o.plugin.id,
                name=o.plugin.name or o.plugin.id,
                description=o.plugin.description,
                tags=list(o.plugin.tags),
                latest=o.plugin.version_numbers()[0],
                index=o.index.source.name,
                installed=present.get(o.plugin.id),
            )
            for o in hits[: max(limit, 0)]
        ]
        return SearchResult(results=results, total=len(hits), warnings=warnings)

    async def info(self, plugin_id: str, version: str | None = None) -> PluginInfo:
        """One plugin of the indexes: every version (or `version`), whether each fits this host."""
        catalog, warnings = await self._catalog(force=False)
        state = self.store.load()
        record = state.installed.get(plugin_id)
        offer = catalog.find(plugin_id, record.index if record else None) or catalog.find(plugin_id)
        if offer is None:
            raise NotInIndex(f"no index offers a plugin '{plugin_id}'", detail={"plugin_id": plugin_id})
        resolver = self._resolver(catalog, self._requirements(state))
        builds = sorted(offer.plugin.versions, key=lambda b: b.parsed, reverse=True)
        if version is not None:
            wanted = version_of(version)
            builds = [b for b in builds if b.version == version or (wanted is not None and b.parsed == wanted)]
            if not builds:
                numbers = ", ".join(offer.plugin.version_numbers())
                raise NotInIndex(f"plugin '{plugin_id}' has no version {version} (versions: {numbers})")
        versions = []
        for build in builds:
            why = None
            if not build.runs_on(self.platform):
                why = f"no build for {self.platform} (builds: {', '.join(build.platforms)})"
            elif resolver.plughost_version not in SpecifierSet(build.plughost):
                why = f"needs plughost {build.plughost}"
            versions.append(
                VersionInfo(
                    **build.model_dump(exclude={"released"}), released=build.released, fits=why is None, why_not=why
                )
            )
        try:
            latest: str | None = resolver.select(offer.plugin, SpecifierSet()).version
        except MarketError:
            latest = None
        return PluginInfo(
            id=offer.plugin.id,
            name=offer.plugin.name or offer.plugin.id,
            description=offer.plugin.description,
            tags=list(offer.plugin.tags),
            author=offer.plugin.author_name,
            homepage=offer.plugin.homepage,
            index=offer.index.source.name,
            latest=latest,
            versions=versions,
            installed=record,
            kept_versions=self.store.kept_versions(plugin_id),
            warnings=warnings,
        )

    def installed(self) -> InstalledList:
        """The plugins the market installed, with their state in the host and the newest cached version."""
        state = self.store.load()
        catalog = Catalog([c for s in self.settings.sorted_indexes() if (c := self.reader.cached(s)) is not None])
        resolver = self._resolver(catalog, self._requirements(state))
        rows = []
        for plugin_id, record in sorted(state.installed.items()):
            latest = None
            offer = catalog.find(plugin_id, record.index)
            if offer is not None:
                with contextlib.suppress(MarketError):
                    latest = resolver.select(offer.plugin, SpecifierSet()).version
            rows.append(
                InstalledRow(
                    **record.model_dump(),
                    state=self._state_of(plugin_id),
                    latest=latest,
                    kept_versions=self.store.kept_versions(plugin_id),
                )
            )
        return InstalledList(plugins=rows)

    def history(self, plugin_id: str) -> History:
        """What the market did with the plugin, oldest first (also after it was uninstalled)."""
        state = self.store.load()
        entries = state.history.get(plugin_id)
        if entries is None:
            raise NotInstalled(f"the market never installed a plugin '{plugin_id}'", detail={"plugin_id": plugin_id})
        record = state.installed.get(plugin_id)
        return History(
            id=plugin_id,
            entries=entries,
            current=record.version if record else None,
            kept_versions=self.store.kept_versions(plugin_id),
        )

    # changing --------------------------------------------------------------------------------
    async def install(self, plugin_id: str, version: str | None = None, *, enable: bool = True) -> ChangeReport:
        """Install `plugin_id` (the newest fitting version, or `version`) with its dependencies.

        Already installed: nothing happens without `version`; with another version it is switched
        to (the current one is kept for rollback).
        """
        async with self._operation():
            catalog, warnings = await self._catalog(force=False)
            state = self.store.load()
            requirements = self._requirements(state)
            present = requirements.present.get(plugin_id)
            record = state.installed.get(plugin_id)
            same = version is None or version_of(version) == version_of(present or "")
            if record is not None and present is not None and same:
                warnings.append(
                    f"'{plugin_id}' {present} is already installed"
                    + ("" if version else f"; `plughost market update {plugin_id}` gets a newer version")
                )
                return ChangeReport(unchanged=[plugin_id], warnings=warnings)
            plan = self._resolver(catalog, requirements).plan(plugin_id, version=version)
            report = await self._apply(plan, state, requirements, enable=enable)
            report.warnings[:0] = warnings
            return report

    async def forget(self, plugin_id: str) -> bool:
        """Forget an installed plugin whose files were removed another way (CLIProxyAPI's DELETE):
        it is no longer listed as installed, and may be installed again. False if it was not."""
        async with self._operation():
            state = self.store.load()
            record = state.installed.pop(plugin_id, None)
            if record is None:
                return False
            state.record(plugin_id, HistoryEntry(at=now(), action="uninstall", version=None, previous=record.version))
            self.store.save(state)
            log.info("forgot '%s' %s: its files were deleted", plugin_id, record.version)
            return True

    async def update(self, plugin_id: str | None = None, *, all_plugins: bool = False) -> ChangeReport:
        """Update one installed plugin (or every one) to the newest version that fits; the indexes are
        fetched first. With `all_plugins`, one failing update does not stop the others (`failed`)."""
        if plugin_id is not None and all_plugins:
            raise MarketError("name one plugin to update, or ask for all of them, not both")
        if plugin_id is None and not all_plugins:
            raise MarketError("name the plugin to update, or ask for all of them")
        async with self._operation():
            catalog, warnings = await self._catalog(force=True)
            state = self.store.load()
            ids = [plugin_id] if plugin_id is not None else sorted(state.installed)
            report = ChangeReport(warnings=warnings)
            for name in ids:
                try:
                    done = await self._update_one(name, catalog, state)
                except MarketError as exc:
                    if not all_plugins:
                        raise
                    report.failed.append(Failure(id=name, code=exc.code, message=str(exc)))
                    continue
                report.changes += done.changes
                report.unchanged += done.unchanged
                report.warnings += done.warnings
                state = self.store.load()
            return report

    async def _update_one(self, plugin_id: str, catalog: Catalog, state: MarketState) -> ChangeReport:
        record = state.installed.get(plugin_id)
        if record is None:
            raise _not_installed(plugin_id)
        requirements = self._requirements(state)
        current = requirements.present.get(plugin_id, record.version)
        offer = catalog.offer(plugin_id, record.index)
        if offer is None:
            raise NotInIndex(f"index '{record.index}', which '{plugin_id}' was installed from, no longer offers it")
        resolver = self._resolver(catalog, requirements)
        best = resolver.select(offer.plugin, SpecifierSet())
        installed_version = version_of(current)
        if installed_version is not None and best.parsed <= installed_version:
            return ChangeReport(unchanged=[plugin_id])
        plan = resolver.plan(plugin_id, version=best.version)
        return await self._apply(plan, state, requirements, enable=True)

    async def uninstall(self, plugin_id: str, *, purge: bool = False, force: bool = False) -> UninstallResult:
        """Stop the plugin and remove its files and kept versions (`purge`: its config and data too).

        Refused while other plugins depend on it, unless `force` (the result names them).
        """
        async with self._operation():
            state = self.store.load()
            record = state.installed.get(plugin_id)
            if record is None:
                raise _not_installed(plugin_id)
            dependents = [d for d in self._requirements(state).dependents(plugin_id) if d != plugin_id]
            if dependents and not force:
                one = len(dependents) == 1
                raise HasDependents(
                    f"{', '.join(dependents)} depend{'s' if one else ''} on '{plugin_id}': uninstall "
                    f"{'it' if one else 'them'} first, or force it",
                    detail={"plugin_id": plugin_id, "dependents": dependents},
                )
            target = self.plugin_dir / plugin_id
            trash = None
            if target.exists() or target.is_symlink():
                trash = self._trash_path(plugin_id)
                _move(target, trash)
            try:
                await self._unload(plugin_id)
            except BaseException:
                if trash is not None:
                    _move(trash, target)
                raise
            state.installed.pop(plugin_id, None)
            state.record(plugin_id, HistoryEntry(at=now(), action="uninstall", version=None, previous=record.version))
            self.store.save(state)
            removed = [str(target)] if trash is not None else []
            if trash is not None:
                remove_tree(trash)
            versions = self.store.versions_dir(plugin_id)
            if versions.exists():
                remove_tree(versions)
                removed.append(str(versions))
            if purge:
                removed += self._purge(plugin_id)
            log.info("uninstalled '%s' %s", plugin_id, record.version)
            return UninstallResult(
                id=plugin_id, version=record.version, purged=purge, dependents=dependents, removed=removed
            )

    async def rollback(self, plugin_id: str, version: str | None = None) -> RollbackResult:
        """Switch back to the version used before the current one (or to the kept `version`): a reload
        in a running host, the enabled state kept."""
        async with self._operation():
            state = self.store.load()
            record = state.installed.get(plugin_id)
            if record is None:
                raise _not_installed(plugin_id)
            kept = [v for v in self.store.kept_versions(plugin_id) if v != record.version]
            target_version = version if version is not None else _previous(state, plugin_id, record.version, kept)
            if target_version is None or target_version not in kept:
                what = (
                    f"version {target_version} of '{plugin_id}' is not kept"
                    if version
                    else (f"no earlier version of '{plugin_id}' is kept")
                )
                raise NoPreviousVersion(f"{what} (kept: {', '.join(kept) or 'none'})", detail={"kept": kept})
            source = self.store.kept(plugin_id, target_version)
            manifest = _manifest_of(source)
            self._check_dependents(plugin_id, manifest.version, state)
            target = self.plugin_dir / plugin_id
            if not target.exists():
                raise NotInstalled(f"{target} is gone; install '{plugin_id}' again", detail={"plugin_id": plugin_id})
            keep_current = self.store.kept(plugin_id, record.version)
            if keep_current.exists():
                remove_tree(keep_current)
            _move(target, keep_current)
            try:
                _move(source, target)
            except BaseException:
                _move(keep_current, target)
                raise
            try:
                await self._activate(plugin_id, target, fresh=False, enable=True)
                was = next((e for e in reversed(state.history.get(plugin_id, [])) if e.version == target_version), None)
                sha = was.sha256 if was is not None else None
                state.installed[plugin_id] = record.model_copy(
                    update={
                        "version": target_version,
                        "sha256": sha or "",
                        "url": (was.url if was is not None else None) or record.url,
                        "runtime": manifest.runtime,
                        "installed_at": now(),
                    }
                )
                state.record(
                    plugin_id,
                    HistoryEntry(
                        at=now(),
                        action="rollback",
                        version=target_version,
                        previous=record.version,
                        index=record.index,
                        sha256=sha,
                        url=was.url if was is not None else None,
                    ),
                )
                self.store.save(state)
            except BaseException:
                await self._swap_back(plugin_id, target, source, keep_current, reload=True)
                raise
            log.info("rolled '%s' back from %s to %s", plugin_id, record.version, target_version)
            return RollbackResult(
                id=plugin_id, version=target_version, previous=record.version, state=self._state_of(plugin_id)
            )

    # internals: indexes ----------------------------------------------------------------------
    async def _read_indexes(
        self, force: bool, failures: list[MarketError] | None = None
    ) -> tuple[list[LoadedIndex], list[IndexStatus], list[str]]:
        loaded: list[LoadedIndex] = []
        statuses: list[IndexStatus] = []
        warnings: list[str] = []
        if not self.settings.indexes:
            return loaded, statuses, warnings
        async with fetch.client(self.settings) as http:
            for source in self.settings.sorted_indexes():
                try:
                    index = await self.reader.load(source, http, force=force)
                except (IndexUnavailable, InvalidIndex) as exc:
                    if failures is not None:
                        failures.append(exc)
                    statuses.append(
                        IndexStatus(
                            name=source.name,
                            url=source.url,
                            priority=source.priority,
                            source="unavailable",
                            error=str(exc),
                        )
                    )
                    warnings.append(f"index '{source.name}' cannot be used: {exc}")
                    continue
                loaded.append(index)
                if index.warning:
                    warnings.append(index.warning)
                statuses.append(
                    IndexStatus(
                        name=source.name,
                        url=source.url,
                        priority=source.priority,
                        source="cache" if index.from_cache else "network",
                        plugins=len(index.index.plugins),
                        fetched_at=index.fetched_at,
                        signed_by=index.signed_by,
                        warning=index.warning,
                    )
                )
        return loaded, statuses, warnings

    async def _catalog(self, *, force: bool, required: bool = True) -> tuple[Catalog, list[str]]:
        """The readable indexes; with `required`, an error when none is configured or none can be read."""
        if not self.settings.indexes:
            if required:
                raise NotInIndex("no market index is configured: add [[market.indexes]] to plughost.toml")
            return Catalog([]), ["no market index is configured ([[market.indexes]] in plughost.toml)"]
        failures: list[MarketError] = []
        loaded, _, warnings = await self._read_indexes(force, failures)
        if not loaded and required:
            kind = InvalidIndex if any(isinstance(f, InvalidIndex) for f in failures) else IndexUnavailable
            raise kind("; ".join(str(f) for f in failures), detail={"indexes": [str(f) for f in failures]})
        return Catalog(loaded), warnings

    # internals: the workspace ----------------------------------------------------------------
    def _manifests(self) -> tuple[dict[str, PluginManifest], dict[str, Path]]:
        """Every plugin in the workspace (loaded or on disk): manifests and paths by id."""
        manifests: dict[str, PluginManifest] = {}
        paths: dict[str, Path] = {}
        if self.manager is not None:
            for instance in self.manager.list_plugins():
                manifests[instance.id], paths[instance.id] = instance.manifest, instance.path
        runtimes = self.manager.runtimes if self.manager is not None else {}
        plugin_dirs = [self.workspace / d for d in self.config.host.plugin_dirs]
        report = discover(plugin_dirs, runtimes, entry_points=self.config.host.entry_points)
        for candidate in report.candidates.values():
            if candidate.manifest is not None and candidate.id not in manifests:
                manifests[candidate.id], paths[candidate.id] = candidate.manifest, candidate.path
        return manifests, paths

    def _requirements(self, state: MarketState) -> Requirements:
        manifests, _ = self._manifests()
        return Requirements.from_manifests(
            {i: m.version for i, m in manifests.items()},
            {i: m.dependencies.plugins for i, m in manifests.items()},
            {i: r.index for i, r in state.installed.items()},
        )

    def _resolver(self, catalog: Catalog, requirements: Requirements) -> Resolver:
        from plughost import __version__

        return Resolver(catalog, requirements, platform=self.platform, plughost_version=__version__)

    def _state_of(self, plugin_id: str) -> str | None:
        if self.manager is None:
            return None
        instance = self.manager.get_plugin(plugin_id)
        return str(instance.state) if instance is not None else None

    def _check_dependents(self, plugin_id: str, version: str, state: MarketState) -> None:
        parsed = version_of(version)
        for dependent, wanted in self._requirements(state).required.get(plugin_id, ()):
            if dependent != plugin_id and str(wanted) and (parsed is None or not wanted.contains(parsed, True)):
                raise DependencyConflict(
                    f"{dependent} requires '{plugin_id}{wanted}', which version {version} does not satisfy",
                    detail={"dependent": dependent},
                )

    def _check_origins(self, plan: Sequence[Step], state: MarketState) -> None:
        """Refuse to replace a plugin the market did not install, or installed from another index."""
        _, paths = self._manifests()
        for step in plan:
            record = state.installed.get(step.id)
            index = step.offer.index.source.name
            target = self.plugin_dir / step.id
            if record is None:
                where = paths.get(step.id) or (target if target.exists() or target.is_symlink() else None)
                if where is not None:
                    raise AlreadyExists(
                        f"a plugin '{step.id}' already exists at {where} and was not installed from the market; "
                        f"remove it first to install '{step.id}' from index '{index}'",
                        detail={"plugin_id": step.id, "path": str(where)},
                    )
            elif record.index != index:
                raise AlreadyExists(
                    f"'{step.id}' was installed from index '{record.index}'; uninstall it first to install it "
                    f"from index '{index}'",
                    detail={"plugin_id": step.id, "index": record.index},
                )
            elif step.id in paths and paths[step.id].resolve() != target.resolve():
                raise AlreadyExists(
                    f"a plugin '{step.id}' is also at {paths[step.id]} (the market installed it at {target}); "
                    "remove the other one first",
                    detail={"plugin_id": step.id, "path": str(paths[step.id])},
                )

    @contextlib.asynccontextmanager
    async def _operation(self) -> AsyncIterator[None]:
        async with self._lock:
            with self.store.lock():
                yield

    def _trash_path(self, plugin_id: str) -> Path:
        return self.store.staging_dir / f"{plugin_id}.removed-{secrets.token_hex(4)}"

    # internals: installing -------------------------------------------------------------------
    async def _apply(
        self, plan: list[Step], state: MarketState, requirements: Requirements, *, enable: bool
    ) -> ChangeReport:
        self._check_origins(plan, state)
        staged: list[_Staged] = []
        committed: list[_Committed] = []
        try:
            async with fetch.client(self.settings) as http:
                for step in plan:
                    staged.append(await self._stage(step, http))
            try:
                for item in staged:
                    committed.append(await self._commit(item, enable=enable or not item.step.requested))
                for done in committed:
                    self._record(state, done.staged.step)
                self.store.save(state)
            except BaseException:
                for done in reversed(committed):
                    await self._undo(done)
                raise
        finally:
            for item in staged:
                remove_tree(item.work)
        report = ChangeReport()
        for done in committed:
            step = done.staged.step
            if done.kept is not None:
                self.store.prune(step.id, state, self.settings.keep_versions, step.build.version)
            report.changes.append(
                Change(
                    id=step.id,
                    version=step.build.version,
                    previous=step.previous,
                    action=step.action,
                    index=step.offer.index.source.name,
                    required_by=step.required_by,
                    state=self._state_of(step.id),
                )
            )
            log.info("%s '%s' %s", step.action, step.id, step.build.version)
        return report

    async def _stage(self, step: Step, http: httpx.AsyncClient) -> _Staged:
        label = f"{step.id} {step.build.version}"
        try:
            self.store.staging_dir.mkdir(parents=True, exist_ok=True)
            work = self.store.staging_dir / f"{step.id}-{step.build.version}-{secrets.token_hex(4)}"
            work.mkdir()
        except OSError as exc:
            raise CannotWrite(f"cannot write {self.store.staging_dir}: {exc.strerror or exc}") from exc
        try:
            url = resolve_url(step.offer.index.location, step.build.url)
            archive = work / "archive"
            await fetch.download(
                url,
                archive,
                http=http,
                sha256=step.build.sha256,
                max_bytes=self.settings.max_download_bytes,
                progress=self.progress,
                label=label,
            )
            limits = ArchiveLimits(self.settings.max_unpacked_bytes, self.settings.max_files)
            try:
                await asyncio.to_thread(extract_archive, archive, work / "unpacked", limits)
            except UnsafeArchive as exc:
                raise UnsafeArchive(f"{label} from {url}: {exc}", detail=exc.detail) from None
            except OSError as exc:
                raise CannotWrite(f"unpacking {label}: {exc.strerror or exc}") from exc
            archive.unlink()
            root = plugin_root(work / "unpacked", MANIFEST_FILES)
            self._check_package(step, root)
            await install_requirements(
                step.id,
                step.build.python,
                root,
                pip_args=self.settings.pip_args,
                timeout_s=self.settings.pip_timeout_s,
            )
        except BaseException:
            remove_tree(work)
            raise
        return _Staged(step, work, root)

    def _check_package(self, step: Step, root: Path) -> None:
        label = f"{step.id} {step.build.version}"
        if (root / SITE_DIR).exists() or (root / SITE_DIR).is_symlink():
            raise InvalidPackage(f"{label}: the archive holds {SITE_DIR}/, which the market fills itself")
        candidate = candidate_from_path(root)
        manifest = candidate.manifest
        if manifest is None or candidate.status is DiscoveryStatus.INVALID:
            problems = "; ".join(str(e) for e in candidate.errors).replace(str(root), "<archive>")
            raise InvalidPackage(f"{label}: the archive is not a valid plugin: {problems}")
        mismatches = []
        if manifest.id != step.id:
            mismatches.append(f"id '{manifest.id}'")
        if version_of(manifest.version) != step.build.parsed:
            mismatches.append(f"version {manifest.version}")
        if manifest.runtime != step.build.runtime:
            mismatches.append(f"runtime {manifest.runtime}")
        if mismatches:
            raise InvalidPackage(
                f"{label}: the archive's manifest says {', '.join(mismatches)}, not what the index says; refused"
            )

    async def _commit(self, item: _Staged, *, enable: bool) -> _Committed:
        step = item.step
        target = self.plugin_dir / step.id
        kept = None
        if target.exists() or target.is_symlink():
            kept = self.store.kept(step.id, step.previous or "unknown")
            if kept.exists():
                remove_tree(kept)
            _move(target, kept)
        try:
            _move(item.root, target)
        except BaseException:
            if kept is not None:
                _move(kept, target)
            raise
        done = _Committed(item, target, kept, fresh=kept is None)
        try:
            done.enabled_before = await self._activate(step.id, target, fresh=done.fresh, enable=enable)
        except BaseException:
            await self._swap_back(step.id, target, item.root, kept, reload=False)
            raise
        return done

    async def _activate(self, plugin_id: str, target: Path, *, fresh: bool, enable: bool) -> bool | None:
        """Load the plugin now in `target` (reload when the host has it); plugin-state.toml's flag before."""
        manager = self.manager
        if manager is None:
            state_file = PluginStateFile.load(self.workspace / self.config.host.state_file)
            before = state_file.modules.get(plugin_id)
            if fresh:
                _write_state(lambda: state_file.set_enabled(plugin_id, enable))
            return before
        instance = manager.get_plugin(plugin_id)
        if instance is not None and instance.is_loaded:
            try:
                await manager.reload_plugin(plugin_id)
            except PluginLoadError as exc:
                raise InstallLoadFailed(
                    f"{plugin_id}: the new version did not load ({exc.reason}); the previous version keeps serving",
                    detail={"plugin_id": plugin_id, "reason": exc.reason},
                ) from None
            return None
        if instance is not None:
            manager.forget_plugin(plugin_id)
        before = manager.state_file.modules.get(plugin_id)
        if fresh or before is None:
            _write_state(lambda: manager.state_file.set_enabled(plugin_id, enable))
        try:
            loaded = await manager.load_plugin(target)
            if enable and not loaded.is_enabled and (fresh or before is not False):
                await manager.enable_plugin(plugin_id)
        except PlugHostError as exc:
            if manager.get_plugin(plugin_id) is not None:
                with contextlib.suppress(PlugHostError):
                    await manager.unload_plugin(plugin_id)
                with contextlib.suppress(PlugHostError):
                    manager.forget_plugin(plugin_id)
            with contextlib.suppress(StateFileError):
                manager.state_file.set_enabled(plugin_id, before)
            if fresh:
                self._drop_empty_data_dir(plugin_id)
            reason = exc.reason if isinstance(exc, PluginLoadError) else str(exc)
            raise InstallLoadFailed(
                f"{plugin_id}: it did not load ({reason}); nothing was installed",
                detail={"plugin_id": plugin_id, "reason": reason},
            ) from None
        return before

    async def _swap_back(
        self, plugin_id: str, target: Path, new_home: Path, kept: Path | None, *, reload: bool
    ) -> None:
        """Put the files back as they were before a commit (the new files go to `new_home`)."""
        try:
            if target.exists() or target.is_symlink():
                _move(target, new_home)
            if kept is not None:
                _move(kept, target)
        except MarketError:
            log.exception("putting '%s' back failed; check %s", plugin_id, target)
            return
        if reload and self.manager is not None:
            instance = self.manager.get_plugin(plugin_id)
            if instance is not None and instance.is_loaded:
                try:
                    await self.manager.reload_plugin(plugin_id)
                except PlugHostError:
                    log.exception("reloading the previous version of '%s' failed", plugin_id)

    async def _undo(self, done: _Committed) -> None:
        """Revert one committed step of a plan that failed later."""
        step = done.staged.step
        try:
            if done.fresh:
                await self._unload(step.id)
                state_file = self._state_file()
                with contextlib.suppress(StateFileError):
                    state_file.set_enabled(step.id, done.enabled_before)
                self._drop_empty_data_dir(step.id)
            await self._swap_back(step.id, done.target, done.staged.root, done.kept, reload=not done.fresh)
        except Exception:
            log.exception("undoing the install of '%s' failed", step.id)

    def _drop_empty_data_dir(self, plugin_id: str) -> None:
        """Loading made `data/<id>/`; a plugin that did not get installed leaves no empty one behind."""
        with contextlib.suppress(OSError):
            (self.workspace / self.config.host.data_dir / plugin_id).rmdir()  # only when empty

    def _state_file(self) -> PluginStateFile:
        if self.manager is not None:
            return self.manager.state_file
        return PluginStateFile.load(self.workspace / self.config.host.state_file)

    async def _unload(self, plugin_id: str) -> None:
        """Stop the plugin in the host and forget it (plugin-state.toml too)."""
        manager = self.manager
        if manager is None:
            state_file = PluginStateFile.load(self.workspace / self.config.host.state_file)
            if plugin_id in state_file.modules or plugin_id in state_file.priorities:
                _write_state(lambda: state_file.forget(plugin_id))
            return
        instance = manager.get_plugin(plugin_id)
        if instance is None:
            return
        if instance.is_loaded:
            await manager.unload_plugin(plugin_id)
        try:
            manager.forget_plugin(plugin_id)
        except StateFileError as exc:
            raise CannotWrite(str(exc)) from exc

    def _record(self, state: MarketState, step: Step) -> None:
        old = state.installed.get(step.id)
        url = resolve_url(step.offer.index.location, step.build.url)
        state.installed[step.id] = InstalledPlugin(
            id=step.id,
            version=step.build.version,
            index=step.offer.index.source.name,
            url=url,
            sha256=step.build.sha256,
            runtime=step.build.runtime,
            path=str(self.plugin_dir / step.id),
            installed_at=now(),
            dependency=(old.dependency if old is not None else True) and not step.requested,
        )
        state.record(
            step.id,
            HistoryEntry(
                at=now(),
                action=step.action,
                version=step.build.version,
                previous=step.previous,
                index=step.offer.index.source.name,
                sha256=step.build.sha256,
                url=url,
            ),
        )

    def _purge(self, plugin_id: str) -> list[str]:
        removed = []
        configs = (
            self.manager.configs
            if self.manager is not None
            else PluginConfigStore(self.workspace / self.config.host.config_dir)
        )
        config = configs.path(plugin_id)
        for path in (config, config.with_name(config.name + ".bak")):
            if path.exists():
                path.unlink()
                removed.append(str(path))
        data = self.workspace / self.config.host.data_dir / plugin_id
        if data.exists():
            shutil.rmtree(data, ignore_errors=True)
            removed.append(str(data))
        return removed


def _not_installed(plugin_id: str) -> NotInstalled:
    return NotInstalled(
        f"plugin '{plugin_id}' was not installed from the market (`plughost market list` shows those)",
        detail={"plugin_id": plugin_id},
    )


def _previous(state: MarketState, plugin_id: str, current: str, kept: list[str]) -> str | None:
    """The version that was in use before `current` and is still kept."""
    for entry in reversed(state.history.get(plugin_id, [])):
        for version in (entry.previous, entry.version):
            if version is not None and version != current and version in kept:
                return version
    return None


def _manifest_of(directory: Path) -> PluginManifest:
    candidate = candidate_from_path(directory)
    if candidate.manifest is None:
        raise InvalidPackage(f"{directory} holds no valid plugin: {'; '.join(str(e) for e in candidate.errors)}")
    return candidate.manifest


def _move(source: Path, target: Path) -> None:
    try:
        move(source, target)
    except OSError as exc:
        raise CannotWrite(f"cannot move {source} to {target}: {exc.strerror or exc}") from exc


def _write_state(change: Callable[[], None]) -> None:
    try:
        change()
    except StateFileError as exc:
        raise CannotWrite(str(exc)) from exc


__all__ = ["Market"]
