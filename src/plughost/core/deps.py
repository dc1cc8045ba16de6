"""Plugin dependencies: `dependencies.plugins = ["other>=1.0"]` → load order and failures."""

from __future__ import annotations

import graphlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from plughost.sdk.manifest import PluginManifest

if TYPE_CHECKING:  # packaging's parsers are imported by the first plugin that has dependencies
    from packaging.requirements import Requirement


@dataclass
class LoadPlan:
    """Ids in an order where dependencies come first, and the ids that cannot load (with why)."""

    order: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    cycles: list[list[str]] = field(default_factory=list)


def plan_loading(manifests: Mapping[str, PluginManifest]) -> LoadPlan:
    """Topologically order plugins; a missing/mismatched dependency or a cycle fails only its plugins."""
    plan = LoadPlan()
    graph: dict[str, set[str]] = {}
    for plugin_id, manifest in sorted(manifests.items()):
        deps: set[str] = set()
        for spec in manifest.dependencies.plugins:
            problem = _check(spec, manifests)
            if isinstance(problem, str):
                plan.failed[plugin_id] = problem
                break
            deps.add(problem.name)
        graph[plugin_id] = deps
    while True:
        try:
            ready = list(graphlib.TopologicalSorter(graph).static_order())
            break
        except graphlib.CycleError as exc:
            cycle = list(dict.fromkeys(exc.args[1]))
            plan.cycles.append(cycle)
            members = " -> ".join([*cycle, cycle[0]])
            for member in cycle:
                plan.failed[member] = f"dependency cycle: {members}"
                graph.pop(member, None)
            for deps in graph.values():
                deps.difference_update(cycle)
    for plugin_id in ready:
        if plugin_id not in manifests:
            continue
        broken = next((d for d in sorted(graph.get(plugin_id, ())) if d in plan.failed), None)
        if plugin_id in plan.failed:
            continue
        if broken is not None:
            plan.failed[plugin_id] = f"dependency '{broken}' cannot load: {plan.failed[broken]}"
            continue
        plan.order.append(plugin_id)
    return plan


def _check(spec: str, manifests: Mapping[str, PluginManifest]) -> Requirement | str:
    """The parsed requirement, or why it is not met."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        requirement = Requirement(spec)
    except InvalidRequirement as exc:
        return f"invalid dependency '{spec}': {exc}"
    target = manifests.get(requirement.name)
    if target is None:
        return f"missing dependency '{requirement.name}' (required as '{spec}')"
    if requirement.specifier and not _satisfies(requirement, target.version):
        return f"dependency '{requirement.name}' is version {target.version}, but '{spec}' is required"
    return requirement


def _satisfies(requirement: Requirement, version: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return requirement.specifier.contains(Version(version.split("+", 1)[0]), prereleases=True)
    except InvalidVersion:
        return False


def dependency_names(manifest: PluginManifest) -> set[str]:
    """Ids of the plugins `manifest` depends on (unparseable entries are skipped)."""
    names: set[str] = set()
    if not manifest.dependencies.plugins:
        return names
    from packaging.requirements import InvalidRequirement, Requirement

    for spec in manifest.dependencies.plugins:
        try:
            names.add(Requirement(spec).name)
        except InvalidRequirement:
            continue
    return names
