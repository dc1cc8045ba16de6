"""Choosing versions: which build of which version fits this host, and what else must be installed.

A version fits when it has a build for this platform (`linux/amd64` …; a Python build without
platforms runs anywhere), its `plughost` range admits this plughost, and it satisfies every
requirement on it: the one asked for, those of the plugins being installed with it, and those of
plugins already in the workspace that depend on it. The newest fitting final version wins;
pre-releases only when asked for by version or when nothing else fits.

Dependencies are resolved depth first and installed before what needs them. A dependency already
in the workspace in a fitting version is left alone; one in a version that does not fit is
updated (if its index offers a fitting one). A cycle is an error naming it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from plughost.market.errors import AlreadyExists, DependencyConflict, NoCompatibleVersion, NotInIndex
from plughost.market.fetch import LoadedIndex
from plughost.market.index import IndexPlugin, IndexVersion, parse_plugin_requirement, parse_version


def host_platform() -> str:
    """This machine as `os/arch` (Go's spelling: linux/amd64, darwin/arm64 …)."""
    from plughost.runtime.native.discovery import host_arch, host_os

    return f"{host_os()}/{host_arch()}"


def version_of(text: str) -> Version | None:
    try:
        return parse_version(text)
    except ValueError:
        try:
            return Version(text.split("+", 1)[0])
        except InvalidVersion:
            return None


@dataclass(frozen=True)
class Offer:
    """A plugin as one index offers it."""

    index: LoadedIndex
    plugin: IndexPlugin


class Catalog:
    """The plugins of every readable index; an id offered by several comes from the highest priority."""

    def __init__(self, indexes: Sequence[LoadedIndex]) -> None:
        self.indexes = sorted(indexes, key=lambda loaded: -loaded.source.priority)

    def offers(self, plugin_id: str) -> list[Offer]:
        found = []
        for loaded in self.indexes:
            plugin = loaded.index.plugin(plugin_id)
            if plugin is not None:
                found.append(Offer(loaded, plugin))
        return found

    def find(self, plugin_id: str, index_name: str | None = None) -> Offer | None:
        """The offer of `index_name` (when given), else of the highest-priority index offering it."""
        offers = self.offers(plugin_id)
        if index_name is not None:
            return next((o for o in offers if o.index.source.name == index_name), None)
        return offers[0] if offers else None

    def offer(self, plugin_id: str, origin: str | None) -> Offer | None:
        """The offer of the index a plugin was installed from (`origin`), else the best one; `AlreadyExists`
        when only another index offers a plugin installed from `origin`."""
        offer = self.find(plugin_id, origin)
        if offer is None and origin is not None:
            other = self.find(plugin_id)
            if other is not None:
                raise AlreadyExists(
                    f"'{plugin_id}' was installed from index '{origin}', which no longer offers it; uninstall "
                    f"it first to install it from index '{other.index.source.name}'",
                    detail={"plugin_id": plugin_id, "index": origin},
                )
        return offer

    def plugins(self) -> list[Offer]:
        """Every plugin once (the highest-priority index's offer), in index order."""
        seen: set[str] = set()
        result = []
        for loaded in self.indexes:
            for plugin in loaded.index.plugins:
                if plugin.id not in seen:
                    seen.add(plugin.id)
                    result.append(Offer(loaded, plugin))
        return result


@dataclass(frozen=True)
class Step:
    """One plugin the plan installs: from which index, which build, and what was there before."""

    offer: Offer
    build: IndexVersion
    previous: str | None
    requested: bool
    required_by: str | None = None

    @property
    def id(self) -> str:
        return self.offer.plugin.id

    @property
    def action(self) -> Literal["install", "update", "downgrade", "reinstall"]:
        if self.previous is None:
            return "install"
        old, new = version_of(self.previous), self.build.parsed
        if old is None or new > old:
            return "update"
        return "downgrade" if new < old else "reinstall"


@dataclass
class Requirements:
    """What the workspace already has: versions by id, and who requires what of whom."""

    present: dict[str, str] = field(default_factory=dict)
    required: dict[str, list[tuple[str, SpecifierSet]]] = field(default_factory=dict)  # id → (dependent, range)
    origins: dict[str, str] = field(default_factory=dict)  # market-installed id → index name

    @classmethod
    def from_manifests(
        cls, versions: Mapping[str, str], dependencies: Mapping[str, Sequence[str]], origins: Mapping[str, str]
    ) -> Requirements:
        required: dict[str, list[tuple[str, SpecifierSet]]] = {}
        for dependent, specs in dependencies.items():
            for spec in specs:
                try:
                    requirement = parse_plugin_requirement(spec)
                except ValueError:
                    continue
                required.setdefault(requirement.name, []).append((dependent, requirement.specifier))
        return cls(dict(versions), required, dict(origins))

    def dependents(self, plugin_id: str) -> list[str]:
        return sorted({dependent for dependent, _ in self.required.get(plugin_id, ())})


class Resolver:
    """Makes install plans for one host (platform, plughost version) against one catalog."""

    def __init__(self, catalog: Catalog, workspace: Requirements, *, platform: str, plughost_version: str) -> None:
        self.catalog = catalog
        self.workspace = workspace
        self.platform = platform
        self.plughost_version = Version(plughost_version)

    def plan(self, plugin_id: str, *, version: str | None = None, spec: SpecifierSet | None = None) -> list[Step]:
        """Steps to install `plugin_id` (exactly `version`, else the newest fitting `spec`) with its
        missing dependencies, dependencies first."""
        chosen: dict[str, Step] = {}
        order: list[Step] = []
        self._visit(plugin_id, spec or SpecifierSet(), version, [], chosen, order, None)
        return order

    def _visit(
        self,
        plugin_id: str,
        spec: SpecifierSet,
        exact: str | None,
        path: list[str],
        chosen: dict[str, Step],
        order: list[Step],
        required_by: str | None,
    ) -> None:
        if plugin_id in path:
            cycle = [*path[path.index(plugin_id) :], plugin_id]
            raise DependencyConflict(f"dependency cycle: {' -> '.join(cycle)}", detail={"cycle": cycle})
        wanted = f"'{plugin_id}{spec}'" if str(spec) else f"'{plugin_id}'"
        if plugin_id in chosen:
            if not _fits(chosen[plugin_id].build.parsed, spec):
                raise DependencyConflict(
                    f"{required_by} requires {wanted}, but version {chosen[plugin_id].build.version} is being installed"
                )
            return
        present = self.workspace.present.get(plugin_id)
        if required_by is not None and present is not None:
            current = version_of(present)
            if current is not None and _fits(current, spec):
                return  # a dependency that is there already and fits
        offer = self.catalog.offer(plugin_id, self.workspace.origins.get(plugin_id))
        if offer is None:
            if required_by is None:
                raise NotInIndex(f"no index offers a plugin '{plugin_id}'", detail={"plugin_id": plugin_id})
            if present is not None:
                raise DependencyConflict(
                    f"{required_by} requires {wanted}, but version {present} is installed and no index offers another"
                )
            raise NotInIndex(f"{required_by} requires {wanted}, which no index offers", detail={"plugin_id": plugin_id})
        build = self.select(offer.plugin, spec, exact, required_by)
        path.append(plugin_id)
        for dependency in build.dependencies:
            requirement = parse_plugin_requirement(dependency)
            self._visit(requirement.name, requirement.specifier, None, path, chosen, order, plugin_id)
        path.pop()
        step = Step(offer, build, present, requested=required_by is None, required_by=required_by)
        chosen[plugin_id] = step
        order.append(step)

    def select(
        self, plugin: IndexPlugin, spec: SpecifierSet, exact: str | None = None, required_by: str | None = None
    ) -> IndexVersion:
        """The build to install: exactly `exact`, else the newest fitting everything (see the module)."""
        builds = list(plugin.versions)
        if exact is not None:
            wanted = version_of(exact)
            builds = [b for b in builds if b.version == exact or (wanted is not None and b.parsed == wanted)]
            if not builds:
                raise NotInIndex(
                    f"plugin '{plugin.id}' has no version {exact} (versions: {', '.join(plugin.version_numbers())})",
                    detail={"plugin_id": plugin.id, "version": exact},
                )
        here = [b for b in builds if b.runs_on(self.platform)]
        if not here:
            platforms = sorted({p for b in builds for p in b.platforms})
            which = f"version {exact}" if exact else "any version"
            raise NoCompatibleVersion(
                f"plugin '{plugin.id}' has no build of {which} for {self.platform} (builds: {', '.join(platforms)})",
                detail={"plugin_id": plugin.id, "platform": self.platform, "platforms": platforms},
            )
        usable = [b for b in here if self.plughost_version in SpecifierSet(b.plughost)]
        if not usable:
            ranges = sorted({b.plughost for b in here})
            raise NoCompatibleVersion(
                f"every fitting build of '{plugin.id}' needs another plughost ({', '.join(ranges)}); "
                f"this is {self.plughost_version}",
                detail={"plugin_id": plugin.id, "plughost": str(self.plughost_version)},
            )
        constraints = [(who, rng) for who, rng in self.workspace.required.get(plugin.id, ()) if who != required_by]
        fitting = [b for b in usable if _fits(b.parsed, spec) and all(_fits(b.parsed, r) for _, r in constraints)]
        if not fitting:
            asked_for = f"{plugin.id}{spec}" if str(spec) else f"{plugin.id}=={exact}"
            asked = f"{required_by} asks" if required_by else "you ask"
            needs = [f"{asked} for '{asked_for}'"] if str(spec) or exact else []
            needs += [f"{who} requires '{plugin.id}{rng}'" for who, rng in constraints if str(rng)]
            raise NoCompatibleVersion(
                f"no version of '{plugin.id}' fits: {'; '.join(needs) or 'nothing matches'} "
                f"(offered: {', '.join(plugin.version_numbers())})",
                detail={"plugin_id": plugin.id, "requirements": needs},
            )
        finals = [b for b in fitting if not b.parsed.is_prerelease]
        if exact is None and finals:
            fitting = finals
        return max(fitting, key=lambda b: b.parsed)


def _fits(version: Version, spec: SpecifierSet) -> bool:
    return not str(spec) or spec.contains(version, prereleases=True)


__all__ = ["Catalog", "Offer", "Requirements", "Resolver", "Step", "host_platform"]
