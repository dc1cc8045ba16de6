"""Which enabled plugin serves an HTTP method and path (routes and resources from descriptors)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from plughost.core.instance import PluginInstance
from plughost.sdk.http import HttpRouteSpec


@dataclass(frozen=True)
class ServedRoute:
    plugin_id: str
    spec: HttpRouteSpec


@dataclass
class RouteIndex:
    """Who serves `(method, path)`; rebuilt when the set of enabled plugins changes."""

    built_for: Sequence[PluginInstance] | None = None
    routes: dict[tuple[str, str], ServedRoute] = field(default_factory=dict)

    def lookup(self, enabled: Sequence[PluginInstance], method: str, path: str) -> ServedRoute | None:
        if enabled is not self.built_for:
            self.routes = {}
            for instance in enabled:  # priority order: the first claim wins
                descriptor = instance.descriptor
                for spec in descriptor.http if descriptor else ():
                    self.routes.setdefault((spec.method, spec.path), ServedRoute(instance.id, spec))
            self.built_for = enabled
        served = self.routes.get((method, path))
        if served is None and method == "HEAD":
            served = self.routes.get(("GET", path))
        return served

    def menus(self, enabled: Sequence[PluginInstance]) -> list[ServedRoute]:
        """Every served route and resource, for listings (CLIProxyAPI's menus)."""
        self.lookup(enabled, "", "")
        return list(self.routes.values())
